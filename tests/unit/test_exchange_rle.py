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
