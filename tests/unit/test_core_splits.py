"""The split rule (app.core.splits): groups by patient, study or asset; deterministic; never moves an
asset once assigned; a new asset of a known patient joins the patient's split."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from app.core.errors import ValidationError
from app.core.records import Asset, AssetKind
from app.core.splits import SplitPlan, allocate, group_key, group_kind


def _asset(asset_id: int, **meta: Any) -> Asset:
    kind = AssetKind.DICOM_SERIES if meta else AssetKind.IMAGE
    return Asset(asset_id, 1, 1, kind, "studies", f"a{asset_id}", None, 1, 1, "h", 1, 8, 8, meta)


def test_groups_are_patient_then_study_then_the_asset_and_hide_the_ids() -> None:
    a = _asset(1, PatientID="P-7", StudyInstanceUID="1.2.3")
    b = _asset(2, PatientID="P-7", StudyInstanceUID="1.2.4")  # another study of the same patient
    c = _asset(3, PatientID="  ", StudyInstanceUID="1.2.3")  # no patient: the study
    d = _asset(4)  # a photo or a video: itself
    assert group_key(a) == group_key(b) and group_kind(group_key(a)) == "patient"
    assert group_kind(group_key(c)) == "study" and group_key(d) == "asset:4"
    assert "P-7" not in group_key(a) and "1.2.3" not in group_key(c)  # digests, not the ids


def test_allocation_is_deterministic_grouped_and_close_to_the_plan() -> None:
    assets = [_asset(i, PatientID=f"P{i // 3}") for i in range(1, 301)]  # 3 series per patient
    plan = SplitPlan.of(val=0.2, seed=5)
    first = allocate(assets, [], plan)
    assert first == allocate(list(reversed(assets)), [], plan)  # order of arrival does not matter
    by_group: dict[str, set[str]] = {}
    for a in first:
        by_group.setdefault(a.group, set()).add(a.split)
    assert all(len(splits) == 1 for splits in by_group.values())  # no patient in two splits
    counts = Counter(a.split for a in first)
    assert abs(counts["val"] - 60) <= 3 and counts["test"] == 0
    assert allocate(assets, [], SplitPlan.of(val=0.2, seed=6)) != first  # the seed orders the groups


def test_earlier_assignments_never_move_and_new_series_join_their_patient() -> None:
    plan = SplitPlan.of(val=0.25, test=0.25)
    old = allocate([_asset(i, PatientID=f"P{i}") for i in range(1, 9)], [], plan)
    assert {a.split for a in old} == {"train", "val", "test"}  # a handful of groups still fills each
    again = [_asset(i, PatientID=f"P{i}") for i in range(1, 9)]
    assert allocate(again, old, SplitPlan.of(val=0.5)) == []  # assigned assets get nothing new
    newcomers = [_asset(20 + i, PatientID=f"P{i}") for i in range(1, 9)] + [_asset(40)]
    added = allocate([*again, *newcomers], old, SplitPlan.of(val=0.5, seed=3))
    assert {a.asset_id for a in added} == {a.id for a in newcomers}
    split_of = {a.asset_id: a.split for a in [*old, *added]}
    for i in range(1, 9):
        assert split_of[20 + i] == split_of[i]  # the patient's split, whatever the new plan says


def test_small_projects_get_a_val_split_and_bad_plans_are_refused() -> None:
    five = allocate([_asset(i) for i in range(1, 6)], [], SplitPlan())
    assert Counter(a.split for a in five) == {"train": 4, "val": 1}
    with pytest.raises(ValidationError, match="nothing for train"):
        SplitPlan.of(val=0.6, test=0.4)
    with pytest.raises(ValidationError, match="val share"):
        SplitPlan.of(val=-0.1)
