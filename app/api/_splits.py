"""Train/val/test splits stored in the project, the same for every export (app.core.splits).

    project.splits()                              # plan, counts, each asset's split and group
    project.assign_splits(val=0.2, test=0.1, seed=7)   # new plan for assets assigned from now on
    project.splits().split_of(asset_id)           # "train", "val", "test" or None (not yet)

Splits are grouped by DICOM PatientID, else StudyInstanceUID, else the asset itself, so no patient
has slices in both train and val, and an asset's split never changes once assigned. Every export
assigns the assets that have none yet before it writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.api._project import ProjectBase
from app.core.permissions import Action

if TYPE_CHECKING:
    from app.exchange.splits import SplitSummary


class SplitsMixin(ProjectBase):
    def splits(self) -> SplitSummary:
        """The split plan and the stored assignments (assets without one count as ``unassigned``)."""
        from app.exchange.splits import read_splits

        self.require(Action.VIEW)
        return read_splits(self.db, self.id)

    def assign_splits(
        self, *, val: float | None = None, test: float | None = None, seed: int | None = None
    ) -> SplitSummary:
        """Give every asset without a split one. ``val``, ``test`` (shares in 0..1; train gets the
        rest) and ``seed`` change the plan for the assets assigned from now on (project admins;
        audited); values not given keep the current plan's. Earlier assignments never change."""
        from app.core.splits import SplitPlan
        from app.exchange.splits import assign_splits, read_splits

        self.require(Action.EXPORT)
        plan = None
        if val is not None or test is not None or seed is not None:
            self.require(Action.CHANGE_SETTINGS)
            now = read_splits(self.db, self.id).plan
            plan = SplitPlan.of(
                val=now.val if val is None else val,
                test=now.test if test is None else test,
                seed=now.seed if seed is None else seed,
            )
        return assign_splits(self.db, self.id, plan, user_id=self.user.id)
