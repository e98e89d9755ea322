"""Hand-computed cases of the pixel rule (DESIGN.md "Pixel conventions"); each worked out on paper."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.core.raster import (
    brush_dab,
    label_image,
    polygon_mask_in_bbox,
    rasterize_annotation,
    rasterize_box,
    rasterize_polygon,
    rasterize_rings,
    rasterize_stroke,
    stroke_patch,
)


def arr(rows: list[str]) -> np.ndarray:
    return np.array([[ch == "#" for ch in row] for row in rows], dtype=bool)


def test_box_centres_on_left_top_edges_in_right_bottom_out() -> None:
    # Centres 0.5, 1.5, 2.5: 0.5 >= 0.5 in, 1.5 in, 2.5 < 2.5 fails -> columns/rows 0..1.
    want = arr(["##.", "##.", "..."])
    assert np.array_equal(rasterize_box((0.5, 0.5, 2.5, 2.5), (3, 3)), want)
    square = [[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]]
    assert np.array_equal(rasterize_polygon(square, (3, 3)), want)
    assert np.array_equal(rasterize_polygon(square[::-1], (3, 3)), want)


def test_box_on_pixel_borders_and_outside_frame() -> None:
    assert np.array_equal(rasterize_box((1, 0, 3, 2), (3, 4)), arr([".##.", ".##.", "...."]))
    assert np.array_equal(rasterize_box((-5, -5, 0.5, 0.5), (2, 2)), arr(["..", ".."]))
    assert np.array_equal(rasterize_box((-5, -5, 0.51, 0.51), (2, 2)), arr(["#.", ".."]))
    assert np.array_equal(rasterize_box((1.5, 1.5, 9, 9), (2, 2)), arr(["..", ".#"]))


def test_diagonal_right_edge_ties_are_out() -> None:
    # Hypotenuse x + y = 4 is a right edge: centres on it ((0.5, 3.5), (1.5, 2.5), ...) are out.
    tri = [[0, 0], [4, 0], [0, 4]]
    assert np.array_equal(rasterize_polygon(tri, (4, 4)), arr(["###.", "##..", "#...", "...."]))


def test_diagonal_left_edge_ties_are_in() -> None:
    # Diagonal x = y bounds the region x > y on its left: centres on it are in.
    tri = [[0, 0], [4, 0], [4, 4]]
    assert np.array_equal(rasterize_polygon(tri, (4, 4)), arr(["####", ".###", "..##", "...#"]))


def test_diamond_ties_in_on_left_out_on_right() -> None:
    # |dx| + |dy| = 2 around (2, 2): ties with dx < 0 lie on left edges (in), dx > 0 on right (out).
    diamond = [[2, 0], [4, 2], [2, 4], [0, 2]]
    assert np.array_equal(rasterize_polygon(diamond, (4, 4)), arr([".#..", "###.", "###.", ".#.."]))


def test_apex_on_a_centre() -> None:
    # Top apex at the centre of pixel (1, 0): both edges cross at x = 1.5, an empty span -> out.
    assert np.array_equal(rasterize_polygon([[1.5, 0.5], [3, 3], [0, 3]], (3, 3)), arr(["...", ".#.", "###"]))
    # Bottom apex at the centre of pixel (1, 2): its edges end there (bottom endpoints excluded).
    assert np.array_equal(rasterize_polygon([[0, 0], [3, 0], [1.5, 2.5]], (3, 3)), arr(["###", ".#.", "..."]))


def test_bow_tie_even_odd() -> None:
    bow = [[0, 0], [4, 4], [4, 0], [0, 4]]
    assert np.array_equal(rasterize_polygon(bow, (4, 4)), arr(["...#", "#.##", "#.##", "...#"]))


def test_two_squares_touching_at_a_centre() -> None:
    # One ring, self-touching at (2.5, 2.5), the centre of pixel (2, 2): that pixel is the top-left
    # corner of the second square, so it is in; the first square is [0.5, 2.5)^2 -> pixels 0..1.
    ring = [[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [4.5, 2.5], [4.5, 4.5], [2.5, 4.5], [2.5, 2.5], [0.5, 2.5]]
    want = arr(["##...", "##...", "..##.", "..##.", "....."])
    assert np.array_equal(rasterize_polygon(ring, (5, 5)), want)


def test_hole_with_rings() -> None:
    outer = [[0, 0], [4, 0], [4, 4], [0, 4]]
    hole = [[1, 1], [3, 1], [3, 3], [1, 3]]
    assert np.array_equal(rasterize_rings([outer, hole], (4, 4)), arr(["####", "#..#", "#..#", "####"]))


def test_degenerate_polygons_cover_nothing() -> None:
    assert not rasterize_polygon([[0, 0], [3, 3], [0, 0]], (4, 4)).any()
    assert not rasterize_polygon([[0, 0.5], [4, 0.5], [2, 0.5]], (4, 4)).any()
    assert polygon_mask_in_bbox([[9, 9], [12, 9], [12, 12]], (4, 4)).bits.shape == (0, 0)


def test_polygon_bbox_patch_far_inside_a_huge_frame() -> None:
    patch = polygon_mask_in_bbox([[10000, 12000], [10003, 12000], [10003, 12002]], (16384, 16384))
    # Hypotenuse x = 10000 + 1.5 (y - 12000) is a left edge: row 0 (y' = 0.5) starts at x = 10000.75,
    # so centres 10001.5 and 10002.5 are in; row 1 (y' = 1.5) starts at 10002.25: only 10002.5.
    assert (patch.x0, patch.y0, patch.frame_shape) == (10001, 12000, (16384, 16384))
    assert np.array_equal(patch.bits, arr(["##", ".#"]))


def test_dab_ties_are_in() -> None:
    y0, x0, bits = brush_dab((2.5, 2.5), 1.0, (5, 5))
    assert (y0, x0) == (1, 1)
    assert np.array_equal(bits, arr([".#.", "###", ".#."]))
    # R = 1.25 around (1.75, 1.5): a 3-4-5 tie at (dx, dy) = (0.75, -1) and (0.75, 1) and a straight
    # tie at (-1.25, 0) are in; (-1.25, +-1) is 1.60 away and out; column 3 (dx = 1.75) is out.
    y0, x0, bits = brush_dab((1.75, 1.5), 1.25, (4, 4))
    assert (y0, x0) == (0, 0)
    assert np.array_equal(bits, arr([".##", "###", ".##"]))
    assert brush_dab((2.5, 2.5), 0.0, (5, 5))[2].tolist() == [[True]]
    assert brush_dab((2.0, 2.0), 0.0, (5, 5))[2].shape == (0, 0)
    with pytest.raises(ValidationError):
        brush_dab((2.0, 2.0), -1.0, (5, 5))


def test_stroke_is_a_capsule() -> None:
    want = arr(["####.", "#####", "####."])
    assert np.array_equal(rasterize_stroke([[0.5, 1.5], [3.5, 1.5]], 1.0, (3, 5)), want)
    y0, x0, bits = stroke_patch([[0.5, 1.5], [3.5, 1.5]], 1.0, (3, 5))
    assert (y0, x0) == (0, 0)
    assert np.array_equal(bits, want)


def test_annotations_by_kind() -> None:
    shape = (3, 4)
    poly = Annotation(Kind.POLYGON, "a", points=np.array([[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]]))
    assert np.array_equal(rasterize_annotation(poly, shape), arr(["##..", "##..", "...."]))
    box = Annotation(Kind.BOX, "a", box=(2.0, 1.0, 4.0, 3.0))
    assert np.array_equal(rasterize_annotation(box, shape), arr(["....", "..##", "..##"]))
    point = Annotation(Kind.POINT, "a", points=np.array([[2.0, 1.999]]))
    assert np.array_equal(rasterize_annotation(point, shape), arr(["....", "..#.", "...."]))
    outside = Annotation(Kind.POINT, "a", points=np.array([[4.0, 0.0]]))
    assert not rasterize_annotation(outside, shape).any()
    # A polyline covers centres within 0.5 (inclusive): along y = 1.5 one row, along y = 1.0 two.
    line = Annotation(Kind.POLYLINE, "a", points=np.array([[0.5, 1.5], [2.5, 1.5]]))
    assert np.array_equal(rasterize_annotation(line, shape), arr(["....", "###.", "...."]))
    line = Annotation(Kind.POLYLINE, "a", points=np.array([[0.5, 1.0], [2.5, 1.0]]))
    assert np.array_equal(rasterize_annotation(line, shape), arr(["###.", "###.", "...."]))
    bits = arr(["#...", "....", "...#"])
    mask = Annotation(Kind.MASK, "a", mask=MaskPatch.from_full(bits))
    assert np.array_equal(rasterize_annotation(mask, shape), bits)
    with pytest.raises(ValidationError):
        rasterize_annotation(mask, (4, 4))
    assert not rasterize_annotation(Annotation(Kind.CLASSIFICATION, "a"), shape).any()


def test_label_image_later_paints_over_earlier() -> None:
    onto = Ontology.from_dict({"classes": [{"name": "liver"}, {"name": "lesion"}]})
    anns = [
        Annotation(Kind.BOX, "liver", box=(0, 0, 3, 2)),
        Annotation(Kind.BOX, "lesion", box=(1, 1, 4, 2)),
        Annotation(Kind.CLASSIFICATION, "liver"),
    ]
    out = label_image(anns, onto, (3, 4))
    assert out.dtype == np.uint16
    assert out.tolist() == [[1, 1, 1, 0], [1, 2, 2, 2], [0, 0, 0, 0]]
    out = label_image(anns[::-1], onto, (3, 4))
    assert out.tolist() == [[1, 1, 1, 0], [1, 1, 1, 2], [0, 0, 0, 0]]
    with pytest.raises(ValidationError):
        label_image([Annotation(Kind.BOX, "kidney", box=(0, 0, 1, 1))], onto, (3, 4))


def test_bad_inputs_raise_validation_errors() -> None:
    with pytest.raises(ValidationError):
        rasterize_polygon([[0, 0], [1, float("nan")], [1, 1]], (2, 2))
    with pytest.raises(ValidationError):
        rasterize_polygon([0, 1, 2], (2, 2))
    with pytest.raises(ValidationError):
        rasterize_box((0, 0, 1), (2, 2))
    with pytest.raises(ValidationError):
        rasterize_box((0, 0, 1, 1), (2, -1))
