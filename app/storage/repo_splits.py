"""Stored train/val/test splits: a project's plan and each asset's assignment (app.core.splits).

Assignments are only ever inserted: nothing here updates or deletes one, so an asset keeps its split
for the life of the project (row security also freezes every column of ``asset_splits``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.core.splits import SplitAssignment, SplitPlan
from app.storage.repositories import insert_ignore
from app.storage.tables import AssetSplitRow, SplitPlanRow, table_of, utcnow

_CHUNK = 2000


def _plan(row: SplitPlanRow) -> SplitPlan:
    return SplitPlan(float(row.train), float(row.val), float(row.test), int(row.seed))


class SplitRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def plan(self, project_id: int) -> SplitPlan:
        """The stored plan, or the default one (80/20 train/val, seed 0) when none is stored."""
        row = self._s.get(SplitPlanRow, project_id)
        return SplitPlan() if row is None else _plan(row)

    def lock_plan(self, project_id: int) -> SplitPlan:
        """The plan, with its row locked until the transaction ends (PostgreSQL: two exports that
        assign at once take turns, so one patient's new series never land in different splits;
        SQLite's write transaction already serialises them). A default plan row is stored first."""
        default = SplitPlan()
        insert_ignore(
            self._s,
            table_of(SplitPlanRow),
            {
                "project_id": project_id,
                "train": default.train,
                "val": default.val,
                "test": default.test,
                "seed": default.seed,
                "updated_at": utcnow(),
            },
            ["project_id"],
        )
        query = select(SplitPlanRow).where(SplitPlanRow.project_id == project_id)
        if self._s.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        row = self._s.execute(query).scalar_one()
        return _plan(row)

    def set_plan(self, project_id: int, plan: SplitPlan) -> None:
        self.lock_plan(project_id)
        row = self._s.get(SplitPlanRow, project_id)
        assert row is not None
        row.train, row.val, row.test, row.seed = plan.train, plan.val, plan.test, plan.seed
        row.updated_at = utcnow()
        self._s.flush()

    def assignments(self, project_id: int) -> list[SplitAssignment]:
        """Every stored assignment of the project, by asset id."""
        rows = self._s.execute(
            select(AssetSplitRow.asset_id, AssetSplitRow.split, AssetSplitRow.group_key)
            .where(AssetSplitRow.project_id == project_id)
            .order_by(AssetSplitRow.asset_id)
        ).all()
        return [SplitAssignment(int(a), str(s), str(g)) for a, s, g in rows]

    def add(self, project_id: int, assignments: Sequence[SplitAssignment]) -> None:
        """Store new assignments; an asset that already has one keeps it (no error, no change)."""
        if not assignments:
            return
        table = table_of(AssetSplitRow)
        pg = self._s.get_bind().dialect.name == "postgresql"
        ins = (postgresql.insert(table) if pg else sqlite.insert(table)).on_conflict_do_nothing(
            index_elements=["asset_id"]
        )
        now = utcnow()
        rows = [
            {
                "asset_id": a.asset_id,
                "project_id": project_id,
                "split": a.split,
                "group_key": a.group,
                "created_at": now,
            }
            for a in assignments
        ]
        for start in range(0, len(rows), _CHUNK):
            self._s.execute(ins, rows[start : start + _CHUNK])
