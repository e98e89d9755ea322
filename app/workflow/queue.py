"""The dynamic labeling queue: batches of tasks leased to labelers, renewed while they work.

Rules (the UI and the API rely on them):

* A task needs ``required`` distinct labelers (1 normally, N for consensus items). It is handed out
  while its *held slots* (submitted assignments + running leases) are fewer than ``required``; it
  becomes ``submitted`` once ``required`` labelers submitted it.
* Never twice the same person: a user who submitted a task, or holds a live lease on it, never gets
  it again (until a :func:`requeue` voids the submissions).
* Expired items go back to the pool at once; the same user gets them again only when nothing
  they have not seen is left, so a one-person project can still finish its queue.
* A skipped item goes to the other labelers first. It comes back to the one who skipped it only
  when no other *active* labeler could take it -- active: holds a lease in the project, or
  claimed, submitted or skipped one of its items within the last lease period; could take it:
  has not skipped it too, submitted it or taken it -- and then after the rest of that person's
  queue, with :attr:`Lease.skipped` saying they skipped it (and why). See app.storage.repo_leases.
* Order: highest ``priority`` first, then oldest task.
* A lease is only good while it runs: renewing or submitting after ``expires_at`` raises
  :class:`LeaseExpired`, even when nobody has claimed the item yet, because the item was already
  back in the pool and someone else may be working on it.
* ``claim`` returns the user's live leases first, so a restarted app gets its batch back.
* Review may reject an item back to one labeler (app.workflow.review): the task becomes
  ``rejected`` and that labeler's submission ``returned``. Nobody else can claim it; the labeler's
  next claim hands it back first (with the reason in :attr:`Lease.note`), and their new submit puts
  the task back to ``submitted`` for review. A consensus task's agreement score is (re)computed
  whenever it reaches ``submitted`` (under PostgreSQL row security, where a labeler cannot read
  the others' labels, by the next review-queue load of a reviewer instead).
* Claims and submits are audited (one audit row per claim call, however big the batch).
* A lease lasts the project's lease time as of the claim that handed it out, and each renewal
  extends it by that same time (:attr:`Lease.lease_seconds`): changing the lease time
  (app.workflow.project_settings) applies to later claims, not to a lease already running. (A
  claim that hands a held lease back, e.g. after a restart, hands it out with the current time.)

Claims on PostgreSQL use ``SELECT ... FOR UPDATE SKIP LOCKED`` (see app.storage.repo_leases); on
SQLite a write unit holds the database write lock (BEGIN IMMEDIATE), which serializes them.
Times come from ``now`` (UTC); workstations sharing a database should keep their clocks in sync
(NTP), leases being minutes long.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from app.core.errors import ConflictError
from app.core.item_status import STATUSES, ItemStatus
from app.core.records import CONSENSUS_SOURCE, Assignment, AssignmentStatus, TaskStatus
from app.workflow.clock import Clock, utcnow

if TYPE_CHECKING:
    from app.storage import Database
    from app.storage.uow import UnitOfWork

_log = logging.getLogger(__name__)


class LeaseExpired(ConflictError):
    """The lease ran out, was taken over, skipped or requeued: the action was not applied."""


@dataclass(frozen=True)
class Lease:
    """A labeler's time-limited hold on one queued item."""

    assignment_id: int
    task_id: int
    asset_id: int
    user_id: int
    expires_at: datetime
    note: str | None = None  # returned by review: the latest rejection reason, for the editor
    required_labelers: int = 1  # the task's distinct labelers (> 1: consensus), as of the claim/renewal
    # the lease time it was claimed with: each renewal extends it by this much (None: the project's)
    lease_seconds: int | None = None
    # the labeler skipped this item before and it came back to them: their reason ("" for none)
    skipped: str | None = None

    @classmethod
    def of(
        cls,
        assignment: Assignment,
        note: str | None = None,
        lease_seconds: int | None = None,
        skipped: str | None = None,
    ) -> Lease:
        return cls(
            assignment.id,
            assignment.task_id,
            assignment.asset_id,
            assignment.user_id,
            assignment.lease_expires_at,
            note,
            assignment.required_labelers,
            lease_seconds,
            skipped,
        )


def _now(clock: Clock) -> datetime:
    return clock().astimezone(UTC)  # SQLite stores naive UTC text: never let a local zone in


def _seconds(value: int | None, default: int) -> int:
    seconds = default if value is None else value
    if seconds < 1:
        raise ValueError(f"a lease lasts at least 1 second, got {seconds}")
    return seconds


# --- filling the queue ---------------------------------------------------------------------------
def enqueue(
    db: Database,
    project_id: int,
    asset_ids: Sequence[int],
    *,
    required: int = 1,
    priority: float = 0.0,
    now: Clock = utcnow,
) -> int:
    """Queue one task per asset (assets already queued keep their task); returns how many were new."""
    t = _now(now)

    def work(uow: UnitOfWork) -> int:
        uow.projects.get(project_id)
        return uow.tasks.add_many(project_id, asset_ids, required=required, priority=priority, now=t)

    return db.run(work)


def set_priority(
    db: Database, project_id: int, asset_ids: Sequence[int], priority: float, *, now: Clock = utcnow
) -> None:
    """E.g. ``1 - model confidence`` so that the least certain items are labeled first."""
    t = _now(now)
    db.run(lambda uow: uow.tasks.set_priority(project_id, asset_ids, priority, t))


def set_required(
    db: Database, project_id: int, asset_ids: Sequence[int], required: int, *, now: Clock = utcnow
) -> None:
    """Make still-open items consensus items (or back): how many distinct labelers they need."""
    t = _now(now)
    db.run(lambda uow: uow.tasks.set_required(project_id, asset_ids, required, t))


# --- labeling ------------------------------------------------------------------------------------
def claim(
    db: Database,
    project_id: int,
    user_id: int,
    *,
    batch: int | None = None,
    lease_seconds: int | None = None,
    now: Clock = utcnow,
) -> list[Lease]:
    """The user's batch: work review sent back to them first, then their live leases, then new
    items up to ``batch`` (project defaults for ``batch`` and ``lease_seconds``). An empty list
    means nothing is left for this user now (items they skipped may be waiting for others)."""

    def work(uow: UnitOfWork) -> list[Lease]:
        settings = uow.projects.get(project_id).settings
        size = settings.batch_size if batch is None else batch
        t = _now(now)
        seconds = _seconds(lease_seconds, settings.lease_seconds)
        expires = t + timedelta(seconds=seconds)
        returned = [a.id for a in uow.leases.returned(project_id, user_id, t)]
        uow.leases.reactivate(returned, t, expires)
        held = uow.leases.live(project_id, user_id, t)
        # a live lease with a rejection reason is returned work being redone (submitted ones are not live)
        reasons = uow.reviews.latest_reasons([a.id for a in held]) if held else {}
        held.sort(key=lambda a: a.id not in reasons)  # stable: returned work first
        # who worked on the project within the last lease period is active: skipped items go to them first
        active_since = t - timedelta(seconds=settings.lease_seconds)
        fresh = (
            uow.leases.claim(project_id, user_id, size - len(held), t, expires, active_since=active_since)
            if len(held) < size
            else []
        )
        if returned or fresh:
            details = {"tasks": [a.task_id for a in fresh], "returned": returned}
            uow.audit.record(user_id, "queue.claim", "project", project_id, details)
        leases = held + fresh
        skips = uow.leases.skips(user_id, [a.task_id for a in leases]) if leases else {}
        return [Lease.of(a, reasons.get(a.id), seconds, skips.get(a.task_id)) for a in leases]

    return db.run(work)


def _why_not_live(assignment: Assignment, lease: Lease, t: datetime, action: str) -> str | None:
    """Why ``action`` cannot apply to this lease any more (None: it still runs)."""
    item = f"item {lease.asset_id} (task {lease.task_id})"
    if assignment.user_id != lease.user_id:
        return f"cannot {action} {item}: this lease belongs to another user"
    status = assignment.status
    if status is AssignmentStatus.ACTIVE and assignment.lease_expires_at > t:
        return None
    if status is AssignmentStatus.ACTIVE or status is AssignmentStatus.EXPIRED:
        ago = int((t - assignment.lease_expires_at).total_seconds())
        taken = " and another labeler took it over" if status is AssignmentStatus.EXPIRED else ""
        return (
            f"cannot {action} {item}: your lease expired {ago} s ago{taken}, so the item went back to "
            "the queue. Your saved annotations are kept; claim the item again to continue."
        )
    if status is AssignmentStatus.RELEASED:
        return f"cannot {action} {item}: it was put back in the queue (requeued) meanwhile"
    if status is AssignmentStatus.RETURNED:
        return f"cannot {action} {item}: a reviewer sent it back to you; claim it again to continue"
    return f"cannot {action} {item}: you already {status.value} it"


def renew(db: Database, lease: Lease, *, lease_seconds: int | None = None, now: Clock = utcnow) -> Lease:
    """Extend a running lease (call it while the labeler works); LeaseExpired when it is too late.
    It is extended by ``lease_seconds``, else by the time it was claimed with, else by the
    project's lease time."""

    def work(uow: UnitOfWork) -> Lease:
        t = _now(now)
        task = uow.tasks.lock(lease.task_id)  # one lease change per task at a time (see repo_tasks)
        assignment = uow.leases.assignment(lease.assignment_id)
        why = _why_not_live(assignment, lease, t, "renew the lease on")
        if why is not None:
            raise LeaseExpired(why)
        granted = lease.lease_seconds if lease_seconds is None else lease_seconds
        seconds = _seconds(granted, uow.projects.get(task.project_id).settings.lease_seconds)
        expires = max(t + timedelta(seconds=seconds), assignment.lease_expires_at)
        if not uow.leases.extend(lease.assignment_id, t, expires):
            raise LeaseExpired(f"cannot renew the lease on item {lease.asset_id}: it ran out meanwhile")
        kept = seconds if lease.lease_seconds is None else lease.lease_seconds
        required = task.required_labelers
        return replace(lease, expires_at=expires, required_labelers=required, lease_seconds=kept)

    return db.run(work)


def submit(db: Database, lease: Lease, *, now: Clock = utcnow) -> None:
    """Record the labeler's work on the item as done. Submitting the same lease again is a no-op;
    a late submit raises LeaseExpired. Work a review sent back goes back to review."""
    from app.storage.row_security import sees_all_labels

    def work(uow: UnitOfWork) -> bool:
        t = _now(now)
        task = uow.tasks.lock(lease.task_id)
        assignment = uow.leases.assignment(lease.assignment_id)
        if assignment.status is AssignmentStatus.SUBMITTED and assignment.user_id == lease.user_id:
            return False  # a retried submit (e.g. after a lost reply)
        why = _why_not_live(assignment, lease, t, "submit")
        if why is not None or not uow.leases.finish(
            lease.assignment_id, AssignmentStatus.SUBMITTED, t, live_only=True
        ):
            raise LeaseExpired(why or f"cannot submit item {lease.asset_id}: the lease ran out meanwhile")
        done = task.required_labelers == 1 or uow.leases.submitted_count(task.id) >= task.required_labelers
        ready = task.status in (TaskStatus.NEW, TaskStatus.REJECTED) and done
        if ready:
            uow.tasks.set_status(task.id, TaskStatus.SUBMITTED, t)
        details = {"task_id": task.id, "assignment_id": lease.assignment_id, "for_review": ready}
        uow.audit.record(lease.user_id, "queue.submit", "asset", lease.asset_id, details)
        # under PostgreSQL row security a labeler reads only their own labels: the agreement would
        # be wrong, so it is left for the review queue, which a reviewer (who sees all) loads
        return ready and task.required_labelers > 1 and sees_all_labels(uow.session, task.project_id)

    if db.run(work):
        _score_consensus(db, lease.task_id)


def _score_consensus(db: Database, task_id: int) -> None:
    """Store the agreement of a consensus task that just reached review. Runs after the submit
    committed, so a failure here (e.g. a label the ontology lost) never loses the submit: the
    score stays empty and the review pane computes it live."""
    from app.workflow.scoring import store_agreement

    try:
        store_agreement(db, task_id)
    except Exception:  # the submit stands; the score is a convenience
        _log.warning("could not compute the agreement of task %s", task_id, exc_info=True)


def skip(db: Database, lease: Lease, *, reason: str = "", now: Clock = utcnow) -> None:
    """Give the item back to the pool now (others get it first; see the module doc).
    Skipping a lease that already ran out or was requeued does nothing: the item is back anyway."""

    def work(uow: UnitOfWork) -> None:
        t = _now(now)
        uow.tasks.lock(lease.task_id)
        assignment = uow.leases.assignment(lease.assignment_id)
        if assignment.user_id != lease.user_id:
            raise LeaseExpired(f"cannot skip item {lease.asset_id}: this lease belongs to another user")
        if assignment.status is AssignmentStatus.SUBMITTED:
            raise ConflictError(f"cannot skip item {lease.asset_id}: you already submitted it")
        if uow.tasks.get(lease.task_id).status is TaskStatus.REJECTED:
            raise ConflictError(
                f"cannot skip item {lease.asset_id}: a reviewer sent it back to you; correct it and submit it"
            )
        if uow.leases.finish(lease.assignment_id, AssignmentStatus.SKIPPED, t, live_only=False):
            details = {"task_id": lease.task_id, "reason": reason} if reason else {"task_id": lease.task_id}
            uow.audit.record(lease.user_id, "queue.skip", "asset", lease.asset_id, details)

    db.run(work)


# --- activity view and housekeeping ----------------------------------------------------------------
def requeue(
    db: Database, task_id: int, *, now: Clock = utcnow, audit: tuple[int, dict[str, Any]] | None = None
) -> None:
    """Put an item back in the queue for a fresh start: running leases, earlier submissions and
    work a review sent back are voided, so it needs its full number of labelers again. Earlier
    labelers may get it again, after items they have not seen. (To send one labeler's work back,
    review rejects it instead: app.workflow.review.) The item's consensus label is superseded
    (soft-deleted, kept for history): only a consensus chosen or merged after the relabeling counts,
    and an item accepted without one has none. ``audit=(user_id, details)`` records a
    ``queue.requeue`` row in the same transaction, so no requeue goes unaudited."""

    def work(uow: UnitOfWork) -> None:
        t = _now(now)
        task = uow.tasks.lock(task_id)
        uow.leases.release_task(task_id, t)
        uow.tasks.set_status(task_id, TaskStatus.NEW, t)
        who = None if audit is None else audit[0]
        superseded = []
        for old in uow.annotations.list(task.asset_id, source=CONSENSUS_SOURCE):
            assert old.id is not None
            uow.annotations.delete(old.id, old.version, user_id=who)
            superseded.append(old.id)
        if audit is not None:
            details = {**audit[1], "superseded_consensus": superseded} if superseded else audit[1]
            uow.audit.record(audit[0], "queue.requeue", "asset", task.asset_id, details)

    db.run(work)


def release_expired(db: Database, project_id: int, *, now: Clock = utcnow) -> int:
    """Mark leases that ran out as expired (claims treat them as free anyway); returns how many."""
    t = _now(now)
    return db.run(lambda uow: uow.leases.expire(project_id, t))


def queue_stats(db: Database, project_id: int, *, now: Clock = utcnow) -> dict[str, int]:
    """How many items have each status (app.core.item_status defines the words: ``new`` nobody has
    started, ``leased``, ``in_progress`` waiting for more consensus labelers, ``submitted``,
    ``rejected``, ``accepted``, ``unqueued``), and ``total``: the items in the queue (all but the
    unqueued ones). The queue panel, ``sitelabel activity`` and the API all show these numbers."""
    t = _now(now)
    found = db.run(lambda uow: uow.activity.status_counts(project_id, t), readonly=True)
    counts = {status: found.pop(status, 0) for status in STATUSES}
    counts.update(found)  # a stored status outside the vocabulary (none today) is still counted
    counts["total"] = sum(n for status, n in counts.items() if status != ItemStatus.UNQUEUED)
    return counts


def consensus_seed(project_id: int) -> str:
    """The project's consensus sampling seed: the same sample on every workstation and import."""
    return f"project-{project_id}"


def enqueue_with_consensus(
    db: Database, project_id: int, asset_ids: Sequence[int], *, share: float, count: int, now: Clock = utcnow
) -> int:
    """Queue new assets; the project's consensus share of them needs ``count`` distinct labelers.

    Which assets are sampled is decided by a hash of the project and asset ids, so every workstation
    and every later import agrees without coordination (app.workflow.consensus).
    """
    from app.workflow.consensus import consensus_plan

    plan = consensus_plan(asset_ids, share=share, count=count, seed=consensus_seed(project_id))
    created = 0
    for required in sorted(set(plan.values())):
        chosen = [asset_id for asset_id, needed in plan.items() if needed == required]
        created += enqueue(db, project_id, chosen, required=required, now=now)
    return created
