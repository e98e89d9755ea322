"""Inter-labeler agreement on one item: pixel overlap, matched boxes, classification votes, kappa.

Pure functions on core annotations and numpy arrays; no database. Every pixel score goes through
the one rasteriser (:mod:`app.core.raster`), so it counts exactly the pixels the canvas shows.

Definitions (chosen here, relied on by the review pane and reports):

* **Both empty.** Two labelers who both marked nothing of a class agree fully: IoU = Dice = 1.0
  (the convention of :func:`app.core.geometry.iou`). The same holds for two empty box lists (F1 =
  1.0) and for classification pairs where neither labeler chose the class.
* **Pairwise means.** A score over N labelers is the unweighted mean over all N*(N-1)/2 pairs.
* **Box matching.** Per pair, the Hungarian assignment (``linear_sum_assignment`` on ``1 - IoU``)
  with IoUs below the threshold gated to 0, so the assignment maximises the IoU of the pairs that
  count (an ungated optimum could trade a valid match for two sub-threshold ones). A match needs
  ``IoU >= threshold``; every unmatched box is a miss. Box IoU is analytic on the coordinates (COCO
  style), not on pixels: sub-pixel boxes still compare.
* **Kappa edge case.** When expected agreement is 1 (every rating is one category) the ratio is
  0/0; we return 1.0, since observed agreement is then necessarily 1 too.
* **Item score.** :func:`item_agreement` scores each (class, family) that at least one labeler
  used; ``overall`` is the plain mean of those scores (``None`` when nobody labeled anything).
  Classes nobody used are left out, so an ontology with many classes does not inflate the score.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation, BoolMask, Kind
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.core.raster import rasterize_annotation

Box = tuple[float, float, float, float]

# Kinds scored as pixel regions (a box is a region too when rasterised for a mask consensus).
REGION_KINDS = frozenset({Kind.POLYGON, Kind.MASK, Kind.POLYLINE})
MASK_KINDS = REGION_KINDS | {Kind.BOX}

__all__ = [
    "BoxScore",
    "ClassAgreement",
    "ItemAgreement",
    "PairwiseScore",
    "annotation_masks",
    "box_agreement",
    "box_iou",
    "classification_answers",
    "cohen_kappa",
    "disagreement_map",
    "fleiss_kappa",
    "item_agreement",
    "mask_agreement",
]


# --- results ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PairwiseScore:
    """Mean pairwise overlap of N labelers' masks."""

    iou: float
    dice: float
    pairs: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class BoxScore:
    """Pairwise matched-box agreement, pooled over labeler pairs (and frames)."""

    matched_iou: float | None  # mean IoU of the matches; None when nothing matched
    f1: float  # mean over pairs of 2*matches / (boxes_a + boxes_b)
    quality: float  # mean over pairs of sum(matched IoU) / mean box count: matched_iou x F1 per pair
    matches: int  # matches summed over pairs
    boxes: dict[str, int]  # boxes per labeler
    pairs: int
    iou_threshold: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ClassAgreement:
    label: str
    family: str  # "region", "box" or "classification"
    score: float  # the one number: Dice, box quality, or pairwise agreement fraction
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ItemAgreement:
    labelers: tuple[str, ...]
    classes: tuple[ClassAgreement, ...]
    overall: float | None  # mean of the class scores; None when nobody labeled anything

    def to_dict(self) -> dict[str, Any]:
        return {
            "labelers": list(self.labelers),
            "classes": [c.to_dict() for c in self.classes],
            "overall": self.overall,
        }


# --- masks -----------------------------------------------------------------------------------------
def _stack(masks: Sequence[npt.ArrayLike], minimum: int) -> list[BoolMask]:
    arrays = [np.asarray(m).astype(bool, copy=False) for m in masks]
    if len(arrays) < minimum:
        raise ValidationError(f"need at least {minimum} masks, got {len(arrays)}")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValidationError(f"masks differ in shape: {sorted(shapes)}")
    return arrays


def _pair_counts(a: BoolMask, b: BoolMask) -> tuple[int, int, int]:
    return int(np.count_nonzero(a & b)), int(np.count_nonzero(a)), int(np.count_nonzero(b))


def mask_agreement(masks: Sequence[npt.ArrayLike]) -> PairwiseScore:
    """Mean pairwise IoU and Dice over labelers' same-shape masks ((H, W), or (F, H, W) volumes).

    A pair of empty masks scores 1.0 on both (they agree that nothing is there).
    """
    arrays = _stack(masks, 2)
    ious: list[float] = []
    dices: list[float] = []
    for a, b in itertools.combinations(arrays, 2):
        inter, na, nb = _pair_counts(a, b)
        union = na + nb - inter
        ious.append(1.0 if union == 0 else inter / union)
        dices.append(1.0 if na + nb == 0 else 2.0 * inter / (na + nb))
    return PairwiseScore(float(np.mean(ious)), float(np.mean(dices)), len(ious))


def disagreement_map(masks: Sequence[npt.ArrayLike]) -> npt.NDArray[np.uint8]:
    """uint8 count of labelers marking each pixel: 0 = nobody, N = everybody (review pane)."""
    arrays = _stack(masks, 1)
    if len(arrays) > np.iinfo(np.uint8).max:
        raise ValidationError(f"at most 255 labelers fit a uint8 map, got {len(arrays)}")
    out = np.zeros(arrays[0].shape, dtype=np.uint8)
    for a in arrays:
        out += a
    return out


def annotation_masks(
    annotations_by_labeler: Mapping[str, Sequence[Annotation]],
    label: str,
    shape: Sequence[int],
    *,
    frame: int | None = None,
) -> dict[str, BoolMask]:
    """Each labeler's union of the polygons, boxes, masks and polylines of class ``label``.

    Rasterised through :func:`app.core.raster.rasterize_annotation` (the centre rule). Pass one
    frame's annotations, or give ``frame`` to pick that frame. A labeler with none gets an empty
    mask: not marking something is a vote that it is absent.
    """
    h, w = int(shape[0]), int(shape[1])
    out: dict[str, BoolMask] = {}
    for labeler, anns in annotations_by_labeler.items():
        mask = np.zeros((h, w), dtype=bool)
        for ann in anns:
            if ann.label == label and ann.kind in MASK_KINDS and (frame is None or ann.frame == frame):
                mask |= rasterize_annotation(ann, (h, w))
        out[labeler] = mask
    return out


# --- boxes -----------------------------------------------------------------------------------------
def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Analytic IoU of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return 0.0 if union <= 0 else inter / union


def _match_pair(boxes_a: Sequence[Box], boxes_b: Sequence[Box], threshold: float) -> list[float]:
    """IoUs of the Hungarian matches at or above ``threshold`` between two labelers' boxes."""
    if not boxes_a or not boxes_b:
        return []
    from scipy.optimize import linear_sum_assignment

    ious = np.array([[box_iou(a, b) for b in boxes_b] for a in boxes_a], dtype=np.float64)
    gated = np.where(ious >= threshold, ious, 0.0)
    rows, cols = linear_sum_assignment(1.0 - gated)
    return [float(ious[r, c]) for r, c in zip(rows, cols, strict=True) if ious[r, c] >= threshold]


def _box_score(
    frames: Sequence[Mapping[str, Sequence[Box]]], labelers: Sequence[str], threshold: float
) -> BoxScore:
    """Pairwise matched-box agreement pooled over frames (boxes only match within a frame)."""
    if not 0.0 < threshold <= 1.0:
        raise ValidationError(f"the IoU threshold must be in (0, 1], got {threshold}")
    if len(labelers) < 2:
        raise ValidationError(f"agreement needs at least 2 labelers, got {len(labelers)}")
    counts = {name: sum(len(f.get(name, ())) for f in frames) for name in labelers}
    all_ious: list[float] = []
    f1s: list[float] = []
    qualities: list[float] = []
    for a, b in itertools.combinations(labelers, 2):
        matched: list[float] = []
        for f in frames:
            matched += _match_pair(list(f.get(a, ())), list(f.get(b, ())), threshold)
        total = counts[a] + counts[b]
        all_ious += matched
        f1s.append(1.0 if total == 0 else 2.0 * len(matched) / total)
        qualities.append(1.0 if total == 0 else 2.0 * sum(matched) / total)
    return BoxScore(
        matched_iou=float(np.mean(all_ious)) if all_ious else None,
        f1=float(np.mean(f1s)),
        quality=float(np.mean(qualities)),
        matches=len(all_ious),
        boxes=counts,
        pairs=len(f1s),
        iou_threshold=threshold,
    )


def box_agreement(boxes_by_labeler: Mapping[str, Sequence[Box]], *, iou_threshold: float = 0.5) -> BoxScore:
    """Pairwise Hungarian-matched box agreement of labelers on one frame (see module docstring)."""
    return _box_score([boxes_by_labeler], list(boxes_by_labeler), iou_threshold)


# --- classifications and kappa ---------------------------------------------------------------------
def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa of two raters over the same items. 1.0 when both used one single category."""
    if len(a) != len(b):
        raise ValidationError(f"the raters rated different numbers of items: {len(a)} vs {len(b)}")
    if not a:
        raise ValidationError("kappa needs at least one rated item")
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if expected >= 1.0:
        return 1.0  # 0/0: everyone used one category, so observed == expected == 1
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(ratings: Sequence[Sequence[str]]) -> float:
    """Fleiss' kappa for ``ratings[item][rater]``; every item needs the same number (>= 2) of ratings.

    1.0 when every rating is the same category (observed == expected == 1).
    """
    if not ratings:
        raise ValidationError("kappa needs at least one rated item")
    raters = {len(r) for r in ratings}
    if len(raters) != 1 or min(raters) < 2:
        raise ValidationError(f"every item needs the same number (>= 2) of ratings, got {sorted(raters)}")
    categories = sorted({c for r in ratings for c in r})
    counts = np.array([[Counter(r)[c] for c in categories] for r in ratings], dtype=np.float64)
    return _fleiss_from_counts(counts)


def _fleiss_from_counts(counts: npt.NDArray[np.float64]) -> float:
    """Fleiss' kappa from an items x categories count table (Fleiss 1971)."""
    n_items = counts.shape[0]
    n = float(counts[0].sum())
    per_item = (np.square(counts).sum(axis=1) - n) / (n * (n - 1.0))
    observed = float(per_item.mean())
    shares = counts.sum(axis=0) / (n_items * n)
    expected = float(np.square(shares).sum())
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)


def classification_answers(
    annotations_by_labeler: Mapping[str, Sequence[Annotation]], frame: int = 0
) -> dict[str, str]:
    """Each labeler's classification classes on ``frame`` as one category string ("" = none).

    Several classes join sorted with "|". Collect these over items to feed :func:`cohen_kappa`
    or :func:`fleiss_kappa` for a project-level kappa.
    """
    return {
        name: "|".join(sorted({a.label for a in anns if a.kind is Kind.CLASSIFICATION and a.frame == frame}))
        for name, anns in annotations_by_labeler.items()
    }


# --- one item --------------------------------------------------------------------------------------
def _frames_of(anns: Iterable[Annotation], kinds: frozenset[Kind], label: str) -> list[int]:
    return sorted({a.frame for a in anns if a.label == label and a.kind in kinds})


def item_agreement(
    annotations_by_labeler: Mapping[str, Sequence[Annotation]],
    ontology: Ontology,
    shape: tuple[int, int],
    frame_count: int = 1,
    *,
    iou_threshold: float = 0.5,
) -> ItemAgreement:
    """Per-class agreement of N >= 2 labelers on one item, plus one overall score.

    Families per class, each scored only when someone used it:
    region (polygons, masks, polylines; pooled over frames, i.e. volumetric for a series): mean
    pairwise Dice (score) and IoU; box: Hungarian-matched boxes per frame, score = box quality
    (matched IoU x F1), details carry F1 and matched IoU; classification: fraction of labeler pairs
    that agree on whether the class applies, pooled over the frames where anyone chose it.
    Points are not scored.
    """
    labelers = tuple(annotations_by_labeler)
    if len(labelers) < 2:
        raise ValidationError(f"agreement needs at least 2 labelers, got {len(labelers)}")
    everything = [a for anns in annotations_by_labeler.values() for a in anns]
    for ann in everything:
        if ann.label:
            ontology.get(ann.label)  # a class the ontology does not know is an error, not a skip
        if ann.frame >= frame_count:
            raise ValidationError(f"annotation on frame {ann.frame} but the item has {frame_count} frame(s)")
    results: list[ClassAgreement] = []
    for cls_ in ontology.classes:
        label = cls_.name
        region_frames = _frames_of(everything, REGION_KINDS, label)
        if region_frames:
            region_only = {
                name: [a for a in anns if a.kind in REGION_KINDS]
                for name, anns in annotations_by_labeler.items()
            }
            # Pool over the frames anyone marked: other frames are empty for all and add nothing.
            per_frame = [annotation_masks(region_only, label, shape, frame=f) for f in region_frames]
            volumes = [np.stack([m[name] for m in per_frame]) for name in labelers]
            score = mask_agreement(volumes)
            results.append(
                ClassAgreement(label, "region", score.dice, {**score.to_dict(), "frames": region_frames})
            )
        box_frames = _frames_of(everything, frozenset({Kind.BOX}), label)
        if box_frames:
            frames = [
                {
                    name: [a.box for a in anns if a.label == label and a.frame == f and a.box is not None]
                    for name, anns in annotations_by_labeler.items()
                }
                for f in box_frames
            ]
            boxes = _box_score(frames, labelers, iou_threshold)
            results.append(
                ClassAgreement(label, "box", boxes.quality, {**boxes.to_dict(), "frames": box_frames})
            )
        cls_frames = _frames_of(everything, frozenset({Kind.CLASSIFICATION}), label)
        if cls_frames:
            agree: list[bool] = []
            for f in cls_frames:
                chose = [
                    any(a.kind is Kind.CLASSIFICATION and a.label == label and a.frame == f for a in anns)
                    for anns in annotations_by_labeler.values()
                ]
                agree += [x == y for x, y in itertools.combinations(chose, 2)]
            fraction = sum(agree) / len(agree)
            results.append(
                ClassAgreement(label, "classification", fraction, {"pairs": len(agree), "frames": cls_frames})
            )
    overall = float(np.mean([r.score for r in results])) if results else None
    return ItemAgreement(labelers, tuple(results), overall)
