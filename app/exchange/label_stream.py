"""Labels for training code without an export: labelled frames with their pixels, and label volumes.

    for asset, frame, image, labels in iter_labels(db, project_id, roots=roots, max_pixels=n):
        ...                       # image: the frame as the canvas shows it; labels: annotation dicts

    volume, classes = label_volume(db, project_id, asset_id, mode="one-hot")   # (C, F, H, W) bool

**Which labels** (``final=True``): each item's final labels, exactly those a default export holds
(``app.exchange.final_labels``, which states the rule): an accepted item's review result (its
consensus label, the fixing reviewer's labels, or the accepted labeler's), a single labeler's
submission waiting for review, and, while nobody has claimed an item of the project, the labels
people drew or imported; never untouched model pre-labels, drafts of items in progress or sent
back, or a consensus a requeue superseded. ``final=False`` takes every live annotation of every
item (``labels="all"``). Object tracks are expanded to every frame they cover (interpolated frames
included, outside frames left out), as every export does.

**Streaming.** Assets are read a page at a time, each page's decisions and annotations in one
short read transaction, and frames are decoded one at a time through ``app.sources`` (the readers the canvas
uses: 16-bit DICOM stays 16-bit, video frames are RGB, sources prefetch their neighbours), so
memory stays flat however large the project is and no transaction is held open while training
code runs between frames.

**Label volumes** reuse the label-map code of the NIfTI and png-masks exports
(``app.exchange.label_maps``): the same rasteriser, and in ``index`` mode the same class priority
where classes overlap (``priority`` names classes highest first; by default a class later in the
ontology wins). ``one-hot`` keeps every class's pixels, overlaps included.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation, Kind
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.core.records import Asset
from app.exchange.final_labels import LabelChooser
from app.exchange.label_maps import ClassPriority, class_layers, paint_index, pixel_classes
from app.exchange.label_rules import ALL
from app.exchange.selection import ExportFilters, expand_tracks
from app.sources import open_asset

if TYPE_CHECKING:
    from app.storage import Database
    from app.storage.uow import UnitOfWork

VOLUME_MODES = ("index", "one-hot")
PAGE = 256  # assets per read transaction (each page's label decisions read the project's queue once)
FORMAT = "iter-labels"  # how the label chooser knows the caller: not an archive, so final by default


class LabelledFrame(NamedTuple):
    """One labelled frame: unpacks as ``asset, frame, image, labels``."""

    asset: Asset
    frame: int
    image: npt.NDArray[Any]  # (H, W) or (H, W, C), the source's dtype; read-only (shared with its cache)
    labels: list[dict[str, Any]]  # the API's annotation dicts (masks as full-frame bool arrays)


class LabelVolume(NamedTuple):
    """A series' labels: unpacks as ``volume, classes``. ``index``: (F, H, W) uint16, value k is
    ``classes[k - 1]``, 0 background; ``one-hot``: (C, F, H, W) bool, channel c is ``classes[c]``."""

    volume: npt.NDArray[Any]
    classes: list[str]


def _pick(
    uow: UnitOfWork, project_id: int, assets: Sequence[Asset], final: bool, classes: Sequence[str]
) -> list[tuple[Asset, list[Annotation] | None]]:
    """Each asset with its selected annotations as stored, None when the item has no final labels."""
    if not assets:
        return []
    filters = ExportFilters(classes=tuple(classes), labels=None if final else ALL)
    chooser = LabelChooser(uow, project_id, _ontology(uow, project_id), filters, FORMAT)
    try:
        return [
            (asset, None if chooser.decide(asset).keep is None else chooser.stored(asset)) for asset in assets
        ]
    finally:
        chooser.log.close()


def _check_classes(ontology: Ontology, classes: Sequence[str] | None) -> frozenset[str]:
    wanted = frozenset(classes or ())
    unknown = sorted(wanted - {c.name for c in ontology.classes})
    if unknown:
        raise ValidationError(
            f"the ontology has no class {unknown}; known: {[c.name for c in ontology.classes]}"
        )
    return wanted


def _ontology(uow: UnitOfWork, project_id: int) -> Ontology:
    return uow.ontologies.current(project_id) or Ontology(classes=(), version=0)


def iter_labels(
    db: Database,
    project_id: int,
    *,
    roots: Mapping[str, Any],
    max_pixels: int,
    final: bool = True,
    classes: Sequence[str] | None = None,
    asset_ids: frozenset[int] | None = None,
    include_empty: bool = False,
    page: int = PAGE,
) -> Iterator[LabelledFrame]:
    """Every frame that holds selected labels, asset by asset (id order) and frame by frame; see the
    module doc. ``asset_ids``: only these assets (a split). ``include_empty``: also the frames of
    selected items that hold none (an accepted image without labels is a negative example; every
    frame of a series or video is decoded). A source that cannot be read raises
    (app.sources.SourceError / NotFoundError naming the asset): training never skips data silently."""
    with db.unit_of_work(readonly=True) as uow:
        uow.projects.get(project_id)
        wanted = sorted(_check_classes(_ontology(uow, project_id), classes))
    offset = 0
    while True:
        with db.unit_of_work(readonly=True) as uow:
            assets = uow.assets.list(project_id, limit=page, offset=offset)
            mine = [a for a in assets if asset_ids is None or a.id in asset_ids]
            chosen = _pick(uow, project_id, mine, final, wanted)
        if not assets:
            return
        offset += len(assets)
        for asset, selected in chosen:
            if selected is None:
                continue
            by_frame: dict[int, list[Annotation]] = defaultdict(list)
            for ann in expand_tracks(asset, selected):
                if ann.frame < asset.frame_count:
                    by_frame[ann.frame].append(ann)
            frames = range(asset.frame_count) if include_empty else sorted(by_frame)
            if not frames:
                continue
            source = open_asset(asset, roots, max_pixels=max_pixels)
            try:
                for frame in frames:
                    labels = [a.to_dict() for a in by_frame.get(frame, ())]
                    yield LabelledFrame(asset, frame, source.frame(frame), labels)
            finally:
                source.close()


def label_volume(
    db: Database,
    project_id: int,
    asset_id: int,
    *,
    classes: Sequence[str] | None = None,
    mode: str = "index",
    priority: Sequence[str] = (),
    final: bool = True,
) -> LabelVolume:
    """The labels of a multi-frame asset (a DICOM series; a video works too) as one volume; see the
    module doc. ``classes``: the classes and their order (default: every class of the ontology
    that has pixels, in ontology order); classifications have no pixels and are left out."""
    if mode not in VOLUME_MODES:
        raise ValidationError(f"unknown label volume mode {mode!r}; use one of {', '.join(VOLUME_MODES)}")
    with db.unit_of_work(readonly=True) as uow:
        asset = uow.assets.get(asset_id)
        if asset.project_id != project_id:
            raise ValidationError(f"asset {asset_id} is not in this project")
        ontology = _ontology(uow, project_id)
        names = list(classes) if classes else [c.name for c in pixel_classes(ontology)]
        drawable = {c.name for c in pixel_classes(ontology, names)}
        if set(names) - drawable or len(set(names)) != len(names):
            _check_classes(ontology, names)  # unknown names first
            raise ValidationError(
                f"a label volume's classes must be distinct classes with pixels; got {names}, "
                f"the ontology's with pixels: {[c.name for c in pixel_classes(ontology)]}"
            )
        ((_, annotations),) = _pick(uow, project_id, [asset], final, names)
    if annotations is None:
        raise ValidationError(
            f"asset {asset_id} has no final labels (its item is not accepted, nor a single labeler's "
            "submission); final=False gives every label it holds"
        )
    by_frame: dict[int, list[Annotation]] = defaultdict(list)
    for ann in expand_tracks(asset, annotations):
        if ann.kind is not Kind.CLASSIFICATION and ann.frame < asset.frame_count:
            by_frame[ann.frame].append(ann)
    shape = (asset.height, asset.width)
    position = {ontology.index_of(n): k for k, n in enumerate(names)}  # ontology index -> channel
    if mode == "one-hot":
        hot = np.zeros((len(names), asset.frame_count, *shape), dtype=bool)
        for frame, items in by_frame.items():
            for layer in class_layers(items, ontology, shape):
                layer.paint(hot[position[layer.index], frame], True)
        return LabelVolume(hot, names)
    order = ClassPriority.of(ontology, priority)
    lut = np.zeros(len(ontology.classes) + 1, dtype=np.uint16)
    for index, k in position.items():
        lut[index] = k + 1
    out = np.zeros((asset.frame_count, *shape), dtype=np.uint16)
    plane = np.zeros(shape, dtype=np.uint16)
    for frame, items in by_frame.items():
        plane[:] = 0
        paint_index(class_layers(items, ontology, shape), order, plane)  # ontology indices
        out[frame] = lut[plane]
    return LabelVolume(out, names)
