"""Consensus items on SQLite and PostgreSQL: the stored agreement score, merging (majority vote and
STAPLE) and choosing a labeler, with hand-checked numbers and masks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from _review_setup import Team, box, make_team, mask, square, task_of
from support.labeling import work_on
from support.ontology_check import assert_ontology_allows

from app import api
from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.errors import ConflictError, ValidationError
from app.core.records import TaskStatus, Verdict
from app.workflow.agreement import annotation_masks, disagreement_map, item_agreement
from app.workflow.review import CONSENSUS

COINS = (303, 384)  # coins.png (height, width)


def test_stored_agreement_is_item_agreement_of_the_labelers_work(db_url: str) -> None:
    team = make_team(db_url, images=1, consensus={0: 2})
    (item,) = team.assets
    lee, kim, rey = team["lee"], team["kim"], team["rey"]
    # polygons: 20 x 20 px each, overlapping 15 x 20 px -> Dice 2*300/800 = 0.75, IoU 300/500 = 0.6
    # boxes: 10 x 10 inside 10 x 20 -> IoU 0.5, matched at the 0.5 threshold -> quality 2*0.5/2 = 0.5
    work_on(lee, item, [square(0, 0, 20, 20), box(100, 100, 110, 110)])
    assert task_of(rey, item).agreement is None  # one of two labelers: nothing to compare yet
    work_on(kim, item, [square(5, 0, 25, 20), box(100, 100, 110, 120)])

    stored = task_of(rey, item)
    assert stored.status is TaskStatus.SUBMITTED
    assert stored.agreement == pytest.approx((0.75 + 0.5) / 2)
    by_labeler = {name: rey.annotation_objects(item, labeler=name) for name in ("lee", "kim")}
    recomputed = item_agreement(by_labeler, rey.ontology, COINS)
    assert recomputed.overall == stored.agreement

    pane = rey.review_item(item)
    assert pane.labelers == ("lee", "kim") and pane.agreement == recomputed
    scores = {(c.label, c.family): c for c in pane.agreement.classes}
    assert scores["coin", "region"].details["iou"] == pytest.approx(0.6)
    assert scores["lesion", "box"].details["matched_iou"] == pytest.approx(0.5)
    assert [e.agreement for e in rey.review_queue()] == [stored.agreement]


def test_agreement_is_recomputed_when_a_rejected_labeler_resubmits(db_url: str) -> None:
    team = make_team(db_url, images=1, consensus={0: 2})
    (item,) = team.assets
    lee, kim, rey = team["lee"], team["kim"], team["rey"]
    work_on(lee, item, [square(0, 0, 20, 20)])
    work_on(kim, item, [square(10, 0, 30, 20)])  # half overlaps: Dice 0.5
    assert task_of(rey, item).agreement == pytest.approx(0.5)
    rey.reject(item, "kim", "align with the coin edge")
    lease = kim.claim()[0]
    (polygon,) = kim.annotation_objects(item)
    kim.save_annotation(polygon.evolve(points=polygon.points - [5.0, 0.0]))  # now 5..25: Dice 0.75
    kim.submit(lease)
    assert task_of(rey, item).agreement == pytest.approx(0.75)


def _three_labelers(db_url: str) -> tuple[Team, int]:
    """One consensus item; three labelers' masks over rows 10..29: cols 10..29, 20..39, 25..44."""
    team = make_team(db_url, images=1, consensus={0: 3})
    (item,) = team.assets
    rows = slice(10, 30)
    for name, cols in (("lee", slice(10, 30)), ("kim", slice(20, 40)), ("max", slice(25, 45))):
        work_on(team[name], item, [mask(COINS, rows, cols)])
    return team, item


def _consensus_mask(project: api.Project, item: int) -> np.ndarray:
    stored = [a for a in project.annotation_objects(item) if a.source == CONSENSUS]
    assert_ontology_allows(project, stored)
    assert [(a.kind, a.label, a.author) for a in stored] == [(Kind.MASK, "coin", "rey")]
    assert stored[0].mask is not None
    return stored[0].mask.to_full()


def test_merge_majority_then_staple_gives_the_hand_expected_mask(db_url: str) -> None:
    team, item = _three_labelers(db_url)
    rey, sam = team["rey"], team["sam"]
    # votes per column: 10..19: 1, 20..24: 2, 25..29: 3, 30..39: 2, 40..44: 1 -> majority 20..39
    expected = np.zeros(COINS, dtype=bool)
    expected[10:30, 20:40] = True

    merged = rey.merge_consensus(item, method="majority")
    assert merged.verdict is Verdict.ACCEPTED and merged.details["consensus"] == "majority"
    assert merged.details["labelers"] == ["lee", "kim", "max"]
    assert task_of(rey, item).status is TaskStatus.DONE
    assert np.array_equal(_consensus_mask(rey, item), expected)
    with pytest.raises(ConflictError, match="already decided by rey"):
        sam.merge_consensus(item, method="staple")

    # the deciding reviewer may merge again: STAPLE replaces the majority set (one live set)
    again = rey.merge_consensus(item, method="staple")
    assert np.array_equal(_consensus_mask(rey, item), expected)
    # STAPLE's sensitivity of a labeler = share of the consensus pixels they marked (hand-checked)
    sensitivity = again.details["staple"]["coin"]["sensitivity"]
    assert sensitivity == pytest.approx({"lee": 0.5, "kim": 1.0, "max": 0.75}, abs=1e-6)
    assert [r.details["consensus"] for r in rey.review_history(item)] == ["majority", "staple"]
    with rey.db.unit_of_work(readonly=True) as uow:
        soft_deleted = uow.annotations.get(merged.details["annotations"][0], include_deleted=True)
    assert soft_deleted.version == 2  # the first set is kept for history, marked deleted


def test_disagreement_map_counts_the_labelers_against_the_majority(db_url: str) -> None:
    team, item = _three_labelers(db_url)
    rey = team["rey"]
    heat = rey.disagreement(item, 0)
    assert heat.dtype == np.uint8 and heat.shape == COINS
    expected = np.zeros(COINS, dtype=np.uint8)
    expected[10:30, 10:25] = 1  # one or two of three marked it: one labeler is in the minority
    expected[10:30, 30:45] = 1
    assert np.array_equal(heat, expected)
    pane = rey.review_item(item)
    votes = disagreement_map(list(annotation_masks(pane.annotations, "coin", COINS, frame=0).values()))
    assert np.array_equal(heat > 0, (votes > 0) & (votes < 3))
    assert np.array_equal(rey.disagreement(item, 0, label="lesion"), np.zeros(COINS, np.uint8))
    with pytest.raises(ValidationError, match="frame 1 is not in asset"):
        rey.disagreement(item, 1)


def test_choose_consensus_copies_one_labeler_and_choosing_again_replaces_it(db_url: str) -> None:
    team = make_team(db_url, images=2, consensus={0: 2})
    item, single = team.assets
    lee, kim, rey, sam = team["lee"], team["kim"], team["rey"], team["sam"]
    work_on(lee, item, [square(10, 10, 40, 40), box(50, 50, 80, 70)])
    work_on(kim, item, [square(12, 10, 40, 40)])
    work_on(lee, single, [square(10, 10, 40, 40)])

    chosen = rey.choose_consensus(item, "lee")
    assert chosen.details["consensus"] == "labeler" and chosen.details["labeler"] == "lee"
    assert "lee" in chosen.note
    consensus = [a for a in rey.annotation_objects(item) if a.source == CONSENSUS]
    originals = rey.annotation_objects(item, labeler="lee")
    originals = [a for a in originals if a.source != CONSENSUS]
    assert len(consensus) == 2 and all(a.author == "rey" for a in consensus)
    assert_ontology_allows(rey, consensus)
    assert all(c.same_content(o) for c, o in zip(consensus, originals, strict=True))
    with pytest.raises(ConflictError, match="already decided by rey"):
        sam.choose_consensus(item, "kim")

    rey.choose_consensus(item, "kim")
    consensus = [a for a in rey.annotation_objects(item) if a.source == CONSENSUS]
    (kims,) = kim.annotation_objects(item, labeler="kim")
    assert len(consensus) == 1 and consensus[0].same_content(kims)
    assert_ontology_allows(rey, consensus)
    assert [a.id for a in rey.review_item(item).consensus] == [a.id for a in consensus]

    with pytest.raises(ValidationError, match="not a consensus item"):
        rey.choose_consensus(single, "lee")
    with pytest.raises(ValidationError, match="not a consensus item"):
        rey.merge_consensus(single)
    assert task_of(rey, single).status is TaskStatus.SUBMITTED
    with pytest.raises(ValidationError, match="unknown consensus method"):
        rey.merge_consensus(item, method="mean")  # type: ignore[arg-type]


def test_a_failing_agreement_never_loses_the_submit(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    team = make_team(db_url, images=1, consensus={0: 2})
    (item,) = team.assets
    lee, kim, rey = team["lee"], team["kim"], team["rey"]
    work_on(lee, item, [square(0, 0, 20, 20)])
    lease = kim.claim()[0]
    # a mask made for another frame size (e.g. labels imported before the file was replaced):
    # stored as it came, it cannot be rasterised on this frame
    bits = np.ones((4, 4), dtype=bool)
    odd = Annotation(kind=Kind.MASK, label="coin", mask=MaskPatch(0, 0, bits, (10, 10)))
    with kim.db.unit_of_work() as uow:
        uow.annotations.add(item, odd, kim.user.id)
    with caplog.at_level(logging.WARNING, logger="app.workflow.queue"):
        kim.submit(lease)
    stored = task_of(rey, item)
    assert stored.status is TaskStatus.SUBMITTED and stored.agreement is None
    assert f"could not compute the agreement of task {stored.id}" in caplog.text
    assert [e.asset_id for e in rey.review_queue()] == [item]


def test_a_requeued_item_hides_its_earlier_consensus_from_labelers(db_url: str) -> None:
    from app.workflow import queue

    team = make_team(db_url, images=1, consensus={0: 2})
    (item,) = team.assets
    lee, kim, rey = team["lee"], team["kim"], team["rey"]
    work_on(lee, item, [square(10, 10, 40, 40)])
    work_on(kim, item, [square(12, 10, 40, 40)])
    chosen = rey.choose_consensus(item, "lee")
    assert [a.source for a in kim.annotation_objects(item)].count(CONSENSUS) == 1  # done: shown
    assert_ontology_allows(rey, rey.review_item(item).consensus)

    queue.requeue(rey.db, task_of(rey, item).id)  # labeled again, blind to the earlier verdict
    assert all(a.source != CONSENSUS for a in kim.annotation_objects(item))
    # superseded for everyone (issue #16): the reviewer sees none either; the history keeps it
    assert all(a.source != CONSENSUS for a in rey.annotation_objects(item))
    (old,) = chosen.details["annotations"]
    with rey.db.unit_of_work(readonly=True) as uow:
        assert uow.annotations.get(old, include_deleted=True).source == CONSENSUS
