"""Consensus labels in the kinds the ontology allows (issue #16): box matching and medians, masks
outlined as polygons, and what is skipped with its reason."""

from __future__ import annotations

import numpy as np
import pytest
from support.ontology_check import assert_ontology_allows

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.ontology import Ontology
from app.core.raster import rasterize_annotation
from app.workflow.consensus import build_consensus, consensus_kind
from app.workflow.consensus_boxes import Marked, boxes_of, match_boxes, median_box

ONTOLOGY = Ontology.from_dict(
    {
        "classes": [
            {"name": "nodule", "kinds": ["box"]},
            {"name": "liver", "kinds": ["polygon", "mask", "box"]},
            {"name": "vessel", "kinds": ["polygon"]},
            {"name": "both", "kinds": ["box", "polygon"]},
            {"name": "path", "kinds": ["polyline"]},
            {"name": "tumour", "kinds": ["box"], "attributes": [{"name": "grade", "type": "enum",
                                                                  "options": ["1", "2"], "required": True}]},
        ]
    }
)  # fmt: skip
SHAPE = (64, 64)


def _box(x0: float, y0: float, x1: float, y1: float, label: str = "nodule", **attrs: str) -> Annotation:
    return Annotation(kind=Kind.BOX, label=label, box=(x0, y0, x1, y1), attributes=attrs)


def _poly(x0: float, y0: float, x1: float, y1: float, label: str) -> Annotation:
    points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)
    return Annotation(kind=Kind.POLYGON, label=label, points=points)


def _marks(*boxes: tuple[str, tuple[float, float, float, float]]) -> list[Marked]:
    return [Marked(name, b, _box(*b)) for name, b in boxes]


def test_complete_linkage_does_not_chain_and_keeps_one_box_per_labeler() -> None:
    # a~b (IoU 0.6) and b~c (0.6) but a~c only 0.33: b joins a (the tie goes in input order)
    a, b, c = (0.0, 0.0, 10.0, 10.0), (2.5, 0.0, 12.5, 10.0), (5.0, 0.0, 15.0, 10.0)
    groups = match_boxes(_marks(("lee", a), ("kim", b), ("max", c)))
    assert [[m.labeler for m in g] for g in groups] == [["lee", "kim"], ["max"]]
    # two boxes of one labeler are two objects, however much they overlap
    groups = match_boxes(_marks(("lee", a), ("lee", a), ("kim", a)))
    assert sorted(len(g) for g in groups) == [1, 2]


def test_median_box_per_coordinate() -> None:
    assert median_box([(0, 0, 10, 10), (2, 1, 11, 14), (1, 5, 30, 12)]) == (1.0, 1.0, 11.0, 12.0)
    assert median_box([(0, 0, 10, 10), (2, 2, 12, 14)]) == (1.0, 1.0, 11.0, 12.0)  # even: mean of two


def test_boxes_of_other_shapes() -> None:
    bits = np.zeros((8, 8), dtype=bool)
    bits[1:3, 1:4] = True
    bits[5:7, 5:7] = True  # a second region: a second box
    mask = Annotation(kind=Kind.MASK, label="nodule", mask=MaskPatch.from_full(bits))
    assert boxes_of(mask) == [(1.0, 1.0, 4.0, 3.0), (5.0, 5.0, 7.0, 7.0)]
    assert boxes_of(_poly(1, 2, 5, 7, "nodule")) == [(1.0, 2.0, 5.0, 7.0)]
    flat = Annotation(kind=Kind.POLYLINE, label="nodule", points=np.array([[0.0, 3.0], [9.0, 3.0]]))
    assert boxes_of(flat) == []  # no area, no box


@pytest.mark.parametrize("method", ["majority", "staple"])
def test_a_box_only_class_gets_median_boxes_of_the_majority(method: str) -> None:
    by_labeler = {
        "lee": [_box(10, 10, 30, 30), _box(40, 40, 50, 50)],
        "kim": [_box(12, 9, 31, 28)],
        "max": [_box(11, 12, 29, 31), _box(41, 40, 51, 50)],
        "ann": [],  # boxed nothing: a vote that nothing is there
    }
    result = build_consensus(by_labeler, ONTOLOGY, SHAPE, method=method)  # type: ignore[arg-type]
    assert_ontology_allows(ONTOLOGY, result.annotations)
    # 3 of 4 boxed the first object; 2 of 4 is no majority
    (nodule,) = result.annotations
    assert (nodule.kind, nodule.box, nodule.source) == (
        Kind.BOX,
        (11.0, 10.0, 30.0, 30.0),
        f"consensus:{method}",
    )
    assert result.staple_stats == {} and result.skipped == []


def test_a_polygon_only_class_gets_the_pixel_consensus_outlined() -> None:
    by_labeler = {n: [_poly(x, 4, x + 20, 20, "vessel")] for n, x in (("a", 0), ("b", 4), ("c", 8))}
    result = build_consensus(by_labeler, ONTOLOGY, SHAPE, method="staple")
    assert_ontology_allows(ONTOLOGY, result.annotations)
    (vessel,) = result.annotations
    assert vessel.kind is Kind.POLYGON
    expected = np.zeros(SHAPE, dtype=bool)
    expected[4:20, 4:24] = True  # columns two of three marked
    np.testing.assert_array_equal(rasterize_annotation(vessel, SHAPE), expected)
    assert set(result.staple_stats) == {"vessel"}


def test_kind_choice_per_class() -> None:
    assert consensus_kind(ONTOLOGY.get("liver"), {Kind.BOX}) is Kind.MASK  # masks allowed: a mask
    assert consensus_kind(ONTOLOGY.get("both"), {Kind.BOX}) is Kind.BOX  # all boxes: a box
    assert consensus_kind(ONTOLOGY.get("both"), {Kind.BOX, Kind.POLYGON}) is Kind.POLYGON
    assert consensus_kind(ONTOLOGY.get("nodule"), {Kind.POLYGON}) is Kind.BOX
    assert consensus_kind(ONTOLOGY.get("path"), {Kind.POLYLINE}) is None


def test_what_the_ontology_refuses_is_skipped_with_the_reason() -> None:
    line = np.array([[0.0, 3.0], [9.0, 8.0]])
    by_labeler = {
        n: [
            Annotation(kind=Kind.POLYLINE, label="path", frame=1, points=line),
            _box(10, 10, 30, 30, "tumour", grade=grade),
            Annotation(kind=Kind.CLASSIFICATION, label="nodule"),
        ]
        for n, grade in (("a", "1"), ("b", "2"))
    }
    result = build_consensus(by_labeler, ONTOLOGY, SHAPE)
    assert result.annotations == []
    assert result.skipped == [
        ("nodule", 0, "class 'nodule' does not allow classification; allowed: ['box']"),
        ("path", 1, "class 'path' does not allow mask, box or polygon; allowed: ['polyline']"),
        ("tumour", 0, "tumour: attribute 'grade' is required"),  # the voters disagreed on it
    ]
    agreed = {n: [_box(10, 10, 30, 30, "tumour", grade="2")] for n in ("a", "b")}
    (tumour,) = build_consensus(agreed, ONTOLOGY, SHAPE).annotations
    assert dict(tumour.attributes) == {"grade": "2"}
