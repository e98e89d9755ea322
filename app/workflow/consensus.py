"""Consensus sampling and consensus labels.

Sampling is a pure function of (project seed, asset id): every workstation computes the same
sample without coordination, and adding assets never reshuffles earlier decisions. The queue
(:mod:`app.workflow.queue`) turns ``consensus_plan`` into leases; :func:`may_label` is the rule it
must keep: never a second copy of one item for the same person.

Consensus labels: per class and frame, a mask by majority vote or STAPLE (SimpleITK) over the
labelers' rasterised annotations (:func:`app.workflow.agreement.annotation_masks`);
classifications by strict majority of labelers.

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
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.workflow.agreement import MASK_KINDS, annotation_masks

Method = Literal["majority", "staple"]

__all__ = [
    "Consensus",
    "build_consensus",
    "consensus_annotations",
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


def _shared_attributes(choices: Sequence[Annotation]) -> dict[str, Any]:
    """Attributes on which every voter for a classification agrees (others are dropped)."""
    first = dict(choices[0].attributes)
    return {
        k: v for k, v in first.items() if all(k in c.attributes and c.attributes[k] == v for c in choices)
    }


def build_consensus(
    annotations_by_labeler: Mapping[str, Sequence[Annotation]],
    ontology: Ontology,
    shape: tuple[int, int],
    *,
    method: Method = "majority",
) -> Consensus:
    """One MASK annotation per (class, frame) that anyone marked, plus majority classifications.

    Polygons, boxes, masks and polylines are rasterised per labeler through the one rasteriser;
    a labeler who marked nothing of a class votes "absent" on every pixel. STAPLE runs once per
    class over the stack of the frames anyone marked, so its rater estimates use all of them. An
    empty consensus on a frame yields no annotation.
    """
    if method not in ("majority", "staple"):
        raise ValidationError(f"unknown consensus method {method!r}; expected 'majority' or 'staple'")
    labelers = list(annotations_by_labeler)
    if not labelers:
        raise ValidationError("a consensus needs at least one labeler")
    source = f"consensus:{method}"
    everything = [a for anns in annotations_by_labeler.values() for a in anns]
    out: list[Annotation] = []
    ties: list[tuple[str, int]] = []
    stats: dict[str, dict[str, Any]] = {}
    for cls_ in ontology.classes:
        label = cls_.name
        frames = sorted({a.frame for a in everything if a.label == label and a.kind in MASK_KINDS})
        if frames:
            per_frame = [annotation_masks(annotations_by_labeler, label, shape, frame=f) for f in frames]
            volumes = [np.stack([m[name] for m in per_frame]) for name in labelers]
            if method == "staple":
                result, sens, spec = staple(volumes)
                stats[label] = {
                    "frames": frames,
                    "sensitivity": dict(zip(labelers, sens, strict=True)),
                    "specificity": dict(zip(labelers, spec, strict=True)),
                }
            else:
                result = majority_vote(volumes)
            for f, bits in zip(frames, result, strict=True):
                if bits.any():
                    patch = MaskPatch.from_full(bits)
                    out.append(Annotation(kind=Kind.MASK, label=label, frame=f, mask=patch, source=source))
        votes: Counter[int] = Counter()
        chosen: dict[int, list[Annotation]] = {}
        for anns in annotations_by_labeler.values():
            mine = {a.frame: a for a in anns if a.kind is Kind.CLASSIFICATION and a.label == label}
            for f, a in mine.items():  # one vote per labeler and frame, however often they clicked
                votes[f] += 1
                chosen.setdefault(f, []).append(a)
        for f in sorted(votes):
            if 2 * votes[f] > len(labelers):
                attrs = _shared_attributes(chosen[f])
                out.append(
                    Annotation(
                        kind=Kind.CLASSIFICATION, label=label, frame=f, attributes=attrs, source=source
                    )
                )
            elif 2 * votes[f] == len(labelers):
                ties.append((label, f))
    return Consensus(method, out, ties, stats)


def consensus_annotations(
    annotations_by_labeler: Mapping[str, Sequence[Annotation]],
    ontology: Ontology,
    shape: tuple[int, int],
    *,
    method: Method = "majority",
) -> list[Annotation]:
    """The consensus annotations only; :func:`build_consensus` also reports ties and STAPLE rates."""
    return build_consensus(annotations_by_labeler, ontology, shape, method=method).annotations
