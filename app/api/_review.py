"""Review: the reviewers' queue, decisions on items, consensus labels; a labeler's rejection notes.

    for entry in project.review_queue(limit=20):             # lowest agreement first
        item = project.review_item(entry.asset_id)           # per-labeler annotations + agreement
        heat = project.disagreement(entry.asset_id, frame=0)  # uint8 per pixel
        project.accept(entry.asset_id)                       # or reject / fix_and_accept / consensus

Every decision needs the reviewer role (or above) and is audited; when two reviewers decide the
same item the second gets a ConflictError naming the first (see app.workflow.review).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from app.api._project import ProjectBase
from app.core.permissions import Action
from app.core.records import Review

if TYPE_CHECKING:
    from app.workflow.consensus import Method
    from app.workflow.review import ReviewItem, ReviewQueueItem


class ReviewMixin(ProjectBase):
    def review_queue(self, limit: int | None = 50, *, offset: int = 0) -> list[ReviewQueueItem]:
        """Items waiting for review (all labelers submitted): lowest agreement first, then oldest;
        with their labelers, agreement score and open thread count."""
        from app.workflow.review import review_queue

        self.require(Action.REVIEW)
        return review_queue(self.db, self.id, limit=limit, offset=offset)

    def review_item(self, asset_id: int) -> ReviewItem:
        """One item for the review pane: task, annotations per labeler, agreement, latest review."""
        from app.workflow.review import review_item

        self.require(Action.REVIEW)
        self.asset(asset_id)
        return review_item(self.db, self.id, asset_id)

    def disagreement(self, asset_id: int, frame: int, label: str | None = None) -> npt.NDArray[np.uint8]:
        """Per pixel of ``frame``, how many labelers disagree with the majority (0: all agree)."""
        from app.workflow.review import review_item

        self.require(Action.REVIEW)
        self.asset(asset_id)
        return review_item(self.db, self.id, asset_id, score=False).disagreement(frame, label)

    def accept(self, asset_id: int, note: str = "") -> Review:
        """The item's labels are right: it is done."""
        from app.workflow.review import accept

        self.require(Action.REVIEW)
        self.asset(asset_id)
        return accept(self.db, self.id, asset_id, self.user.id, note=note)

    def reject(self, asset_id: int, labeler: str, reason: str) -> Review:
        """Send the item back to ``labeler`` with ``reason``; only they get it back, then it returns here."""
        from app.workflow.review import reject

        self.require(Action.REVIEW)
        self.asset(asset_id)
        return reject(self.db, self.id, asset_id, self.user.id, labeler, reason=reason)

    def fix_and_accept(self, asset_id: int, note: str = "") -> Review:
        """After correcting the labels with save_annotation/delete_annotation: the item is done."""
        from app.workflow.review import fix_and_accept

        self.require(Action.REVIEW)
        self.asset(asset_id)
        return fix_and_accept(self.db, self.id, asset_id, self.user.id, note=note)

    def choose_consensus(self, asset_id: int, labeler: str) -> Review:
        """A consensus item's label becomes ``labeler``'s annotations (stored with source "consensus")."""
        from app.workflow.review import choose_consensus

        self.require(Action.REVIEW)
        self.asset(asset_id)
        return choose_consensus(self.db, self.id, asset_id, self.user.id, labeler)

    def merge_consensus(self, asset_id: int, method: Method = "majority") -> Review:
        """A consensus item's label merged from all labelers ("majority" vote or "staple")."""
        from app.workflow.review import merge_consensus

        self.require(Action.REVIEW)
        self.asset(asset_id)
        return merge_consensus(self.db, self.id, asset_id, self.user.id, method=method)

    def review_history(self, asset_id: int) -> list[Review]:
        """Every review decision on the item, oldest first."""
        from app.workflow.review import history

        self.require(Action.REVIEW)
        self.asset(asset_id)
        return history(self.db, self.id, asset_id)

    def review_notes(self, asset_id: int) -> list[Review]:
        """The acting labeler's own rejections on this item (reviewer, reason, time), oldest first."""
        from app.workflow.review import review_notes

        self.require(Action.ANNOTATE)
        self.asset(asset_id)
        return review_notes(self.db, self.id, asset_id, self.user.id)
