"""Review: deciding items the labelers submitted, consensus labels, and what the review pane shows.

Lifecycle (the queue's side is in :mod:`app.workflow.queue`):

* A task whose required labelers all submitted is ``submitted``: it waits in :func:`review_queue`,
  lowest agreement first, then the longest waiting.
* :func:`accept` -> ``done`` (verdict ``accepted``); :func:`fix_and_accept` after the reviewer
  corrected the labels (through the normal annotation saves) -> ``done`` (verdict ``fixed``).
* :func:`reject` sends the item back to ONE labeler with a reason: the task becomes ``rejected``,
  that labeler's submission ``returned``; only they get it back (first, on their next claim) and
  their new submit returns it to review.
* Consensus items: :func:`choose_consensus` copies one labeler's labels, :func:`merge_consensus`
  merges all (majority vote or STAPLE, :mod:`app.workflow.consensus`). Either way the result is
  stored as annotations with source ``"consensus"`` (author: the reviewer), replacing an earlier
  consensus set, and the task is ``done`` (verdict ``accepted``, the method in the review details).
  What is stored must pass the ontology check a direct upload gets (a merge writes only the kinds
  each class allows); a requeue supersedes the set (app.workflow.queue.requeue).

One decision per item: every decision locks the task row and checks it still waits for review, so
when two reviewers decide the same item the second gets a ConflictError naming the first. The
reviewer who decided may revise in two ways only: reject a further labeler of an item they
rejected, and choose or merge the consensus of an item again. Every decision is audited
(``review.accept``, ``review.fix``, ``review.reject``, ``review.consensus``).

A labeler's annotations on an item are those they authored (consensus labels excluded); model
pre-labels uploaded by someone else count for nobody. Agreement scores are computed and stored by
:mod:`app.workflow.scoring`, which the queue also calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation
from app.core.errors import ConflictError, NotFoundError, ValidationError
from app.core.item_status import stored_status_word
from app.core.ontology import Ontology
from app.core.records import CONSENSUS_SOURCE, Asset, AssignmentStatus, Review, Task, TaskStatus, Verdict
from app.workflow.agreement import MASK_KINDS, ItemAgreement, annotation_masks, disagreement_map
from app.workflow.clock import Clock, now_utc, utcnow
from app.workflow.consensus import Method, build_consensus
from app.workflow.scoring import (
    agreement_of,
    current_ontology,
    labeler_annotations,
    labeler_ids,
    score_unscored,
    store_agreement,
)

if TYPE_CHECKING:
    from app.storage import Database
    from app.storage.uow import UnitOfWork

CONSENSUS = CONSENSUS_SOURCE  # the source of consensus annotations (exports pick them by it)

__all__ = [
    "CONSENSUS",
    "ReviewItem",
    "ReviewQueueItem",
    "accept",
    "choose_consensus",
    "fix_and_accept",
    "history",
    "merge_consensus",
    "reject",
    "review_item",
    "review_notes",
    "review_queue",
    "store_agreement",
]


# --- what the pane shows ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReviewQueueItem:
    """One item waiting for review."""

    asset_id: int
    task_id: int
    labelers: tuple[str, ...]  # who submitted it
    agreement: float | None  # consensus items; None for single-labeler items
    open_threads: int
    required_labelers: int
    waiting_since: datetime  # when it reached review


@dataclass(frozen=True)
class ReviewItem:
    """Everything the review pane needs about one asset."""

    task: Task
    asset: Asset
    ontology: Ontology
    annotations: dict[str, list[Annotation]]  # per labeler (see the module doc), in claim order
    agreement: ItemAgreement | None  # None with fewer than two labelers
    latest_review: Review | None
    others: list[Annotation] = field(default_factory=list)  # pre-labels, fixes, consensus labels

    @property
    def labelers(self) -> tuple[str, ...]:
        return tuple(self.annotations)

    @property
    def consensus(self) -> list[Annotation]:
        """The stored consensus labels (empty until a reviewer chose or merged them)."""
        return [a for a in self.others if a.source == CONSENSUS]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.asset.height, self.asset.width)

    def disagreement(self, frame: int, label: str | None = None) -> npt.NDArray[np.uint8]:
        """uint8 (H, W): per pixel, how many labelers disagree with the majority there.

        For one class, a pixel that ``k`` of ``N`` labelers marked scores ``min(k, N - k)``: 0 where
        all agree (all marked it, or none did), up to N // 2 on an even split. Without ``label`` the
        largest value over the classes anyone marked on the frame. Marks are rasterised by
        :func:`app.workflow.agreement.annotation_masks`, counted by ``disagreement_map``.
        """
        if not 0 <= frame < max(self.asset.frame_count, 1):
            raise ValidationError(
                f"frame {frame} is not in asset {self.asset.id} (0..{self.asset.frame_count - 1})"
            )
        out = np.zeros(self.shape, dtype=np.uint8)
        n = len(self.annotations)
        if n == 0:
            return out
        used = {
            a.label
            for anns in self.annotations.values()
            for a in anns
            if a.frame == frame and a.kind in MASK_KINDS
        }
        for name in [label] if label is not None else sorted(used):
            if name not in used:
                continue  # nobody marked it here: everyone agrees
            masks = annotation_masks(self.annotations, name, self.shape, frame=frame)
            votes = disagreement_map(list(masks.values()))
            np.maximum(out, np.minimum(votes, np.uint8(n) - votes), out=out)
        return out


def _task_of(uow: UnitOfWork, project_id: int, asset_id: int) -> Task:
    task = uow.tasks.for_asset(project_id, asset_id)
    if task is None:
        uow.assets.get(asset_id)  # NotFoundError for an unknown asset
        raise NotFoundError(f"asset {asset_id} is not in this project's labeling queue, so it has no review")
    return task


def review_item(db: Database, project_id: int, asset_id: int, *, score: bool = True) -> ReviewItem:
    """The item's labelers' annotations, their agreement (when ``score``) and the latest review."""

    def work(uow: UnitOfWork) -> ReviewItem:
        task = _task_of(uow, project_id, asset_id)
        labelers = labeler_ids(uow, task)
        by_labeler = labeler_annotations(uow, asset_id, labelers)
        theirs = {a.id for anns in by_labeler.values() for a in anns}
        others = [a for a in uow.annotations.list(asset_id) if a.id not in theirs]
        return ReviewItem(
            task=task,
            asset=uow.assets.get(asset_id),
            ontology=current_ontology(uow, project_id),
            annotations=by_labeler,
            agreement=None,
            latest_review=uow.reviews.latest(task.id),
            others=others,
        )

    item = db.run(work, readonly=True)
    if score and len(item.annotations) >= 2:
        # computed outside the unit of work: rasterising a long series must not hold a connection
        return replace(item, agreement=agreement_of(item.annotations, item.ontology, item.asset))
    return item


def review_queue(
    db: Database, project_id: int, *, limit: int | None = 50, offset: int = 0
) -> list[ReviewQueueItem]:
    """Items waiting for review: lowest agreement first (unscored items after), then oldest.

    Consensus items nobody scored yet are scored first: under PostgreSQL row security the last
    labeler's submit cannot (they read only their own labels); the reviewer reads them all."""
    score_unscored(db, project_id)

    def work(uow: UnitOfWork) -> list[ReviewQueueItem]:
        waiting = uow.reviews.waiting(project_id, limit=limit, offset=offset)
        threads = uow.threads.open_counts(project_id) if waiting else {}
        return [
            ReviewQueueItem(
                asset_id=task.asset_id,
                task_id=task.id,
                labelers=labelers,
                agreement=task.agreement,
                open_threads=threads.get(task.asset_id, 0),
                required_labelers=task.required_labelers,
                waiting_since=task.updated_at,
            )
            for task, labelers in waiting
        ]

    return db.run(work, readonly=True)


def history(db: Database, project_id: int, asset_id: int) -> list[Review]:
    """Every review of the item, oldest first."""

    def work(uow: UnitOfWork) -> list[Review]:
        _task_of(uow, project_id, asset_id)
        return uow.reviews.history(asset_id)

    return db.run(work, readonly=True)


def review_notes(db: Database, project_id: int, asset_id: int, user_id: int) -> list[Review]:
    """The rejections that sent this item back to this labeler, oldest first (the reasons to show)."""

    def work(uow: UnitOfWork) -> list[Review]:
        _task_of(uow, project_id, asset_id)
        return uow.reviews.rejections(asset_id, user_id)

    return db.run(work, readonly=True)


# --- decisions -------------------------------------------------------------------------------------
Revision = Callable[[Task, Review], bool]


def _decidable(uow: UnitOfWork, task: Task, reviewer_id: int, may_revise: Revision | None) -> None:
    """Raise unless the (locked) task waits for review or the reviewer may revise their decision."""
    if task.status is TaskStatus.SUBMITTED:
        return
    latest = uow.reviews.latest(task.id)
    if latest is None or task.status not in (TaskStatus.DONE, TaskStatus.REJECTED):  # e.g. requeued
        word = uow.activity.status_of(task.asset_id, now_utc(utcnow))  # app.core.item_status
        raise ValidationError(
            f"item {task.asset_id} is not waiting for review: it is {word}"
            + (" (not all its labelers have submitted yet)" if task.status is TaskStatus.NEW else "")
        )
    me = uow.users.get(reviewer_id).name
    if may_revise is not None and latest.reviewer == me and may_revise(task, latest):
        return
    when = latest.created_at.strftime("%Y-%m-%d %H:%M UTC")
    raise ConflictError(
        f"item {task.asset_id} was already decided by {latest.reviewer or 'a removed user'} "
        f"({latest.verdict.value}, {when}); it is {stored_status_word(task.status)} now"
    )


def _decide(
    db: Database,
    project_id: int,
    asset_id: int,
    reviewer_id: int,
    decision: Callable[[UnitOfWork, Task, datetime], Review],
    *,
    now: Clock,
    may_revise: Revision | None = None,
) -> Review:
    def work(uow: UnitOfWork) -> Review:
        t = now_utc(now)
        found = _task_of(uow, project_id, asset_id)
        task = uow.tasks.lock(found.id)  # one decision per task at a time (see module doc)
        _decidable(uow, task, reviewer_id, may_revise)
        return decision(uow, task, t)

    return db.run(work)


def _whole_item(
    verdict: Verdict, action: str, note: str, reviewer_id: int
) -> Callable[[UnitOfWork, Task, datetime], Review]:
    def decision(uow: UnitOfWork, task: Task, t: datetime) -> Review:
        uow.tasks.set_status(task.id, TaskStatus.DONE, t)
        review = uow.reviews.add(task.asset_id, task.id, reviewer_id, verdict, note=note, now=t)
        details = {"task_id": task.id, "review_id": review.id, "note": note}
        uow.audit.record(reviewer_id, action, "asset", task.asset_id, details)
        return review

    return decision


def accept(
    db: Database, project_id: int, asset_id: int, reviewer_id: int, *, note: str = "", now: Clock = utcnow
) -> Review:
    """The item's labels are right as they are: ``done``, verdict accepted."""
    decision = _whole_item(Verdict.ACCEPTED, "review.accept", note, reviewer_id)
    return _decide(db, project_id, asset_id, reviewer_id, decision, now=now)


def fix_and_accept(
    db: Database, project_id: int, asset_id: int, reviewer_id: int, *, note: str = "", now: Clock = utcnow
) -> Review:
    """Call after correcting the labels (normal annotation saves): ``done``, verdict fixed."""
    decision = _whole_item(Verdict.FIXED, "review.fix", note, reviewer_id)
    return _decide(db, project_id, asset_id, reviewer_id, decision, now=now)


def _submitted_by(uow: UnitOfWork, task: Task, labeler: str) -> int:
    """The id of ``labeler``'s submitted assignment on the task (ValidationError if none)."""
    try:
        user_id = uow.users.get_by_name(labeler).id
    except NotFoundError:
        raise ValidationError(f"there is no labeler called {labeler!r}") from None
    for assignment in uow.leases.assignments(task.id):
        if assignment.user_id == user_id and assignment.status is AssignmentStatus.SUBMITTED:
            return assignment.id
    names = ", ".join(uow.reviews.labelers([task.id])[0]) or "nobody"
    raise ValidationError(f"{labeler} has no submitted work on item {task.asset_id}; submitted by: {names}")


def reject(
    db: Database,
    project_id: int,
    asset_id: int,
    reviewer_id: int,
    labeler: str,
    *,
    reason: str,
    now: Clock = utcnow,
) -> Review:
    """Send the item back to ``labeler`` with ``reason`` (shown to them); only they get it back."""
    why = reason.strip()
    if not why:
        raise ValidationError("a rejection needs a reason: the labeler sees it next to the item")

    def decision(uow: UnitOfWork, task: Task, t: datetime) -> Review:
        assignment_id = _submitted_by(uow, task, labeler)
        uow.leases.send_back(assignment_id, t)
        uow.tasks.set_status(task.id, TaskStatus.REJECTED, t)
        review = uow.reviews.add(
            task.asset_id,
            task.id,
            reviewer_id,
            Verdict.REJECTED,
            note=why,
            now=t,
            assignment_id=assignment_id,
        )
        details = {"task_id": task.id, "review_id": review.id, "labeler": labeler, "reason": why}
        uow.audit.record(reviewer_id, "review.reject", "asset", task.asset_id, details)
        return review

    def another_labeler(task: Task, latest: Review) -> bool:  # the same reviewer sends back one more
        return task.status is TaskStatus.REJECTED and latest.verdict is Verdict.REJECTED

    return _decide(db, project_id, asset_id, reviewer_id, decision, now=now, may_revise=another_labeler)


# --- consensus -------------------------------------------------------------------------------------
def _consensus_again(task: Task, latest: Review) -> bool:
    return task.status is TaskStatus.DONE and "consensus" in latest.details


def _store_consensus(
    uow: UnitOfWork,
    task: Task,
    reviewer_id: int,
    annotations: Sequence[Annotation],
    t: datetime,
    *,
    note: str,
    details: Mapping[str, Any],
) -> Review:
    """Replace the item's consensus labels with ``annotations`` and mark it done (accepted).

    Refused (nothing stored) unless every one fits the project's current ontology, the check a
    direct upload gets: e.g. a labeler's masks chosen after their class became box-only."""
    if task.required_labelers < 2:
        raise ValidationError(
            f"item {task.asset_id} is not a consensus item (one labeler); accept or fix it instead"
        )
    fresh = [
        a.evolve(id=None, version=0, source=CONSENSUS, author=None, confidence=None, asset_id=task.asset_id)
        for a in annotations
    ]
    ontology = current_ontology(uow, task.project_id)
    if ontology.classes:  # as an upload: a project without an ontology takes any label
        problems = [
            f"consensus annotation #{index} ({a.kind.value} {a.label!r}, frame {a.frame}): "
            + "; ".join(found)
            for index, a in enumerate(fresh, 1)
            if (found := ontology.check(a))
        ]
        if problems:
            raise ValidationError(
                f"item {task.asset_id}: the ontology does not allow this consensus: " + " | ".join(problems)
            )
    for old in uow.annotations.list(task.asset_id, source=CONSENSUS):
        assert old.id is not None
        uow.annotations.delete(old.id, old.version, user_id=reviewer_id)
    stored = uow.annotations.add_many(task.asset_id, fresh, reviewer_id)
    uow.tasks.set_status(task.id, TaskStatus.DONE, t)
    info = {**details, "annotations": [a.id for a in stored]}
    review = uow.reviews.add(
        task.asset_id, task.id, reviewer_id, Verdict.ACCEPTED, note=note, now=t, details=info
    )
    audit = {"task_id": task.id, "review_id": review.id, **info}
    uow.audit.record(reviewer_id, "review.consensus", "asset", task.asset_id, audit)
    return review


def choose_consensus(
    db: Database, project_id: int, asset_id: int, reviewer_id: int, labeler: str, *, now: Clock = utcnow
) -> Review:
    """One labeler's annotations become the consensus item's label."""

    def decision(uow: UnitOfWork, task: Task, t: datetime) -> Review:
        _submitted_by(uow, task, labeler)
        user_id = uow.users.get_by_name(labeler).id
        chosen = labeler_annotations(uow, task.asset_id, {labeler: user_id})[labeler]
        details = {"consensus": "labeler", "labeler": labeler}
        return _store_consensus(
            uow, task, reviewer_id, chosen, t, note=f"consensus: the labels of {labeler}", details=details
        )

    return _decide(db, project_id, asset_id, reviewer_id, decision, now=now, may_revise=_consensus_again)


def _signature(by_labeler: Mapping[str, Sequence[Annotation]]) -> dict[str, set[tuple[int | None, int]]]:
    return {name: {(a.id, a.version) for a in anns} for name, anns in by_labeler.items()}


def merge_consensus(
    db: Database,
    project_id: int,
    asset_id: int,
    reviewer_id: int,
    *,
    method: Method = "majority",
    now: Clock = utcnow,
) -> Review:
    """Merge all labelers' annotations into the consensus label (majority vote or STAPLE).

    The merge is computed outside the write transaction (STAPLE on a series takes a while); the
    decision then checks nobody changed the labelers' annotations meanwhile (ConflictError if so).
    """
    if method not in ("majority", "staple"):
        raise ValidationError(f"unknown consensus method {method!r}; expected 'majority' or 'staple'")
    item = review_item(db, project_id, asset_id, score=False)
    merged = (
        build_consensus(item.annotations, item.ontology, item.shape, method=method)
        if item.annotations
        else None
    )

    def decision(uow: UnitOfWork, task: Task, t: datetime) -> Review:
        if merged is None:  # checked here, after the status: "not waiting for review" comes first
            raise ValidationError(f"item {task.asset_id} has no labelers' work to merge")
        current = labeler_annotations(uow, task.asset_id, labeler_ids(uow, task))
        if _signature(current) != _signature(item.annotations):
            raise ConflictError(
                f"the labels of item {task.asset_id} changed while the consensus was merged; merge again"
            )
        details: dict[str, Any] = {
            "consensus": method,
            "labelers": list(item.annotations),
            "ties": [list(tie) for tie in merged.ties],
            "skipped": [list(skip) for skip in merged.skipped],  # kinds the ontology does not allow
        }
        if merged.staple_stats:
            details["staple"] = merged.staple_stats
        note = f"consensus: {method} of {', '.join(item.annotations)}"
        return _store_consensus(uow, task, reviewer_id, merged.annotations, t, note=note, details=details)

    return _decide(db, project_id, asset_id, reviewer_id, decision, now=now, may_revise=_consensus_again)
