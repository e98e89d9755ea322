"""Headless rendering of an asset frame with its annotations, as the canvas draws them at 1:1.

Layers, bottom to top:

1. the image, windowed (``app.core.compose.image_rgba``);
2. mask annotations as one label map (later ones win a pixel, ``app.core.raster.label_image``
   semantics), blended at ``opacity`` (or outlined) by ``app.core.compose.blend_labels``;
3. vector annotations in order: polygons and boxes filled at ``opacity`` over exactly their
   rasterised pixels (``app.core.raster``), their boundary pixels (a 4-neighbour outside the shape)
   at full colour; polylines at full colour; points as a 3x3 dot. Classifications draw nothing.

Labels the ontology does not know are drawn in grey rather than dropped.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation, Kind
from app.core.compose import RGBA, blend_labels, hex_to_rgb, image_rgba, label_lut
from app.core.display import Window
from app.core.errors import NotFoundError, ValidationError
from app.core.ontology import Ontology
from app.core.raster import rasterize_annotation
from app.core.tracks import annotations_at
from app.sources import open_asset

if TYPE_CHECKING:
    from app.storage import Database

UNKNOWN_COLOR = (128, 128, 128)


def _palette(annotations: Sequence[Annotation], ontology: Ontology) -> dict[str, tuple[int, int, int]]:
    colors = {c.name: hex_to_rgb(c.color) for c in ontology.classes}
    for ann in annotations:
        colors.setdefault(ann.label, UNKNOWN_COLOR)
    return colors


def _index_table(colors: Mapping[str, tuple[int, int, int]], ontology: Ontology) -> dict[str, int]:
    """Class index per label: the ontology's 1-based index, unknown labels after the known ones."""
    index = {c.name: i for i, c in enumerate(ontology.classes, 1)}
    for label in colors:
        index.setdefault(label, len(index) + 1)
    return index


def _blend_shape(
    out: RGBA,
    bits: npt.NDArray[np.bool_],
    color: tuple[int, int, int],
    *,
    opacity: float,
    fill: bool,
    edge: bool,
) -> None:
    """Fill ``bits`` at ``opacity`` and/or draw its boundary at full colour, on a padded crop only."""
    rows, cols = np.flatnonzero(bits.any(axis=1)), np.flatnonzero(bits.any(axis=0))
    if rows.size == 0:
        return
    h, w = bits.shape
    y0, y1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, h)
    x0, x1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, w)
    # The crop keeps one background pixel around the shape where the frame allows, so
    # blend_labels' edge test (4-neighbours, frame border) finds the shape's true boundary.
    labels = bits[y0:y1, x0:x1].astype(np.uint16)
    lut = label_lut({1: color})
    view = out[y0:y1, x0:x1]
    if fill:
        blend_labels(view, labels, lut, opacity=opacity)
    if edge:
        blend_labels(view, labels, lut, outline=True)


def _dot(out: RGBA, ann: Annotation, color: tuple[int, int, int]) -> None:
    assert ann.points is not None
    h, w = out.shape[:2]
    c, r = int(np.floor(ann.points[0][0])), int(np.floor(ann.points[0][1]))
    if not (0 <= c < w and 0 <= r < h):
        return
    out[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2, :3] = color


def render_annotations(
    frame: npt.NDArray[Any],
    window: Window | None,
    invert: bool,
    annotations: Sequence[Annotation],
    ontology: Ontology,
    *,
    opacity: float = 0.5,
    outline: bool = False,
) -> RGBA:
    """RGBA uint8 (H, W, 4) of ``frame`` with ``annotations`` (one frame's) drawn over it.

    ``outline=True`` draws masks and shapes as outlines only (the canvas' outline mode).
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValidationError(f"opacity must be within 0..1, got {opacity}")
    out = image_rgba(frame, window, invert=invert)
    shape = out.shape[:2]
    colors = _palette(annotations, ontology)
    index = _index_table(colors, ontology)
    masks = [a for a in annotations if a.kind is Kind.MASK]
    if masks:
        labels = np.zeros(shape, dtype=np.uint16)
        for ann in masks:  # label_image semantics: later masks paint over earlier ones
            labels[rasterize_annotation(ann, shape)] = index[ann.label]
        lut = label_lut({index[name]: rgb for name, rgb in colors.items()})
        blend_labels(out, labels, lut, opacity=opacity, outline=outline)
    for ann in annotations:
        color = colors[ann.label]
        if ann.kind in (Kind.POLYGON, Kind.BOX):
            bits = rasterize_annotation(ann, shape)
            _blend_shape(out, bits, color, opacity=opacity, fill=not outline, edge=True)
        elif ann.kind is Kind.POLYLINE:
            out[rasterize_annotation(ann, shape), :3] = color
        elif ann.kind is Kind.POINT:
            _dot(out, ann, color)
    return out


def render_asset(
    db: Database,
    project_id: int,
    asset_id: int,
    *,
    frame: int = 0,
    roots: Mapping[str, Path],
    max_pixels: int,
    author_id: int | None = None,
    window: Window | None = None,
    invert: bool = False,
    opacity: float = 0.5,
    outline: bool = False,
) -> RGBA:
    """Render one frame of a stored asset with its current annotations (all authors by default).

    Object tracks are expanded as the exports expand them (``app.core.tracks.annotations_at``): an
    interpolated frame shows the box or polygon COCO and tracks-csv hold there.

    ``roots`` maps data-root names to local folders.
    The window defaults to the source's own (DICOM WindowCenter/Width), else the automatic one.
    """
    with db.unit_of_work(readonly=True) as uow:
        asset = uow.assets.get(asset_id)
        if asset.project_id != project_id:
            raise NotFoundError(f"asset {asset_id} is not in project {project_id}")
        ontology = uow.ontologies.current(project_id) or Ontology(classes=(), version=0)
        # the whole asset: a frame between two keyframes of a track shows what they interpolate to
        stored = uow.annotations.list(asset_id, author_id=author_id)
    if not 0 <= frame < max(asset.frame_count, 1):
        raise ValidationError(f"frame {frame} is outside 0..{asset.frame_count - 1} of asset {asset_id}")
    annotations = annotations_at(stored, frame, max(asset.frame_count, 1))
    source = open_asset(asset, roots, max_pixels=max_pixels)
    try:
        pixels = source.frame(frame)
        return render_annotations(
            pixels, window or source.window, invert, annotations, ontology, opacity=opacity, outline=outline
        )
    finally:
        source.close()


def save_png(rgba: RGBA, path: str | os.PathLike[str]) -> Path:
    """Write an RGBA image as PNG atomically (temp file in the same folder, then rename)."""
    from PIL import Image

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            Image.fromarray(np.ascontiguousarray(rgba)).save(handle, format="PNG")
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
