"""Annotation <-> row values: geometry as small JSON, masks as mask_codec bytes, plus a bbox."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
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


_GEOMETRY_KEYS = ('{"points":', '{"box":')
_BRACKETS = str.maketrans("[]{}", "    ")


def parse_geometries(texts: Sequence[str | None]) -> list[Any]:
    """The stored geometry JSON of many rows at once: ``{"points": array}``, ``{"box": list}`` or None.

    Reading annotations is dominated by parsing these floats one JSON call per row (~40 us for a
    17-vertex polygon); the geometries written by :func:`geometry_json` are plain number lists, so
    all of them are parsed by one numpy call (exactly the same doubles: both round correctly). A
    text of any other form sends the whole batch through ``json.loads``.
    """
    texts = [None if t is None or t == "null" else t for t in texts]  # SQL NULL or JSON null
    present = [t for t in texts if t is not None]
    parsed = _numbers_of(present) if present else []
    if parsed is None:
        return [None if t is None else json.loads(t) for t in texts]
    out: list[Any] = []
    values = iter(parsed)
    for text in texts:
        if text is None:
            out.append(None)
        elif text.startswith(_GEOMETRY_KEYS[0]):
            out.append({"points": next(values).reshape(-1, 2)})
        else:
            out.append({"box": next(values).tolist()})
    return out


def _numbers_of(texts: list[str]) -> list[np.ndarray[Any, np.dtype[np.float64]]] | None:
    """Each text's numbers (views of one read-only array), or None when a text is not plain."""
    if not all(t.startswith(_GEOMETRY_KEYS) and t.endswith("}") for t in texts):
        return None
    counts = np.array([t.count(",") + 1 for t in texts], dtype=np.int64)
    body = ",".join(t[t.index(":") + 1 :] for t in texts).translate(_BRACKETS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns (and stops) at text it cannot read
        try:
            numbers = np.fromstring(body, dtype=np.float64, sep=",")
        except (ValueError, DeprecationWarning):
            return None
    points = [t.startswith(_GEOMETRY_KEYS[0]) for t in texts]
    odd = any(p and c % 2 for p, c in zip(points, counts.tolist(), strict=True))
    if numbers.size != int(counts.sum()) or odd:
        return None  # e.g. an empty list, or a number written in a form numpy reads differently
    numbers.setflags(write=False)
    ends = np.cumsum(counts).tolist()
    return [numbers[e - c : e] for e, c in zip(ends, counts.tolist(), strict=True)]


def _attributes(value: Any) -> dict[str, Any]:
    """A row's attributes: a dict, or the JSON text (mostly ``{}``: no parse for that)."""
    if isinstance(value, str):
        return {} if value in ("{}", "null") else dict(json.loads(value))
    return dict(value or {})


def annotation_from_row(row: Mapping[Any, Any], author: str | None, geometry: Any = None) -> Annotation:
    """Rebuild an Annotation from a row mapping (columns of ``annotations``).

    ``geometry``: the row's geometry already parsed (:func:`parse_geometries`); without it the
    row's ``geometry`` (a dict, or the JSON text) is parsed here.
    """
    kind = Kind(row["kind"])
    if geometry is None:
        geometry = row["geometry"]
        if isinstance(geometry, str):
            geometry = json.loads(geometry)
    geometry = geometry or {}
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
        attributes=_attributes(row["attributes"]),
        source=row["source"],
        confidence=row["confidence"],
        author=author,
        id=int(row["id"]),
        version=int(row["version"]),
        asset_id=int(row["asset_id"]),
        **fields,
    )
