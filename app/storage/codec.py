"""Annotation <-> row values: geometry as small JSON, masks as mask_codec bytes, plus a bbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from app.core.annotations import Annotation, Kind
from app.core.errors import ValidationError
from app.core.mask_codec import decode_mask, encode_mask

_POINT_KINDS = (Kind.POLYGON, Kind.POLYLINE, Kind.POINT)


def geometry_json(ann: Annotation) -> dict[str, Any] | None:
    if ann.kind in _POINT_KINDS and ann.points is not None:
        return {"points": ann.points.tolist()}
    if ann.kind is Kind.BOX and ann.box is not None:
        return {"box": [float(v) for v in ann.box]}
    return None


def bbox_of(ann: Annotation) -> tuple[float, float, float, float] | None:
    """The annotation's extent in image coordinates (x0, y0, x1, y1), None for classifications."""
    if ann.kind in _POINT_KINDS and ann.points is not None and len(ann.points):
        lo, hi = ann.points.min(axis=0), ann.points.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])
    if ann.kind is Kind.BOX and ann.box is not None:
        return ann.box
    if ann.kind is Kind.MASK and ann.mask is not None:
        h, w = ann.mask.bits.shape
        return float(ann.mask.x0), float(ann.mask.y0), float(ann.mask.x0 + w), float(ann.mask.y0 + h)
    return None


def annotation_values(ann: Annotation) -> dict[str, Any]:
    """Column values for the content of ``ann`` (no ids, version, author or timestamps)."""
    bbox = bbox_of(ann)
    return {
        "kind": ann.kind.value,
        "label": ann.label,
        "frame": int(ann.frame),
        "geometry": geometry_json(ann),
        "mask": encode_mask(ann.mask) if ann.kind is Kind.MASK and ann.mask is not None else None,
        "bbox_x0": bbox[0] if bbox else None,
        "bbox_y0": bbox[1] if bbox else None,
        "bbox_x1": bbox[2] if bbox else None,
        "bbox_y1": bbox[3] if bbox else None,
        "attributes": dict(ann.attributes),
        "source": ann.source,
        "confidence": None if ann.confidence is None else float(ann.confidence),
    }


def _points(raw: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    pts = np.asarray(raw, dtype=np.float64).reshape(-1, 2)
    pts.setflags(write=False)
    return pts


def annotation_from_row(row: Mapping[Any, Any], author: str | None) -> Annotation:
    """Rebuild an Annotation from a row mapping (columns of ``annotations``)."""
    kind = Kind(row["kind"])
    geometry = row["geometry"] or {}
    fields: dict[str, Any] = {}
    if kind in _POINT_KINDS:
        fields["points"] = _points(geometry.get("points", ()))
    elif kind is Kind.BOX:
        box = geometry.get("box")
        if not box or len(box) != 4:
            raise ValidationError(f"stored box of annotation {row['id']} is damaged")
        fields["box"] = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
    elif kind is Kind.MASK:
        if row["mask"] is None:
            raise ValidationError(f"stored mask of annotation {row['id']} is missing")
        fields["mask"] = decode_mask(bytes(row["mask"]))
    return Annotation(
        kind=kind,
        label=row["label"],
        frame=int(row["frame"]),
        attributes=dict(row["attributes"] or {}),
        source=row["source"],
        confidence=row["confidence"],
        author=author,
        id=int(row["id"]),
        version=int(row["version"]),
        asset_id=int(row["asset_id"]),
        **fields,
    )
