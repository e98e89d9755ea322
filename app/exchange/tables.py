"""CSV export: ``annotations.csv``, one row per selected annotation of every kind.

Columns: asset_id, path (relative to the data root), frame, class, kind, bbox_x0, bbox_y0, bbox_x1,
bbox_y1, area, author, source, confidence, attributes (JSON), annotation_id, track_id.

The box follows COCO's rule: a box is itself, a polygon, polyline or point the extent of its
vertices (``app.core.geometry.bbox``), a mask the extent of its stored pixels; a classification has
none. ``area`` is the pixel count the core rasteriser draws for a polygon, box or mask (what every
label map holds) and empty for the kinds without an area. Interpolated frames of object tracks are
rows of their own (no annotation_id), as in every format. An export that selects no annotation
fails (nothing is written) instead of leaving a header-only file.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator

from app.core.annotations import Annotation, Kind
from app.core.geometry import bbox
from app.exchange.selection import ExportJob, annotation_patch, asset_display_path
from app.exchange.staging import ExportError

FILE = "annotations.csv"
COLUMNS = (
    "asset_id",
    "path",
    "frame",
    "class",
    "kind",
    "bbox_x0",
    "bbox_y0",
    "bbox_x1",
    "bbox_y1",
    "area",
    "author",
    "source",
    "confidence",
    "attributes",
    "annotation_id",
    "track_id",
)
_AREA_KINDS = (Kind.POLYGON, Kind.BOX, Kind.MASK)


def extent(ann: Annotation) -> tuple[float, float, float, float] | None:
    """``(x0, y0, x1, y1)`` of an annotation by COCO's rule (see the module doc); None for a
    classification."""
    if ann.kind is Kind.BOX and ann.box is not None:
        return tuple(float(v) for v in ann.box)  # type: ignore[return-value]
    if ann.kind is Kind.MASK and ann.mask is not None:
        h, w = ann.mask.bits.shape
        return float(ann.mask.x0), float(ann.mask.y0), float(ann.mask.x0 + w), float(ann.mask.y0 + h)
    if ann.points is not None and len(ann.points):
        return bbox(ann.points)
    return None


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _nothing_selected(job: ExportJob) -> ExportError:
    reasons = Counter(why for _item, why in job.skipped)
    why = "; ".join(f"{n} item{'s' if n > 1 else ''}: {reason}" for reason, n in reasons.items())
    return ExportError(
        f"the csv export selected no annotation ({why or 'no item matches the filters'}), so it wrote "
        "nothing: check the filters"
    )


def _rows(job: ExportJob) -> Iterator[tuple[object, ...]]:
    for item in job.frames():
        shape = item.shape
        for ann in item.annotations:
            box = extent(ann)
            area = annotation_patch(ann, shape).area if ann.kind in _AREA_KINDS else None
            yield (
                item.asset.id,
                asset_display_path(item.asset),
                item.frame,
                ann.label,
                ann.kind.value,
                *((_number(v) for v in box) if box is not None else ("",) * 4),
                "" if area is None else area,
                ann.author or "",
                ann.source,
                _number(ann.confidence),
                json.dumps(dict(ann.attributes), ensure_ascii=False, sort_keys=True),
                "" if ann.id is None else ann.id,
                "" if ann.track_id is None else ann.track_id,
            )
        job.count(item, len(item.annotations))


def export_csv(job: ExportJob) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(_rows(job))
    if not job.exported_annotations:
        raise _nothing_selected(job)
    job.tx.write_text(FILE, buffer.getvalue())
