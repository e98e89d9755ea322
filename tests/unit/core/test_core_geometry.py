"""Geometry helpers: areas, bounding boxes, exact mask -> polygon round trip, simplification, overlap."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app.core.errors import ValidationError
from app.core.geometry import bbox, dice, iou, mask_to_polygons, polygon_area, signed_area, simplify_polygon
from app.core.raster import rasterize_polygon, rasterize_rings

masks = st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(lambda s: arrays(np.bool_, s))


def test_area_and_orientation() -> None:
    square = [[0, 0], [2, 0], [2, 3], [0, 3]]  # clockwise on screen (y down)
    assert signed_area(square) == 6.0
    assert signed_area(square[::-1]) == -6.0
    assert polygon_area(square[::-1]) == 6.0
    assert polygon_area([[0, 0], [1, 1]]) == 0.0
    assert polygon_area([[0, 0], [2, 2], [2, 0], [0, 2]]) == 0.0  # bow-tie lobes cancel


def test_bbox() -> None:
    assert bbox([[3, 1], [-1, 4], [2, 2]]) == (-1.0, 1.0, 3.0, 4.0)
    with pytest.raises(ValidationError):
        bbox(np.zeros((0, 2)))


def test_mask_to_polygons_golden() -> None:
    one = np.zeros((3, 3), bool)
    one[1, 1] = True
    (ring,) = mask_to_polygons(one)
    assert ring.tolist() == [[2, 1], [2, 2], [1, 2], [1, 1]]
    donut = np.ones((3, 3), bool)
    donut[1, 1] = False
    rings = mask_to_polygons(donut)
    assert [signed_area(r) for r in rings] == [9.0, -1.0]  # outer clockwise, hole counter-clockwise
    # Diagonal neighbours are separate 4-connected components: two rings, not one figure eight.
    diag = np.array([[1, 0], [0, 1]], bool)
    rings = mask_to_polygons(diag)
    assert len(rings) == 2 and all(len(r) == 4 for r in rings)
    assert mask_to_polygons(np.zeros((4, 5), bool)) == []


@settings(max_examples=300, deadline=None)
@given(bits=masks)
def test_mask_to_polygons_round_trips_exactly(bits: np.ndarray) -> None:
    rings = mask_to_polygons(bits)
    assert np.array_equal(rasterize_rings(rings, bits.shape), bits)
    # Signed areas add up to the pixel count: outer rings count +, holes count -.
    assert sum(signed_area(r) for r in rings) == bits.sum()
    for ring in rings:
        assert len(ring) >= 4 and np.array_equal(ring, np.round(ring))  # corners only
        # Rings never cross; they may touch themselves at a corner (a hole meeting the outside).
        assert shapely.LinearRing(ring).is_simple or shapely.Polygon(ring).buffer(0).area == abs(
            signed_area(ring)
        )


def test_hole_touching_the_outside_at_a_corner_is_one_self_touching_ring() -> None:
    bits = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 1]], bool)
    (ring,) = mask_to_polygons(bits)
    assert signed_area(ring) == 7.0
    assert np.array_equal(rasterize_polygon(ring, bits.shape), bits)


@settings(max_examples=100, deadline=None)
@given(bits=masks)
def test_each_outer_ring_with_holes_reproduces_its_component(bits: np.ndarray) -> None:
    rings = mask_to_polygons(bits)
    covered = np.zeros(bits.shape, dtype=bool)
    for ring in rings:
        if signed_area(ring) > 0:
            filled = rasterize_polygon(ring, bits.shape)
            assert not (covered & filled & bits).any()  # components do not overlap
            covered |= filled & bits
    assert np.array_equal(covered, bits)


def test_simplify_polygon() -> None:
    wobbly = np.array([[0, 0], [5, 0.05], [10, 0], [10, 10], [5, 9.95], [0, 10]], dtype=float)
    simple = simplify_polygon(wobbly, 0.1)
    assert len(simple) == 4
    assert polygon_area(simple) == pytest.approx(100.0)
    assert len(simplify_polygon(wobbly, 0.0)) == 6
    with pytest.raises(ValidationError):
        simplify_polygon(wobbly, -1)


def test_iou_and_dice() -> None:
    a = np.array([[1, 1, 0, 0]], bool)
    b = np.array([[0, 1, 1, 0]], bool)
    assert iou(a, b) == pytest.approx(1 / 3)
    assert dice(a, b) == pytest.approx(0.5)
    assert iou(a, a) == dice(a, a) == 1.0
    empty = np.zeros((2, 2), bool)
    assert iou(empty, empty) == dice(empty, empty) == 1.0  # documented: nothing vs nothing agrees
    assert iou(a, np.zeros_like(a)) == dice(a, np.zeros_like(a)) == 0.0
    with pytest.raises(ValidationError):
        iou(a, empty)
