"""COCO JSON export: ``annotations.json`` with images, categories and annotations.

Segmentation is ALWAYS written as an RLE of the core rasteriser's pixels (``iscrowd`` 0), never
as a COCO polygon: pycocotools rasterises polygons with its own rule (a 5x-upsampled boundary walk,
not our pixel-centre rule) and disagrees with us on ~2% of the pixels, mostly along edges. With RLE,
``COCO.annToMask`` gives exactly the pixels the labeler saw. The exact vertices of polygons and boxes
are kept under each annotation's ``"sitelabel"`` key, so the import restores the drawn geometry.

* images: one per exported (asset, frame), ids 1..N in asset-id then frame order;
  ``file_name`` is the path relative to the data root (+ ``#FRAME`` for multi-frame assets);
  ``"sitelabel"`` holds asset id, frame, data root and the resolved path.
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
"""

from __future__ import annotations

from typing import Any

from app.core.annotations import Annotation, Kind
from app.exchange import rle
from app.exchange.selection import ExportJob, FrameItem, annotation_patch, asset_display_path
from app.exchange.tracks_csv import frame_state

FILE = "annotations.json"
_AREA_KINDS = (Kind.POLYGON, Kind.BOX, Kind.MASK)


def _bbox(annotation: Annotation, patch_box: tuple[int, int, int, int]) -> list[float]:
    if annotation.kind is Kind.BOX and annotation.box is not None:
        x0, y0, x1, y1 = annotation.box
        return [x0, y0, x1 - x0, y1 - y0]
    if annotation.kind is Kind.POLYGON and annotation.points is not None:
        lo, hi = annotation.points.min(axis=0), annotation.points.max(axis=0)
        return [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
    x0, y0, w, h = patch_box
    return [float(x0), float(y0), float(w), float(h)]


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


def export_coco(job: ExportJob) -> None:
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    videos = _Videos()
    for item in job.frames():
        image_id = len(images) + 1
        written = 0
        video_id = videos.video_id(item)
        for ann, category in job.exportable(item, _AREA_KINDS, "have no COCO form (use project-json or csv)"):
            patch = annotation_patch(ann, item.shape)
            h, w = patch.bits.shape
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "segmentation": rle.encode(patch),
                    "area": patch.area,
                    "bbox": _bbox(ann, (patch.x0, patch.y0, w, h)),
                    "iscrowd": 0,
                    "attributes": dict(ann.attributes),
                    "sitelabel": sitelabel_fields(ann),
                }
            )
            track = videos.track_id(item, ann, category)
            if track is not None:
                annotations[-1].update(track_id=track, video_id=video_id)
            written += 1
        if not written:
            continue
        path = asset_display_path(item.asset)
        resolved = job.absolute_path(item.asset)
        images.append(
            {
                "id": image_id,
                "file_name": f"{path}#{item.frame}" if item.multi_frame else path,
                "width": item.asset.width,
                "height": item.asset.height,
                "sitelabel": {
                    "asset_id": item.asset.id,
                    "frame": item.frame,
                    "root": item.asset.root,
                    "path": None if resolved is None else str(resolved),
                },
            }
        )
        if video_id is not None:
            images[-1].update(video_id=video_id, frame_id=item.frame, frame_index=item.frame)
        job.count(item, written)
    categories = [
        {"id": i, "name": c.name, "supercategory": "", "color": c.color}
        for i, c in enumerate(job.ontology.classes, 1)
    ]
    job.tx.write_json(
        FILE,
        {
            "info": {"description": "Sitelabel export", "ontology_version": job.ontology.version},
            "licenses": [],
            "images": images,
            "categories": categories,
            "annotations": annotations,
            "videos": list(videos.videos.values()),
            "tracks": list(videos.tracks.values()),
        },
    )
