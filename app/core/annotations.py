"""Annotation value objects and their plain-data form (see DESIGN.md "Public API").

Coordinates are continuous image coordinates: the origin is the top-left corner of the
top-left pixel, pixel (c, r) covers [c, c+1) x [r, r+1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.errors import ValidationError

BoolMask = npt.NDArray[np.bool_]
Points = npt.NDArray[np.float64]


class Kind(StrEnum):
    POLYGON = "polygon"
    BOX = "box"
    MASK = "mask"
    POINT = "point"
    POLYLINE = "polyline"
    CLASSIFICATION = "classification"


HUMAN = "human"


@dataclass(frozen=True, slots=True, eq=False)
class MaskPatch:
    """A binary mask stored as its bounding-box crop: ``bits`` at (x0, y0) of a frame ``frame_shape``."""

    x0: int
    y0: int
    bits: BoolMask
    frame_shape: tuple[int, int]  # (height, width) of the whole frame

    def __post_init__(self) -> None:
        if self.bits.ndim != 2:
            raise ValidationError("a mask must be a 2-D array")
        h, w = self.bits.shape
        fh, fw = self.frame_shape
        if self.x0 < 0 or self.y0 < 0 or self.x0 + w > fw or self.y0 + h > fh:
            raise ValidationError(
                f"mask patch {w}x{h} at ({self.x0}, {self.y0}) does not fit a {fw}x{fh} frame"
            )

    @classmethod
    def from_full(cls, mask: npt.ArrayLike) -> MaskPatch:
        """Crop a full-frame mask to the bounding box of its set pixels."""
        full = np.asarray(mask)
        if full.ndim != 2:
            raise ValidationError(f"a mask must be a 2-D array, got shape {full.shape}")
        full = full.astype(bool, copy=False)
        frame_shape = (int(full.shape[0]), int(full.shape[1]))
        rows = np.flatnonzero(full.any(axis=1))
        if rows.size == 0:
            return cls(0, 0, np.zeros((0, 0), dtype=bool), frame_shape)
        cols = np.flatnonzero(full.any(axis=0))
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        return cls(x0, y0, np.ascontiguousarray(full[y0:y1, x0:x1]), frame_shape)

    def to_full(self) -> BoolMask:
        out = np.zeros(self.frame_shape, dtype=bool)
        h, w = self.bits.shape
        out[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = self.bits
        return out

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.bits))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MaskPatch):
            return NotImplemented
        return self.frame_shape == other.frame_shape and np.array_equal(self.to_full(), other.to_full())

    __hash__ = None  # type: ignore[assignment]


def _points(value: Any, kind: Kind, minimum: int) -> Points:
    try:
        pts = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{kind} points must be numbers: {exc}") from None
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValidationError(f"{kind} points must be a list of [x, y] pairs")
    if len(pts) < minimum:
        raise ValidationError(f"a {kind} needs at least {minimum} points, got {len(pts)}")
    if not np.isfinite(pts).all():
        raise ValidationError(f"{kind} points must be finite numbers")
    pts.setflags(write=False)
    return pts


@dataclass(frozen=True, slots=True, eq=False)
class Annotation:
    """One label on one frame of one asset. Immutable: edits make new versions."""

    kind: Kind
    label: str
    frame: int = 0
    points: Points | None = None  # polygon, polyline: (N, 2); point: (1, 2)
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 with x0 < x1, y0 < y1
    mask: MaskPatch | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    source: str = HUMAN  # "human" or "model:NAME@VERSION"
    confidence: float | None = None
    author: str | None = None
    id: int | None = None  # database id, None until saved
    version: int = 0  # optimistic-concurrency version, 0 until saved
    asset_id: int | None = None
    # video/series tracks (app.core.tracks): the object id across frames; a keyframe is placed by a
    # person, the others are tracker or interpolation output; outside = the object is not in view
    track_id: int | None = None
    keyframe: bool = True
    outside: bool = False
    occluded: bool = False

    def __post_init__(self) -> None:
        if not self.label and self.kind is not Kind.CLASSIFICATION:
            raise ValidationError("an annotation needs a label")
        if self.frame < 0:
            raise ValidationError(f"frame must be >= 0, got {self.frame}")
        if self.track_id is not None and self.track_id < 0:
            raise ValidationError(f"track_id must be >= 0, got {self.track_id}")
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValidationError(f"confidence must be within 0..1, got {self.confidence}")
        geometry = {
            Kind.POLYGON: self.points,
            Kind.POLYLINE: self.points,
            Kind.POINT: self.points,
            Kind.BOX: self.box,
            Kind.MASK: self.mask,
        }
        if self.kind in geometry and geometry[self.kind] is None:
            raise ValidationError(f"a {self.kind} annotation needs its geometry")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if not all(math.isfinite(v) for v in self.box) or x1 <= x0 or y1 <= y0:
                raise ValidationError(f"a box needs x0 < x1 and y0 < y1, got {list(self.box)}")

    # --- plain-data form -------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, frame_shape: tuple[int, int] | None = None, **overrides: Any
    ) -> Annotation:
        """Build from the API's plain-data shape; ``frame_shape`` is needed for full-frame masks."""
        if not isinstance(data, Mapping):
            raise ValidationError(f"an annotation must be a mapping, got {type(data).__name__}")
        try:
            kind = Kind(data.get("kind", ""))
        except ValueError:
            raise ValidationError(
                f"unknown annotation kind {data.get('kind')!r}; expected one of {[k.value for k in Kind]}"
            ) from None
        fields: dict[str, Any] = {
            "kind": kind,
            "label": str(data.get("label", "")),
            "frame": int(data.get("frame", 0)),
            "attributes": dict(data.get("attributes") or {}),
        }
        for key in ("source", "author", "id", "asset_id"):
            if data.get(key) is not None:
                fields[key] = data[key]
        if data.get("confidence") is not None:
            fields["confidence"] = float(data["confidence"])
        if data.get("version") is not None:
            fields["version"] = int(data["version"])
        if data.get("track_id") is not None:
            fields["track_id"] = int(data["track_id"])
        for flag in ("keyframe", "outside", "occluded"):
            if data.get(flag) is not None:
                fields[flag] = bool(data[flag])
        if kind in (Kind.POLYGON, Kind.POLYLINE):
            fields["points"] = _points(data.get("points"), kind, 3 if kind is Kind.POLYGON else 2)
        elif kind is Kind.POINT:
            fields["points"] = _points([data.get("point")], kind, 1)
        elif kind is Kind.BOX:
            box = data.get("box")
            if box is None or len(box) != 4:
                raise ValidationError("a box needs [x0, y0, x1, y1]")
            fields["box"] = tuple(float(v) for v in box)
        elif kind is Kind.MASK:
            fields["mask"] = _mask_from_data(data.get("mask"), frame_shape)
        fields.update(overrides)
        return cls(**fields)

    def to_dict(self, *, full_mask: bool = True) -> dict[str, Any]:
        """The API's plain-data shape. Masks come back full-frame unless ``full_mask`` is False."""
        out: dict[str, Any] = {"kind": self.kind.value, "label": self.label, "frame": self.frame}
        if self.kind in (Kind.POLYGON, Kind.POLYLINE) and self.points is not None:
            out["points"] = self.points.tolist()
        elif self.kind is Kind.POINT and self.points is not None:
            out["point"] = self.points[0].tolist()
        elif self.kind is Kind.BOX and self.box is not None:
            out["box"] = list(self.box)
        elif self.kind is Kind.MASK and self.mask is not None:
            out["mask"] = self.mask.to_full() if full_mask else self.mask
        out["attributes"] = dict(self.attributes)
        out.update(
            source=self.source,
            confidence=self.confidence,
            author=self.author,
            id=self.id,
            version=self.version,
            asset_id=self.asset_id,
        )
        if self.track_id is not None:  # optional keys: plain annotations keep their shape
            out.update(
                track_id=self.track_id, keyframe=self.keyframe, outside=self.outside, occluded=self.occluded
            )
        return out

    def evolve(self, **changes: Any) -> Annotation:
        return replace(self, **changes)

    @property
    def track_state(self) -> tuple[int | None, bool, bool, bool]:
        """(track_id, keyframe, outside, occluded)."""
        return (self.track_id, self.keyframe, self.outside, self.occluded)

    def same_content(self, other: Annotation) -> bool:
        """Equal label, frame, geometry, attributes and track flags (ignores ids, versions, authorship)."""
        if (self.kind, self.label, self.frame, dict(self.attributes)) != (
            other.kind,
            other.label,
            other.frame,
            dict(other.attributes),
        ):
            return False
        if self.track_state != other.track_state:
            return False
        if (self.points is None) != (other.points is None):
            return False
        if (
            self.points is not None
            and other.points is not None
            and not np.array_equal(self.points, other.points)
        ):
            return False
        return self.box == other.box and self.mask == other.mask


def _mask_from_data(value: Any, frame_shape: tuple[int, int] | None) -> MaskPatch:
    if isinstance(value, MaskPatch):
        return value
    if value is None:
        raise ValidationError("a mask annotation needs a 'mask' array")
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise ValidationError(f"a mask must be a 2-D array, got shape {arr.shape}")
    if frame_shape is not None and tuple(arr.shape) != tuple(frame_shape):
        raise ValidationError(
            f"mask shape {arr.shape[1]}x{arr.shape[0]} does not match the frame "
            f"{frame_shape[1]}x{frame_shape[0]}"
        )
    return MaskPatch.from_full(arr)
