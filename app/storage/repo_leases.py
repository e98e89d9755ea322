"""Assignments: who holds which task (leases, submissions, work a review sent back) and claims.

An assignment *holds a slot* of its task when it is submitted, or active with its lease still
running. Writes that change a task's slots run after the task row was locked
(``TaskRepository.lock``, see ``app.storage.repo_tasks``).

Claims on PostgreSQL take candidates with ``FOR UPDATE SKIP LOCKED`` and then re-count the slots
of the rows they locked in a *new* statement: under READ COMMITTED the candidate query's snapshot
may predate another claimer's commit on a row that was unlocked by the time we reached it, and
only a fresh snapshot taken while holding the row lock sees that claim.

A claim fills the batch in three passes, each only when the one before found nothing more:

1. items the user never had;
2. items the user had and lost without declining them: their lease ran out, or a requeue voided it;
3. items the user skipped, and only those no other *active* labeler could take: a labeler is
   active when they hold a lease in the project or claimed, submitted or skipped one of its items
   within the last lease period (``active_since``); they could take the item unless they skipped
   it too, submitted it, or hold a running lease on it. So a skipped item goes to the others
   first, and comes back to its skipper after the rest of their queue, when nobody else working
   on the project can take it (nobody else, or everybody else skipped or labeled it).

Rows another claimer holds locked are passed over by SKIP LOCKED: that claimer takes them (or
finds them full), so they were never free for this user.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from app.core.errors import NotFoundError
from app.core.records import Assignment, AssignmentStatus, TaskStatus
from app.storage.repo_tasks import aware, chunks
from app.storage.tables import AssignmentRow, AuditRow, TaskRow, table_of

_T = table_of(TaskRow)
_A = table_of(AssignmentRow)
ACTIVE, SUBMITTED = AssignmentStatus.ACTIVE.value, AssignmentStatus.SUBMITTED.value
RETURNED, SKIPPED = AssignmentStatus.RETURNED.value, AssignmentStatus.SKIPPED.value
NEW, REJECTED = TaskStatus.NEW.value, TaskStatus.REJECTED.value
_CLAIM_ROUNDS = 50  # a round only repeats after losing a race, so this is never reached in practice


def _holds(now: datetime) -> ColumnElement[bool]:
    """The assignment occupies one of its task's labeler slots at ``now``."""
    return or_(
        AssignmentRow.status == SUBMITTED,
        and_(AssignmentRow.status == ACTIVE, AssignmentRow.lease_expires_at > now),
    )


_ASSIGNMENT_COLUMNS = (
    AssignmentRow.id,
    AssignmentRow.task_id,
    TaskRow.asset_id,
    AssignmentRow.user_id,
    AssignmentRow.status,
    AssignmentRow.leased_at,
    AssignmentRow.lease_expires_at,
    AssignmentRow.finished_at,
    TaskRow.required_labelers,
)


def _assignment(row: Row[Any]) -> Assignment:
    return Assignment(
        id=row.id,
        task_id=row.task_id,
        asset_id=row.asset_id,
        user_id=row.user_id,
        status=AssignmentStatus(row.status),
        leased_at=aware(row.leased_at),
        lease_expires_at=aware(row.lease_expires_at),
        finished_at=None if row.finished_at is None else aware(row.finished_at),
        required_labelers=row.required_labelers,
    )


class LeaseRepository:
    """Assignments of queued tasks: reading them, renewing, finishing, sending back, expiring, claiming."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._pg = session.get_bind().dialect.name == "postgresql"

    def _assignments(self) -> Any:
        return select(*_ASSIGNMENT_COLUMNS).join(TaskRow, TaskRow.id == AssignmentRow.task_id)

    def assignment(self, assignment_id: int) -> Assignment:
        row = self._s.execute(self._assignments().where(AssignmentRow.id == assignment_id)).first()
        if row is None:
            raise NotFoundError(f"assignment {assignment_id} does not exist")
        return _assignment(row)

    def assignments(self, task_id: int) -> builtins.list[Assignment]:
        """Every assignment of a task, oldest first (the activity view's history)."""
        query = self._assignments().where(AssignmentRow.task_id == task_id).order_by(AssignmentRow.id)
        return [_assignment(r) for r in self._s.execute(query)]

    def live(self, project_id: int, user_id: int, now: datetime) -> builtins.list[Assignment]:
        """The user's running leases in the project, in the order they were claimed."""
        query = (
            self._assignments()
            .where(
                TaskRow.project_id == project_id,
                AssignmentRow.user_id == user_id,
                AssignmentRow.status == ACTIVE,
                AssignmentRow.lease_expires_at > now,
            )
            .order_by(AssignmentRow.id)
        )
        return [_assignment(r) for r in self._s.execute(query)]

    def returned(self, project_id: int, user_id: int, now: datetime) -> builtins.list[Assignment]:
        """The user's work a review sent back (rejected tasks) that is not under a running lease:
        returned assignments, and reclaimed ones whose lease ran out (nobody else may take them)."""
        query = (
            self._assignments()
            .where(
                TaskRow.project_id == project_id,
                TaskRow.status == REJECTED,
                AssignmentRow.user_id == user_id,
                or_(
                    AssignmentRow.status == RETURNED,
                    and_(AssignmentRow.status == ACTIVE, AssignmentRow.lease_expires_at <= now),
                ),
            )
            .order_by(AssignmentRow.id)
        )
        return [_assignment(r) for r in self._s.execute(query)]

    def send_back(self, assignment_id: int, now: datetime) -> bool:
        """A review rejected this submission: it becomes the labeler's returned work."""
        result = self._s.execute(
            update(_A)
            .where(_A.c.id == assignment_id, _A.c.status == SUBMITTED)
            .values(status=RETURNED, finished_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def reactivate(self, assignment_ids: Sequence[int], now: datetime, expires_at: datetime) -> None:
        """Returned work claimed again: active with a fresh lease (same assignment, same slot)."""
        if assignment_ids:
            self._s.execute(
                update(_A)
                .where(_A.c.id.in_(list(assignment_ids)), _A.c.status.in_([RETURNED, ACTIVE]))
                .values(status=ACTIVE, leased_at=now, lease_expires_at=expires_at, finished_at=None)
            )

    def submitted_count(self, task_id: int) -> int:
        query = select(func.count()).where(
            AssignmentRow.task_id == task_id, AssignmentRow.status == SUBMITTED
        )
        return int(self._s.execute(query).scalar_one())

    def extend(self, assignment_id: int, now: datetime, expires_at: datetime) -> bool:
        """Move a live lease's expiry to ``expires_at``; False when it is no longer live."""
        result = self._s.execute(
            update(_A)
            .where(_A.c.id == assignment_id, _A.c.status == ACTIVE, _A.c.lease_expires_at > now)
            .values(lease_expires_at=expires_at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def finish(self, assignment_id: int, status: AssignmentStatus, now: datetime, *, live_only: bool) -> bool:
        """End an active assignment as ``status``; with ``live_only`` only while its lease runs."""
        guard = [_A.c.id == assignment_id, _A.c.status == ACTIVE]
        if live_only:
            guard.append(_A.c.lease_expires_at > now)
        result = self._s.execute(update(_A).where(*guard).values(status=status.value, finished_at=now))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def release_task(self, task_id: int, now: datetime) -> int:
        """Void the task's active leases, submissions and returned work (a requeue); returns how many."""
        result = self._s.execute(
            update(_A)
            .where(_A.c.task_id == task_id, _A.c.status.in_([ACTIVE, SUBMITTED, RETURNED]))
            .values(status=AssignmentStatus.RELEASED.value, finished_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def expire(self, project_id: int, now: datetime, task_ids: Sequence[int] | None = None) -> int:
        """Mark leases that ran out as expired (in the project, or only on ``task_ids``).
        Rejected tasks keep theirs: that work stays the labeler's (see :meth:`returned`)."""
        where = [_A.c.status == ACTIVE, _A.c.lease_expires_at <= now]
        if task_ids is None:
            mine = select(_T.c.id).where(_T.c.project_id == project_id, _T.c.status != REJECTED)
            where.append(_A.c.task_id.in_(mine))
        else:
            where.append(_A.c.task_id.in_(list(task_ids)))
        result = self._s.execute(
            update(_A).where(*where).values(status=AssignmentStatus.EXPIRED.value, finished_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # --- skips --------------------------------------------------------------------------------------
    def skips(self, user_id: int, task_ids: Sequence[int]) -> dict[int, str]:
        """The tasks among ``task_ids`` the user skipped, with the reason of their latest skip
        ("" when they gave none): the editor tells them they skipped it earlier."""
        found: dict[int, str] = {}
        for chunk in chunks(sorted(set(task_ids))):
            skipped = select(AssignmentRow.task_id).where(
                AssignmentRow.task_id.in_(chunk),
                AssignmentRow.user_id == user_id,
                AssignmentRow.status == SKIPPED,
            )
            found.update((int(t), "") for t in self._s.execute(skipped.distinct()).scalars())
        if found:  # the reasons are in the skips' audit rows (app.workflow.queue.skip), oldest first
            reasons = (
                select(AuditRow.details)
                .where(AuditRow.action == "queue.skip", AuditRow.user_id == user_id)
                .where(AuditRow.entity == "asset")
                .order_by(AuditRow.id)
            )
            assets = select(TaskRow.asset_id).where(TaskRow.id.in_(sorted(found)))
            for details in self._s.execute(reasons.where(AuditRow.entity_id.in_(assets))).scalars():
                task = int((details or {}).get("task_id", -1))
                if task in found:
                    found[task] = str(details.get("reason", ""))
        return found

    def _back_to_skipper(
        self, project_id: int, user_id: int, now: datetime, active_since: datetime
    ) -> set[int]:
        """Open tasks the user skipped that no other active labeler could take (module doc, pass 3)."""
        query = (
            select(AssignmentRow.task_id)
            .join(TaskRow, TaskRow.id == AssignmentRow.task_id)
            .where(
                TaskRow.project_id == project_id,
                TaskRow.status == NEW,
                AssignmentRow.user_id == user_id,
                AssignmentRow.status == SKIPPED,
            )
            .distinct()
        )
        skipped = {int(t) for t in self._s.execute(query).scalars()}
        if not skipped:
            return set()
        recent = or_(
            and_(AssignmentRow.status == ACTIVE, AssignmentRow.lease_expires_at > now),
            AssignmentRow.leased_at > active_since,
            AssignmentRow.finished_at > active_since,
        )
        others = (
            select(AssignmentRow.user_id)
            .join(TaskRow, TaskRow.id == AssignmentRow.task_id)
            .where(TaskRow.project_id == project_id, AssignmentRow.user_id != user_id, recent)
            .distinct()
        )
        active = {int(u) for u in self._s.execute(others).scalars()}
        if not active:
            return skipped
        # who of them cannot take each task: they skipped it too, submitted it, or hold it now
        unable: dict[int, set[int]] = {t: set() for t in skipped}
        for chunk in chunks(sorted(skipped)):
            blocked = select(AssignmentRow.task_id, AssignmentRow.user_id).where(
                AssignmentRow.task_id.in_(chunk),
                AssignmentRow.user_id.in_(sorted(active)),
                or_(AssignmentRow.status == SKIPPED, _holds(now)),
            )
            for task_id, other in self._s.execute(blocked):
                unable[int(task_id)].add(int(other))
        return {t for t, who in unable.items() if who >= active}

    # --- claims -----------------------------------------------------------------------------------
    def _candidates(
        self,
        project_id: int,
        user_id: int,
        now: datetime,
        count: int,
        *,
        rank: int,
        passed: set[int],
        only: set[int] | None = None,
    ) -> dict[int, int]:
        """Claimable task ids of pass ``rank`` (1, 2 or 3: see the module doc; pass 3 offers the
        tasks in ``only``, from :meth:`_back_to_skipper`) mapped to their asset ids, best first,
        locked (PostgreSQL skips the rows other claimers hold)."""
        taken = (
            select(func.count())
            .where(AssignmentRow.task_id == TaskRow.id, _holds(now))
            .correlate(TaskRow)
            .scalar_subquery()
        )
        mine = [AssignmentRow.task_id == TaskRow.id, AssignmentRow.user_id == user_id]
        held = exists().where(*mine, _holds(now)).correlate(TaskRow)
        if rank == 1:
            offered = ~exists().where(*mine).correlate(TaskRow)
        elif rank == 2:
            offered = and_(~held, ~exists().where(*mine, AssignmentRow.status == SKIPPED).correlate(TaskRow))
        else:
            offered = and_(~held, TaskRow.id.in_(sorted(only or ())))
        query = (
            select(TaskRow.id, TaskRow.asset_id)
            .where(
                TaskRow.project_id == project_id,
                TaskRow.status == NEW,
                taken < TaskRow.required_labelers,
                offered,
            )
            .order_by(TaskRow.priority.desc(), TaskRow.id)
            .limit(count)
        )
        if passed:
            query = query.where(TaskRow.id.not_in(sorted(passed)))
        if self._pg:
            query = query.with_for_update(skip_locked=True, of=TaskRow)
        return {int(t): int(a) for t, a in self._s.execute(query)}

    def _still_claimable(
        self, task_ids: builtins.list[int], user_id: int, now: datetime
    ) -> tuple[builtins.list[int], set[int], dict[int, int]]:
        """Re-check locked candidates with a fresh snapshot (see module doc); keeps their order.
        Also returns the tasks among them that have an active lease past its expiry, and the
        labelers each task requires."""
        query = select(TaskRow.id, TaskRow.required_labelers).where(
            TaskRow.id.in_(task_ids), TaskRow.status == NEW
        )
        required = {int(t): int(r) for t, r in self._s.execute(query)}
        need = dict(required)
        stale: set[int] = set()
        held = select(
            AssignmentRow.task_id, AssignmentRow.user_id, AssignmentRow.status, AssignmentRow.lease_expires_at
        ).where(AssignmentRow.task_id.in_(task_ids), AssignmentRow.status.in_([ACTIVE, SUBMITTED]))
        for task_id, holder, status, expires in self._s.execute(held):
            if task_id not in need:
                continue
            if status == ACTIVE and aware(expires) <= now:
                stale.add(task_id)  # a lease that ran out holds no slot
            else:
                need[task_id] = 0 if holder == user_id else need[task_id] - 1
        return [t for t in task_ids if need.get(t, 0) > 0], stale, required

    def claim(
        self,
        project_id: int,
        user_id: int,
        count: int,
        now: datetime,
        expires_at: datetime,
        *,
        active_since: datetime,
    ) -> builtins.list[Assignment]:
        """Lease up to ``count`` more tasks to the user; returns the new assignments, best first.
        ``active_since``: who worked on the project since then counts as an active labeler, to
        whom the user's skipped items go first (module doc)."""
        chosen: builtins.list[int] = []
        assets: dict[int, int] = {}
        required: dict[int, int] = {}
        stale: set[int] = set()
        passed: set[int] = set()
        rank = 1
        allowed: set[int] | None = None  # pass 3's tasks, decided once per claim
        for _ in range(_CLAIM_ROUNDS):
            need = count - len(chosen)
            if need <= 0:
                break
            if rank == 3 and allowed is None:
                allowed = self._back_to_skipper(project_id, user_id, now, active_since) - passed
            if rank == 3 and not allowed:
                break
            found = self._candidates(project_id, user_id, now, need, rank=rank, passed=passed, only=allowed)
            if not found:
                if rank == 3:
                    break
                rank += 1
                continue
            ok, expired, needs = self._still_claimable(list(found), user_id, now)
            chosen += ok
            required.update(needs)
            stale.update(expired.intersection(ok))
            assets.update(found)
            passed.update(found)
        if not chosen:
            return []
        # a slot freed by an expired lease is taken over: mark it, so a late renew/submit sees why
        if stale:
            self.expire(project_id, now, sorted(stale))
        rows = [
            {
                "task_id": t,
                "user_id": user_id,
                "status": ACTIVE,
                "leased_at": now,
                "lease_expires_at": expires_at,
            }
            for t in chosen
        ]
        ids = self._s.execute(insert(_A).returning(_A.c.id, sort_by_parameter_order=True), rows).scalars()
        active = AssignmentStatus.ACTIVE
        return [
            Assignment(int(i), t, assets[t], user_id, active, now, expires_at, required_labelers=required[t])
            for i, t in zip(ids, chosen, strict=True)
        ]
