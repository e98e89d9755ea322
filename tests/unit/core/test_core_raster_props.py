"""Property tests: the rasteriser against brute-force centre-in-shape references (raster_oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from raster_oracle import capsule_oracle_quarter, distance_to_outline, rings_oracle

from app.core import raster
from app.core.raster import (
    brush_dab,
    polygon_mask_in_bbox,
    rasterize_box,
    rasterize_polygon,
    rasterize_rings,
    rasterize_stroke,
)

FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

shapes = st.tuples(st.integers(1, 14), st.integers(1, 14))


def grid_coord(step: float, lo: float = -2.0, hi: float = 16.0) -> st.SearchStrategy[float]:
    return st.integers(int(lo / step), int(hi / step)).map(lambda k: k * step)


def grid_points(step: float, min_size: int = 3, max_size: int = 9) -> st.SearchStrategy[np.ndarray]:
    pt = st.tuples(grid_coord(step), grid_coord(step))
    return st.lists(pt, min_size=min_size, max_size=max_size).map(lambda p: np.array(p, dtype=np.float64))


def float_points(min_size: int = 3, max_size: int = 9) -> st.SearchStrategy[np.ndarray]:
    c = st.floats(-3.0, 17.0, allow_nan=False, allow_infinity=False)
    return st.lists(st.tuples(c, c), min_size=min_size, max_size=max_size).map(
        lambda p: np.array(p, dtype=np.float64)
    )


def assert_same(got: np.ndarray, want: np.ndarray, context: object) -> None:
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        raise AssertionError(f"{len(bad)} pixels differ, e.g. (row, col) {bad[:5].tolist()}; {context}")


# --- polygons -----------------------------------------------------------------------------------
@FAST
@given(pts=st.one_of(grid_points(0.25), grid_points(0.5)), shape=shapes)
def test_polygon_matches_oracle_on_tie_grids(pts: np.ndarray, shape: tuple[int, int]) -> None:
    # Vertices on quarter/half pixels put many centres exactly on edges and vertices: ties.
    assert_same(rasterize_polygon(pts, shape), rings_oracle([pts], shape), pts.tolist())


@FAST
@given(pts=float_points(), shape=shapes)
def test_polygon_matches_oracle_off_ties(pts: np.ndarray, shape: tuple[int, int]) -> None:
    # Arbitrary floats: compare every centre not within rounding distance of the outline.
    got, want = rasterize_polygon(pts, shape), rings_oracle([pts], shape)
    far = distance_to_outline([pts], shape) > 1e-9
    assert_same(got[far], want[far], pts.tolist())


@FAST
@given(pts=grid_points(0.25, max_size=7), shape=shapes)
def test_simple_polygons_agree_with_shapely_contains(pts: np.ndarray, shape: tuple[int, int]) -> None:
    # Cross-check the oracle itself: for a valid polygon, off-outline centres are plain contains.
    poly = shapely.Polygon(pts)
    if not poly.is_valid or poly.area == 0:
        return
    h, w = shape
    cy, cx = np.mgrid[0:h, 0:w] + 0.5
    off = distance_to_outline([pts], shape) > 0
    assert_same(rasterize_polygon(pts, shape)[off], shapely.contains_xy(poly, cx, cy)[off], pts.tolist())


@FAST
@given(pts=st.one_of(grid_points(0.25), float_points()), shape=shapes)
def test_bbox_patch_is_the_full_mask_cropped(pts: np.ndarray, shape: tuple[int, int]) -> None:
    patch = polygon_mask_in_bbox(pts, shape)
    full = rasterize_polygon(pts, shape)
    assert np.array_equal(patch.to_full(), full)
    if full.any():  # the patch is the minimal bounding box
        assert patch.bits[0].any() and patch.bits[-1].any()
        assert patch.bits[:, 0].any() and patch.bits[:, -1].any()
    else:
        assert patch.bits.shape == (0, 0)


@FAST
@given(
    pts=st.one_of(grid_points(0.25), float_points()),
    shape=shapes,
    reverse=st.booleans(),
    roll=st.integers(0, 8),
)
def test_vertex_order_and_start_do_not_matter(
    pts: np.ndarray, shape: tuple[int, int], reverse: bool, roll: int
) -> None:
    other = np.roll(pts[::-1] if reverse else pts, roll, axis=0)
    assert np.array_equal(rasterize_polygon(pts, shape), rasterize_polygon(other, shape))


def decimal_coord(lo: int, hi: int) -> st.SearchStrategy[float]:
    # k/10 and k/3 are not binary fractions: "exact" decimal ties round differently per formula.
    return st.one_of(
        st.integers(lo * 10, hi * 10).map(lambda k: k / 10), st.integers(lo * 3, hi * 3).map(lambda k: k / 3)
    )


@FAST
@given(
    corners=st.tuples(decimal_coord(-2, 6), decimal_coord(-2, 6), decimal_coord(1, 8), decimal_coord(1, 8)),
    chain=st.lists(st.tuples(st.floats(0.0, 1.0), decimal_coord(-2, 14)), min_size=1, max_size=6),
    flips=st.tuples(st.booleans(), st.booleans()),
    shape=shapes,
)
def test_polygons_sharing_an_edge_chain_partition_exactly(
    corners: tuple[float, float, float, float],
    chain: list[tuple[float, float]],
    flips: tuple[bool, bool],
    shape: tuple[int, int],
) -> None:
    # Two halves of a rectangle cut by a y-monotone chain must neither overlap nor leave a gap,
    # and their union is the rectangle, whichever way each half is walked: floating-point
    # consistency of shared edges (crossings computed from the edge, not from the walk).
    x0, y0, w, h = corners
    x1, y1 = x0 + w, y0 + h
    inner = sorted({y for _, y in chain if y0 < y < y1})
    xs = [x for x, _ in chain][: len(inner)]
    cut = (
        [(x0 + 0.5 * w, y0)]
        + [(x0 + t * w, y) for t, y in zip(xs, inner, strict=True)]
        + [(x0 + 0.5 * w, y1)]
    )
    # Decimal chain x: snap t*w to a k/10 value inside the rectangle.
    cut = [(min(max(round(x * 10) / 10, x0), x1), y) for x, y in cut]
    left = np.array([(x0, y0), *cut, (x0, y1)])
    right = np.array([*cut, (x1, y1), (x1, y0)])
    left = left[::-1] if flips[0] else left
    right = right[::-1] if flips[1] else right
    a, b = rasterize_polygon(left, shape), rasterize_polygon(right, shape)
    assert not (a & b).any(), (left.tolist(), right.tolist())
    rect = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    assert_same(a | b, rasterize_polygon(rect, shape), (left.tolist(), right.tolist()))


@FAST
@given(
    pts=st.one_of(
        grid_points(0.25, min_size=3, max_size=8),
        float_points(max_size=8),
        st.lists(st.tuples(decimal_coord(-2, 14), decimal_coord(-2, 14)), min_size=3, max_size=8).map(
            np.array
        ),
    ),
    shape=shapes,
)
def test_convex_fan_triangles_partition_the_hull(pts: np.ndarray, shape: tuple[int, int]) -> None:
    hull = shapely.convex_hull(shapely.multipoints(pts))
    if not isinstance(hull, shapely.Polygon):
        return
    ring = np.asarray(hull.exterior.coords)[:-1]
    total = np.zeros(shape, dtype=np.int64)
    for i in range(1, len(ring) - 1):
        total += rasterize_polygon(ring[[0, i, i + 1]], shape)
    assert total.max(initial=0) <= 1
    assert_same(total == 1, rasterize_polygon(ring, shape), ring.tolist())


@FAST
@given(
    rings=st.lists(
        st.one_of(grid_points(0.25, max_size=6), float_points(max_size=6)), min_size=1, max_size=3
    ),
    shape=shapes,
)
def test_rings_are_the_xor_of_each_ring(rings: list[np.ndarray], shape: tuple[int, int]) -> None:
    want = np.zeros(shape, dtype=bool)
    for ring in rings:
        want ^= rasterize_polygon(ring, shape)
    assert np.array_equal(rasterize_rings(rings, shape), want)


@FAST
@given(rings=st.lists(grid_points(0.5, max_size=5), min_size=1, max_size=3), shape=shapes)
def test_rings_match_oracle(rings: list[np.ndarray], shape: tuple[int, int]) -> None:
    assert_same(rasterize_rings(rings, shape), rings_oracle(rings, shape), [r.tolist() for r in rings])


@FAST
@given(
    rings=st.lists(
        st.one_of(grid_points(0.25, max_size=8), float_points(max_size=8)), min_size=1, max_size=3
    ),
    shape=shapes,
)
def test_both_span_fill_strategies_agree(rings: list[np.ndarray], shape: tuple[int, int]) -> None:
    # The fill picks a per-span loop or a toggle scan by cost; force each in turn.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(raster, "_SPAN_COST_PIXELS", 0)
        looped = rasterize_rings(rings, shape)
        mp.setattr(raster, "_SPAN_COST_PIXELS", 10**9)
        scanned = rasterize_rings(rings, shape)
    assert np.array_equal(looped, scanned)
    assert_same(
        looped,
        rings_oracle(rings, shape) if all(np.all(np.mod(r, 0.25) == 0) for r in rings) else looped,
        rings,
    )


# --- boxes --------------------------------------------------------------------------------------
box_strategy = st.one_of(
    st.tuples(grid_coord(0.25), grid_coord(0.25), grid_coord(0.25), grid_coord(0.25)),
    st.tuples(*[st.floats(-3, 17, allow_nan=False)] * 4),
).filter(lambda b: b[0] < b[2] and b[1] < b[3])


@FAST
@given(box=box_strategy, shape=shapes)
def test_box_is_its_rectangle_polygon_and_the_half_open_rule(
    box: tuple[float, ...], shape: tuple[int, int]
) -> None:
    x0, y0, x1, y1 = box
    got = rasterize_box(box, shape)
    rect = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    assert_same(got, rasterize_polygon(rect, shape), box)
    h, w = shape
    cy, cx = np.mgrid[0:h, 0:w] + 0.5
    assert_same(got, (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1), box)
    if np.all(np.mod(box, 0.25) == 0):
        assert_same(got, rings_oracle([rect], shape), box)


# --- brush --------------------------------------------------------------------------------------
radii = grid_coord(0.25, 0.0, 4.0)  # R and R^2 exactly representable: exact ties


@FAST
@given(x=grid_coord(0.25), y=grid_coord(0.25), radius=radii, shape=shapes)
def test_dab_matches_shapely_distance(x: float, y: float, radius: float, shape: tuple[int, int]) -> None:
    y0, x0, bits = brush_dab((x, y), radius, shape)
    full = np.zeros(shape, dtype=bool)
    full[y0 : y0 + bits.shape[0], x0 : x0 + bits.shape[1]] = bits
    h, w = shape
    cy, cx = np.mgrid[0:h, 0:w] + 0.5
    want = shapely.distance(shapely.Point(x, y), shapely.points(cx, cy)) <= radius
    assert_same(full, want, (x, y, radius))
    assert_same(full, capsule_oracle_quarter(np.array([[x, y]]), radius, shape), (x, y, radius))
    if bits.size:  # minimal crop
        assert bits[0].any() and bits[-1].any() and bits[:, 0].any() and bits[:, -1].any()
    else:
        assert (y0, x0) == (0, 0)


@FAST
@given(pts=grid_points(0.25, min_size=1, max_size=5), radius=radii, shape=shapes)
def test_stroke_matches_exact_capsules(pts: np.ndarray, radius: float, shape: tuple[int, int]) -> None:
    got = rasterize_stroke(pts, radius, shape)
    assert_same(got, capsule_oracle_quarter(pts, radius, shape), (pts.tolist(), radius))


@FAST
@given(pts=float_points(min_size=1, max_size=5), radius=st.floats(0.0, 4.0), shape=shapes)
def test_stroke_matches_shapely_distance_off_ties(
    pts: np.ndarray, radius: float, shape: tuple[int, int]
) -> None:
    got = rasterize_stroke(pts, radius, shape)
    h, w = shape
    cy, cx = np.mgrid[0:h, 0:w] + 0.5
    line = shapely.Point(pts[0]) if len(pts) == 1 else shapely.LineString(pts)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = shapely.distance(line, shapely.points(cx, cy))
    far = np.abs(d - radius) > 1e-9
    assert_same(got[far], (d <= radius)[far], (pts.tolist(), radius))


@FAST
@given(pts=grid_points(0.25, min_size=2, max_size=5), radius=radii, shape=shapes)
def test_stroke_contains_dabs_at_its_vertices(pts: np.ndarray, radius: float, shape: tuple[int, int]) -> None:
    stroke = rasterize_stroke(pts, radius, shape)
    for p in pts:
        y0, x0, bits = brush_dab(p, radius, shape)
        assert stroke[y0 : y0 + bits.shape[0], x0 : x0 + bits.shape[1]][bits].all()
