"""Brute-force references the rasteriser is checked against (tests only).

Polygons go through shapely: a pixel centre strictly off the outline is in iff it lies inside an
odd number of fan triangles (apex, p[i], p[i+1]) (the even-odd rule, valid for any polygon, even a
self-intersecting one; shapely's predicates are exact). A centre ON the outline follows the
documented tie rule: it is in iff the nudged point centre + (eps, eps**2) is inside. That is the
top-left rule: left and top edges in, right and bottom edges out.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import shapely

# A generic apex far from the frame: no line through it and a vertex hits a pixel centre.
_APEX = (-1000.123456789, -777.987654321)
EPS = 2.0**-12  # small against every feature of quarter-pixel geometry in frames < 64 px


def centres(shape: tuple[int, int]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    h, w = shape
    cy, cx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    return cx, cy


def _even_odd(points: npt.NDArray[np.float64], x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]):
    parity = np.zeros(x.shape, dtype=bool)
    n = len(points)
    for i in range(n):
        a, b = points[i], points[(i + 1) % n]
        tri = shapely.Polygon([_APEX, tuple(a), tuple(b)])
        if tri.area > 0:
            parity ^= shapely.contains_xy(tri, x, y)
    return parity


def outline(rings: list[npt.NDArray[np.float64]]) -> shapely.MultiLineString:
    return shapely.MultiLineString([np.vstack([r, r[:1]]) for r in rings])


def on_outline(rings: list[npt.NDArray[np.float64]], shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    cx, cy = centres(shape)
    return shapely.intersects_xy(outline(rings), cx, cy)


def rings_oracle(rings: list[npt.NDArray[np.float64]], shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """Even-odd over all rings, tie rule by nudging centres that lie on the outline."""
    cx, cy = centres(shape)
    on = on_outline(rings, shape)
    qx = np.where(on, cx + EPS, cx)
    qy = np.where(on, cy + EPS * EPS, cy)
    inside = np.zeros(shape, dtype=bool)
    for ring in rings:
        inside ^= _even_odd(np.asarray(ring, dtype=np.float64), qx, qy)
    return inside


def distance_to_outline(
    rings: list[npt.NDArray[np.float64]], shape: tuple[int, int]
) -> npt.NDArray[np.float64]:
    cx, cy = centres(shape)
    with np.errstate(divide="ignore", invalid="ignore"):  # degenerate outlines warn in GEOS glue
        return shapely.distance(outline(rings), shapely.points(cx, cy))


def capsule_oracle_quarter(points: npt.NDArray[np.float64], radius: float, shape: tuple[int, int]):
    """Centres within ``radius`` of the polyline, in exact integer arithmetic (inputs on a 1/4 grid)."""
    q = np.rint(np.asarray(points) * 4).astype(np.int64)
    assert np.array_equal(q / 4, points), "capsule oracle needs quarter-pixel inputs"
    r4 = round(radius * 4)
    assert r4 / 4 == radius
    h, w = shape
    py, px = np.mgrid[0:h, 0:w].astype(np.int64) * 4 + 2  # centres, scaled by 4
    out = np.zeros(shape, dtype=bool)
    segs = [(q[0], q[0])] if len(q) == 1 else list(itertools.pairwise(q))
    for a, b in segs:
        ex, ey = int(b[0] - a[0]), int(b[1] - a[1])
        qx, qy = px - a[0], py - a[1]
        l2 = ex * ex + ey * ey
        dot = qx * ex + qy * ey
        near_a = qx * qx + qy * qy <= r4 * r4
        near_b = (px - b[0]) ** 2 + (py - b[1]) ** 2 <= r4 * r4
        # Interior of the segment: squared distance is |q|^2 - dot^2 / l2, kept in integers.
        mid = (dot > 0) & (dot < l2) & ((qx * qx + qy * qy) * l2 - dot * dot <= r4 * r4 * l2)
        out |= near_a | near_b | (mid if l2 else False)
    return out
