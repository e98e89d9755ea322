"""Read-only queries of the activity view: per item the queue, review and label facts; per labeler
the leases and submissions behind throughput figures.

The item list must stay fast on 10,000+ items, so it is a fixed number of statements whatever the
number of items (never one query per item): the page (filters, sort, limit/offset, with the per-item
figures as correlated subqueries), the labelers and classes of that page's items (two statements that
embed the page as a subquery), and the total count.

Who "took part" in an item: a labeler whose assignment holds a slot of its task -- submitted (or
returned to them by a review), or active with its lease still running (on a rejected task, even
after it ran out: nobody else may take that work). Skipped, expired and requeued (released)
assignments do not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    case,
    cast,
    exists,
    extract,
    false,
    func,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Session

from app.core.annotations import HUMAN
from app.core.errors import ValidationError
from app.core.item_status import ItemStatus
from app.core.records import AssignmentStatus, TaskStatus
from app.storage.tables import (
    AnnotationRow,
    AssetRow,
    AssignmentRow,
    DataRootRow,
    DatasetRow,
    ReviewRow,
    TaskRow,
    ThreadRow,
    UserRow,
    table_of,
)

ACTIVE = AssignmentStatus.ACTIVE.value
SUBMITTED = AssignmentStatus.SUBMITTED.value
# a submission a reviewer sent back to its labeler still counts as theirs
HELD = (SUBMITTED, AssignmentStatus.RETURNED.value)
NEW, REJECTED, DONE = TaskStatus.NEW.value, TaskStatus.REJECTED.value, TaskStatus.DONE.value

_T = table_of(TaskRow)
_CHUNK = 2000  # ids per IN (...) list, well under both backends' parameter limits
# tasks.agreement arrives with the review migration; until then every score reads as empty
HAS_AGREEMENT = "agreement" in _T.c


def _agreement_column() -> ColumnElement[Any]:
    return _T.c["agreement"] if HAS_AGREEMENT else cast(null(), Float)


_AGREEMENT = _agreement_column()


#: the columns of :attr:`ItemRows.rows`, in order
ITEM_FIELDS = (
    "asset_id", "root", "rel_path", "member", "dataset", "kind", "status", "time", "required", "agreement",
    "review", "reviewer", "threads", "modality", "body_part", "study_date", "series",
)  # fmt: skip


@dataclass(frozen=True)
class ItemRows:
    """A page of items as plain tuples (:data:`ITEM_FIELDS`), the labelers and classes of each item
    (by asset id) and how many items match the filters in all."""

    rows: list[tuple[Any, ...]]
    labelers: dict[int, list[str]]
    classes: dict[int, list[str]]
    total: int


@dataclass(frozen=True)
class ItemCriteria:
    """What the item query filters on, as plain values (built by app.workflow.activity)."""

    statuses: tuple[str, ...] = ()
    labeler: str | None = None
    label: str | None = None
    dataset: str | None = None
    modality: str | None = None
    body_part: str | None = None
    study_from: str | None = None  # DICOM DA text, YYYYMMDD
    study_to: str | None = None
    search: str | None = None
    viewer_id: int | None = None  # restrict to this labeler's own items (and own labels)
    sort: str = "asset"
    descending: bool = False
    limit: int | None = None
    offset: int = 0


def _seconds(start: Any, end: Any, postgres: bool) -> ColumnElement[Any]:
    """``end - start`` in seconds (datetimes are UTC on both backends)."""
    if postgres:
        return extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _meta(key: str) -> ColumnElement[str]:
    return AssetRow.meta[key].as_string()


def _live(now: datetime) -> ColumnElement[bool]:
    return and_(AssignmentRow.status == ACTIVE, AssignmentRow.lease_expires_at > now)


def _took_part(now: datetime) -> ColumnElement[bool]:
    """The assignment holds a slot of its task (the task row is correlated from the outer query);
    on a rejected task even a lapsed lease stays its labeler's work."""
    return or_(
        AssignmentRow.status.in_(HELD),
        _live(now),
        and_(AssignmentRow.status == ACTIVE, TaskRow.status == REJECTED),
    )


def item_status(now: datetime) -> ColumnElement[str]:
    """The item's status word (app.core.item_status, which defines them) from the outer query's
    asset row and its outer-joined task row. The activity list and the queue counts both use this
    one expression, so they cannot disagree."""
    live = exists().where(AssignmentRow.task_id == TaskRow.id, _live(now))
    started = exists().where(AssignmentRow.task_id == TaskRow.id, AssignmentRow.status == SUBMITTED)
    return case(
        (TaskRow.id.is_(None), ItemStatus.UNQUEUED.value),
        (and_(TaskRow.status == NEW, live), ItemStatus.LEASED.value),
        (and_(TaskRow.status == NEW, started), ItemStatus.IN_PROGRESS.value),
        (TaskRow.status == DONE, ItemStatus.ACCEPTED.value),
        else_=TaskRow.status,
    )


def _task_of_asset(project_id: Any) -> ColumnElement[bool]:
    return and_(TaskRow.asset_id == AssetRow.id, TaskRow.project_id == project_id)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ActivityRepository:
    def __init__(self, session: Session) -> None:
        self._s = session
        self._pg = session.get_bind().dialect.name == "postgresql"

    # --- items --------------------------------------------------------------------------------------
    def _columns(self, now: datetime) -> dict[str, Any]:
        """Per-item figures, correlated to the outer assets/tasks rows (sortable by these names)."""
        # returned work is left out: its finished_at is when review sent it back, not when it was done
        seconds = (
            select(func.sum(_seconds(AssignmentRow.leased_at, AssignmentRow.finished_at, self._pg)))
            .where(AssignmentRow.task_id == TaskRow.id, AssignmentRow.status == SUBMITTED)
            .scalar_subquery()
        )
        # the latest review of the item is its result (the reviewer may have been deleted: outer join)
        verdict = select(ReviewRow.verdict).where(ReviewRow.asset_id == AssetRow.id)
        reviewer = (
            select(UserRow.name)
            .select_from(ReviewRow)
            .outerjoin(UserRow, UserRow.id == ReviewRow.reviewer_id)
            .where(ReviewRow.asset_id == AssetRow.id)
        )
        threads = select(func.count(ThreadRow.id)).where(
            ThreadRow.asset_id == AssetRow.id, ThreadRow.status == "open"
        )
        return {
            "asset": AssetRow.id,
            "path": AssetRow.rel_path + AssetRow.member,
            "dataset": DatasetRow.name,
            "kind": AssetRow.kind,
            "status": item_status(now),
            "time": seconds,
            "required": TaskRow.required_labelers,
            "agreement": _AGREEMENT,
            "review": verdict.order_by(ReviewRow.id.desc()).limit(1).scalar_subquery(),
            "reviewer": reviewer.order_by(ReviewRow.id.desc()).limit(1).scalar_subquery(),
            "threads": threads.scalar_subquery(),
            "modality": _meta("Modality"),
            "body_part": _meta("BodyPartExamined"),
            "study_date": _meta("StudyDate"),
            "series": _meta("SeriesDescription"),
        }

    @staticmethod
    def _base(query: Select[Any]) -> Select[Any]:
        return (
            query.select_from(AssetRow)
            .join(DatasetRow, DatasetRow.id == AssetRow.dataset_id)
            .join(DataRootRow, DataRootRow.id == AssetRow.root_id)
            .outerjoin(
                TaskRow, and_(TaskRow.asset_id == AssetRow.id, TaskRow.project_id == AssetRow.project_id)
            )
        )

    def _visible(self, viewer_id: int | None) -> list[ColumnElement[bool]]:
        """A labeler sees their own labels and machine-made ones, never another labeler's."""
        if viewer_id is None:
            return []
        return [or_(AnnotationRow.author_id == viewer_id, AnnotationRow.source != HUMAN)]

    def _where(
        self, project_id: int, c: ItemCriteria, cols: dict[str, Any], now: datetime
    ) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [AssetRow.project_id == project_id]
        if c.statuses:
            where.append(cols["status"].in_(c.statuses))
        if c.viewer_id is not None:
            where.append(
                exists().where(
                    AssignmentRow.task_id == TaskRow.id, AssignmentRow.user_id == c.viewer_id, _took_part(now)
                )
            )
        if c.labeler is not None:
            where.append(
                exists().where(
                    AssignmentRow.task_id == TaskRow.id,
                    AssignmentRow.user_id == UserRow.id,
                    UserRow.name == c.labeler,
                    _took_part(now),
                )
            )
        if c.label is not None:
            where.append(
                exists().where(
                    AnnotationRow.asset_id == AssetRow.id,
                    AnnotationRow.label == c.label,
                    AnnotationRow.deleted.is_(false()),
                    *self._visible(c.viewer_id),
                )
            )
        if c.dataset is not None:
            where.append(DatasetRow.name == c.dataset)
        if c.modality is not None:
            where.append(func.upper(cols["modality"]) == c.modality.upper())
        if c.body_part is not None:
            where.append(func.upper(cols["body_part"]) == c.body_part.upper())
        if c.study_from is not None:
            where.append(cols["study_date"] >= c.study_from)
        if c.study_to is not None:
            where.append(cols["study_date"] <= c.study_to)
        if c.search:
            pattern = _like(c.search)
            where.append(
                or_(
                    AssetRow.rel_path.ilike(pattern, escape="\\"),
                    AssetRow.member.ilike(pattern, escape="\\"),
                    cols["series"].ilike(pattern, escape="\\"),
                )
            )
        return where

    def items(self, project_id: int, criteria: ItemCriteria, now: datetime) -> ItemRows:
        """One page of items and the total number of items matching the filters."""
        cols = self._columns(now)
        if criteria.sort not in cols:
            raise ValidationError(f"cannot sort activity by {criteria.sort!r}; choose one of {sorted(cols)}")
        where = self._where(project_id, criteria, cols, now)
        key = cols[criteria.sort]
        page_query = self._base(select(AssetRow.id.label("asset_id"), key.label("k"))).where(*where)
        page_query = page_query.order_by(
            key.is_(None), key.desc() if criteria.descending else key, AssetRow.id
        ).offset(criteria.offset)
        if criteria.limit is not None:
            page_query = page_query.limit(criteria.limit)
        page = page_query.subquery("page")
        shown = [page.c.asset_id, DataRootRow.name, AssetRow.rel_path, AssetRow.member]
        shown += [cols[name].label(name) for name in ITEM_FIELDS[len(shown) :]]
        query = (
            select(*shown)
            .select_from(page)
            .join(AssetRow, AssetRow.id == page.c.asset_id)
            .join(DatasetRow, DatasetRow.id == AssetRow.dataset_id)
            .join(DataRootRow, DataRootRow.id == AssetRow.root_id)
            .outerjoin(TaskRow, _task_of_asset(project_id))
            .order_by(page.c.k.is_(None), page.c.k.desc() if criteria.descending else page.c.k)
            .order_by(page.c.asset_id)
        )
        # Core statements on the session's connection: the ORM's row handling costs more than the
        # query on 10,000 rows
        conn = self._s.connection()
        rows = [tuple(r) for r in conn.execute(query)]
        # the page's ids as a list when short; else the filter again (not the sort, which may be costly)
        ids: Any = [r[0] for r in rows]
        if len(ids) > _CHUNK // 2:
            ids = self._base(select(AssetRow.id)).where(*where)
        names: dict[int, list[str]] = {}
        labelers = (
            select(TaskRow.asset_id, UserRow.name)
            .distinct()
            .join(AssignmentRow, AssignmentRow.task_id == TaskRow.id)
            .join(UserRow, UserRow.id == AssignmentRow.user_id)
            .where(TaskRow.project_id == project_id, TaskRow.asset_id.in_(ids), _took_part(now))
        )
        if criteria.viewer_id is not None:  # a labeler is not shown who else labeled an item
            labelers = labelers.where(AssignmentRow.user_id == criteria.viewer_id)
        for asset_id, name in conn.execute(labelers.order_by(TaskRow.asset_id, UserRow.name)):
            names.setdefault(int(asset_id), []).append(str(name))
        classes: dict[int, list[str]] = {}
        labels = (
            select(AnnotationRow.asset_id, AnnotationRow.label)
            .distinct()
            .where(
                AnnotationRow.asset_id.in_(ids),
                AnnotationRow.deleted.is_(false()),
                *self._visible(criteria.viewer_id),
            )
            .order_by(AnnotationRow.asset_id, AnnotationRow.label)
        )
        for asset_id, label in conn.execute(labels):
            classes.setdefault(int(asset_id), []).append(str(label))
        total = conn.execute(self._base(select(func.count(AssetRow.id))).where(*where)).scalar_one()
        return ItemRows(rows, names, classes, int(total))

    def status_counts(self, project_id: int, now: datetime) -> dict[str, int]:
        """How many of the project's items have each status word (app.core.item_status)."""
        per_item = (
            self._base(select(item_status(now).label("status")))
            .where(AssetRow.project_id == project_id)
            .subquery("per_item")
        )
        query = select(per_item.c.status, func.count()).group_by(per_item.c.status)
        return {str(s): int(n) for s, n in self._s.execute(query)}

    def statuses(self, project_id: int, now: datetime) -> dict[int, str]:
        """Every item's status word by asset id (the export's status filter)."""
        columns: Any = select(AssetRow.id, item_status(now))
        query = self._base(columns).where(AssetRow.project_id == project_id)
        return {int(a): str(s) for a, s in self._s.execute(query)}

    def status_of(self, asset_id: int, now: datetime) -> str:
        """One item's status word (review messages)."""
        query = self._base(select(item_status(now))).where(AssetRow.id == asset_id)
        return str(self._s.execute(query).scalar_one())

    # --- labelers ------------------------------------------------------------------------------------
    def _epoch(self, moment: Any) -> ColumnElement[float]:
        """A UTC datetime column as seconds since 1970 (plain floats: 10,000 of them are summed,
        compared and bucketed in Python, which datetimes would make ten times slower)."""
        if self._pg:
            return cast(extract("epoch", moment), Float)
        return (func.julianday(moment) - 2440587.5) * 86400.0

    def assignments(
        self,
        project_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        user_id: int | None = None,
    ) -> list[tuple[Any, ...]]:
        """Every assignment of the project's tasks overlapping [since, until), as tuples (user id,
        name, task id, status, leased at, lease expires at, finished at (times in epoch seconds,
        finished None while open), labelers the task needs, its agreement): the raw facts of the
        throughput figures."""
        query = (
            select(
                AssignmentRow.user_id,
                UserRow.name,
                AssignmentRow.task_id,
                AssignmentRow.status,
                self._epoch(AssignmentRow.leased_at),
                self._epoch(AssignmentRow.lease_expires_at),
                self._epoch(AssignmentRow.finished_at),
                TaskRow.required_labelers,
                _AGREEMENT,
            )
            .join(TaskRow, TaskRow.id == AssignmentRow.task_id)
            .join(UserRow, UserRow.id == AssignmentRow.user_id)
            .where(TaskRow.project_id == project_id)
            .order_by(AssignmentRow.user_id, AssignmentRow.leased_at)
        )
        if user_id is not None:
            query = query.where(AssignmentRow.user_id == user_id)
        if until is not None:
            query = query.where(AssignmentRow.leased_at < until)
        if since is not None:
            ended = func.coalesce(AssignmentRow.finished_at, AssignmentRow.lease_expires_at)
            query = query.where(ended > since)
        return [tuple(r) for r in self._s.connection().execute(query)]

    def rejections(
        self,
        project_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        user_id: int | None = None,
    ) -> dict[int, int]:
        """Rejecting reviews per labeler (a rejection names the labeler's assignment)."""
        query = (
            select(AssignmentRow.user_id, func.count(ReviewRow.id))
            .join(AssignmentRow, AssignmentRow.id == ReviewRow.assignment_id)
            .join(TaskRow, TaskRow.id == AssignmentRow.task_id)
            .where(TaskRow.project_id == project_id, ReviewRow.verdict == "rejected")
            .group_by(AssignmentRow.user_id)
        )
        if user_id is not None:
            query = query.where(AssignmentRow.user_id == user_id)
        if since is not None:
            query = query.where(ReviewRow.created_at >= since)
        if until is not None:
            query = query.where(ReviewRow.created_at < until)
        return {int(u): int(n) for u, n in self._s.execute(query)}

    def agreements(self, project_id: int, now: datetime, *, viewer_id: int | None = None) -> list[float]:
        """Stored agreement scores of the project's tasks (of the viewer's items when given)."""
        if not HAS_AGREEMENT:
            return []
        query = select(_AGREEMENT).where(TaskRow.project_id == project_id, _AGREEMENT.is_not(None))
        if viewer_id is not None:
            query = query.where(
                exists().where(
                    AssignmentRow.task_id == TaskRow.id, AssignmentRow.user_id == viewer_id, _took_part(now)
                )
            )
        return [float(v) for v in self._s.execute(query).scalars()]

    # --- choices for the filter bar ------------------------------------------------------------------
    def facets(self, project_id: int, *, viewer_id: int | None = None) -> dict[str, list[str]]:
        """Values the filters can take in this project: datasets, labelers, modalities, body parts."""
        datasets = (
            select(DatasetRow.name).where(DatasetRow.project_id == project_id).order_by(DatasetRow.name)
        )
        labelers = (
            select(UserRow.name)
            .distinct()
            .join(AssignmentRow, AssignmentRow.user_id == UserRow.id)
            .join(TaskRow, TaskRow.id == AssignmentRow.task_id)
            .where(TaskRow.project_id == project_id)
            .order_by(UserRow.name)
        )
        if viewer_id is not None:
            labelers = labelers.where(UserRow.id == viewer_id)
        out = {
            "datasets": [str(v) for v in self._s.execute(datasets.order_by(DatasetRow.name)).scalars()],
            "labelers": [str(v) for v in self._s.execute(labelers).scalars()],
        }
        for name, tag in (("modalities", "Modality"), ("body_parts", "BodyPartExamined")):
            value = _meta(tag)
            query = (
                select(value).distinct().where(AssetRow.project_id == project_id, value.is_not(None))
            ).order_by(value)
            out[name] = [str(v) for v in self._s.execute(query).scalars() if v]
        return out

    def asset_ids_in(self, project_id: int, asset_ids: Sequence[int]) -> set[int]:
        """Which of these assets belong to the project."""
        wanted = sorted(set(asset_ids))
        found: set[int] = set()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            query = select(AssetRow.id).where(AssetRow.project_id == project_id, AssetRow.id.in_(chunk))
            found.update(int(v) for v in self._s.execute(query).scalars())
        return found

    def tasks_of(self, project_id: int, asset_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        """(task id, status) of those assets that have a task in the project."""
        wanted = sorted(set(asset_ids))
        found: dict[int, tuple[int, str]] = {}
        for start in range(0, len(wanted), _CHUNK):
            query = select(TaskRow.asset_id, TaskRow.id, TaskRow.status).where(
                TaskRow.project_id == project_id, TaskRow.asset_id.in_(wanted[start : start + _CHUNK])
            )
            found.update({int(a): (int(t), str(s)) for a, t, s in self._s.execute(query)})
        return found
