"""Train an on-site micro-model from the project's human labels of one class, and register it.

Training data: every frame where a person labeled the class (polygons, masks, boxes, polylines,
optionally only one labeler's), with the union of those labels as the class's pixels (through
the one rasteriser) and everything else of that frame as background. So a frame counts as fully
labeled for the class once someone labeled it there.

Training validates on labeled frames the model does not learn from (leave-one-frame-out with few
frames, else a seeded holdout: :mod:`app.models.validation`) and reports that Dice beside the Dice
on the training frames. It refuses, writing and registering nothing, with one labeled frame, with
too few labeled pixels, or with a validation Dice below a floor, and says what to label next
(:mod:`app.workflow.training_guard`).

A model that passes is exported to ONNX with its manifest into ``models_folder/NAME/VERSION/`` and
registered (a ``ModelRow``), so pre-labels run it through the same runner as any other model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from app.core.annotations import HUMAN, Annotation
from app.core.errors import ValidationError
from app.core.raster import rasterize_annotation
from app.core.records import Asset, AssetKind
from app.models.registry import ModelRegistry, version_key
from app.models.trainer import TrainResult
from app.models.validation import Validation, train_validated
from app.workflow.agreement import MASK_KINDS
from app.workflow.training_guard import (
    DEFAULT_MIN_DICE,
    DEFAULT_MIN_PIXELS,
    LabeledFrame,
    TrainingRefused,
    check_labels,
    check_validation,
)

if TYPE_CHECKING:
    from app.storage import Database
    from app.storage.repo_models import StoredModel
    from app.storage.uow import UnitOfWork

Progress = Callable[[int, int], bool | None]
DEFAULT_MAX_FRAMES = 40  # a micro-model is meant to learn from a handful of labeled frames


@dataclass
class TrainingData:
    label: str
    frames: list[npt.NDArray[np.generic]] = field(default_factory=list)
    masks: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    items: list[tuple[int, int]] = field(default_factory=list)  # (asset id, frame)
    labeled: list[LabeledFrame] = field(default_factory=list)  # the same frames, named, with pixels
    label_count: int = 0  # human annotations used
    last_label_id: int = 0  # the newest of them (to tell later labels apart)
    window: tuple[float, float] | None = None  # DICOM window of the first series, if any


@dataclass(frozen=True)
class TrainReport:
    model: StoredModel
    result: TrainResult  # result.train_dice: Dice on the frames the registered model learned from
    items: list[tuple[int, int]]
    label_count: int
    model_path: Path
    validation: Validation  # on labeled frames it did not learn from

    @property
    def train_dice(self) -> float:
        return self.result.train_dice

    @property
    def validation_dice(self) -> float:
        return self.validation.dice


@dataclass(frozen=True)
class RetrainCheck:
    """Whether enough new labels arrived since the class's newest micro-model to train again."""

    label: str
    due: bool
    new_labels: int
    every: int
    model: str | None  # NAME@VERSION of the newest micro-model, None when there is none


def micro_model_name(label: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.\-]+", "-", label).strip("-") or "class"
    return f"mm-{slug}"[:100]


def frame_name(asset: Asset, frame: int) -> str:
    """How the advice names a labeled frame: the item's path, and the slice or frame where it has several."""
    from app.sources.assets import asset_name

    name = asset_name(asset)
    if asset.kind is AssetKind.DICOM_SERIES and asset.frame_count > 1:
        return f"{name} slice {frame}"
    return f"{name} frame {frame}" if asset.frame_count > 1 else name


def _human_labels(
    db: Database, project_id: int, label: str, labeler_id: int | None
) -> list[tuple[int, list[Annotation]]]:
    """(asset id, the class's human annotations on it), asset by asset."""
    out: list[tuple[int, list[Annotation]]] = []
    with db.unit_of_work(readonly=True) as uow:
        for asset in uow.assets.list(project_id):
            anns = [
                a
                for a in uow.annotations.list(asset.id, author_id=labeler_id, source=HUMAN, label=label)
                if a.kind in MASK_KINDS
            ]
            if anns:
                out.append((asset.id, anns))
    return out


def collect_training_data(
    db: Database,
    project_id: int,
    label: str,
    *,
    roots: Mapping[str, Path],
    max_pixels: int,
    labeler_id: int | None = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> TrainingData:
    """Frames and masks of ``label`` (see the module doc); the newest labeled frames first."""
    from app.sources import open_asset

    data = TrainingData(label)
    labeled = _human_labels(db, project_id, label, labeler_id)
    with db.unit_of_work(readonly=True) as uow:
        assets = {a: uow.assets.get(a) for a, _ in labeled}
    per_frame: list[tuple[int, int, list[Annotation]]] = []
    for asset_id, anns in labeled:
        frames: dict[int, list[Annotation]] = {}
        for ann in anns:
            frames.setdefault(ann.frame, []).append(ann)
        per_frame += [(asset_id, f, a) for f, a in frames.items()]
    per_frame.sort(key=lambda item: -max(a.id or 0 for a in item[2]))
    for asset_id, frame, anns in per_frame[:max_frames]:
        asset = assets[asset_id]
        shape = (asset.height, asset.width)
        mask = np.zeros(shape, dtype=bool)
        for ann in anns:
            mask |= rasterize_annotation(ann, shape)
        with open_asset(asset, roots, max_pixels=max_pixels) as source:
            pixels = np.array(source.frame(frame))
            if data.window is None and asset.kind is AssetKind.DICOM_SERIES and source.window is not None:
                data.window = source.window
        data.frames.append(pixels)
        data.masks.append(mask)
        data.items.append((asset_id, frame))
        data.labeled.append(LabeledFrame(asset_id, frame, frame_name(asset, frame), int(mask.sum())))
        data.label_count += len(anns)
        data.last_label_id = max(data.last_label_id, *(a.id or 0 for a in anns))
    return data


def next_version(db: Database, name: str) -> str:
    with db.unit_of_work(readonly=True) as uow:
        versions = [m.version for m in uow.models.list() if m.name == name]
    numeric = [int(v) for v in versions if v.isdigit()]
    return str(max(numeric, default=0) + 1)


def train_and_register(
    db: Database,
    project_id: int,
    user_id: int,
    label: str,
    *,
    roots: Mapping[str, Path],
    max_pixels: int,
    models_folder: Path,
    name: str | None = None,
    labeler_id: int | None = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
    min_dice: float = DEFAULT_MIN_DICE,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    progress: Progress | None = None,
) -> TrainReport:
    """Train a micro-model for ``label``, validate it, export it and register it (audited
    ``model.train``). TrainingRefused (audited ``model.train_refused``, nothing written) with one
    labeled frame, fewer than ``min_pixels`` labeled pixels, or a validation Dice below ``min_dice``."""
    if not 0.0 <= min_dice <= 1.0:
        raise ValidationError(f"the validation Dice floor is a number from 0 to 1, got {min_dice}")
    with db.unit_of_work(readonly=True) as uow:
        ontology = uow.ontologies.current(project_id)
    if ontology is not None and ontology.classes:
        ontology.get(label)  # ValidationError for an unknown class
    data = collect_training_data(
        db,
        project_id,
        label,
        roots=roots,
        max_pixels=max_pixels,
        labeler_id=labeler_id,
        max_frames=max_frames,
    )
    if not data.frames:
        who = " by that labeler" if labeler_id is not None else ""
        raise ValidationError(f"there are no human labels of {label!r}{who} to train on yet")
    shapes = {f.shape[:2] for f in data.frames}
    try:
        check_labels(label, data.labeled, min_pixels=min_pixels)
        result, validation = train_validated(
            data.frames, data.masks, label=label, window=data.window, progress=progress
        )
        check_validation(label, data.labeled, validation, result.train_dice, min_dice=min_dice)
    except TrainingRefused as refused:
        _audit_refusal(db, project_id, user_id, refused)
        raise
    model_name = name or micro_model_name(label)
    version = next_version(db, model_name)
    trained = result.model
    info = {
        **trained.training,
        "project_id": project_id,
        "labels": data.label_count,
        "last_label_id": data.last_label_id,
        "items": [list(i) for i in data.items],
        "frame_shapes": sorted([list(s) for s in shapes]),
    }
    trained = replace(trained, training=info)
    folder = models_folder / model_name / version
    model_path, _, manifest = trained.export(folder, model_name, version)
    relative = ModelRegistry(models_folder).relative(model_path)

    def register(uow: UnitOfWork) -> StoredModel:
        stored, _ = uow.models.register(model_name, version, manifest.sha256, manifest.to_dict(), relative)
        uow.audit.record(
            user_id,
            "model.train",
            "model",
            stored.id,
            {
                "ref": stored.ref,
                "label": label,
                "frames": len(data.items),
                "labels": data.label_count,
                "seconds": round(result.seconds, 3),
                "train_dice": round(result.train_dice, 4),
                "validation_dice": round(validation.dice, 4),
                "validation": validation.scheme,
            },
        )
        return stored

    stored = db.run(register)
    return TrainReport(
        stored, replace(result, model=trained), data.items, data.label_count, model_path, validation
    )


def _audit_refusal(db: Database, project_id: int, user_id: int, refused: TrainingRefused) -> None:
    def record(uow: UnitOfWork) -> None:
        uow.audit.record(
            user_id,
            "model.train_refused",
            "project",
            project_id,
            {
                "label": refused.label,
                "frames": refused.frames,
                "pixels": refused.pixels,
                "validation_dice": None
                if refused.validation_dice is None
                else round(refused.validation_dice, 4),
                "train_dice": None if refused.train_dice is None else round(refused.train_dice, 4),
                "reason": str(refused),
            },
        )

    db.run(record)


def retrain_check(
    db: Database, project_id: int, label: str, *, every: int = 20, name: str | None = None
) -> RetrainCheck:
    """Is a new micro-model for ``label`` due: ``every`` or more human labels of the class since the
    newest one was trained (all labels of the class when there is none yet)? The editor and the CLI
    (``sitelabel train --every N``) call this after saves and train when it says so."""
    if every < 1:
        raise ValidationError(f"retrain every N labels needs N >= 1, got {every}")
    model_name = name or micro_model_name(label)
    with db.unit_of_work(readonly=True) as uow:
        mine = [m for m in uow.models.list() if m.name == model_name]
    newest = max(mine, key=lambda m: version_key(m.version)) if mine else None
    since = int((newest.manifest.get("training") or {}).get("last_label_id", 0)) if newest else 0
    count = sum(
        1 for _, anns in _human_labels(db, project_id, label, None) for a in anns if (a.id or 0) > since
    )
    due = count >= every
    return RetrainCheck(label, due, count, every, newest.ref if newest else None)


__all__ = [
    "DEFAULT_MIN_DICE",
    "DEFAULT_MIN_PIXELS",
    "RetrainCheck",
    "TrainReport",
    "TrainingData",
    "TrainingRefused",
    "collect_training_data",
    "micro_model_name",
    "retrain_check",
    "train_and_register",
]
