"""Our numpy COCO RLE against pycocotools' own encoder and decoder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app.core.annotations import MaskPatch
from app.exchange import rle

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")
masks = arrays(bool, st.tuples(st.integers(1, 40), st.integers(1, 40)))


@settings(max_examples=200, deadline=None)
@given(masks)
def test_matches_pycocotools(mask: np.ndarray) -> None:
    from pycocotools import mask as coco_mask

    theirs = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    ours = rle.encode(mask)
    assert ours["counts"] == theirs["counts"].decode() and ours["size"] == list(theirs["size"])
    assert rle.encode(MaskPatch.from_full(mask)) == ours
    assert np.array_equal(rle.decode(ours), mask)
    assert np.array_equal(
        rle.decode({"size": ours["size"], "counts": rle.encode_counts(mask).tolist()}), mask
    )
    assert np.array_equal(coco_mask.decode(ours).astype(bool), mask)


def test_large_counts_and_edges() -> None:
    big = np.zeros((1024, 1024), dtype=bool)
    big[3:1000, 7:900] = True
    big[::2, 1000:] = True
    assert np.array_equal(rle.decode(rle.encode(big)), big)
    assert rle.encode(np.ones((4, 4), dtype=bool))["counts"] == rle.counts_to_string([0, 16])
    with pytest.raises(ValueError, match="add up"):
        rle.decode({"size": [2, 2], "counts": [1, 2]})
    with pytest.raises(ValueError, match="truncated"):
        rle.decode({"size": [2, 2], "counts": "1a"})


def _grid_polygon(step: float) -> st.SearchStrategy[np.ndarray]:
    coord = st.integers(int(-3 / step), int(20 / step)).map(lambda k: k * step)
    return st.lists(st.tuples(coord, coord), min_size=1, max_size=9).map(lambda p: np.array(p, dtype=float))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(_grid_polygon(0.5), _grid_polygon(0.25)), st.integers(1, 17), st.integers(1, 17)),
        min_size=1,
        max_size=12,
    )
)
def test_batched_spans_encode_as_one_mask_at_a_time(items: list[tuple[np.ndarray, int, int]]) -> None:
    """Many polygons on frames of several sizes, rasterised and encoded together (the COCO export's
    path) give exactly what each alone gives: the same pixels (centres on edges included, shapes
    leaving the frame, full columns that run on into the next) and pycocotools reads them so."""
    from pycocotools import mask as coco_mask

    from app.core.raster import polygon_mask_in_bbox, polygon_spans

    polygons = [p for p, _h, _w in items]
    shapes = [(h, w) for _p, h, w in items]
    objects, areas = rle.encode_spans(polygon_spans(polygons, shapes), shapes)
    for polygon, shape, got, area in zip(polygons, shapes, objects, areas.tolist(), strict=True):
        patch = polygon_mask_in_bbox(polygon, shape)
        assert got == rle.encode(patch) and area == patch.area
        assert np.array_equal(coco_mask.decode(got).astype(bool), patch.to_full())


def test_batched_spans_cover_whole_frames_and_nothing() -> None:
    from app.core.raster import polygon_spans

    full = np.array([[0.0, 0.0], [5.0, 0.0], [5.0, 3.0], [0.0, 3.0]])
    outside = np.array([[-9.0, -9.0], [-5.0, -9.0], [-5.0, -5.0]])
    shapes = [(3, 5), (4, 4), (2, 6)]
    objects, areas = rle.encode_spans(polygon_spans([full, outside, full], shapes), shapes)
    assert objects[0] == rle.encode(np.ones((3, 5), dtype=bool)) and areas.tolist() == [15, 0, 10]
    assert objects[1] == rle.encode(np.zeros((4, 4), dtype=bool))
    assert objects[2] == rle.encode(np.pad(np.ones((2, 5), dtype=bool), ((0, 0), (0, 1))))
