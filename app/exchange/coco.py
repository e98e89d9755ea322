"""COCO JSON export: ``annotations.json`` with images, categories and annotations, plus the images.

Segmentation is ALWAYS written as an RLE of the core rasteriser's pixels (``iscrowd`` 0), never
as a COCO polygon: pycocotools rasterises polygons with its own rule (a 5x-upsampled boundary walk,
not our pixel-centre rule) and disagrees with us on ~2% of the pixels, mostly along edges. With RLE,
``COCO.annToMask`` gives exactly the pixels the labeler saw. The exact vertices of polygons and boxes
are kept under each annotation's ``"sitelabel"`` key, so the import restores the drawn geometry.

* images: one per exported (asset, frame), ids 1..N in asset-id then frame order. ``file_name`` is a
  real file beside ``annotations.json`` (a path relative to it, see :mod:`app.exchange.frames`):
  ``images/<root>/<path>`` for a 2-D image file (hard link or copy), ``frames/<asset id>/<frame>.png``
  for a frame of a video or series (16-bit where the source is). ``width``/``height`` are the file's.
  ``"sitelabel"`` holds asset id, frame, data root, the asset's path under it (``source``) and, for
  decoded frames, how the stored values map back (``pixels``). ``frames.json`` lists the latter per
  asset.
* categories: the ontology classes in order, id = 1-based ontology index.
* annotations: polygon, box and mask kinds; ``bbox`` [x, y, w, h] is the box itself, the vertex extent
  of a polygon, the pixel extent of a mask; ``area`` is the rasterised pixel count. Points, polylines
  and classifications have no COCO form and are reported as skipped.
* videos and tracks (the COCO-video / TAO convention, extra keys pycocotools ignores): every
  multi-frame asset (video, series) is one entry of ``videos`` (id, name, width, height, frame
  count); its images carry ``video_id`` and ``frame_id`` (= ``frame_index``, the frame number).
  Annotations of an object track carry ``track_id`` (unique in the file; ``tracks`` lists each with
  its category and video) and ``video_id``; the track's interpolated frames are real annotations
  (the loader expands tracks), told apart by ``sitelabel.keyframe`` / ``sitelabel.state``.

Speed and memory: the file is streamed. Annotations are written in chunks as they are encoded,
polygons and boxes of a whole chunk rasterised and RLE-encoded together in a few numpy passes
(:func:`app.core.raster.polygon_spans`, :func:`app.exchange.rle.encode_spans`: the same pixels as one
at a time), and the image entries wait in a spooled temporary file, so memory does not grow with
the project (100,000 polygons: a few seconds).
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.annotations import Annotation, Kind
from app.core.raster import polygon_spans
from app.exchange import rle
from app.exchange.frames import ENCODINGS_FILE, FrameWriter, ImageFile
from app.exchange.selection import ExportJob, FrameItem, annotation_patch, asset_display_path
from app.exchange.tracks_csv import frame_state

FILE = "annotations.json"
_AREA_KINDS = (Kind.POLYGON, Kind.BOX, Kind.MASK)
_CHUNK = 1024  # annotations encoded together: enough to amortise numpy calls, a bounded peak
_SPOOL_BYTES = 8 << 20  # image entries kept in memory up to this, then on disk


def sitelabel_fields(annotation: Annotation) -> dict[str, Any]:
    """Provenance and exact geometry kept next to the standard fields."""
    out: dict[str, Any] = {
        "kind": annotation.kind.value,
        "annotation_id": annotation.id,
        "author": annotation.author,
        "source": annotation.source,
        "confidence": annotation.confidence,
        "version": annotation.version,
    }
    if annotation.kind is Kind.POLYGON and annotation.points is not None:
        out["points"] = annotation.points.tolist()
    elif annotation.kind is Kind.BOX and annotation.box is not None:
        out["box"] = [float(v) for v in annotation.box]
    if annotation.track_id is not None:
        out.update(
            track_id=annotation.track_id,
            keyframe=annotation.keyframe,
            occluded=annotation.occluded,
            state=frame_state(annotation).value,
        )
    return out


class _Videos:
    """``videos`` and ``tracks`` of the COCO-video / TAO convention, numbered as first met."""

    def __init__(self) -> None:
        self.videos: dict[int, dict[str, Any]] = {}  # asset id -> entry
        self.tracks: dict[tuple[int, int], dict[str, Any]] = {}  # (asset id, track id) -> entry

    def video_id(self, item: FrameItem) -> int | None:
        if not item.multi_frame:
            return None
        asset = item.asset
        if asset.id not in self.videos:
            self.videos[asset.id] = {
                "id": len(self.videos) + 1,
                "name": asset_display_path(asset),
                "width": asset.width,
                "height": asset.height,
                "frame_count": asset.frame_count,
                "sitelabel": {"asset_id": asset.id, "kind": asset.kind.value},
            }
        return int(self.videos[asset.id]["id"])

    def track_id(self, item: FrameItem, annotation: Annotation, category: int) -> int | None:
        if annotation.track_id is None:
            return None
        key = (item.asset.id, annotation.track_id)
        if key not in self.tracks:
            self.tracks[key] = {
                "id": len(self.tracks) + 1,
                "category_id": category,
                "video_id": self.video_id(item),
                "sitelabel": {"asset_id": item.asset.id, "track_id": annotation.track_id},
            }
        return int(self.tracks[key]["id"])


@dataclass
class _Pending:
    """One annotation waiting for its chunk to be encoded."""

    annotation: Annotation
    image_id: int
    category: int
    shape: tuple[int, int]
    track_id: int | None
    video_id: int | None


class _AnnotationStream:
    """Encodes annotations a chunk at a time and writes them as the ``annotations`` array's items."""

    def __init__(self, out: io.RawIOBase) -> None:
        self.out = out
        self.pending: list[_Pending] = []
        self.written = 0

    def add(self, entry: _Pending) -> None:
        self.pending.append(entry)
        if len(self.pending) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        entries, self.pending = self.pending, []
        shaped = [i for i, e in enumerate(entries) if e.annotation.kind is not Kind.MASK]
        rings = [_ring(entries[i].annotation) for i in shaped]
        shapes = [entries[i].shape for i in shaped]
        segmentations: dict[int, dict[str, Any]] = {}
        areas: dict[int, int] = {}
        bboxes: dict[int, list[float]] = {}
        if shaped:
            objects, counted = rle.encode_spans(polygon_spans(rings, shapes), shapes)
            pixel_counts = counted.tolist()
            extents = _vertex_extents(rings).tolist()
            for n, i in enumerate(shaped):
                segmentations[i], areas[i] = objects[n], pixel_counts[n]
                x0, y0, x1, y1 = extents[n]  # a box's own corners: its ring's extent
                bboxes[i] = [x0, y0, x1 - x0, y1 - y0]
        items = []
        for i, entry in enumerate(entries):
            ann = entry.annotation
            if i not in segmentations:  # a mask: its own pixels
                patch = annotation_patch(ann, entry.shape)
                h, w = patch.bits.shape
                segmentations[i], areas[i] = rle.encode(patch), patch.area
                bboxes[i] = [float(patch.x0), float(patch.y0), float(w), float(h)]
            self.written += 1
            record: dict[str, Any] = {
                "id": self.written,
                "image_id": entry.image_id,
                "category_id": entry.category,
                "segmentation": segmentations[i],
                "area": areas[i],
                "bbox": bboxes[i],
                "iscrowd": 0,
                "attributes": dict(ann.attributes),
                "sitelabel": sitelabel_fields(ann),
            }
            if entry.track_id is not None:
                record.update(track_id=entry.track_id, video_id=entry.video_id)
            items.append(record)
        text = json.dumps(items, ensure_ascii=False, allow_nan=False)[1:-1]
        self.out.write(((",\n" if self.written > len(entries) else "\n") + text).encode("utf-8"))


def _ring(annotation: Annotation) -> Any:
    if annotation.kind is Kind.BOX and annotation.box is not None:
        x0, y0, x1, y1 = annotation.box
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    return annotation.points


def _vertex_extents(rings: list[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """(x0, y0, x1, y1) of each ring's vertices, in one pass."""
    lengths = np.array([len(r) for r in rings], dtype=np.int64)
    points = np.concatenate(rings)
    starts = np.cumsum(lengths) - lengths
    lo = np.minimum.reduceat(points, starts, axis=0)
    hi = np.maximum.reduceat(points, starts, axis=0)
    return np.concatenate([lo, hi], axis=1)


def _image_entry(item: FrameItem, image_id: int, image: ImageFile, video_id: int | None) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "asset_id": item.asset.id,
        "frame": item.frame,
        "root": item.asset.root,
        "source": asset_display_path(item.asset),
    }
    if image.pixels:
        extra["pixels"] = dict(image.pixels)
    entry: dict[str, Any] = {
        "id": image_id,
        "file_name": image.name,
        "width": image.width,
        "height": image.height,
        "sitelabel": extra,
    }
    if video_id is not None:
        entry.update(video_id=video_id, frame_id=item.frame, frame_index=item.frame)
    return entry


def export_coco(job: ExportJob) -> None:
    videos = _Videos()
    categories = [
        {"id": i, "name": c.name, "supercategory": "", "color": c.color}
        for i, c in enumerate(job.ontology.classes, 1)
    ]
    head = {"description": "Sitelabel export", "ontology_version": job.ontology.version}
    images_written = 0
    with (
        FrameWriter(job.tx, job.roots, job.max_pixels, job.frame_options) as frames,
        tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as images,
        job.tx.stream(FILE) as out,
    ):
        out.write(f'{{"info": {json.dumps(head)}, "licenses": [], '.encode())
        out.write(f'"categories": {json.dumps(categories, ensure_ascii=False)},\n"annotations": ['.encode())
        stream = _AnnotationStream(out)
        no_form = "have no COCO form (use project-json or csv)"
        for item, chosen, image in job.pictured(frames, _AREA_KINDS, no_form):
            images_written += 1
            video_id = videos.video_id(item)
            shape = (image.height, image.width)
            for ann, category in chosen:
                track = videos.track_id(item, ann, category)
                stream.add(_Pending(ann, images_written, category, shape, track, video_id))
            entry = _image_entry(item, images_written, image, video_id)
            text = ("," if images_written > 1 else "") + "\n" + json.dumps(entry, ensure_ascii=False)
            images.write(text.encode())
            job.count(item, len(chosen))
        stream.flush()
        out.write(b'\n],\n"images": [')
        images.seek(0)
        shutil.copyfileobj(images, out)
        tail = {"videos": list(videos.videos.values()), "tracks": list(videos.tracks.values())}
        out.write(b"\n],\n" + json.dumps(tail, ensure_ascii=False)[1:].encode() + b"\n")
    if frames.encodings:
        job.tx.write_json(ENCODINGS_FILE, {"assets": list(frames.encodings.values())}, indent=1)
