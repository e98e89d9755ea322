"""Annotation <-> row values: every kind survives the JSON/bytes round trip; masks stay compact."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from app.core.annotations import Annotation, Kind, MaskPatch
from app.storage.codec import annotation_from_row, annotation_values
from app.storage.engine import json_dumps


def _blob(size: int = 512, seed: int = 0) -> np.ndarray:
    """A smooth organ-like blob: a perturbed ellipse."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    cx, cy, rx, ry = size * 0.5, size * 0.45, size * 0.22, size * 0.16
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = 1 + 0.08 * np.sin(3 * angle + rng.uniform(0, 6)) + 0.05 * np.cos(5 * angle)
    return (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) <= wobble**2


def _roundtrip(ann: Annotation) -> Annotation:
    values = annotation_values(ann)
    row: dict[str, Any] = json.loads(json_dumps({k: v for k, v in values.items() if k != "mask"}))
    row.update(mask=values["mask"], id=7, version=3, asset_id=11)
    return annotation_from_row(row, "ana")


ANNOTATIONS = [
    Annotation(
        Kind.POLYGON,
        "liver",
        frame=2,
        points=np.array([[0.5, 1.25], [10, 1], [4, 8.75]]),
        attributes={"confidence": "sure", "n": 3},
        source="model:liver@3",
        confidence=0.8,
    ),
    Annotation(Kind.POLYLINE, "vessel", points=np.array([[0.0, 0.0], [3.0, 4.0]])),
    Annotation(Kind.POINT, "landmark", points=np.array([[5.5, 6.5]])),
    Annotation(Kind.BOX, "lesion", frame=12, box=(1.0, 2.0, 30.5, 40.0)),
    Annotation(Kind.MASK, "liver", frame=3, mask=MaskPatch.from_full(_blob(64))),
    Annotation(Kind.CLASSIFICATION, "normal", attributes={"quality": "good"}),
]


@pytest.mark.parametrize("ann", ANNOTATIONS, ids=[a.kind.value for a in ANNOTATIONS])
def test_every_kind_round_trips(ann: Annotation) -> None:
    back = _roundtrip(ann)
    assert back.same_content(ann)
    assert (back.source, back.confidence) == (ann.source, ann.confidence)
    assert (back.id, back.version, back.asset_id, back.author) == (7, 3, 11, "ana")


def test_bbox_columns() -> None:
    values = annotation_values(ANNOTATIONS[0])
    assert (values["bbox_x0"], values["bbox_y0"], values["bbox_x1"], values["bbox_y1"]) == (
        0.5,
        1.0,
        10.0,
        8.75,
    )
    mask_values = annotation_values(ANNOTATIONS[4])
    patch = ANNOTATIONS[4].mask
    assert patch is not None
    assert mask_values["bbox_x0"] == patch.x0 and mask_values["bbox_x1"] == patch.x0 + patch.bits.shape[1]
    assert annotation_values(ANNOTATIONS[5])["bbox_x0"] is None


def test_mask_is_stored_compactly_not_as_json() -> None:
    ann = Annotation(Kind.MASK, "liver", mask=MaskPatch.from_full(_blob(512)))
    values = annotation_values(ann)
    assert values["geometry"] is None
    assert isinstance(values["mask"], bytes) and len(values["mask"]) < 4096
    assert _roundtrip(ann).mask == ann.mask


def test_numpy_values_in_attributes_serialise() -> None:
    assert json.loads(json_dumps({"a": np.float32(0.5), "b": np.arange(3), "c": np.int64(2)})) == {
        "a": 0.5,
        "b": [0, 1, 2],
        "c": 2,
    }


def test_bulk_geometry_parse_gives_the_doubles_json_gives() -> None:
    """One numpy parse for a whole result (the fast read) equals json.loads row by row, for any
    double (exponents, subnormals, -0.0), SQLite's compact and PostgreSQL's spaced JSON text."""
    from app.storage.codec import parse_geometries

    rng = np.random.default_rng(3)
    values = rng.random(400) * 10.0 ** rng.integers(-30, 30, 400)
    values[:6] = [5e-324, 1.7976931348623157e308, -0.0, 0.1 + 0.2, -3.0, 1e-7]
    texts: list[str | None] = []
    for k in range(0, 400, 8):
        pts = values[k : k + 8].reshape(-1, 2).tolist()
        texts.append(json.dumps({"points": pts}, separators=(",", ":")))
        texts.append(json.dumps({"points": pts}))  # PostgreSQL's json text keeps the spaces
    texts += [None, "null", json.dumps({"box": [1.5, 2.0, 30.25, 4e2]})]
    got = parse_geometries(texts)
    for text, parsed in zip(texts, got, strict=True):
        if text is None or text == "null":
            assert parsed is None
            continue
        want = json.loads(text)
        key = "points" if "points" in want else "box"
        assert np.array_equal(np.asarray(parsed[key]), np.asarray(want[key]))
        assert np.array_equal(np.signbit(np.asarray(parsed[key])), np.signbit(np.asarray(want[key])))


@pytest.mark.parametrize(
    "odd", ['{"points": []}', '{"points": [[1, 2], [3]]}', '{"points": [[1, 2]], "extra": 1}', '{"other": 1}']
)
def test_bulk_geometry_parse_falls_back_to_json_for_other_forms(odd: str) -> None:
    from app.storage.codec import parse_geometries

    plain = json.dumps({"points": [[1.0, 2.0], [3.0, 4.0]]})
    got = parse_geometries([plain, odd])
    assert got[1] == json.loads(odd)
    assert np.array_equal(np.asarray(got[0]["points"]), [[1.0, 2.0], [3.0, 4.0]])
