"""YOLO export in the Ultralytics layout: the images and their labels, split as the project says.

Layout::

    data.yaml                               path, train, val (test), nc, names {0: ...}
    images/<split>/<root>/<path>            a 2-D image file: hard link (or copy: --images copy)
    images/<split>/frames/<id>/<frame>.png  a labelled frame of a video or slice of a series
    labels/<split>/...same path....txt      its labels: the image's path with images/ -> labels/
    frames.json                             how decoded frames store values, and their assets

``<split>`` is the asset's stored split (train, val, test: :mod:`app.exchange.splits`; the plan and
each item's split and group are in ``provenance.json``), so every exporter puts it in the same one
and one patient's slices never sit in both train and val. Each label file sits where Ultralytics
looks for it: the image path with its last ``/images/`` replaced by ``/labels/`` and the suffix by
``.txt``; a folder of a source path that is itself called ``images`` or ``labels`` is written as
``_images``/``_labels`` so that rule finds the right file. Images are
never absolute paths, symlinks out of the export or DICOM files: frames and DICOM images are decoded
(app.exchange.frames; 16-bit where the source is: Ultralytics reads 8 bits, so pass
``--frames-window`` for CT and MR frames). ``path`` in ``data.yaml`` is the export's absolute folder;
after moving the export, edit it or delete the line (Ultralytics then uses the file's own folder).

Task (``--yolo-task``, :mod:`app.exchange.layout_options`): ``detect`` writes ``class cx cy w h``
(boxes as drawn, polygons by their vertex extent, masks by their pixel extent); ``segment`` writes
``class x1 y1 ...`` (polygons as drawn, boxes as their four corners, masks as the outer rings of
``geometry.mask_to_polygons``, one line per 4-connected part: YOLO has no holes). Class ids are
0-based ontology order. Values are normalised to the image size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation, Kind
from app.core.geometry import mask_to_polygons, signed_area
from app.exchange.frames import ENCODINGS_FILE, IMAGES_DIR, FrameWriter, Place, Unwritable
from app.exchange.selection import ExportJob, asset_display_path

_SHAPES = (Kind.POLYGON, Kind.BOX, Kind.MASK)
_RESERVED = frozenset({"images", "labels"})  # Ultralytics swaps the last /images/ for /labels/
DATA_YAML = "data.yaml"
LABELS_DIR = "labels"


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


def label_lines(
    chosen: Iterable[tuple[Annotation, int]], width: float, height: float, task: str
) -> list[str]:
    """The YOLO lines of a frame's annotations (with their 1-based class index) for ``task``."""
    lines: list[str] = []
    size = np.array([width, height], dtype=np.float64)
    for ann, category in chosen:
        cls = str(category - 1)
        if task == "detect":
            x0, y0, x1, y1 = shape_extent(ann)
            values = ((x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height)
            lines.append(" ".join([cls, *(_num(v) for v in values)]))
            continue
        for ring in _rings(ann):
            lines.append(" ".join([cls, *(_num(v) for v in (ring / size).ravel())]))
    return lines


def yolo_place(split: str) -> Place:
    """Where the frame writer puts an image of ``split``: ``images/<split>/`` + the default name
    (``images/`` dropped for linked files), with ``images``/``labels`` folders inside renamed."""

    def place(default: str) -> str:
        parts = list(PurePosixPath(default).parts)
        if parts and parts[0] == IMAGES_DIR:
            parts = parts[1:]
        safe = [f"_{p}" if p in _RESERVED else p for p in parts[:-1]] + parts[-1:]
        return str(PurePosixPath(IMAGES_DIR, split, *safe))

    return place


def label_name(image_name: str) -> str:
    """Ultralytics' rule: the last ``images/`` of the path becomes ``labels/``, the suffix ``.txt``."""
    path = PurePosixPath(image_name)
    assert path.parts[0] == IMAGES_DIR
    return str(PurePosixPath(LABELS_DIR, *path.parts[1:]).with_suffix(".txt"))


def export_yolo(job: ExportJob) -> None:
    task = job.layout.task_for(job.ontology)
    used: set[str] = set()
    exported: list[int] = []
    assets: dict[int, dict[str, Any]] = {}
    with FrameWriter(job.tx, job.roots, job.max_pixels, job.frame_options) as frames:
        for item in job.frames():
            chosen = list(job.exportable(item, _SHAPES, "have no YOLO form"))
            if not chosen:
                continue
            where = asset_display_path(item.asset)
            split = job.split_of(item.asset)
            if split is None:
                job.skip(where, "registered while the export ran, so it has no split yet: export again")
                continue
            try:
                image = frames.image(item.asset, item.frame, place=yolo_place(split))
            except Unwritable as exc:
                job.skip(where, f"its image cannot be written: {exc}")
                continue
            lines = label_lines(chosen, float(image.width), float(image.height), task)
            job.tx.write_text(label_name(image.name), "\n".join(lines) + "\n")
            used.add(split)
            if item.asset.id not in assets:
                exported.append(item.asset.id)
                assets[item.asset.id] = {
                    "asset_id": item.asset.id,
                    "root": item.asset.root,
                    "source": where,
                    "name": str(job.name_of(item.asset)),
                    "split": split,
                }
            job.count(item, len(chosen))
    job.tx.write_text(DATA_YAML, _data_yaml(job, task, used))
    encodings = [{**assets[i], **frames.encodings[i]} for i in exported if i in frames.encodings]
    if encodings:
        job.tx.write_json(ENCODINGS_FILE, {"assets": encodings}, indent=1)
    job.notes["yolo"] = {"task": task, "splits": sorted(used)}


def _data_yaml(job: ExportJob, task: str, used: set[str]) -> str:
    names = [c.name for c in job.ontology.classes]
    lines = [
        f"# Sitelabel YOLO export ({task}): images/<split>/ with labels/<split>/ beside them.",
        "# 'path' is where this export was written: after moving it, edit or delete the line",
        "# (without it Ultralytics uses this file's folder).",
        f"path: {_yaml_str(str(job.tx.out_dir.resolve()))}",
        "train: images/train",
        "val: images/val",
    ]
    if "test" in used:
        lines.append("test: images/test")
    lines += [
        f"task: {task}",
        f"nc: {len(names)}",
        "names:",
        *(f"  {i}: {_yaml_str(n)}" for i, n in enumerate(names)),
    ]
    return "\n".join(lines) + "\n"


def _yaml_str(text: str) -> str:
    """A double-quoted YAML scalar (JSON string escapes are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)
