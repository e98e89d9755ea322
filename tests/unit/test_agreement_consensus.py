"""Consensus sampling, majority vote, STAPLE on a real shape, and consensus annotations."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.ontology_check import assert_ontology_allows

from app.core.annotations import Annotation, Kind
from app.core.errors import ValidationError
from app.core.geometry import dice
from app.core.ontology import Ontology
from app.core.raster import rasterize_polygon
from app.workflow.consensus import (
    build_consensus,
    consensus_annotations,
    consensus_plan,
    in_consensus_sample,
    majority_vote,
    may_label,
    staple,
)

N_IDS = 100_000


def _share(seed: str, share: float, n: int = N_IDS) -> set[int]:
    return {i for i in range(n) if in_consensus_sample(i, seed, share)}


def test_sample_share_within_four_sigma() -> None:
    share = 0.2
    sigma = math.sqrt(share * (1 - share) / N_IDS)  # binomial: ~0.00126
    hits = _share("project-a", share)
    assert abs(len(hits) / N_IDS - share) < 4 * sigma


def test_sample_is_deterministic_and_seed_dependent() -> None:
    a = _share("project-a", 0.2, 20_000)
    assert a == _share("project-a", 0.2, 20_000)
    b = _share("project-b", 0.2, 20_000)
    assert a != b
    # independent seeds: the overlap is about share^2 of the ids (0.04 +- 4 sigma)
    sigma = math.sqrt(0.04 * 0.96 / 20_000)
    assert abs(len(a & b) / 20_000 - 0.04) < 4 * sigma


def test_sample_nested_in_share() -> None:
    # u < share: raising the share only adds items, it never drops earlier ones
    assert _share("s", 0.1, 5_000) <= _share("s", 0.3, 5_000)


def test_share_zero_and_one_exact() -> None:
    assert not _share("s", 0.0, 10_000)
    assert _share("s", 1.0, 10_000) == set(range(10_000))


def test_sample_input_validation() -> None:
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ValidationError):
            in_consensus_sample(1, "s", bad)
    with pytest.raises(ValidationError):
        in_consensus_sample("7", "s", 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        consensus_plan([1], share=0.5, count=0, seed="s")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 10**9), max_size=50),
    st.floats(0.0, 1.0),
    st.integers(1, 7),
    st.text(max_size=8),
)
def test_consensus_plan_never_exceeds_count(ids: list[int], share: float, count: int, seed: str) -> None:
    plan = consensus_plan(ids, share=share, count=count, seed=seed)
    assert set(plan) == set(ids)
    for asset_id, required in plan.items():
        assert required == (count if in_consensus_sample(asset_id, seed, share) else 1)
        assert 1 <= required <= count


def test_plan_share_and_never_twice_to_one_person() -> None:
    """Simulated blind labeling: users pull random items; may_label keeps every copy distinct."""
    plan = consensus_plan(range(2_000), share=0.2, count=3, seed="site")
    sampled = [a for a, n in plan.items() if n == 3]
    assert abs(len(sampled) / 2_000 - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 2_000)
    users = [f"user{i}" for i in range(5)]
    labeled_by: dict[int, list[str]] = {a: [] for a in plan}
    rng = random.Random(1)
    for _ in range(40_000):
        asset, user = rng.choice(list(plan)), rng.choice(users)
        if may_label(plan[asset], labeled_by[asset], user):
            labeled_by[asset].append(user)
    for asset, who in labeled_by.items():
        assert len(who) == len(set(who))  # never twice to one person
        assert len(who) <= plan[asset]
    assert all(len(labeled_by[a]) == 3 for a in sampled)  # enough pulls to fill every copy


# --- majority vote ---------------------------------------------------------------------------------
def test_majority_vote_ties_are_background() -> None:
    a = np.array([[1, 1, 0, 0]], dtype=bool)
    b = np.array([[1, 0, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(majority_vote([a, b]), [[True, False, False, False]])  # 1 of 2: tie, out
    c = np.array([[1, 1, 1, 0]], dtype=bool)
    d = np.array([[0, 0, 1, 1]], dtype=bool)
    # votes per pixel over 4 labelers: 3, 2, 3, 1 -> only 3/4 > 0.5
    np.testing.assert_array_equal(majority_vote([a, b, c, d]), [[True, False, True, False]])
    np.testing.assert_array_equal(majority_vote([a, b, c, d], threshold=0.0), [[True, True, True, True]])
    with pytest.raises(ValidationError):
        majority_vote([a], threshold=1.0)
    with pytest.raises(ValidationError):
        majority_vote([])


# --- STAPLE on a real shape ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def coin() -> np.ndarray:
    import skimage.io
    from scipy import ndimage

    from app.sample_data import skimage_images

    image = skimage.io.imread(skimage_images() / "coins.png")
    labels, _ = ndimage.label(image > 110)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    # a whole coin away from the border (the largest component touches the top edge)
    boxes = ndimage.find_objects(labels)
    for k in np.argsort(sizes)[::-1]:
        sl = boxes[k - 1]
        if min(sl[0].start, sl[1].start) > 8 and sl[1].stop < image.shape[1] - 8:
            break
    ys, xs = slice(sl[0].start - 8, sl[0].stop + 8), slice(sl[1].start - 8, sl[1].stop + 8)
    truth = ndimage.binary_fill_holes(labels[ys, xs] == k)
    assert truth.sum() > 1000
    return np.asarray(truth)


def _noisy(truth: np.ndarray, miss: float, rng: np.random.Generator) -> np.ndarray:
    """Drop ``miss`` of the foreground and add 2 % false positives on the background."""
    u = rng.random(truth.shape)
    return np.where(truth, u >= miss, u < 0.02)


def test_staple_on_noisy_coin(coin: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    misses = (0.10, 0.15, 0.20)
    raters = [_noisy(coin, m, rng) for m in misses]
    consensus, sens, spec = staple(raters)
    assert consensus.shape == coin.shape and consensus.dtype == bool
    rater_dice = [dice(r, coin) for r in raters]
    assert dice(consensus, coin) > max(rater_dice)
    assert sens[0] > sens[1] > sens[2]  # ordered by noise
    for s, m in zip(sens, misses, strict=True):
        assert s == pytest.approx(1 - m, abs=0.03)
    assert all(x > 0.95 for x in spec)
    assert dice(majority_vote(raters), coin) > max(rater_dice)


def test_staple_unanimous_and_empty() -> None:
    empty = np.zeros((5, 5), dtype=bool)
    mask, sens, spec = staple([empty, empty, empty])
    assert not mask.any() and sens == [1.0] * 3 and spec == [1.0] * 3
    full = np.ones((5, 5), dtype=bool)
    mask, sens, spec = staple([full, full])
    assert mask.all() and sens == [1.0, 1.0]


# --- consensus annotations -------------------------------------------------------------------------
ONTOLOGY = Ontology.from_dict(
    {
        "classes": [
            {"name": "liver", "kinds": ["polygon", "mask", "box"]},
            {"name": "normal", "kinds": ["classification"]},
            {"name": "abnormal", "kinds": ["classification"]},
        ]
    }
)
RECT = [(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0)]  # 16 px
SHIFTED = [(2.0, 0.0), (6.0, 0.0), (6.0, 4.0), (2.0, 4.0)]  # overlaps RECT in columns 2-3


def _poly(pts: list[tuple[float, float]], frame: int = 0) -> Annotation:
    return Annotation(kind=Kind.POLYGON, label="liver", frame=frame, points=np.array(pts))


def _cls(label: str, **attributes: str) -> Annotation:
    return Annotation(kind=Kind.CLASSIFICATION, label=label, attributes=attributes)


def test_consensus_majority_masks_and_classifications() -> None:
    by_labeler = {
        "a": [_poly(RECT), _cls("normal", confidence="sure")],
        "b": [_poly(RECT), _cls("normal", confidence="unsure")],
        "c": [_poly(SHIFTED), Annotation(kind=Kind.BOX, label="liver", frame=2, box=(0, 0, 2, 2))],
    }
    result = consensus_annotations(by_labeler, ONTOLOGY, (8, 8))
    masks = [a for a in result if a.kind is Kind.MASK]
    assert [(m.label, m.frame, m.source) for m in masks] == [("liver", 0, "consensus:majority")]
    assert masks[0].mask is not None
    np.testing.assert_array_equal(masks[0].mask.to_full(), rasterize_polygon(np.array(RECT), (8, 8)))
    # frame 2: one box from one of three labelers -> no consensus mask there
    (normal,) = [a for a in result if a.kind is Kind.CLASSIFICATION]
    assert normal.label == "normal" and normal.source == "consensus:majority"
    assert dict(normal.attributes) == {}  # voters disagree on confidence: dropped
    assert_ontology_allows(ONTOLOGY, result)


def test_consensus_classification_tie_is_reported() -> None:
    by_labeler = {"a": [_cls("normal")], "b": [_cls("abnormal")]}
    result = build_consensus(by_labeler, ONTOLOGY, (4, 4))
    assert_ontology_allows(ONTOLOGY, result.annotations)
    assert result.annotations == []
    assert result.ties == [("normal", 0), ("abnormal", 0)]


def test_consensus_staple_reports_rates() -> None:
    by_labeler = {"a": [_poly(RECT)], "b": [_poly(RECT)], "c": [_poly(SHIFTED)]}
    result = build_consensus(by_labeler, ONTOLOGY, (8, 8), method="staple")
    assert_ontology_allows(ONTOLOGY, result.annotations)
    (mask,) = result.annotations
    assert mask.source == "consensus:staple" and mask.mask is not None
    np.testing.assert_array_equal(mask.mask.to_full(), rasterize_polygon(np.array(RECT), (8, 8)))
    rates = result.staple_stats["liver"]
    assert rates["sensitivity"]["a"] == pytest.approx(1.0)
    assert rates["sensitivity"]["c"] < 1.0
    with pytest.raises(ValidationError):
        build_consensus(by_labeler, ONTOLOGY, (8, 8), method="mean")  # type: ignore[arg-type]
