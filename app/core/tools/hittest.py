"""Pure hit-testing: which part of which annotation is under the pointer.

Priority (labelme's rule, so small targets stay reachable): any vertex or box corner beats any
edge or box side, which beats any inside. Within one level the topmost annotation (last drawn)
wins, then the nearest part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from app.core.annotations import Annotation, Kind
from app.core.tools.base import FloatArray


class Part(IntEnum):  # lower value = higher priority
    VERTEX = 0
    HANDLE_CORNER = 1
    EDGE = 2
    HANDLE_SIDE = 3
    INSIDE = 4


@dataclass(frozen=True)
class HitTarget:
    annotation_id: int
    part: Part
    index: int | None = None  # vertex i, or edge i (from vertex i to i+1)
    handle: str | None = None  # box handles: "nw", "ne", "se", "sw", "n", "e", "s", "w"
    distance: float = 0.0


BOX_CORNERS = {"nw": (0, 1), "ne": (2, 1), "se": (2, 3), "sw": (0, 3)}  # indices into (x0, y0, x1, y1)


def segment_distance(points: FloatArray, x: float, y: float, closed: bool) -> FloatArray:
    """Distance from (x, y) to each edge i (vertex i to i+1; the closing edge when ``closed``)."""
    a = points if closed else points[:-1]
    b = np.roll(points, -1, axis=0) if closed else points[1:]
    d = b - a
    length2 = (d * d).sum(axis=1)
    q = np.array([x, y]) - a
    t = np.clip(np.divide((q * d).sum(axis=1), length2, out=np.zeros_like(length2), where=length2 > 0), 0, 1)
    nearest = a + t[:, None] * d
    return np.hypot(nearest[:, 0] - x, nearest[:, 1] - y)


def inside_polygon(points: FloatArray, x: float, y: float) -> bool:
    """Even-odd crossing test, matching the rasteriser's fill rule."""
    a, b = points, np.roll(points, -1, axis=0)
    spans = (a[:, 1] <= y) != (b[:, 1] <= y)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross_x = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    return bool(np.count_nonzero(spans & (x < cross_x)) % 2)


def _hits(aid: int, ann: Annotation, x: float, y: float, tol: float) -> list[HitTarget]:
    out: list[HitTarget] = []
    if ann.box is not None:
        box = ann.box
        for name, (ix, iy) in BOX_CORNERS.items():
            dist = float(np.hypot(box[ix] - x, box[iy] - y))
            if dist <= tol:
                out.append(HitTarget(aid, Part.HANDLE_CORNER, handle=name, distance=dist))
        x0, y0, x1, y1 = box
        sides = {"w": abs(x - x0), "e": abs(x - x1), "n": abs(y - y0), "s": abs(y - y1)}
        within = {"w": y0 <= y <= y1, "e": y0 <= y <= y1, "n": x0 <= x <= x1, "s": x0 <= x <= x1}
        for name, dist in sides.items():
            if within[name] and dist <= tol:
                out.append(HitTarget(aid, Part.HANDLE_SIDE, handle=name, distance=float(dist)))
        if x0 <= x <= x1 and y0 <= y <= y1:
            out.append(HitTarget(aid, Part.INSIDE))
    elif ann.points is not None:
        pts = ann.points
        vd = np.hypot(pts[:, 0] - x, pts[:, 1] - y)
        i = int(np.argmin(vd))
        if vd[i] <= tol:
            out.append(HitTarget(aid, Part.VERTEX, index=i, distance=float(vd[i])))
        if len(pts) >= 2:
            ed = segment_distance(pts, x, y, closed=ann.kind is Kind.POLYGON)
            j = int(np.argmin(ed))
            if ed[j] <= tol:
                out.append(HitTarget(aid, Part.EDGE, index=j, distance=float(ed[j])))
        if ann.kind is Kind.POLYGON and inside_polygon(pts, x, y):
            out.append(HitTarget(aid, Part.INSIDE))
    elif ann.mask is not None:
        m = ann.mask
        c, r = int(np.floor(x)) - m.x0, int(np.floor(y)) - m.y0
        if 0 <= r < m.bits.shape[0] and 0 <= c < m.bits.shape[1] and m.bits[r, c]:
            out.append(HitTarget(aid, Part.INSIDE))
    return out


def hit_test(annotations: Mapping[int, Annotation], x: float, y: float, tolerance: float) -> HitTarget | None:
    """The best target under (x, y) within ``tolerance`` image units, or None."""
    best: tuple[tuple[int, int, float], HitTarget] | None = None
    for order, (aid, ann) in enumerate(annotations.items()):
        for hit in _hits(aid, ann, x, y, tolerance):
            key = (int(hit.part), -order, hit.distance)
            if best is None or key < best[0]:
                best = (key, hit)
    return None if best is None else best[1]
