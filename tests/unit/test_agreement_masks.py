"""Pixel agreement: hand-computed IoU/Dice on tiny masks and polygons rasterised by the centre rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.workflow.agreement import annotation_masks, disagreement_map, item_agreement, mask_agreement


def _mask(rows: slice, cols: slice, shape: tuple[int, int] = (4, 4)) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[rows, cols] = True
    return m


# A: rows 0-1, cols 0-1 (4 px); B: rows 0-1, cols 1-2 (4 px); C: rows 0-1, cols 0-2 (6 px)
A = _mask(slice(0, 2), slice(0, 2))
B = _mask(slice(0, 2), slice(1, 3))
C = _mask(slice(0, 2), slice(0, 3))


def test_two_masks_known_overlap() -> None:
    # |A&B| = 2, |A|B| = 6 -> IoU 2/6; Dice 2*2/(4+4) = 1/2
    score = mask_agreement([A, B])
    assert score.iou == pytest.approx(2 / 6)
    assert score.dice == pytest.approx(1 / 2)
    assert score.pairs == 1


def test_three_labelers_mean_pairwise() -> None:
    # A-B: IoU 2/6, Dice 4/8; A-C: IoU 4/6, Dice 8/10; B-C: IoU 4/6, Dice 8/10
    score = mask_agreement([A, B, C])
    assert score.iou == pytest.approx((2 / 6 + 4 / 6 + 4 / 6) / 3)  # 5/9
    assert score.dice == pytest.approx((0.5 + 0.8 + 0.8) / 3)  # 0.7
    assert score.pairs == 3


def test_empty_mask_rules() -> None:
    empty = np.zeros((4, 4), dtype=bool)
    assert mask_agreement([empty, empty]).to_dict() == {"iou": 1.0, "dice": 1.0, "pairs": 1}
    assert mask_agreement([empty, A]).iou == 0.0
    assert mask_agreement([empty, A]).dice == 0.0


def test_mask_agreement_rejects_bad_input() -> None:
    with pytest.raises(ValidationError):
        mask_agreement([A])
    with pytest.raises(ValidationError):
        mask_agreement([A, np.zeros((3, 4), dtype=bool)])


def test_disagreement_map_counts_labelers() -> None:
    counts = disagreement_map([A, B, C])
    assert counts.dtype == np.uint8
    expected = np.zeros((4, 4), dtype=np.uint8)
    expected[0:2, 0] = 2  # A, C
    expected[0:2, 1] = 3  # A, B, C
    expected[0:2, 2] = 2  # B, C
    np.testing.assert_array_equal(counts, expected)


def _poly(label: str, pts: list[tuple[float, float]], frame: int = 0) -> Annotation:
    return Annotation(kind=Kind.POLYGON, label=label, frame=frame, points=np.array(pts, dtype=float))


# Triangle (0,0)-(4,0)-(0,4): centres with c + r + 1 < 4; the hypotenuse is a right/bottom edge,
# so centres on it (c + r = 3) are out -> 3 + 2 + 1 = 6 pixels.
TRIANGLE = [(0.0, 0.0), (4.0, 0.0), (0.0, 4.0)]
# Rectangle x in [0, 2], y in [0, 4]: columns 0-1, rows 0-3 -> 8 pixels.
RECT = [(0.0, 0.0), (2.0, 0.0), (2.0, 4.0), (0.0, 4.0)]


def test_polygons_through_the_rasteriser() -> None:
    masks = annotation_masks(
        {"ann": [_poly("liver", TRIANGLE)], "bob": [_poly("liver", RECT)]}, "liver", (4, 4)
    )
    assert int(masks["ann"].sum()) == 6
    assert int(masks["bob"].sum()) == 8
    # overlap: column 0 rows 0-2 (3) + column 1 rows 0-1 (2) = 5; union 6 + 8 - 5 = 9
    score = mask_agreement(list(masks.values()))
    assert score.iou == pytest.approx(5 / 9)
    assert score.dice == pytest.approx(10 / 14)


def test_centre_rule_ties_on_edges() -> None:
    # square [0.5, 2.5]^2: centres 0.5 (left/top edge: in), 1.5 (in), 2.5 (right/bottom edge: out)
    sq = [(0.5, 0.5), (2.5, 0.5), (2.5, 2.5), (0.5, 2.5)]
    masks = annotation_masks({"a": [_poly("liver", sq)]}, "liver", (4, 4))
    np.testing.assert_array_equal(masks["a"], _mask(slice(0, 2), slice(0, 2)))


def test_annotation_masks_union_class_and_frame_filter() -> None:
    box = Annotation(kind=Kind.BOX, label="liver", box=(2.0, 2.0, 4.0, 4.0))
    mask = Annotation(
        kind=Kind.MASK, label="liver", mask=MaskPatch.from_full(_mask(slice(0, 1), slice(3, 4)))
    )
    other_class = _poly("spleen", RECT)
    other_frame = _poly("liver", RECT, frame=1)
    masks = annotation_masks({"a": [box, mask, other_class, other_frame], "b": []}, "liver", (4, 4), frame=0)
    expected = _mask(slice(2, 4), slice(2, 4))
    expected[0, 3] = True
    np.testing.assert_array_equal(masks["a"], expected)
    assert not masks["b"].any()  # marking nothing is a vote for "absent"


ONTOLOGY = Ontology.from_dict(
    {
        "classes": [
            {"name": "liver", "kinds": ["polygon", "mask"]},
            {"name": "lesion", "kinds": ["box"]},
            {"name": "normal", "kinds": ["classification"]},
            {"name": "abnormal", "kinds": ["classification"]},
            {"name": "spleen", "kinds": ["polygon"]},
        ]
    }
)


def _cls(label: str) -> Annotation:
    return Annotation(kind=Kind.CLASSIFICATION, label=label)


def test_item_agreement_per_class_and_overall() -> None:
    lesion = Annotation(kind=Kind.BOX, label="lesion", box=(0.0, 0.0, 10.0, 10.0))
    lesion_shifted = Annotation(kind=Kind.BOX, label="lesion", box=(0.0, 0.0, 10.0, 5.0))  # IoU 0.5
    by_labeler = {
        "ann": [_poly("liver", TRIANGLE), lesion, _cls("normal")],
        "bob": [_poly("liver", RECT), lesion_shifted, _cls("abnormal")],
    }
    result = item_agreement(by_labeler, ONTOLOGY, (16, 16))
    scores = {(c.label, c.family): c for c in result.classes}
    assert set(scores) == {
        ("liver", "region"),
        ("lesion", "box"),
        ("normal", "classification"),
        ("abnormal", "classification"),
    }  # spleen: used by nobody, left out
    assert scores["liver", "region"].score == pytest.approx(10 / 14)
    assert scores["liver", "region"].details["iou"] == pytest.approx(5 / 9)
    # one match at IoU 0.5 (threshold inclusive): F1 1, quality 0.5
    assert scores["lesion", "box"].details["f1"] == 1.0
    assert scores["lesion", "box"].score == pytest.approx(0.5)
    assert scores["normal", "classification"].score == 0.0
    assert scores["abnormal", "classification"].score == 0.0
    assert result.overall == pytest.approx((10 / 14 + 0.5 + 0 + 0) / 4)
    json.dumps(result.to_dict())  # JSON-able for the review pane


def test_item_agreement_pools_frames_volumetrically() -> None:
    by_labeler = {
        "a": [_poly("liver", RECT, frame=0), _poly("liver", RECT, frame=2)],
        "b": [_poly("liver", RECT, frame=0)],
    }
    result = item_agreement(by_labeler, ONTOLOGY, (4, 4), frame_count=3)
    (liver,) = result.classes
    # a: 16 px over frames 0 and 2, b: 8 px on frame 0 -> IoU 8/16, Dice 16/24
    assert liver.details["iou"] == pytest.approx(0.5)
    assert liver.score == pytest.approx(2 / 3)
    assert liver.details["frames"] == [0, 2]


def test_item_agreement_edge_cases() -> None:
    assert item_agreement({"a": [], "b": []}, ONTOLOGY, (4, 4)).overall is None
    with pytest.raises(ValidationError):
        item_agreement({"a": []}, ONTOLOGY, (4, 4))
    with pytest.raises(ValidationError):
        item_agreement({"a": [_poly("liver", RECT, frame=1)], "b": []}, ONTOLOGY, (4, 4), frame_count=1)
    with pytest.raises(ValidationError):
        item_agreement({"a": [_poly("kidney", RECT)], "b": []}, ONTOLOGY, (4, 4))


masks_4x5 = arrays(np.bool_, (4, 5))


@settings(max_examples=200, deadline=None)
@given(st.lists(masks_4x5, min_size=2, max_size=4))
def test_mask_agreement_properties(masks: list[np.ndarray]) -> None:
    score = mask_agreement(masks)
    assert 0.0 <= score.iou <= score.dice <= 1.0  # Dice >= IoU for every pair
    reverse = mask_agreement(masks[::-1])
    assert reverse.iou == pytest.approx(score.iou)
    assert reverse.dice == pytest.approx(score.dice)
    same = mask_agreement([masks[0]] * len(masks))
    assert (same.iou, same.dice) == (1.0, 1.0)
