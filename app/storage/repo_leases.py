"""Assignments: who holds which task (leases, submissions, work a review sent back) and claims.

An assignment *holds a slot* of its task when it is submitted, or active with its lease still
running. Writes that change a task's slots run after the task row was locked
(``TaskRepository.lock``, see ``app.storage.repo_tasks``).

Claims on PostgreSQL take candidates with ``FOR UPDATE SKIP LOCKED`` and then re-count the slots
of the rows they locked in a *new* statement: under READ COMMITTED the candidate query's snapshot
may predate another claimer's commit on a row that was unlocked by the time we reached it, and
only a fresh snapshot taken while holding the row lock sees that claim.
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
from app.storage.repo_tasks import aware
from app.storage.tables import AssignmentRow, TaskRow, table_of

_T = table_of(TaskRow)
_A = table_of(AssignmentRow)
ACTIVE, SUBMITTED = AssignmentStatus.ACTIVE.value, AssignmentStatus.SUBMITTED.value
RETURNED = AssignmentStatus.RETURNED.value
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

    # --- claims -----------------------------------------------------------------------------------
    def _candidates(
        self, project_id: int, user_id: int, now: datetime, count: int, *, revisit: bool, passed: set[int]
    ) -> dict[int, int]:
        """Claimable task ids mapped to their asset ids, best first, locked (PostgreSQL skips the
        rows other claimers hold).

        First pass (``revisit`` False): tasks the user never touched. Second pass: also tasks the
        user skipped or let expire -- they come back to the same person only when nothing else is left.
        """
        taken = (
            select(func.count())
            .where(AssignmentRow.task_id == TaskRow.id, _holds(now))
            .correlate(TaskRow)
            .scalar_subquery()
        )
        mine = [AssignmentRow.task_id == TaskRow.id, AssignmentRow.user_id == user_id]
        if revisit:
            mine.append(_holds(now))
        query = (
            select(TaskRow.id, TaskRow.asset_id)
            .where(
                TaskRow.project_id == project_id,
                TaskRow.status == NEW,
                taken < TaskRow.required_labelers,
                ~exists().where(*mine).correlate(TaskRow),
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
        self, project_id: int, user_id: int, count: int, now: datetime, expires_at: datetime
    ) -> builtins.list[Assignment]:
        """Lease up to ``count`` more tasks to the user; returns the new assignments, best first."""
        chosen: builtins.list[int] = []
        assets: dict[int, int] = {}
        required: dict[int, int] = {}
        stale: set[int] = set()
        passed: set[int] = set()
        revisit = False
        for _ in range(_CLAIM_ROUNDS):
            need = count - len(chosen)
            if need <= 0:
                break
            found = self._candidates(project_id, user_id, now, need, revisit=revisit, passed=passed)
            if not found:
                if revisit:
                    break
                revisit = True
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
