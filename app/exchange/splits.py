"""The project's stored train/val/test splits, as every export uses them (rules: app.core.splits).

    summary = assign_splits(db, project_id, SplitPlan.of(val=0.2, seed=7))   # new assets only
    summary = read_splits(db, project_id)

An export first gives every asset of the project that has no split one (:func:`ensure_splits`, in
its own short write transaction), then reads the assignments with the rest of its snapshot, so YOLO,
nnU-Net and any other exporter put an asset in the same split, export after export. Assignments are
never changed: a new plan applies to assets assigned from then on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.core.splits import SPLITS, SplitAssignment, SplitPlan, allocate, group_kind

if TYPE_CHECKING:
    from app.storage import Database, UnitOfWork


@dataclass(frozen=True)
class SplitSummary:
    """A project's plan and assignments; ``added``: how many assets the call assigned."""

    plan: SplitPlan
    assignments: Sequence[SplitAssignment]
    added: int = 0
    unassigned: int = 0  # assets without a split (read_splits only)
    by_asset: Mapping[int, SplitAssignment] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.by_asset:
            object.__setattr__(self, "by_asset", {a.asset_id: a for a in self.assignments})

    def split_of(self, asset_id: int) -> str | None:
        found = self.by_asset.get(asset_id)
        return None if found is None else found.split

    def counts(self) -> dict[str, dict[str, int]]:
        """Per split: assets and groups (and per group kind: patient, study, asset)."""
        out: dict[str, dict[str, int]] = {}
        for split in SPLITS:
            mine = [a for a in self.assignments if a.split == split]
            groups = {a.group for a in mine}
            kinds = Counter(group_kind(g) for g in groups)
            out[split] = {
                "assets": len(mine),
                "groups": len(groups),
                **{f"{k}_groups": n for k, n in kinds.items()},
            }
        return out

    def as_dict(self, asset_ids: Sequence[int] | None = None) -> dict[str, Any]:
        """The plan, the counts and (for ``asset_ids``, default all) each asset's split and group."""
        chosen = (
            self.assignments
            if asset_ids is None
            else [self.by_asset[i] for i in asset_ids if i in self.by_asset]
        )
        return {
            "plan": self.plan.as_dict(),
            "rule": "grouped by DICOM PatientID, else StudyInstanceUID, else the asset itself; "
            "assigned once, never changed (app.core.splits)",
            "counts": self.counts(),
            "assets": [a.as_dict() for a in chosen],
        }


def ensure_splits(uow: UnitOfWork, project_id: int) -> SplitSummary:
    """Assign every asset of the project that has no split yet (the stored plan); returns all."""
    uow.projects.get(project_id)  # NotFoundError for a project that is not there
    plan = uow.splits.lock_plan(project_id)
    existing = uow.splits.assignments(project_id)
    known = {a.asset_id for a in existing}
    assets = [a for a in uow.assets.list(project_id) if a.id not in known]
    new = allocate(assets, existing, plan)
    uow.splits.add(project_id, new)
    merged = sorted([*existing, *new], key=lambda a: a.asset_id)
    return SplitSummary(plan, merged, added=len(new))


def assign_splits(
    db: Database, project_id: int, plan: SplitPlan | None = None, *, user_id: int | None = None
) -> SplitSummary:
    """Store ``plan`` (when given; audited) and assign every unassigned asset; earlier assignments
    stay as they are."""

    def work(uow: UnitOfWork) -> SplitSummary:
        uow.projects.get(project_id)
        if plan is not None:
            before = uow.splits.lock_plan(project_id)
            if before != plan:
                uow.splits.set_plan(project_id, plan)
                details = {"before": before.as_dict(), "after": plan.as_dict()}
                uow.audit.record(user_id, "splits.plan", "project", project_id, details)
        summary = ensure_splits(uow, project_id)
        if summary.added:
            uow.audit.record(user_id, "splits.assign", "project", project_id, {"added": summary.added})
        return summary

    return db.run(work)


def read_splits(db: Database, project_id: int) -> SplitSummary:
    """The plan and the stored assignments, without assigning anything."""
    with db.unit_of_work(readonly=True) as uow:
        return snapshot(uow, project_id)


def snapshot(uow: UnitOfWork, project_id: int) -> SplitSummary:
    """The plan and assignments as ``uow`` sees them (an export's read-only snapshot)."""
    uow.projects.get(project_id)
    assignments = uow.splits.assignments(project_id)
    total = len(uow.assets.list(project_id))
    return SplitSummary(uow.splits.plan(project_id), assignments, unassigned=total - len(assignments))
