"""Tasks: one per queued asset, with its priority, the labelers it needs and its status.

A task stays ``new`` until enough labelers submitted it; who holds it right now is read from the
assignments (``app.storage.repo_leases``). Every write that changes a task's slots first locks the
task row (:meth:`TaskRepository.lock`: ``FOR UPDATE`` on PostgreSQL; SQLite write units already
hold the database write lock), so claims, renewals, submits and requeues of one task happen one
after another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.core.errors import NotFoundError, ValidationError
from app.core.records import AssignmentStatus, Task, TaskStatus
from app.storage.tables import AssetRow, AssignmentRow, TaskRow, table_of

_T = table_of(TaskRow)
ACTIVE = AssignmentStatus.ACTIVE.value
NEW = TaskStatus.NEW.value
_CHUNK = 2000  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones in the session zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    """``ids`` in lists short enough for one ``IN (...)``."""
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start : start + _CHUNK])


def task_record(row: Any) -> Task:
    """The core record of a task row."""
    return Task(
        id=row.id,
        project_id=row.project_id,
        asset_id=row.asset_id,
        status=TaskStatus(row.status),
        priority=float(row.priority),
        required_labelers=row.required_labelers,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        agreement=None if row.agreement is None else float(row.agreement),
    )


class TaskRepository:
    """Tasks of the queue: adding, their priority and required labelers, status and agreement."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._pg = session.get_bind().dialect.name == "postgresql"

    def add_many(
        self, project_id: int, asset_ids: Sequence[int], *, required: int, priority: float, now: datetime
    ) -> int:
        """One task per asset of the project; assets that already have a task are left as they are.
        Returns how many tasks were created."""
        if required < 1:
            raise ValidationError(f"a task needs at least 1 labeler, got {required}")
        wanted = sorted(set(asset_ids))
        created = 0
        for chunk in chunks(wanted):
            known = set(
                self._s.execute(
                    select(AssetRow.id).where(AssetRow.project_id == project_id, AssetRow.id.in_(chunk))
                ).scalars()
            )
            if len(known) != len(chunk):
                missing = sorted(set(chunk) - known)[:5]
                raise NotFoundError(f"assets {missing} are not part of project {project_id}")
            have = set(
                self._s.execute(
                    select(TaskRow.asset_id).where(
                        TaskRow.project_id == project_id, TaskRow.asset_id.in_(chunk)
                    )
                ).scalars()
            )
            rows = [
                {
                    "project_id": project_id,
                    "asset_id": asset_id,
                    "status": NEW,
                    "priority": float(priority),
                    "required_labelers": required,
                    "created_at": now,
                    "updated_at": now,
                }
                for asset_id in chunk
                if asset_id not in have
            ]
            if rows:  # ON CONFLICT DO NOTHING: a concurrent enqueue of the same asset is no error
                ins = (postgresql.insert(_T) if self._pg else sqlite.insert(_T)).on_conflict_do_nothing(
                    index_elements=["project_id", "asset_id"]
                )
                created += len(self._s.execute(ins.returning(_T.c.id), rows).all())
        return created

    def set_priority(self, project_id: int, asset_ids: Sequence[int], priority: float, now: datetime) -> int:
        changed = 0
        for chunk in chunks(sorted(set(asset_ids))):
            result = self._s.execute(
                update(_T)
                .where(_T.c.project_id == project_id, _T.c.asset_id.in_(chunk))
                .values(priority=float(priority), updated_at=now)
            )
            changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return changed

    def set_required(self, project_id: int, asset_ids: Sequence[int], required: int, now: datetime) -> int:
        """Change how many labelers the (still open) tasks of these assets need."""
        if required < 1:
            raise ValidationError(f"a task needs at least 1 labeler, got {required}")
        changed = 0
        for chunk in chunks(sorted(set(asset_ids))):
            result = self._s.execute(
                update(_T)
                .where(_T.c.project_id == project_id, _T.c.asset_id.in_(chunk), _T.c.status == NEW)
                .values(required_labelers=required, updated_at=now)
            )
            changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return changed

    def unclaimed(self, project_id: int) -> dict[int, tuple[int, int]]:
        """Tasks nobody ever claimed (``new``, no assignment in any status): task id -> (asset id,
        required labelers), their rows locked until the end of the unit of work.

        On PostgreSQL the rows are locked first and their assignments read after, with a fresh
        snapshot (READ COMMITTED): a claim that held one of them and committed meanwhile is seen,
        and that task is left out. SQLite write units hold the database write lock anyway."""
        claimed = exists().where(AssignmentRow.task_id == TaskRow.id).correlate(TaskRow)
        query = select(TaskRow.id, TaskRow.asset_id, TaskRow.required_labelers).where(
            TaskRow.project_id == project_id, TaskRow.status == NEW, ~claimed
        )
        if self._pg:
            query = query.with_for_update(of=TaskRow)
        found = {int(t): (int(a), int(r)) for t, a, r in self._s.execute(query)}
        if self._pg:
            for chunk in chunks(sorted(found)):
                taken = select(AssignmentRow.task_id).where(AssignmentRow.task_id.in_(chunk)).distinct()
                for task_id in self._s.execute(taken).scalars():
                    found.pop(int(task_id), None)
        return found

    def get(self, task_id: int) -> Task:
        row = self._s.execute(select(TaskRow).where(TaskRow.id == task_id)).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"task {task_id} does not exist")
        return task_record(row)

    def for_asset(self, project_id: int, asset_id: int) -> Task | None:
        row = self._s.execute(
            select(TaskRow).where(TaskRow.project_id == project_id, TaskRow.asset_id == asset_id)
        ).scalar_one_or_none()
        return None if row is None else task_record(row)

    def lock(self, task_id: int) -> Task:
        """The task, its row locked until the end of the unit of work (see module doc)."""
        query = select(TaskRow).where(TaskRow.id == task_id)
        row = self._s.execute(query.with_for_update() if self._pg else query).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"task {task_id} does not exist")
        return task_record(row)

    def set_status(self, task_id: int, status: TaskStatus, now: datetime) -> None:
        self._s.execute(update(_T).where(_T.c.id == task_id).values(status=status.value, updated_at=now))

    def set_agreement(self, task_id: int, agreement: float | None) -> None:
        """Store a consensus task's agreement score (not a status change: updated_at is kept)."""
        self._s.execute(update(_T).where(_T.c.id == task_id).values(agreement=agreement))

    def by_asset(self, project_id: int) -> dict[int, Task]:
        """Every task of the project keyed by asset id (export filters on review status)."""
        rows = self._s.execute(select(TaskRow).where(TaskRow.project_id == project_id)).scalars()
        return {int(r.asset_id): task_record(r) for r in rows}
