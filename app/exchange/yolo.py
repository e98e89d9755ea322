"""YOLO export (detect and segment), pixels never copied.

Layout::

    data.yaml                      names, nc, train/val: images.txt
    images.txt                     absolute resolved image paths, one per exported image
    labels/detect/NAME.txt         class cx cy w h                (normalised to 0..1)
    labels/segment/NAME.txt        class x1 y1 x2 y2 ...          (normalised polygon)

``NAME`` mirrors the image's ``root/rel_path`` without its extension (unique, stable). Class ids are
0-based ontology order. Detect: boxes as drawn, polygons by their vertex extent, masks by their pixel
extent. Segment: polygons as drawn, boxes as their four corners, masks as the outer rings of
``geometry.mask_to_polygons`` (one line per 4-connected part; YOLO has no holes, so holes are lost).
Only single-frame assets are exported: frames of videos and series have no image file to point at.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation, Kind
from app.core.geometry import mask_to_polygons, signed_area
from app.exchange.selection import ExportJob, asset_display_path

_SHAPES = (Kind.POLYGON, Kind.BOX, Kind.MASK)


def _num(value: float) -> str:
    return repr(float(value))  # shortest text that reads back to the same float64


def shape_extent(ann: Annotation) -> tuple[float, float, float, float]:
    if ann.kind is Kind.BOX and ann.box is not None:
        return ann.box
    if ann.kind is Kind.POLYGON and ann.points is not None:
        lo, hi = ann.points.min(axis=0), ann.points.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])
    assert ann.mask is not None
    h, w = ann.mask.bits.shape
    return float(ann.mask.x0), float(ann.mask.y0), float(ann.mask.x0 + w), float(ann.mask.y0 + h)


def _rings(ann: Annotation) -> list[npt.NDArray[np.float64]]:
    if ann.kind is Kind.POLYGON and ann.points is not None:
        return [np.asarray(ann.points)]
    if ann.kind is Kind.BOX and ann.box is not None:
        x0, y0, x1, y1 = ann.box
        return [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)]
    assert ann.mask is not None
    offset = np.array([ann.mask.x0, ann.mask.y0], dtype=np.float64)
    return [ring + offset for ring in mask_to_polygons(ann.mask.bits) if signed_area(ring) > 0]


def export_yolo(job: ExportJob) -> None:
    images: list[str] = []
    for item in job.frames():
        where_asset = asset_display_path(item.asset)
        if item.multi_frame:
            job.skip(where_asset, "frames of a video or series have no image file YOLO can read")
            continue
        if (item.asset.member or "").startswith("!"):
            job.skip(where_asset, "an image inside an archive has no path YOLO can read")
            continue
        path = job.absolute_path(item.asset)
        if path is None and item.asset.root not in job.roots:
            job.skip(where_asset, f"data root {item.asset.root!r} is not configured on this workstation")
            continue
        if path is None:
            job.skip(where_asset, "its stored path leaves its data root")
            continue
        width, height = float(item.asset.width), float(item.asset.height)
        detect: list[str] = []
        segment: list[str] = []
        for ann, category in job.exportable(item, _SHAPES, "have no YOLO form"):
            x0, y0, x1, y1 = shape_extent(ann)
            cx, cy, bw, bh = (
                (x0 + x1) / 2 / width,
                (y0 + y1) / 2 / height,
                (x1 - x0) / width,
                (y1 - y0) / height,
            )
            detect.append(" ".join([str(category - 1), *(_num(v) for v in (cx, cy, bw, bh))]))
            for ring in _rings(ann):
                coords = (ring / np.array([width, height])).ravel()
                segment.append(" ".join([str(category - 1), *(_num(v) for v in coords)]))
        if not detect:
            continue
        name = job.name_of(item.asset)
        job.tx.write_text(f"labels/detect/{name}.txt", "\n".join(detect) + "\n")
        job.tx.write_text(f"labels/segment/{name}.txt", "\n".join(segment) + "\n" if segment else "")
        images.append(str(path))
        job.count(item, len(detect))
    names = [c.name for c in job.ontology.classes]
    yaml_lines = [
        "# Sitelabel YOLO export: labels/detect (boxes) and labels/segment (polygons)",
        f"path: {_yaml_str(str(job.tx.out_dir.resolve()))}",
        "train: images.txt",
        "val: images.txt",
        f"nc: {len(names)}",
        "names:",
        *(f"  {i}: {_yaml_str(n)}" for i, n in enumerate(names)),
    ]
    job.tx.write_text("data.yaml", "\n".join(yaml_lines) + "\n")
    job.tx.write_text("images.txt", "".join(f"{p}\n" for p in images))


def _yaml_str(text: str) -> str:
    """A double-quoted YAML scalar (JSON string escapes are valid YAML)."""
    import json

    return json.dumps(text, ensure_ascii=False)
