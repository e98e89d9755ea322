"""Class layers of a frame and how label maps keep them (#17: no class is dropped silently).

A frame's annotations become one *layer* per class: the union of that class's pixels (the core
rasteriser's rule), kept as its bounding-box crop. Formats that can hold overlapping classes write
each layer on its own (DICOM SEG segments, NIfTI per-class and one-hot volumes). A class-index map
holds one class per pixel: layers are painted lowest priority first (:class:`ClassPriority`, see
``app.exchange.export_options``) and every pixel where two classes meet is counted per class pair
(:class:`OverlapTally`), which the export reports in its summary, ``manifest.json`` and
``overlaps.json``.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.errors import ValidationError
from app.core.ontology import LabelClass, Ontology
from app.core.raster import rasterize_annotation
from app.exchange.selection import ExportJob, annotation_patch

OVERLAPS = "overlaps.json"
BoolMask = npt.NDArray[np.bool_]
Pairs = dict[tuple[int, int], int]  # (class index a < b) -> pixels where both are drawn


def pixel_classes(ontology: Ontology, selected: Sequence[str] = ()) -> list[LabelClass]:
    """The classes a label map can hold (not classification-only), in ontology order; only
    ``selected`` ones when given (the export's class filter)."""
    keep = set(selected)
    return [
        c
        for c in ontology.classes
        if any(k is not Kind.CLASSIFICATION for k in c.kinds) and (not keep or c.name in keep)
    ]


@dataclass(frozen=True)
class ClassLayer:
    """The pixels of one class on one frame: ``bits`` at row ``y0``, column ``x0``."""

    index: int  # 1-based class index (Ontology.index_of)
    y0: int
    x0: int
    bits: BoolMask

    def paint(self, plane: np.ndarray, value: int) -> None:
        h, w = self.bits.shape
        plane[self.y0 : self.y0 + h, self.x0 : self.x0 + w][self.bits] = value

    def overlap(self, other: ClassLayer) -> int:
        """Pixels drawn in both layers."""
        (h1, w1), (h2, w2) = self.bits.shape, other.bits.shape
        y0, x0 = max(self.y0, other.y0), max(self.x0, other.x0)
        y1, x1 = min(self.y0 + h1, other.y0 + h2), min(self.x0 + w1, other.x0 + w2)
        if y1 <= y0 or x1 <= x0:
            return 0
        mine = self.bits[y0 - self.y0 : y1 - self.y0, x0 - self.x0 : x1 - self.x0]
        theirs = other.bits[y0 - other.y0 : y1 - other.y0, x0 - other.x0 : x1 - other.x0]
        return int(np.count_nonzero(mine & theirs))


def annotation_bits(annotation: Annotation, shape: tuple[int, int]) -> MaskPatch:
    """The pixels of a polygon, box, mask, point or polyline as a crop (app.core.raster's rule)."""
    if annotation.kind in (Kind.POLYGON, Kind.BOX, Kind.MASK):
        return annotation_patch(annotation, shape)
    return MaskPatch.from_full(rasterize_annotation(annotation, shape))


def _union(index: int, patches: Iterable[MaskPatch]) -> ClassLayer:
    drawn = [p for p in patches if p.bits.size]
    if not drawn:
        return ClassLayer(index, 0, 0, np.zeros((0, 0), dtype=bool))
    y0, x0 = min(p.y0 for p in drawn), min(p.x0 for p in drawn)
    y1 = max(p.y0 + p.bits.shape[0] for p in drawn)
    x1 = max(p.x0 + p.bits.shape[1] for p in drawn)
    if len(drawn) == 1 and (y1 - y0, x1 - x0) == drawn[0].bits.shape:
        return ClassLayer(index, y0, x0, drawn[0].bits)
    bits = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for p in drawn:
        h, w = p.bits.shape
        bits[p.y0 - y0 : p.y0 - y0 + h, p.x0 - x0 : p.x0 - x0 + w] |= p.bits
    return ClassLayer(index, y0, x0, bits)


def class_layers(
    annotations: Iterable[Annotation], ontology: Ontology, shape: tuple[int, int]
) -> list[ClassLayer]:
    """One layer per class drawn on the frame, in class-index order. The caller passes only
    annotations with pixels and a class the ontology knows (see :func:`drawable`)."""
    patches: dict[int, list[MaskPatch]] = defaultdict(list)
    for annotation in annotations:
        patches[ontology.index_of(annotation.label)].append(annotation_bits(annotation, shape))
    return [_union(index, items) for index, items in sorted(patches.items())]


def drawable(
    job: ExportJob, annotations: Iterable[Annotation], where: Callable[[Annotation], str]
) -> list[Annotation]:
    """The annotations a label map can draw; the others are recorded as unwritable."""
    known = {c.name for c in job.ontology.classes}
    out: list[Annotation] = []
    for ann in annotations:
        if ann.kind is Kind.CLASSIFICATION:
            job.skip(where(ann), "classifications have no pixels (csv and project-json hold them)")
        elif ann.label not in known:
            job.skip(where(ann), f"label {ann.label!r} is not in the current ontology")
        else:
            out.append(ann)
    return out


def collisions(layers: Sequence[ClassLayer]) -> Pairs:
    """Pixels where two classes are both drawn, per class pair (a pixel of three classes counts in
    each of their three pairs)."""
    out: Pairs = {}
    for a, b in itertools.combinations(layers, 2):
        count = a.overlap(b)
        if count:
            out[(min(a.index, b.index), max(a.index, b.index))] = count
    return out


@dataclass(frozen=True)
class ClassPriority:
    """Which class a class-index map keeps where classes overlap: ``names`` highest first (see
    ``app.exchange.export_options`` for the default)."""

    names: tuple[str, ...]
    indices: tuple[int, ...]

    @classmethod
    def of(cls, ontology: Ontology, named: Sequence[str] = ()) -> ClassPriority:
        drawable_names = [c.name for c in pixel_classes(ontology)]
        unknown = [n for n in named if n not in drawable_names]
        if unknown:
            raise ValidationError(
                f"the class priority names {unknown}: not a class with pixels in the ontology; "
                f"known: {drawable_names}"
            )
        names = (*named, *(n for n in reversed(drawable_names) if n not in named))
        return cls(names, tuple(ontology.index_of(n) for n in names))

    def painting_order(self, layers: Iterable[ClassLayer]) -> list[ClassLayer]:
        """Lowest priority first, so the highest is painted last and stays."""
        rank = {index: r for r, index in enumerate(self.indices)}
        return sorted(layers, key=lambda layer: -rank.get(layer.index, len(rank)))

    def kept(self, a: int, b: int) -> int:
        return a if self.indices.index(a) < self.indices.index(b) else b


def paint_index(layers: Sequence[ClassLayer], priority: ClassPriority, plane: np.ndarray) -> None:
    """Paint ``layers`` into the class-index ``plane`` (zeros), the higher priority on top."""
    for layer in priority.painting_order(layers):
        layer.paint(plane, layer.index)


class OverlapTally:
    """The collisions of an export's class-index maps: per class pair, and per item."""

    def __init__(self, ontology: Ontology, priority: ClassPriority, unit: str) -> None:
        self.ontology = ontology
        self.priority = priority
        self.unit = unit
        self.totals: Pairs = defaultdict(int)
        self.items: list[dict[str, Any]] = []

    def add(self, asset_id: int, name: str, frame: int, pairs: Mapping[tuple[int, int], int]) -> None:
        if not pairs:
            return
        for pair, count in pairs.items():
            self.totals[pair] += count
        self.items.append({"asset_id": asset_id, "name": name, "frame": frame, "pairs": self._json(pairs)})

    def _json(self, pairs: Mapping[tuple[int, int], int]) -> list[dict[str, Any]]:
        def name(index: int) -> str:
            return self.ontology.classes[index - 1].name

        return [
            {
                "classes": [name(a), name(b)],
                "count": int(pairs[(a, b)]),
                "kept": name(self.priority.kept(a, b)),
            }
            for a, b in sorted(pairs)
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "rule": "where classes overlap, a class-index map keeps the class listed first in priority",
            "priority": list(self.priority.names),
            "pairs": self._json(self.totals),
            "file": OVERLAPS,
        }

    def write(self, job: ExportJob) -> None:
        """``overlaps.json`` (every item) and the summary the manifest and the report carry."""
        job.tx.write_json(OVERLAPS, {**self.summary(), "items": self.items}, indent=1)
        job.notes["overlaps"] = self.summary()


def instance_map(
    annotations: Sequence[Annotation], ontology: Ontology, priority: ClassPriority, shape: tuple[int, int]
) -> tuple[npt.NDArray[np.uint16], list[dict[str, Any]]]:
    """16-bit instance ids (0 is background; ``annotations[k]`` is id ``k + 1``) and one entry per
    instance: its class, author, annotation id, its whole ``area`` and the ``pixels`` it shows.

    Instances are painted as the class map is (lower-priority classes first, then in stored
    order), so the class under an instance's pixels is always its own.
    """
    if len(annotations) > np.iinfo(np.uint16).max:
        raise ValidationError(f"{len(annotations)} instances on one frame do not fit a 16-bit instance map")
    rank = {index: r for r, index in enumerate(priority.indices)}
    classes = [ontology.index_of(a.label) for a in annotations]
    patches = [annotation_bits(a, shape) for a in annotations]
    ids = np.zeros(shape, dtype=np.uint16)
    for k in sorted(range(len(annotations)), key=lambda k: (-rank.get(classes[k], len(rank)), k)):
        patch = patches[k]
        h, w = patch.bits.shape
        ids[patch.y0 : patch.y0 + h, patch.x0 : patch.x0 + w][patch.bits] = k + 1
    shown = np.bincount(ids.reshape(-1), minlength=len(annotations) + 1)
    entries = [
        {
            "id": k + 1,
            "class": ann.label,
            "class_index": classes[k],
            "author": ann.author,
            "annotation_id": ann.id,
            "source": ann.source,
            "track_id": ann.track_id,
            "area": patches[k].area,
            "pixels": int(shown[k + 1]),
        }
        for k, ann in enumerate(annotations)
    ]
    return ids, entries
