"""Train/val/test splits of a project's assets: grouped, deterministic and never reassigned.

Every asset belongs to a *group* that must not be split across train and val (a model would see a
patient's other slices in training and look better than it is):

* ``patient:...``: a DICOM asset with a PatientID (all series and images of one patient together);
* ``study:...``: else one with a StudyInstanceUID (the series of one study together);
* ``asset:ID``: else the asset alone (a video, a photo: every frame of a video stays together).

The PatientID and StudyInstanceUID are not stored or exported as such: the key holds a digest of
them (salted with the project id), enough to group and to compare exports, not to identify anyone.
A DICOM set whose PatientID is shared by unrelated people (``ANONYMOUS``) is one group: that is what
the data says; de-identify with distinct pseudonyms to split it.

Assignment (:func:`allocate`): an asset of a group that already has a split gets that split; new
groups are ordered by a digest of ``seed`` and their key (deterministic, independent of import
order) and each goes to the split furthest below its target share, counted in assets, over what is
assigned so far. So the shares approach the plan as the project grows, a project with a handful of
groups still gets a non-empty val split, and nothing assigned earlier ever moves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.core.errors import ValidationError
from app.core.records import Asset

SPLITS = ("train", "val", "test")
_PATIENT, _STUDY, _ASSET = "patient", "study", "asset"


@dataclass(frozen=True)
class SplitPlan:
    """Target shares of each split (summing to 1) and the seed that orders new groups."""

    train: float = 0.8
    val: float = 0.2
    test: float = 0.0
    seed: int = 0

    @classmethod
    def of(cls, val: float = 0.2, test: float = 0.0, seed: int = 0) -> SplitPlan:
        """The plan with these val and test shares; train gets the rest."""
        for name, share in (("val", val), ("test", test)):
            if not 0.0 <= float(share) < 1.0:
                raise ValidationError(f"the {name} share must be at least 0 and below 1, got {share}")
        train = 1.0 - float(val) - float(test)
        if train <= 0.0:
            raise ValidationError(
                f"val {val} and test {test} leave nothing for train: keep their sum below 1"
            )
        return cls(round(train, 9), float(val), float(test), int(seed))

    def shares(self) -> dict[str, float]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def as_dict(self) -> dict[str, Any]:
        return {**self.shares(), "seed": self.seed}


@dataclass(frozen=True)
class SplitAssignment:
    """One asset's split and the group it was assigned with."""

    asset_id: int
    split: str
    group: str

    def as_dict(self) -> dict[str, Any]:
        return {"asset_id": self.asset_id, "split": self.split, "group": self.group}


def _digest(project_id: int, text: str) -> str:
    return hashlib.sha256(f"{project_id}\x00{text}".encode()).hexdigest()[:16]


def _tag(metadata: Mapping[str, Any], name: str) -> str:
    value = metadata.get(name)
    return str(value).strip() if value is not None else ""


def group_key(asset: Asset) -> str:
    """The asset's group (see the module doc): patient, else study, else the asset itself."""
    meta = asset.metadata or {}
    patient = _tag(meta, "PatientID")
    if patient:
        return f"{_PATIENT}:{_digest(asset.project_id, patient)}"
    study = _tag(meta, "StudyInstanceUID")
    if study:
        return f"{_STUDY}:{_digest(asset.project_id, study)}"
    return f"{_ASSET}:{asset.id}"


def group_kind(group: str) -> str:
    """``patient``, ``study`` or ``asset``."""
    return group.split(":", 1)[0]


def _order(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}\x00{group}".encode()).hexdigest()


def allocate(
    assets: Iterable[Asset], existing: Iterable[SplitAssignment], plan: SplitPlan
) -> list[SplitAssignment]:
    """Splits for ``assets`` that have none in ``existing`` (the project's stored assignments);
    the rule is the module doc's. Returns only the new assignments."""
    known = {a.asset_id for a in existing}
    of_group: dict[str, str] = {}
    counts = dict.fromkeys(SPLITS, 0)
    for a in existing:
        of_group.setdefault(a.group, a.split)
        counts[a.split] = counts.get(a.split, 0) + 1
    members: dict[str, list[int]] = {}
    for asset in sorted(assets, key=lambda x: x.id):
        if asset.id not in known:
            members.setdefault(group_key(asset), []).append(asset.id)
    shares = plan.shares()
    out: list[SplitAssignment] = []
    for group in sorted(members, key=lambda g: (g not in of_group, _order(plan.seed, g))):
        ids = members[group]
        split = of_group.get(group)
        if split is None:  # a new group: the split furthest below its share once this group is in
            total = sum(counts.values()) + len(ids)
            split = max(SPLITS, key=lambda s: (shares[s] * total - counts[s], -SPLITS.index(s)))
            if shares[split] <= 0.0:
                split = "train"
            of_group[group] = split
        counts[split] += len(ids)
        out.extend(SplitAssignment(asset_id, split, group) for asset_id in ids)
    return out
