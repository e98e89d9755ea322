"""Reviews: verdicts on queued items, and the review queue's read queries.

A task's review result is its latest review row (highest id). A rejection names the labeler it
sends the item back to through ``assignment_id`` (that labeler's submitted assignment); whole-item
verdicts leave it empty.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.orm import Session, aliased

from app.core.records import AssignmentStatus, Review, Task, TaskStatus, Verdict
from app.storage.repo_tasks import aware, chunks, task_record
from app.storage.tables import AssignmentRow, ReviewRow, TaskRow, UserRow, table_of

_R = table_of(ReviewRow)
_REVIEWER = aliased(UserRow, name="reviewer")
_LABELER = aliased(UserRow, name="labeler")
_COLUMNS = (
    ReviewRow.id,
    ReviewRow.asset_id,
    ReviewRow.task_id,
    ReviewRow.assignment_id,
    ReviewRow.verdict,
    ReviewRow.note,
    ReviewRow.details,
    ReviewRow.created_at,
    _REVIEWER.name.label("reviewer"),
    _LABELER.name.label("labeler"),
)


def _review(row: Row[Any]) -> Review:
    return Review(
        id=int(row.id),
        asset_id=int(row.asset_id),
        task_id=None if row.task_id is None else int(row.task_id),
        reviewer=row.reviewer,
        verdict=Verdict(row.verdict),
        note=row.note or "",
        created_at=aware(row.created_at),
        labeler=row.labeler,
        assignment_id=None if row.assignment_id is None else int(row.assignment_id),
        details=dict(row.details or {}),
    )


class ReviewRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def _select(self) -> Any:
        return (
            select(*_COLUMNS)
            .outerjoin(_REVIEWER, _REVIEWER.id == ReviewRow.reviewer_id)
            .outerjoin(AssignmentRow, AssignmentRow.id == ReviewRow.assignment_id)
            .outerjoin(_LABELER, _LABELER.id == AssignmentRow.user_id)
        )

    # --- writes -----------------------------------------------------------------------------------
    def add(
        self,
        asset_id: int,
        task_id: int,
        reviewer_id: int,
        verdict: Verdict,
        *,
        note: str,
        now: datetime,
        assignment_id: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Review:
        new_id = self._s.execute(
            insert(_R)
            .values(
                asset_id=asset_id,
                task_id=task_id,
                assignment_id=assignment_id,
                reviewer_id=reviewer_id,
                verdict=verdict.value,
                note=note,
                details=dict(details or {}),
                created_at=now,
            )
            .returning(_R.c.id)
        ).scalar_one()
        row = self._s.execute(self._select().where(ReviewRow.id == new_id)).one()
        return _review(row)

    # --- reads ------------------------------------------------------------------------------------
    def latest(self, task_id: int) -> Review | None:
        """The task's review result: its latest review, None when it was never reviewed."""
        query = self._select().where(ReviewRow.task_id == task_id).order_by(ReviewRow.id.desc()).limit(1)
        row = self._s.execute(query).first()
        return None if row is None else _review(row)

    def history(self, asset_id: int) -> builtins.list[Review]:
        """Every review of the asset, oldest first."""
        query = self._select().where(ReviewRow.asset_id == asset_id).order_by(ReviewRow.id)
        return [_review(r) for r in self._s.execute(query)]

    def rejections(self, asset_id: int, user_id: int) -> builtins.list[Review]:
        """Rejections that sent the asset back to this labeler, oldest first."""
        query = (
            self._select()
            .where(
                ReviewRow.asset_id == asset_id,
                ReviewRow.verdict == Verdict.REJECTED.value,
                AssignmentRow.user_id == user_id,
            )
            .order_by(ReviewRow.id)
        )
        return [_review(r) for r in self._s.execute(query)]

    def latest_reasons(self, assignment_ids: Sequence[int]) -> dict[int, str]:
        """The latest rejection reason per assignment (for the leases of returned work)."""
        if not assignment_ids:
            return {}
        query = (
            select(ReviewRow.assignment_id, ReviewRow.note)
            .where(
                ReviewRow.assignment_id.in_(list(assignment_ids)),
                ReviewRow.verdict == Verdict.REJECTED.value,
            )
            .order_by(ReviewRow.id)
        )
        return {int(a): str(n) for a, n in self._s.execute(query) if a is not None}  # later rows win

    def waiting(
        self, project_id: int, *, limit: int | None = None, offset: int = 0
    ) -> builtins.list[tuple[Task, tuple[str, ...]]]:
        """Submitted tasks with their submitting labelers: lowest agreement first (items without a
        score after the scored ones), then the longest waiting."""
        query = (
            select(TaskRow)
            .where(TaskRow.project_id == project_id, TaskRow.status == TaskStatus.SUBMITTED.value)
            .order_by(TaskRow.agreement.is_(None), TaskRow.agreement, TaskRow.updated_at, TaskRow.id)
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        tasks = [task_record(r) for r in self._s.execute(query).scalars()]
        return [(t, names) for t, names in zip(tasks, self.labelers([t.id for t in tasks]), strict=True)]

    def labelers(self, task_ids: Sequence[int]) -> builtins.list[tuple[str, ...]]:
        """Names of the labelers who submitted each task, in submission order."""
        found: dict[int, builtins.list[str]] = {t: [] for t in task_ids}
        for chunk in chunks(list(task_ids)):
            query = (
                select(AssignmentRow.task_id, UserRow.name)
                .join(UserRow, UserRow.id == AssignmentRow.user_id)
                .where(
                    AssignmentRow.task_id.in_(chunk),
                    AssignmentRow.status == AssignmentStatus.SUBMITTED.value,
                )
                .order_by(AssignmentRow.finished_at, AssignmentRow.id)
            )
            for task_id, name in self._s.execute(query):
                found[int(task_id)].append(str(name))
        return [tuple(found[t]) for t in task_ids]
