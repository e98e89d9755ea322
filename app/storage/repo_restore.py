"""Restoring an archived project's queue state onto registered assets (project-json import).

The workflow writes tasks, assignments and reviews one decision at a time, stamped with the time
of the decision. A restore writes what an archive recorded instead: the task's status, priority,
labelers needed and agreement, every assignment with its lease times, and every review with its
reviewer, verdict, note, details and time. Nothing here checks the workflow's rules: the archive
was made by them (``app.exchange.project_json_import`` decides what may be restored).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.orm import Session

from app.core.records import AssignmentStatus, TaskStatus, Verdict
from app.storage.tables import AssignmentRow, ReviewRow, TaskRow, table_of

_T = table_of(TaskRow)
_A = table_of(AssignmentRow)
_R = table_of(ReviewRow)


class RestoreRepository:
    """Rows of the labeling queue written as an archive recorded them."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def worked_on(self, task_id: int) -> bool:
        """Whether anyone claimed or reviewed the task (a restore leaves such a task alone)."""
        claimed = exists().where(AssignmentRow.task_id == task_id)
        reviewed = exists().where(ReviewRow.task_id == task_id)
        return bool(self._s.execute(select(claimed | reviewed)).scalar())

    def task(
        self,
        project_id: int,
        asset_id: int,
        *,
        status: TaskStatus,
        priority: float,
        required: int,
        agreement: float | None,
        created_at: datetime,
        updated_at: datetime,
    ) -> int:
        """Write the asset's task (an existing one is overwritten); returns its id."""
        values: dict[str, Any] = {
            "status": status.value,
            "priority": float(priority),
            "required_labelers": int(required),
            "agreement": agreement,
            "created_at": created_at,
            "updated_at": updated_at,
        }
        found = self._s.execute(
            select(TaskRow.id).where(TaskRow.project_id == project_id, TaskRow.asset_id == asset_id)
        ).scalar()
        if found is not None:
            self._s.execute(update(_T).where(_T.c.id == found).values(**values))
            return int(found)
        new = insert(_T).values(project_id=project_id, asset_id=asset_id, **values).returning(_T.c.id)
        return int(self._s.execute(new).scalar_one())

    def assignment(
        self,
        task_id: int,
        user_id: int,
        *,
        status: AssignmentStatus,
        leased_at: datetime,
        lease_expires_at: datetime,
        finished_at: datetime | None,
    ) -> int:
        new = (
            insert(_A)
            .values(
                task_id=task_id,
                user_id=user_id,
                status=status.value,
                leased_at=leased_at,
                lease_expires_at=lease_expires_at,
                finished_at=finished_at,
            )
            .returning(_A.c.id)
        )
        return int(self._s.execute(new).scalar_one())

    def review(
        self,
        asset_id: int,
        task_id: int,
        reviewer_id: int | None,
        verdict: Verdict,
        *,
        note: str,
        created_at: datetime,
        assignment_id: int | None,
        details: Mapping[str, Any],
    ) -> int:
        new = (
            insert(_R)
            .values(
                asset_id=asset_id,
                task_id=task_id,
                assignment_id=assignment_id,
                reviewer_id=reviewer_id,
                verdict=verdict.value,
                note=note,
                details=dict(details),
                created_at=created_at,
            )
            .returning(_R.c.id)
        )
        return int(self._s.execute(new).scalar_one())
