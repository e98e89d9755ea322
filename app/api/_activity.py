"""The activity view: who labeled what, throughput, agreement, and putting items back in the queue.

Reviewers and above see every item and every labeler; a labeler sees only the items they took
part in, their own figures, and among an item's labels only their own and machine-made ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.api._project import Progress, ProjectBase
from app.core.permissions import Action

if TYPE_CHECKING:
    from app.workflow.activity import (
        ActivityFacets,
        AgreementHistogram,
        ItemFilters,
        ItemPage,
        LabelerActivity,
        ThroughputSeries,
    )


class ActivityMixin(ProjectBase):
    if TYPE_CHECKING:  # TeamMixin's, composed beside this one in Project

        def open_thread_counts(self) -> dict[int, int]: ...

    def _activity_viewer(self) -> int | None:
        """None for people who see everything; the acting labeler's id for a labeler's own view."""
        self.require(Action.VIEW)
        return None if self.can(Action.SEE_ALL_LABELS) else self.user.id

    def activity(
        self,
        filters: ItemFilters | None = None,
        *,
        sort: str = "asset",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
        **fields: Any,
    ) -> ItemPage:
        """Items with their queue status, labelers, time spent, agreement, review result, open
        issues, classes and DICOM tags. Filter with an ``ItemFilters`` or keywords: ``status``,
        ``labeler``, ``label`` (a class), ``dataset``, ``modality``, ``body_part``, ``study_from``,
        ``study_to``, ``search``. Sorted and paged in the database; ``.total`` counts all matches.
        """
        from dataclasses import asdict, replace

        from app.workflow.activity import ItemFilters, item_rows

        viewer = self._activity_viewer()
        chosen = ItemFilters.of(**{**(asdict(filters) if filters is not None else {}), **fields})
        if viewer is not None and chosen.labeler not in (None, self.user_name):
            self.require(Action.SEE_ALL_LABELS)  # a labeler asking for someone else's items
        page = item_rows(
            self.db,
            self.id,
            chosen,
            sort=sort,
            descending=descending,
            limit=limit,
            offset=offset,
            viewer_id=viewer,
        )
        if viewer is None:
            return page
        # a labeler's issue counts leave out the threads kept from them on blind items
        shown = self.open_thread_counts()
        rows = [replace(row, open_threads=shown.get(row.asset_id, 0)) for row in page.rows]
        return replace(page, rows=rows)

    def labeler_activity(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[LabelerActivity]:
        """Per labeler: items submitted, items per hour of lease time, mean agreement on their
        consensus items, rejected and skipped counts (a labeler gets their own row only)."""
        from app.workflow.activity import labeler_rows

        return labeler_rows(self.db, self.id, since=since, until=until, viewer_id=self._activity_viewer())

    def throughput(
        self, bucket: str = "day", *, since: datetime | None = None, until: datetime | None = None
    ) -> ThroughputSeries:
        """Submitted items per hour, day or week per labeler (local time), for a chart."""
        from app.workflow.activity import throughput_series

        viewer = self._activity_viewer()
        return throughput_series(self.db, self.id, bucket, since=since, until=until, viewer_id=viewer)

    def agreement_histogram(self, bins: int = 10) -> AgreementHistogram:
        """Consensus items per agreement score bin over [0, 1]."""
        from app.workflow.activity import agreement_histogram

        return agreement_histogram(self.db, self.id, bins, viewer_id=self._activity_viewer())

    def activity_facets(self) -> ActivityFacets:
        """The values the activity filters can take here (datasets, labelers, modalities, ...)."""
        from app.workflow.activity import facets

        return facets(self.db, self.id, viewer_id=self._activity_viewer())

    def requeue(self, asset_ids: Sequence[int], *, progress: Progress | None = None) -> int:
        """Put items back in the labeling queue for a fresh start: running leases, submissions and
        work sent back by review are voided, so they need their full number of labelers again.
        Reviewers and above; every item is audited. Returns how many items were put back."""
        from app.workflow.activity import requeue_items

        self.require(Action.REVIEW)
        return requeue_items(self.db, self.id, asset_ids, user_id=self.user.id, progress=progress)
