"""Annotation values, ontologies and the mask codec (existing app.core modules)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.errors import ValidationError
from app.core.mask_codec import decode_mask, encode_mask
from app.core.ontology import Ontology

# --- annotations --------------------------------------------------------------------------------
PLAIN = [
    {"kind": "polygon", "label": "liver", "frame": 2, "points": [[1.0, 2.0], [5.5, 2.0], [3.0, 7.25]]},
    {"kind": "polyline", "label": "vessel", "points": [[0.0, 0.0], [4.0, 1.0]]},
    {"kind": "box", "label": "lesion", "frame": 12, "box": [1.0, 2.0, 3.0, 4.5]},
    {"kind": "point", "label": "landmark", "point": [3.5, 4.5], "confidence": 0.5, "source": "model:x@1"},
    {"kind": "classification", "label": "normal", "attributes": {"confidence": "sure"}},
]


@pytest.mark.parametrize("data", PLAIN, ids=lambda d: d["kind"])
def test_annotation_round_trip(data: dict) -> None:
    ann = Annotation.from_dict(data)
    out = ann.to_dict()
    for key, value in data.items():
        assert out[key] == value
    assert Annotation.from_dict(out).same_content(ann)


def test_mask_annotation_round_trip_full_and_patch() -> None:
    full = np.zeros((5, 6), bool)
    full[1:3, 2:5] = True
    ann = Annotation.from_dict({"kind": "mask", "label": "liver", "mask": full}, frame_shape=(5, 6))
    assert ann.mask is not None and (ann.mask.x0, ann.mask.y0, ann.mask.bits.shape) == (2, 1, (2, 3))
    assert np.array_equal(ann.to_dict()["mask"], full)
    assert ann.to_dict(full_mask=False)["mask"] == ann.mask
    assert Annotation.from_dict(ann.to_dict(), frame_shape=(5, 6)).same_content(ann)


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "circle", "label": "a"},
        {"kind": "polygon", "label": "a", "points": [[0, 0], [1, 1]]},
        {"kind": "polygon", "label": "a", "points": [[0, 0], [1, "x"], [2, 2]]},
        {"kind": "polygon", "label": "a", "points": [[0, 0], [1, float("inf")], [2, 2]]},
        {"kind": "polygon", "label": "", "points": [[0, 0], [1, 0], [1, 1]]},
        {"kind": "box", "label": "a", "box": [3, 0, 1, 1]},
        {"kind": "box", "label": "a", "box": [0, 0, 1]},
        {"kind": "point", "label": "a", "point": [1]},
        {"kind": "mask", "label": "a"},
        {"kind": "mask", "label": "a", "mask": np.zeros((2, 2, 2))},
        {"kind": "point", "label": "a", "point": [1, 1], "confidence": 1.5},
        {"kind": "point", "label": "a", "point": [1, 1], "frame": -1},
        ["not", "a", "mapping"],
    ],
)
def test_annotation_validation_errors(data: object) -> None:
    with pytest.raises(ValidationError):
        Annotation.from_dict(data)  # type: ignore[arg-type]


def test_mask_shape_must_match_frame() -> None:
    with pytest.raises(ValidationError):
        Annotation.from_dict({"kind": "mask", "label": "a", "mask": np.ones((2, 3))}, frame_shape=(3, 2))
    with pytest.raises(ValidationError):
        MaskPatch(2, 0, np.ones((1, 2), bool), (1, 3))


# --- ontology -----------------------------------------------------------------------------------
ONTO = {
    "classes": [
        {
            "name": "liver",
            "color": "#C0504D",
            "hotkey": "1",
            "kinds": ["polygon", "mask"],
            "attributes": [
                {
                    "name": "confidence",
                    "type": "enum",
                    "options": ["sure", "unsure"],
                    "children": {"unsure": [{"name": "why", "type": "text", "required": True}]},
                },
                {"name": "size", "type": "number", "min": 0, "max": 10},
            ],
        },
        {"name": "lesion", "hotkey": "2"},
    ]
}


def test_ontology_round_trip_and_index() -> None:
    onto = Ontology.from_dict(ONTO)
    assert onto.get("liver").color == "#c0504d"
    assert onto.index_of("liver") == 1 and onto.index_of("lesion") == 2
    assert Ontology.from_dict(onto.to_dict()) == onto


def test_nested_attribute_validation() -> None:
    onto = Ontology.from_dict(ONTO)
    poly = np.array([[0, 0], [1, 0], [1, 1]], dtype=float)
    ok = Annotation(
        Kind.POLYGON,
        "liver",
        points=poly,
        attributes={"confidence": "unsure", "confidence/unsure": {"why": "blur"}},
    )
    assert onto.check(ok) == []
    missing = ok.evolve(attributes={"confidence": "unsure", "confidence/unsure": {}})
    assert any("why" in p for p in onto.check(missing))
    assert onto.check(ok.evolve(attributes={"confidence": "maybe"}))
    assert onto.check(ok.evolve(attributes={"size": 11}))
    assert onto.check(ok.evolve(attributes={"size": True}))
    assert onto.check(ok.evolve(attributes={"colour": "red"}))
    assert onto.check(ok.evolve(kind=Kind.POLYLINE))
    assert onto.check(ok.evolve(label="kidney"))
    with pytest.raises(ValidationError):
        onto.validate(ok.evolve(attributes={"size": -1}))


@pytest.mark.parametrize(
    "data",
    [
        {"classes": [{"name": "a"}, {"name": "a"}]},
        {"classes": [{"name": "a", "hotkey": "1"}, {"name": "b", "hotkey": "1"}]},
        {"classes": [{"name": "a", "color": "red"}]},
        {"classes": [{"name": "a", "color": "#12345"}]},
        {"classes": [{"name": ""}]},
        {"classes": [{"name": "a", "kinds": ["blob"]}]},
        {"classes": [{"name": "a", "attributes": [{"name": "x", "type": "enum"}]}]},
        {"classes": [{"name": "a", "attributes": [{"name": "x", "type": "colour"}]}]},
        {"classes": [{"name": "a", "attributes": [{"name": "x"}, {"name": "x"}]}]},
        {"classes": [{"name": "a", "attributes": [{"name": "x", "type": "enum", "options": ["p", "p"]}]}]},
        {
            "classes": [
                {
                    "name": "a",
                    "attributes": [{"name": "x", "type": "enum", "options": ["p"], "children": {"q": []}}],
                }
            ]
        },
        {
            "classes": [
                {
                    "name": "a",
                    "attributes": [
                        {"name": "x", "type": "enum", "options": ["p"], "children": {"p": [{"name": ""}]}}
                    ],
                }
            ]
        },
        {"classes": "liver"},
        {"nothing": []},
    ],
)
def test_ontology_validation_errors(data: dict) -> None:
    with pytest.raises(ValidationError):
        Ontology.from_dict(data)


# --- mask codec ---------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(full=st.tuples(st.integers(1, 40), st.integers(1, 40)).flatmap(lambda s: arrays(np.bool_, s)))
def test_mask_codec_round_trip(full: np.ndarray) -> None:
    patch = MaskPatch.from_full(full)
    back = decode_mask(encode_mask(patch))
    assert back == patch
    assert (back.x0, back.y0, back.bits.shape, back.frame_shape) == (
        patch.x0,
        patch.y0,
        patch.bits.shape,
        patch.frame_shape,
    )


def test_mask_codec_empty_and_odd_sizes() -> None:
    for shape in [(1, 1), (3, 7), (9, 1), (17, 13)]:
        empty = MaskPatch.from_full(np.zeros(shape, bool))
        assert decode_mask(encode_mask(empty)) == empty
    odd = np.zeros((7, 13), bool)
    odd[6, 12] = odd[0, 0] = True
    assert np.array_equal(decode_mask(encode_mask(MaskPatch.from_full(odd))).to_full(), odd)


def test_mask_codec_corrupt_data() -> None:
    data = encode_mask(MaskPatch.from_full(np.eye(5, dtype=bool)))
    with pytest.raises(ValidationError):
        decode_mask(data[:10])
    with pytest.raises(ValidationError):
        decode_mask(b"XXXX" + data[4:])
    with pytest.raises(ValidationError):
        decode_mask(data[:28] + b"garbage")
    short = data[:28] + zlib.compress(b"\x00")
    with pytest.raises(ValidationError):
        decode_mask(short)
