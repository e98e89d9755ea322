"""Train an on-site micro-model from the project's human labels of one class, and register it.

Training data: every frame where a person labeled the class (polygons, masks, boxes, polylines,
optionally only one labeler's), with the union of those labels as the class's pixels (through
the one rasteriser) and everything else of that frame as background. So a frame counts as fully
labeled for the class once someone labeled it there.

The trained model is exported to ONNX with its manifest into ``models_folder/NAME/VERSION/`` and
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
from app.core.records import AssetKind
from app.models.registry import ModelRegistry, version_key
from app.models.trainer import TrainResult, train
from app.workflow.agreement import MASK_KINDS

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
    label_count: int = 0  # human annotations used
    last_label_id: int = 0  # the newest of them (to tell later labels apart)
    window: tuple[float, float] | None = None  # DICOM window of the first series, if any


@dataclass(frozen=True)
class TrainReport:
    model: StoredModel
    result: TrainResult
    items: list[tuple[int, int]]
    label_count: int
    model_path: Path


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
    progress: Progress | None = None,
) -> TrainReport:
    """Train a micro-model for ``label``, export it and register it (audited ``model.train``)."""
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
    result = train(data.frames, data.masks, label=label, window=data.window, progress=progress)
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
            },
        )
        return stored

    stored = db.run(register)
    return TrainReport(stored, replace(result, model=trained), data.items, data.label_count, model_path)


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
    "RetrainCheck",
    "TrainReport",
    "TrainingData",
    "collect_training_data",
    "micro_model_name",
    "retrain_check",
    "train_and_register",
]
