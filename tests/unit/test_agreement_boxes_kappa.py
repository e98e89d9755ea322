"""Box matching (Hungarian, gated at the threshold) and Cohen/Fleiss kappa on published examples."""

from __future__ import annotations

import pytest

from app.core.errors import ValidationError
from app.workflow.agreement import box_agreement, box_iou, cohen_kappa, fleiss_kappa


def _span(x0: float, x1: float) -> tuple[float, float, float, float]:
    """A box of height 10: its IoU with another such box is the 1-D interval IoU."""
    return (x0, 0.0, x1, 10.0)


def test_box_iou_by_hand() -> None:
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    assert box_iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0


def test_hungarian_beats_greedy() -> None:
    # A1=[0,10] A2=[3,13]; B1=[1,11] B2=[-2,8]
    # IoU A1-B1 9/11 (the best single pair), A1-B2 8/12, A2-B1 8/12, A2-B2 5/15.
    # Greedy takes A1-B1 first and is left with A2-B2 (1/3 < 0.5): 1 match, F1 0.5.
    # The optimum A1-B2 + A2-B1 matches both at 2/3.
    score = box_agreement({"a": [_span(0, 10), _span(3, 13)], "b": [_span(1, 11), _span(-2, 8)]})
    assert score.matches == 2
    assert score.matched_iou == pytest.approx(2 / 3)
    assert score.f1 == 1.0
    assert score.quality == pytest.approx(2 / 3)  # (2/3 + 2/3) / ((2 + 2) / 2)
    assert score.boxes == {"a": 2, "b": 2}


def test_sub_threshold_pairs_do_not_steal_a_match() -> None:
    # A1=[1,11] A2=[3,5]; B1=[4,8] B2=[3,8]: IoU A1-B1 0.4, A1-B2 0.5, A2-B1 0.2, A2-B2 0.4.
    # Ungated, 1 - IoU prefers A1-B1 + A2-B2 (0.8 > 0.7) and matches nothing at 0.5;
    # gating sub-threshold IoUs to 0 keeps the valid A1-B2.
    score = box_agreement({"a": [_span(1, 11), _span(3, 5)], "b": [_span(4, 8), _span(3, 8)]})
    assert score.matches == 1
    assert score.matched_iou == pytest.approx(0.5)
    assert score.f1 == pytest.approx(2 * 1 / 4)


def test_unmatched_boxes_are_misses_and_empty_rules() -> None:
    score = box_agreement({"a": [_span(0, 10), _span(20, 30)], "b": [_span(0, 10)]})
    assert score.f1 == pytest.approx(2 / 3)
    assert score.matched_iou == 1.0
    both_empty = box_agreement({"a": [], "b": []})
    assert (both_empty.f1, both_empty.quality, both_empty.matched_iou) == (1.0, 1.0, None)
    one_empty = box_agreement({"a": [_span(0, 10)], "b": []})
    assert (one_empty.f1, one_empty.quality) == (0.0, 0.0)


def test_three_labelers_mean_over_pairs() -> None:
    # a-b identical (F1 1), a-c and b-c disjoint (F1 0) -> mean F1 1/3
    score = box_agreement({"a": [_span(0, 10)], "b": [_span(0, 10)], "c": [_span(50, 60)]})
    assert score.pairs == 3
    assert score.f1 == pytest.approx(1 / 3)
    assert score.matches == 1


def test_box_threshold_validated() -> None:
    with pytest.raises(ValidationError):
        box_agreement({"a": [], "b": []}, iou_threshold=0.0)
    with pytest.raises(ValidationError):
        box_agreement({"a": []})


def test_cohen_kappa_textbook_table() -> None:
    # Wikipedia "Cohen's kappa": 50 items; yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    # po = 35/50 = 0.7; pe = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = (0.7-0.5)/(1-0.5) = 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert round(cohen_kappa(a, b), 3) == 0.4
    assert cohen_kappa(b, a) == pytest.approx(cohen_kappa(a, b))


def test_cohen_kappa_edge_cases() -> None:
    assert cohen_kappa(["x", "x", "x"], ["x", "x", "x"]) == 1.0  # pe = po = 1: defined as 1
    assert cohen_kappa(["x", "y"], ["y", "x"]) == pytest.approx(-1.0)
    with pytest.raises(ValidationError):
        cohen_kappa(["x"], ["x", "y"])
    with pytest.raises(ValidationError):
        cohen_kappa([], [])


# Wikipedia "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories -> 0.210
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_wikipedia_example() -> None:
    ratings = [[str(cat + 1) for cat, n in enumerate(row) for _ in range(n)] for row in FLEISS_TABLE]
    assert all(len(r) == 14 for r in ratings)
    assert round(fleiss_kappa(ratings), 3) == 0.210


def test_fleiss_kappa_edge_cases() -> None:
    assert fleiss_kappa([["a", "a", "a"], ["a", "a", "a"]]) == 1.0  # one category only
    assert fleiss_kappa([["a", "a"], ["b", "b"]]) == 1.0  # perfect agreement, two categories
    with pytest.raises(ValidationError):
        fleiss_kappa([["a", "b"], ["a"]])
    with pytest.raises(ValidationError):
        fleiss_kappa([["a"], ["b"]])
    with pytest.raises(ValidationError):
        fleiss_kappa([])
