"""Consensus sampling and consensus labels.

Sampling is a pure function of (project seed, asset id): every workstation computes the same
sample without coordination, and adding assets never reshuffles earlier decisions. The queue
(:mod:`app.workflow.queue`) turns ``consensus_plan`` into leases; :func:`may_label` is the rule it
must keep: never a second copy of one item for the same person.

Consensus labels are written only in kinds the class's ontology entry allows, so a stored consensus
passes the check a direct upload gets (:meth:`app.core.ontology.Ontology.check`). Per class and
frame, from the labelers' polygons, boxes, masks and polylines:

* **mask allowed** -> one MASK: majority vote or STAPLE (SimpleITK) over the labelers' rasterised
  annotations (:func:`app.workflow.agreement.annotation_masks`).
* **box allowed, no mask** (and the labelers drew only boxes, or the class allows no polygon) ->
  BOXES: the labelers' boxes are matched by IoU >= 0.5 and each object a majority of labelers
  boxed gets the per-coordinate median of its boxes (:mod:`app.workflow.consensus_boxes`). STAPLE
  gives the same boxes: its per-pixel probability says nothing about where a box's edges are, so
  a box class has no STAPLE rates.
* **polygon allowed, no mask** -> POLYGONS: the majority or STAPLE mask outlined, one polygon per
  4-connected region (holes are filled: a polygon has none).
* **none of these allowed** (say the class became a point class after people labeled it) ->
  nothing is written; the (class, frame) is listed in :attr:`Consensus.skipped` with the reason.

Classifications by strict majority of labelers, with the attributes every voter agrees on. A
consensus annotation the ontology still refuses (a required attribute the voters disagreed on, a
classification the class does not allow) is skipped and listed the same way.

Ties (chosen here):

* Majority vote keeps a pixel iff MORE than ``threshold`` of the labelers marked it. With the
  default 0.5 an exact half (e.g. 1 of 2, 2 of 4) is background: a consensus needs a majority.
* A classification class is kept iff more than half of the labelers chose it. Exactly half is a
  tie: nothing is emitted and the tie is listed in :attr:`Consensus.ties` for review.
* STAPLE is undefined (NaN) when the labelers never disagree and mark all or none of the pixels;
  then the unanimous mask is the consensus and every sensitivity/specificity is 1.0. Should
  STAPLE still return NaN, we fall back to the majority vote and measure each labeler against it.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation, BoolMask, Kind, MaskPatch
from app.core.conversions import patch_polygons
from app.core.errors import ValidationError
from app.core.ontology import LabelClass, Ontology
from app.workflow.agreement import MASK_KINDS, annotation_masks
from app.workflow.consensus_boxes import box_consensus

Method = Literal["majority", "staple"]

__all__ = [
    "Consensus",
    "build_consensus",
    "consensus_annotations",
    "consensus_kind",
    "consensus_plan",
    "in_consensus_sample",
    "majority_vote",
    "may_label",
    "staple",
]


# --- sampling -----------------------------------------------------------------------------------
def _check_share(share: float) -> float:
    if not (math.isfinite(share) and 0.0 <= share <= 1.0):
        raise ValidationError(f"the consensus share must be within 0..1, got {share}")
    return float(share)


def in_consensus_sample(asset_id: int, project_seed: str, share: float) -> bool:
    """Whether ``asset_id`` is in the consensus sample: ``u(seed, id) < share``.

    ``u`` is the first 64 bits of SHA-256 over the seed and the id, scaled to [0, 1): uniform, and
    the same on every machine and Python version (unlike ``hash()``). Share 0 samples nothing and
    share 1 everything, exactly.
    """
    share = _check_share(share)
    if isinstance(asset_id, bool) or not isinstance(asset_id, int | np.integer):
        raise ValidationError(f"an asset id must be an integer, got {asset_id!r}")
    # NUL cannot occur in the decimal id, so (seed, id) -> bytes is one-to-one.
    digest = hashlib.sha256(f"{project_seed}\x00{int(asset_id)}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    return u < share


def consensus_plan(asset_ids: Sequence[int], *, share: float, count: int, seed: str) -> dict[int, int]:
    """Asset id -> how many distinct labelers it needs: ``count`` if sampled, else 1."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValidationError(f"the number of labelers per consensus item must be >= 1, got {count!r}")
    share = _check_share(share)
    return {int(a): (count if in_consensus_sample(a, seed, share) else 1) for a in asset_ids}


def may_label(required: int, labeled_by: Collection[str], user: str) -> bool:
    """Whether ``user`` may take another copy of an item: not yet theirs, and a copy still open.

    ``labeled_by`` holds everyone who already labeled or holds a lease on the item.
    """
    return user not in labeled_by and len(set(labeled_by)) < required


# --- pixel consensus ----------------------------------------------------------------------------
def _masks(masks: Sequence[npt.ArrayLike]) -> list[BoolMask]:
    arrays = [np.asarray(m).astype(bool, copy=False) for m in masks]
    if not arrays:
        raise ValidationError("a consensus needs at least one mask")
    if len({a.shape for a in arrays}) > 1:
        raise ValidationError(f"masks differ in shape: {sorted({a.shape for a in arrays})}")
    return arrays


def majority_vote(masks: Sequence[npt.ArrayLike], *, threshold: float = 0.5) -> BoolMask:
    """Pixels marked by MORE than ``threshold`` of the labelers (an exact half is out at 0.5)."""
    if not 0.0 <= threshold < 1.0:
        raise ValidationError(f"the vote threshold must be in [0, 1), got {threshold}")
    arrays = _masks(masks)
    votes = np.sum(arrays, axis=0, dtype=np.int64)
    # Integer comparison: votes > threshold * n without float trouble at exact halves.
    return np.asarray(votes > threshold * len(arrays))


def _rates(mask: BoolMask, truth: BoolMask) -> tuple[float, float]:
    tp = int(np.count_nonzero(mask & truth))
    tn = int(np.count_nonzero(~mask & ~truth))
    pos, neg = int(np.count_nonzero(truth)), int(np.count_nonzero(~truth))
    return (1.0 if pos == 0 else tp / pos), (1.0 if neg == 0 else tn / neg)


def staple(
    masks: Sequence[npt.ArrayLike], *, threshold: float = 0.5
) -> tuple[BoolMask, list[float], list[float]]:
    """STAPLE (Warfield 2004) via SimpleITK: consensus mask, per-labeler sensitivity, specificity.

    The consensus keeps pixels whose estimated probability of foreground exceeds ``threshold``.
    Works on (H, W) masks and (F, H, W) volumes.
    """
    arrays = _masks(masks)
    n = len(arrays)
    if all(np.array_equal(arrays[0], a) for a in arrays[1:]):
        return arrays[0].copy(), [1.0] * n, [1.0] * n  # unanimous: STAPLE would be 0/0
    import SimpleITK  # heavy; only the consensus job needs it

    sitk: Any = SimpleITK  # its functions carry no type hints

    flt = sitk.STAPLEImageFilter()
    flt.SetForegroundValue(1.0)
    probability = sitk.GetArrayFromImage(
        flt.Execute([sitk.GetImageFromArray(a.astype(np.uint8)) for a in arrays])
    )
    sens = [float(v) for v in flt.GetSensitivity()]
    spec = [float(v) for v in flt.GetSpecificity()]
    if np.isnan(probability).any() or any(math.isnan(v) for v in sens + spec):
        consensus = majority_vote(arrays)
        rates = [_rates(a, consensus) for a in arrays]
        return consensus, [r[0] for r in rates], [r[1] for r in rates]
    return np.asarray(probability > threshold), sens, spec


# --- consensus annotations ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Consensus:
    """Consensus annotations of one item plus what the reviewer should know about them."""

    method: Method
    annotations: list[Annotation]
    ties: list[tuple[str, int]] = field(default_factory=list)  # (classification class, frame)
    # per class: {"frames": [...], "sensitivity": {labeler: x}, "specificity": {...}} (STAPLE only)
    staple_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (class, frame, why): consensus labels not written because the ontology does not allow them
    skipped: list[tuple[str, int, str]] = field(default_factory=list)


def _shared_attributes(choices: Sequence[Annotation]) -> dict[str, Any]:
    """Attributes on which every voter agrees (others are dropped)."""
    if not choices:
        return {}
    first = dict(choices[0].attributes)
    return {
        k: v for k, v in first.items() if all(k in c.attributes and c.attributes[k] == v for c in choices)
    }


def consensus_kind(cls_: LabelClass, drawn: Collection[Kind]) -> Kind | None:
    """The kind a class's geometric consensus is written as, given the kinds the labelers ``drawn``
    (see the module doc); None when the class allows none a consensus can make."""
    allowed = set(cls_.kinds)
    if Kind.MASK in allowed:
        return Kind.MASK
    if Kind.BOX in allowed and (set(drawn) <= {Kind.BOX} or Kind.POLYGON not in allowed):
        return Kind.BOX
    if Kind.POLYGON in allowed:
        return Kind.POLYGON
    return None


@dataclass
class _Builder:
    """Collects one item's consensus annotations, ties, STAPLE rates and skips."""

    by_labeler: Mapping[str, Sequence[Annotation]]
    ontology: Ontology
    shape: tuple[int, int]
    method: Method
    out: list[Annotation] = field(default_factory=list)
    ties: list[tuple[str, int]] = field(default_factory=list)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def source(self) -> str:
        return f"consensus:{self.method}"

    def emit(self, annotation: Annotation) -> None:
        """Keep ``annotation`` if the ontology allows it; else list it as skipped, with the reason."""
        problems = self.ontology.check(annotation)
        if problems:
            self.skipped.append((annotation.label, annotation.frame, "; ".join(problems)))
        else:
            self.out.append(annotation)

    def geometry(self, cls_: LabelClass) -> None:
        label = cls_.name
        marked = [
            a for anns in self.by_labeler.values() for a in anns if a.label == label and a.kind in MASK_KINDS
        ]
        frames = sorted({a.frame for a in marked})
        if not frames:
            return
        kind = consensus_kind(cls_, {a.kind for a in marked})
        if kind is None:
            why = (
                f"class {label!r} does not allow mask, box or polygon; "
                f"allowed: {[k.value for k in cls_.kinds]}"
            )
            self.skipped += [(label, f, why) for f in frames]
        elif kind is Kind.BOX:
            for f in frames:
                for box, merged in box_consensus(self.by_labeler, label, f):
                    attrs = _shared_attributes(merged)
                    self.emit(
                        Annotation(
                            kind=Kind.BOX, label=label, frame=f, box=box, attributes=attrs, source=self.source
                        )
                    )
        else:
            self.pixels(label, frames, kind, marked)

    def pixels(self, label: str, frames: list[int], kind: Kind, marked: Sequence[Annotation]) -> None:
        """Majority vote or STAPLE over the rasterised marks, written as masks or polygons."""
        labelers = list(self.by_labeler)
        per_frame = [annotation_masks(self.by_labeler, label, self.shape, frame=f) for f in frames]
        volumes = [np.stack([m[name] for m in per_frame]) for name in labelers]
        if self.method == "staple":
            result, sens, spec = staple(volumes)
            self.stats[label] = {
                "frames": frames,
                "sensitivity": dict(zip(labelers, sens, strict=True)),
                "specificity": dict(zip(labelers, spec, strict=True)),
            }
        else:
            result = majority_vote(volumes)
        for f, bits in zip(frames, result, strict=True):
            if not bits.any():
                continue
            patch = MaskPatch.from_full(bits)
            attrs = _shared_attributes([a for a in marked if a.frame == f])
            base = Annotation(
                kind=Kind.MASK, label=label, frame=f, mask=patch, attributes=attrs, source=self.source
            )
            if kind is Kind.MASK:
                self.emit(base)
            else:
                for points in patch_polygons(patch):
                    self.emit(base.evolve(kind=Kind.POLYGON, mask=None, points=points))

    def classifications(self, label: str) -> None:
        votes: Counter[int] = Counter()
        chosen: dict[int, list[Annotation]] = {}
        for anns in self.by_labeler.values():
            mine = {a.frame: a for a in anns if a.kind is Kind.CLASSIFICATION and a.label == label}
            for f, a in mine.items():  # one vote per labeler and frame, however often they clicked
                votes[f] += 1
                chosen.setdefault(f, []).append(a)
        for f in sorted(votes):
            if 2 * votes[f] > len(self.by_labeler):
                attrs = _shared_attributes(chosen[f])
                self.emit(
                    Annotation(
                        kind=Kind.CLASSIFICATION, label=label, frame=f, attributes=attrs, source=self.source
                    )
                )
            elif 2 * votes[f] == len(self.by_labeler):
                self.ties.append((label, f))


def build_consensus(
    annotations_by_labeler: Mapping[str, Sequence[Annotation]],
    ontology: Ontology,
    shape: tuple[int, int],
    *,
    method: Method = "majority",
) -> Consensus:
    """Per class, the consensus of every frame anyone marked, in a kind the class allows (module
    doc), plus majority classifications.

    Polygons, boxes, masks and polylines are rasterised per labeler through the one rasteriser;
    a labeler who marked nothing of a class votes "absent" on every pixel (and on every box).
    STAPLE runs once per class over the stack of the frames anyone marked, so its rater estimates
    use all of them. An empty consensus on a frame yields no annotation.
    """
    if method not in ("majority", "staple"):
        raise ValidationError(f"unknown consensus method {method!r}; expected 'majority' or 'staple'")
    if not annotations_by_labeler:
        raise ValidationError("a consensus needs at least one labeler")
    builder = _Builder(annotations_by_labeler, ontology, shape, method)
    for cls_ in ontology.classes:
        builder.geometry(cls_)
        builder.classifications(cls_.name)
    return Consensus(method, builder.out, builder.ties, builder.stats, builder.skipped)


def consensus_annotations(
    annotations_by_labeler: Mapping[str, Sequence[Annotation]],
    ontology: Ontology,
    shape: tuple[int, int],
    *,
    method: Method = "majority",
) -> list[Annotation]:
    """The consensus annotations only; :func:`build_consensus` also reports ties and STAPLE rates."""
    return build_consensus(annotations_by_labeler, ontology, shape, method=method).annotations
