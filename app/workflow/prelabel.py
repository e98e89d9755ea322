"""Pre-label jobs: read frames, run one or more models, store their output as annotations.

One pass chains any number of models (e.g. one micro-model per class). For every asset:

* frames: every page of an image, every slice of a series (in sorted order), every
  ``frame_stride``-th frame of a video; batched through each model's :class:`Runner`;
* segmentation masks become polygons (pixel-exact outlines, simplified by half a pixel, kept
  shapely-valid) where the ontology class allows polygons, else one mask per frame; boxes become
  boxes (or rectangles as polygons); classifications a classification when the score passes;
* each stored annotation has ``source = "model:NAME@VERSION"`` and a confidence: the mean
  probability over its pixels (segmentation) or the model's score;
* a :class:`PredictionRow` links it to the model, and the asset's queue priority becomes
  ``1 - (least confidence of its pre-labels)`` so the least certain items are labeled first
  (assets where a model found nothing get 0.5: neither sure nor unsure);
* pre-labels of the same model names still untouched from an earlier pass are withdrawn first
  (``replace=True``), so a re-run after retraining does not pile up duplicates;
* a frame a person already labeled with a class gets no pre-label of that class
  (``overwrite_human=True`` pre-labels it anyway, beside the person's label, never instead of it).
  A person's label is one whose source is ``"human"``: drawn by a labeler, or a pre-label a labeler
  accepted or edited. Model pre-labels, imported labels and tracker output count as machine-made
  (as in the editor, where they wait to be accepted), and so do consensus copies. A frame where every
  class of the pass is labeled so is not run at all; the report counts these frames.

Each asset is written in its own transaction; ``progress(done_frames, total_frames)`` returning
False cancels after the current batch, and nothing of the unfinished asset is stored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from app.core.annotations import HUMAN, Annotation, Kind, MaskPatch
from app.core.errors import NotFoundError, ValidationError
from app.core.geometry import mask_to_polygons, signed_area, simplify_polygon
from app.core.ontology import Ontology
from app.core.raster import polygon_mask_in_bbox, rasterize_annotation
from app.core.records import Asset, AssetKind
from app.models.errors import ModelError, ModelRefused
from app.models.registry import LoadedModel, ModelRegistry, verify
from app.models.runner import FramePrediction, Runner, uncertainty
from app.sources import DataRootError, open_asset

if TYPE_CHECKING:
    from app.sources import Source
    from app.storage import Database
    from app.storage.repo_models import StoredModel
    from app.storage.uow import UnitOfWork

Progress = Callable[[int, int], bool | None]
SIMPLIFY_TOLERANCE = 0.5  # pixels: outlines stay within half a pixel of the mask's boundary
NO_PRELABEL_CONFIDENCE = 0.5


@dataclass(frozen=True)
class ModelHandle:
    """A registered model (database row) and its verified file."""

    stored: StoredModel
    loaded: LoadedModel

    @property
    def source(self) -> str:
        return self.loaded.manifest.source


@dataclass
class PrelabelReport:
    models: list[str]
    assets: int = 0
    frames: int = 0  # frames the models ran on
    annotations: int = 0
    withdrawn: int = 0  # untouched pre-labels of an earlier pass that were replaced
    priorities: dict[int, float] = field(default_factory=dict)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    cancelled: bool = False
    # frames left without pre-labels of a class because a person had labeled that class there
    # (each frame once; 0 with overwrite_human)
    human_frames: int = 0


# --- models ------------------------------------------------------------------------------------------
def load_stored(stored: StoredModel, folder: Path) -> LoadedModel:
    """The verified file of a registered model; its hash must match what was registered."""
    path = Path(stored.path)
    loaded = verify(path) if path.is_absolute() else ModelRegistry(folder).load_path(stored.path)
    if loaded.manifest.sha256 != stored.sha256:
        raise ModelRefused(
            f"model {stored.ref}: the file in {loaded.path.parent} is not the one registered "
            f"(sha256 {loaded.manifest.sha256[:12]}…, registered {stored.sha256[:12]}…)"
        )
    return loaded


def resolve_model_window(loaded: LoadedModel, source: Source) -> tuple[float, float] | None:
    """The manifest's DICOM window as numbers: a preset, the file's own ("dicom"), or as written."""
    from app.sources import WINDOW_PRESETS

    spec = loaded.manifest.normalise.window
    if spec is None or not isinstance(spec, str):
        return None
    if spec == "dicom":
        if source.window is None:
            raise ModelError(f"model {loaded.manifest.ref} wants the DICOM window, but {source.uri} has none")
        return source.window
    if spec not in WINDOW_PRESETS:
        raise ModelError(
            f"model {loaded.manifest.ref}: unknown window preset {spec!r}; known: {sorted(WINDOW_PRESETS)}"
        )
    return WINDOW_PRESETS[spec]


# --- predictions -> annotations --------------------------------------------------------------------------
def _kinds(ontology: Ontology, label: str) -> tuple[Kind, ...]:
    if not ontology.classes:
        return tuple(Kind)
    try:
        return ontology.get(label).kinds
    except ValidationError:
        return ()


def _valid_ring(ring: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
    """A simplified ring that shapely accepts as a valid polygon (None when nothing is left)."""
    import shapely

    simplified = simplify_polygon(ring, SIMPLIFY_TOLERANCE)
    poly = shapely.Polygon(simplified)
    if not poly.is_valid:
        fixed = shapely.make_valid(poly)
        parts = [g for g in getattr(fixed, "geoms", [fixed]) if isinstance(g, shapely.Polygon)]
        if not parts:
            return None
        poly = max(parts, key=lambda g: g.area)
        if not poly.is_valid or poly.is_empty:
            return None
    coords = np.asarray(poly.exterior.coords, dtype=np.float64)[:-1]
    return coords if len(coords) >= 3 and poly.area > 0 else None


def segmentation_annotations(
    label: str,
    prob: npt.NDArray[np.float32],
    frame: int,
    *,
    kinds: Sequence[Kind],
    threshold: float,
    min_area: int,
) -> list[Annotation]:
    """Pre-labels of one class on one frame from its probability map."""
    mask = prob >= threshold
    if not mask.any():
        return []
    shape = (int(mask.shape[0]), int(mask.shape[1]))
    if Kind.POLYGON in kinds:
        out: list[Annotation] = []
        patch = MaskPatch.from_full(mask)
        offset = np.array([patch.x0, patch.y0], dtype=np.float64)
        for ring in mask_to_polygons(patch.bits):
            if signed_area(ring) <= 0:  # holes are not drawn as separate polygons
                continue
            points = _valid_ring(ring + offset)
            if points is None:
                continue
            region = polygon_mask_in_bbox(points, shape)
            if region.area < max(min_area, 1):
                continue
            crop = prob[
                region.y0 : region.y0 + region.bits.shape[0], region.x0 : region.x0 + region.bits.shape[1]
            ]
            confidence = float(np.clip(crop[region.bits].mean(), 0.0, 1.0))
            out.append(
                Annotation(kind=Kind.POLYGON, label=label, frame=frame, points=points, confidence=confidence)
            )
        return out
    if int(mask.sum()) < max(min_area, 1):
        return []
    confidence = float(np.clip(prob[mask].mean(), 0.0, 1.0))
    if Kind.MASK in kinds:
        return [
            Annotation(
                kind=Kind.MASK,
                label=label,
                frame=frame,
                mask=MaskPatch.from_full(mask),
                confidence=confidence,
            )
        ]
    if Kind.BOX in kinds:
        patch = MaskPatch.from_full(mask)
        h, w = patch.bits.shape
        box = (float(patch.x0), float(patch.y0), float(patch.x0 + w), float(patch.y0 + h))
        return [Annotation(kind=Kind.BOX, label=label, frame=frame, box=box, confidence=confidence)]
    return []


def prediction_annotations(
    prediction: FramePrediction, loaded: LoadedModel, ontology: Ontology, frame: int
) -> list[Annotation]:
    """The annotations one frame's prediction becomes under the project's ontology."""
    m = loaded.manifest
    out: list[Annotation] = []
    for label, prob in prediction.probabilities.items():
        out += segmentation_annotations(
            label,
            prob,
            frame,
            kinds=_kinds(ontology, label),
            threshold=m.score_threshold,
            min_area=m.min_area,
        )
    for det in prediction.detections:
        kinds = _kinds(ontology, det.label)
        x0, y0, x1, y1 = det.box
        if Kind.BOX in kinds:
            out.append(
                Annotation(kind=Kind.BOX, label=det.label, frame=frame, box=det.box, confidence=det.score)
            )
        elif Kind.POLYGON in kinds:
            points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
            out.append(
                Annotation(
                    kind=Kind.POLYGON, label=det.label, frame=frame, points=points, confidence=det.score
                )
            )
    if prediction.scores:
        label, score = max(prediction.scores.items(), key=lambda kv: kv[1])
        if score >= m.score_threshold and Kind.CLASSIFICATION in _kinds(ontology, label):
            out.append(Annotation(kind=Kind.CLASSIFICATION, label=label, frame=frame, confidence=score))
    return out


def human_labeled(annotations: Iterable[Annotation]) -> set[tuple[int, str]]:
    """The (frame, class) pairs a person labeled: annotations whose source is ``"human"`` (a labeler's
    own, or a pre-label a labeler accepted or edited); see the module doc for what is machine-made."""
    return {(a.frame, a.label) for a in annotations if a.source == HUMAN}


def pass_classes(handles: Sequence[ModelHandle]) -> set[str]:
    """Every class the pass's models may write (a manifest declares at least one)."""
    return {label for h in handles for label in h.loaded.manifest.classes.values()}


def without_human(
    found: Sequence[tuple[ModelHandle, list[Annotation]]], taken: set[tuple[int, str]]
) -> list[tuple[ModelHandle, list[Annotation]]]:
    """The pre-labels that do not land on a class a person labeled on that frame."""
    return [(h, [a for a in anns if (a.frame, a.label) not in taken]) for h, anns in found]


def frames_to_run(asset: Asset, stride: int = 1) -> list[int]:
    """Every page or slice; every ``stride``-th frame of a video."""
    count = max(asset.frame_count, 1)
    step = max(1, int(stride)) if asset.kind is AssetKind.VIDEO else 1
    return list(range(0, count, step))


# --- the job -------------------------------------------------------------------------------------------
class _Cancelled(Exception):
    pass


def _predict_asset(
    source: Source,
    *,
    runners: Sequence[tuple[ModelHandle, Runner]],
    ontology: Ontology,
    frames: Sequence[int],
    tick: Callable[[int], None],
) -> list[tuple[ModelHandle, list[Annotation]]]:
    per_model: list[tuple[ModelHandle, list[Annotation]]] = [(h, []) for h, _ in runners]
    for start in range(0, len(frames), runners[0][1].batch_size if runners else 1):
        chunk = list(frames[start : start + (runners[0][1].batch_size if runners else 1)])
        pixels = [source.frame(i) for i in chunk]
        for (handle, runner), (_, found) in zip(runners, per_model, strict=True):
            window = resolve_model_window(handle.loaded, source)
            for index, pred in zip(chunk, runner.predict(pixels, window=window), strict=True):
                found.extend(prediction_annotations(pred, handle.loaded, ontology, index))
        tick(len(chunk))
    return per_model


def _withdraw(uow: UnitOfWork, current: Sequence[Annotation], names: Iterable[str], user_id: int) -> int:
    """Delete the live pre-labels of these model names among the asset's ``current`` annotations."""
    prefixes = tuple(f"model:{name}@" for name in names)
    stale = [a for a in current if a.source.startswith(prefixes)]
    for ann in stale:
        assert ann.id is not None
        uow.annotations.delete(ann.id, ann.version, user_id=user_id)
    uow.models.forget_predictions([a.id for a in stale if a.id is not None])
    return len(stale)


def _store(
    uow: UnitOfWork,
    *,
    project_id: int,
    user_id: int,
    asset_id: int,
    found: Sequence[tuple[ModelHandle, list[Annotation]]],
    priority: float | None,
    withdraw_names: set[str],
    refs: list[str],
    overwrite_human: bool,
) -> tuple[int, int]:
    """One asset's pre-labels, prediction rows, queue priority (None: left as it is) and audit row;
    (stored, withdrawn)."""
    from datetime import UTC, datetime

    current = uow.annotations.list(asset_id)
    if not overwrite_human:  # a person may have labeled a frame while the models ran
        found = without_human(found, human_labeled(current))
    withdrawn = _withdraw(uow, current, withdraw_names, user_id) if withdraw_names else 0
    stored = 0
    rows: list[tuple[int, int, int | None, float | None]] = []
    for handle, anns in found:
        saved = uow.annotations.add_many(asset_id, [a.evolve(source=handle.source) for a in anns], user_id)
        rows += [(handle.stored.id, asset_id, a.id, a.confidence) for a in saved]
        stored += len(saved)
    uow.models.add_predictions(rows)
    if priority is not None:
        uow.tasks.set_priority(project_id, [asset_id], priority, datetime.now(UTC))
    uow.audit.record(
        user_id,
        "model.prelabel",
        "asset",
        asset_id,
        {"models": refs, "annotations": stored, "priority": None if priority is None else round(priority, 4)},
    )
    return stored, withdrawn


def run_prelabel(
    db: Database,
    project_id: int,
    user_id: int,
    handles: Sequence[ModelHandle],
    asset_ids: Sequence[int],
    *,
    roots: Mapping[str, Path],
    max_pixels: int,
    frame_stride: int = 1,
    replace: bool = True,
    threads: int | None = None,
    batch_size: int = 4,
    overwrite_human: bool = False,
    progress: Progress | None = None,
) -> PrelabelReport:
    """Run ``handles`` (chained) over the assets and store their pre-labels; see the module doc."""
    report = PrelabelReport(models=[h.stored.ref for h in handles])
    if not handles:
        raise ValidationError("choose at least one model for the pre-label pass")
    with db.unit_of_work(readonly=True) as uow:
        assets = [uow.assets.get(a) for a in asset_ids]
        ontology = uow.ontologies.current(project_id) or Ontology(classes=(), version=0)
    for asset in assets:
        if asset.project_id != project_id:
            raise NotFoundError(f"asset {asset.id} is not in this project")
    runners = [(h, Runner(h.loaded, threads=threads, batch_size=batch_size)) for h in handles]
    classes = pass_classes(handles)
    taken: dict[int, set[tuple[int, str]]] = {}  # asset id -> (frame, class) a person labeled
    plans: list[tuple[Asset, list[int]]] = []
    with db.unit_of_work(readonly=True) as uow:
        for asset in assets:
            frames = frames_to_run(asset, frame_stride)
            if not overwrite_human:
                mine = taken[asset.id] = {
                    t for t in human_labeled(uow.annotations.list(asset.id)) if t[1] in classes
                }
                report.human_frames += len({f for f, _ in mine}.intersection(frames))
                # frames where a person labeled every class of the pass: not run at all
                frames = [f for f in frames if not classes <= {c for g, c in mine if g == f}]
            plans.append((asset, frames))
    withdraw = {h.loaded.manifest.name for h in handles} if replace else set()
    total = sum(len(f) for _, f in plans)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None and progress(done, total) is False:
            raise _Cancelled

    for asset, frames in plans:
        found: list[tuple[ModelHandle, list[Annotation]]] = [(h, []) for h in handles]
        try:
            if frames:
                with open_asset(asset, roots, max_pixels=max_pixels) as source:
                    found = _predict_asset(
                        source, runners=runners, ontology=ontology, frames=frames, tick=tick
                    )
        except _Cancelled:
            report.cancelled = True
            break
        except (OSError, NotFoundError, DataRootError, ModelError) as exc:  # this asset only
            report.skipped.append((asset.id, str(exc)))
            done += len(frames)
            continue
        found = without_human(found, taken.get(asset.id, set()))
        confidences = [a.confidence for _, anns in found for a in anns if a.confidence is not None]
        priority = 1.0 - (min(confidences) if confidences else NO_PRELABEL_CONFIDENCE) if frames else None

        work = functools.partial(
            _store,
            project_id=project_id,
            user_id=user_id,
            asset_id=asset.id,
            found=found,
            priority=priority,
            withdraw_names=withdraw,
            refs=report.models,
            overwrite_human=overwrite_human,
        )
        stored, withdrawn = db.run(work)
        report.annotations += stored
        report.withdrawn += withdrawn
        if priority is not None:  # the models ran on some of its frames
            report.assets += 1
            report.frames += len(frames)
            report.priorities[asset.id] = priority
    return report


# --- the editor's low-confidence highlight -----------------------------------------------------------------
def low_confidence_map(
    db: Database,
    project_id: int,
    annotation_id: int,
    *,
    roots: Mapping[str, Path],
    max_pixels: int,
    models_folder: Path,
) -> npt.NDArray[np.float32]:
    """Where the model was unsure about a pre-label: float32 (H, W) in 0..1 (1 = p was 0.5).

    Segmentation models are re-run on the pre-label's frame (deterministic, so this is the map
    the pre-label came from); for boxes and classifications the map is ``1 - 2|score - 0.5|``
    over the annotation's pixels.
    """
    with db.unit_of_work(readonly=True) as uow:
        ann = uow.annotations.get(annotation_id, include_deleted=True)
        assert ann.asset_id is not None
        asset = uow.assets.get(ann.asset_id)
        if asset.project_id != project_id:
            raise NotFoundError(f"annotation {annotation_id} is not in this project")
        prediction = uow.models.prediction_for(annotation_id)
        if prediction is None or ann.source == HUMAN:
            raise NotFoundError(f"annotation {annotation_id} is not a model pre-label")
        stored = uow.models.get(prediction.model_id)
    shape = (asset.height, asset.width)
    loaded = load_stored(stored, models_folder)
    if loaded.manifest.task != "segmentation":
        score = ann.confidence if ann.confidence is not None else 0.5
        region = (
            rasterize_annotation(ann, shape) if ann.kind is not Kind.CLASSIFICATION else np.ones(shape, bool)
        )
        return np.where(region, np.float32(1.0 - 2.0 * abs(score - 0.5)), np.float32(0.0)).astype(np.float32)
    runner = Runner(loaded, batch_size=1)
    with open_asset(asset, roots, max_pixels=max_pixels) as source:
        (pred,) = runner.predict([source.frame(ann.frame)], window=resolve_model_window(loaded, source))
    if ann.label not in pred.probabilities:
        raise ModelError(f"model {stored.ref} has no output for class {ann.label!r}")
    return uncertainty(pred.probabilities[ann.label])
