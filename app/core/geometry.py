"""Small pure geometry helpers: areas, bounding boxes, mask <-> polygon, simplification, overlap.

Coordinates follow DESIGN.md "Pixel conventions" (continuous ``(x, y)``, y pointing down). In these
coordinates a ring that runs clockwise on screen has a POSITIVE shoelace area.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import shapely

from app.core.annotations import BoolMask
from app.core.errors import ValidationError

FloatArray = npt.NDArray[np.float64]

__all__ = ["bbox", "dice", "iou", "mask_to_polygons", "polygon_area", "signed_area", "simplify_polygon"]


def _points(points: npt.ArrayLike) -> FloatArray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValidationError(f"points must be an (N, 2) array of [x, y], got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValidationError("points must be finite numbers")
    return pts


def signed_area(points: npt.ArrayLike) -> float:
    """Shoelace area of the implicitly closed ring; positive when clockwise on screen (y down)."""
    pts = _points(points)
    if len(pts) < 3:
        return 0.0
    x, y = pts[:, 0], pts[:, 1]
    # Centre on the first vertex: same value, much less cancellation for far-away rings.
    x, y = x - x[0], y - y[0]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def polygon_area(points: npt.ArrayLike) -> float:
    """Absolute shoelace area (self-intersecting rings: lobes of opposite turn cancel)."""
    return abs(signed_area(points))


def bbox(points: npt.ArrayLike) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` of the points; raises on an empty set."""
    pts = _points(points)
    if len(pts) == 0:
        raise ValidationError("the bounding box of no points is undefined")
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


# --- mask -> polygons ---------------------------------------------------------------------------
# Directions of travel along pixel edges, in image coordinates (y down).
_STEP = ((1, 0), (0, 1), (-1, 0), (0, -1))  # east, south, west, north
_EAST, _SOUTH, _WEST, _NORTH = range(4)


def mask_to_polygons(bits: npt.ArrayLike) -> list[FloatArray]:
    """Trace the pixel boundaries of a mask into closed rings with vertices on pixel corners.

    Every boundary edge between a set and an unset pixel belongs to exactly one ring, so
    rasterising ALL returned rings together with the even-odd rule
    (``raster.rasterize_rings``) reproduces the mask exactly; no pixel centre lies on a ring.
    Rings run with the set pixels on their right (in y-down image coordinates): outer boundaries
    are clockwise on screen (``signed_area > 0``), holes counter-clockwise (``signed_area < 0``).
    Where two set pixels touch only at a corner the tracer turns right, so each 4-connected
    component gets its own outer ring (set pixels are 4-connected, background 8-connected). Rings
    never cross but may touch themselves at a corner: a hole that meets the outside at a corner
    is traced as part of the outer ring. Only corner vertices are kept (no collinear points).
    Rings are ordered by their top-left starting corner.
    """
    mask = np.asarray(bits)
    if mask.ndim != 2:
        raise ValidationError(f"a mask must be a 2-D array, got shape {mask.shape}")
    padded = np.pad(mask.astype(bool, copy=False), 1)
    # Horizontal edge at y = r between pixel rows r-1 and r, x in [c, c+1]: t[r, c].
    above, below = padded[:-1, 1:-1], padded[1:, 1:-1]
    east = ~above & below  # top side of a set pixel: walk east (set pixel on the right)
    west = above & ~below  # bottom side: walk west
    left, right = padded[1:-1, :-1], padded[1:-1, 1:]
    south = left & ~right  # right side of a set pixel: walk south
    north = ~left & right  # left side: walk north
    # out[d][y, x]: an edge leaves corner (x, y) heading d.
    h, w = mask.shape
    out = np.zeros((4, h + 1, w + 1), dtype=bool)
    out[_EAST, :, :w] = east
    out[_WEST, :, 1:] = west
    out[_SOUTH, :h, :] = south
    out[_NORTH, 1:, :] = north
    remaining = out.copy()
    rings: list[FloatArray] = []
    # Start every ring at the top-most, left-most unused eastward edge (every ring has one).
    for y, x in zip(*np.nonzero(remaining[_EAST]), strict=True):
        if not remaining[_EAST, y, x]:
            continue
        rings.append(_trace(remaining, int(x), int(y)))
    return rings


def _trace(remaining: npt.NDArray[np.bool_], x: int, y: int) -> FloatArray:
    """Follow unused edges from corner (x, y) heading east until back at the start edge."""
    corners: list[tuple[int, int]] = []
    heading = _EAST
    start = (x, y, heading)
    while True:
        remaining[heading, y, x] = False
        dx, dy = _STEP[heading]
        x, y = x + dx, y + dy
        # Prefer a right turn, then straight, then left: at a corner shared by two diagonal
        # pixels this keeps each 4-connected component on its own ring.
        for turn in (1, 0, 3):
            nxt = (heading + turn) % 4
            if remaining[nxt, y, x] or (x, y, nxt) == start:
                break
        else:  # pragma: no cover - a boundary always continues; this would be a tracer bug
            raise AssertionError("open pixel boundary")
        if nxt != heading:
            corners.append((x, y))
        heading = nxt
        if (x, y, heading) == start:
            break
    return np.asarray(corners, dtype=np.float64)


# --- simplification and overlap -----------------------------------------------------------------
def simplify_polygon(points: npt.ArrayLike, tolerance: float) -> FloatArray:
    """Douglas-Peucker simplification of a closed ring (shapely), keeping it a valid polygon.

    ``tolerance`` is the largest allowed deviation in pixels. Returns an (N, 2) array without the
    closing repeat of the first vertex. A ring the simplification would collapse is returned as is.
    """
    pts = _points(points)
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValidationError(f"the tolerance must be a number >= 0, got {tolerance}")
    if len(pts) < 4:
        return pts.copy()
    simplified = shapely.simplify(shapely.Polygon(pts), float(tolerance), preserve_topology=True)
    if not isinstance(simplified, shapely.Polygon) or simplified.is_empty:
        return pts.copy()
    coords = np.asarray(simplified.exterior.coords, dtype=np.float64)[:-1]
    return coords if len(coords) >= 3 else pts.copy()


def _pair(mask_a: npt.ArrayLike, mask_b: npt.ArrayLike) -> tuple[BoolMask, BoolMask]:
    a = np.asarray(mask_a, dtype=bool)
    b = np.asarray(mask_b, dtype=bool)
    if a.shape != b.shape:
        raise ValidationError(f"masks differ in shape: {a.shape} vs {b.shape}")
    return a, b


def iou(mask_a: npt.ArrayLike, mask_b: npt.ArrayLike) -> float:
    """Intersection over union of two same-shape masks. Two empty masks agree fully: 1.0."""
    a, b = _pair(mask_a, mask_b)
    union = int(np.count_nonzero(a | b))
    return 1.0 if union == 0 else int(np.count_nonzero(a & b)) / union


def dice(mask_a: npt.ArrayLike, mask_b: npt.ArrayLike) -> float:
    """Dice coefficient ``2|A&B| / (|A|+|B|)``. Two empty masks agree fully: 1.0."""
    a, b = _pair(mask_a, mask_b)
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total
