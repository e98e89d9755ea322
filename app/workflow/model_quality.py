"""How much labelers changed each model version's pre-labels, per class.

The unit is a **pre-label group**: one model version's pre-labels of one class on one frame of
one asset (their union, so a model that outlines three lesions is judged on all three together).
A group is compared with the **final human label**: the union of one labeler's live human
annotations of that class on that frame. Editing, accepting or rejecting a pre-label in the
editor replaces it by the labeler's own annotation (or nothing), so:

* **pending** — a pre-label of the group is still live: the labeler has not yet accepted, edited
  or rejected every pre-label of the class there (or not looked at all); not counted;
* **rejected** — every pre-label of the group is gone and nobody labeled the class there: the
  final label is empty (Dice 0, IoU 0, unless the pre-label itself had no pixels);
* otherwise one score per labeler who labeled the class there: IoU and Dice between the group's
  mask and that labeler's mask (``app.workflow.agreement.mask_agreement``, the one rasteriser).
  It counts as **accepted** when the two masks are identical (Dice = 1).

Classification pre-labels score 1 when the labeler chose the same class on the frame, else 0.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from app.core.annotations import HUMAN, Annotation, Kind
from app.core.errors import NotFoundError
from app.workflow.agreement import annotation_masks, mask_agreement

if TYPE_CHECKING:
    from app.storage import Database
    from app.storage.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class QualityRow:
    model: str  # NAME
    version: str
    label: str
    groups: int  # pre-label groups stored (model version x asset x frame x class)
    reviewed: int  # scores: one per group and labeler who acted on it (a rejection counts once)
    accepted: int  # scores with the labeler's mask identical to the pre-label
    accept_rate: float | None
    mean_dice: float | None
    mean_iou: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class GroupScore:
    """One reviewed pre-label group against one labeler's final label (labeler None: rejected)."""

    model_id: int
    asset_id: int
    frame: int
    label: str
    labeler: str | None
    dice: float
    iou: float

    @property
    def accepted(self) -> bool:
        return self.dice == 1.0


def _scores_for_group(
    uow: UnitOfWork, key: tuple[int, int, int, str], pre: list[tuple[Annotation, bool]]
) -> list[GroupScore]:
    model_id, asset_id, frame, label = key
    asset = uow.assets.get(asset_id)
    shape = (asset.height, asset.width)
    humans = uow.annotations.list(asset_id, frame=frame, source=HUMAN, label=label)
    if any(is_live for _, is_live in pre):
        return []  # pending: some pre-label of the group is still undecided
    if not humans:
        if all(a.kind is Kind.CLASSIFICATION for a, _ in pre):
            return [GroupScore(model_id, asset_id, frame, label, None, 0.0, 0.0)]
        mask = annotation_masks({"model": [a for a, _ in pre]}, label, shape)["model"]
        empty = not mask.any()
        return [GroupScore(model_id, asset_id, frame, label, None, float(empty), float(empty))]
    by_author: dict[str, list[Annotation]] = defaultdict(list)
    for ann in humans:
        by_author[ann.author or "?"].append(ann)
    scores = []
    for author, anns in sorted(by_author.items()):
        if all(a.kind is Kind.CLASSIFICATION for a, _ in pre):
            same = float(any(a.kind is Kind.CLASSIFICATION for a in anns))
            scores.append(GroupScore(model_id, asset_id, frame, label, author, same, same))
            continue
        masks = annotation_masks({"model": [a for a, _ in pre], author: anns}, label, shape)
        pair = mask_agreement([masks["model"], masks[author]])
        scores.append(GroupScore(model_id, asset_id, frame, label, author, pair.dice, pair.iou))
    return scores


def group_scores(db: Database, project_id: int) -> tuple[list[GroupScore], dict[tuple[int, str], int]]:
    """Every reviewed group's scores, and the number of groups per (model id, class)."""
    with db.unit_of_work(readonly=True) as uow:
        groups: dict[tuple[int, int, int, str], list[tuple[Annotation, bool]]] = defaultdict(list)
        for pred in uow.models.predictions(project_id):
            if pred.annotation_id is None:
                continue
            ann = uow.annotations.get(pred.annotation_id, include_deleted=True)
            try:
                uow.annotations.get(pred.annotation_id)
                is_live = True
            except NotFoundError:
                is_live = False
            groups[(pred.model_id, pred.asset_id, ann.frame, ann.label)].append((ann, is_live))
        counts: dict[tuple[int, str], int] = defaultdict(int)
        scores: list[GroupScore] = []
        for key, pre in sorted(groups.items()):
            counts[(key[0], key[3])] += 1
            scores += _scores_for_group(uow, key, pre)
    return scores, dict(counts)


def model_quality(db: Database, project_id: int) -> list[QualityRow]:
    """Per model version and class: accept rate and mean Dice/IoU against the final human labels."""
    scores, counts = group_scores(db, project_id)
    with db.unit_of_work(readonly=True) as uow:
        models = {m.id: m for m in uow.models.list()}
    by_key: dict[tuple[int, str], list[GroupScore]] = defaultdict(list)
    for score in scores:
        by_key[(score.model_id, score.label)].append(score)
    rows = []
    for (model_id, label), n_groups in sorted(
        counts.items(), key=lambda kv: (models[kv[0][0]].ref, kv[0][1])
    ):
        mine = by_key.get((model_id, label), [])
        model = models[model_id]
        rows.append(
            QualityRow(
                model=model.name,
                version=model.version,
                label=label,
                groups=n_groups,
                reviewed=len(mine),
                accepted=sum(s.accepted for s in mine),
                accept_rate=(sum(s.accepted for s in mine) / len(mine)) if mine else None,
                mean_dice=float(np.mean([s.dice for s in mine])) if mine else None,
                mean_iou=float(np.mean([s.iou for s in mine])) if mine else None,
            )
        )
    return rows
