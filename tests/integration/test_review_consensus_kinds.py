"""A consensus writes only the kinds the ontology allows (issue #16), on SQLite and PostgreSQL: a
box-only class gets matched-box medians, a mask class a mask, a polygon-only class polygons, and
nothing the ontology refuses is ever stored."""

from __future__ import annotations

import numpy as np
import pytest
from _review_setup import box, make_team, mask, square, task_of
from support.labeling import work_on
from support.ontology_check import assert_ontology_allows

from app import api
from app.cli import main
from app.core.annotations import Kind
from app.core.errors import ValidationError
from app.core.raster import rasterize_annotation
from app.core.records import TaskStatus
from app.workflow.review import CONSENSUS

COINS = (303, 384)  # coins.png (height, width)

# Three labelers. "nodule" (box only): one object all three boxed, slightly differently, one that
# lee and kim boxed (2 of 3: a majority) and one only max boxed (dropped). "coin" (mask allowed):
# masks over rows 10..29. "vessel" (polygon only): squares over rows 60..79.
WORK = {
    "lee": [
        box(100, 98, 141, 130, "nodule"),
        box(200, 200, 230, 220, "nodule"),
        mask(COINS, slice(10, 30), slice(10, 30)),
        square(10, 60, 30, 80, "vessel"),
    ],
    "kim": [
        box(104, 100, 137, 133, "nodule"),
        box(202, 200, 232, 222, "nodule"),
        mask(COINS, slice(10, 30), slice(20, 40)),
        square(20, 60, 40, 80, "vessel"),
    ],
    "max": [
        box(99, 103, 140, 129, "nodule"),
        box(300, 250, 320, 270, "nodule"),
        mask(COINS, slice(10, 30), slice(25, 45)),
        square(25, 60, 45, 80, "vessel"),
    ],
}


def _stored(project: api.Project, item: int) -> dict[str, list]:
    out: dict[str, list] = {}
    for a in project.annotation_objects(item):
        if a.source == CONSENSUS:
            out.setdefault(a.label, []).append(a)
    return out


@pytest.mark.parametrize("method", ["majority", "staple"])
def test_consensus_gives_each_class_a_kind_its_ontology_allows(db_url: str, method: str) -> None:
    team = make_team(db_url, images=1, consensus={0: 3})
    (item,) = team.assets
    for name, work in WORK.items():
        work_on(team[name], item, work)
    rey = team["rey"]

    review = rey.merge_consensus(item, method=method)  # type: ignore[arg-type]
    assert task_of(rey, item).status is TaskStatus.DONE
    stored = _stored(rey, item)
    assert_ontology_allows(rey, [a for anns in stored.values() for a in anns])
    assert sorted(stored) == ["coin", "nodule", "vessel"]
    assert review.details["skipped"] == []

    # box-only: one box per matched group in a majority, the per-coordinate median of its boxes
    nodules = sorted(stored["nodule"], key=lambda a: a.box)
    assert [a.kind for a in nodules] == [Kind.BOX, Kind.BOX]
    assert [a.box for a in nodules] == [(100.0, 100.0, 140.0, 130.0), (201.0, 200.0, 231.0, 221.0)]

    # mask allowed: the mask consensus, as before (columns 20..39 have 2 or 3 of 3 votes)
    expected = np.zeros(COINS, dtype=bool)
    expected[10:30, 20:40] = True
    (coin,) = stored["coin"]
    assert coin.kind is Kind.MASK and coin.mask is not None
    assert np.array_equal(coin.mask.to_full(), expected)

    # polygon-only: the consensus mask outlined; it rasterises back to exactly that mask
    (vessel,) = stored["vessel"]
    assert vessel.kind is Kind.POLYGON
    expected = np.zeros(COINS, dtype=bool)
    expected[60:80, 20:40] = True
    assert np.array_equal(rasterize_annotation(vessel, COINS), expected)


def test_a_class_the_consensus_cannot_write_is_skipped_and_reported(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    team = make_team(db_url, images=1, consensus={0: 2})
    (item,) = team.assets
    for name in ("lee", "kim"):
        work_on(team[name], item, [mask(COINS, slice(10, 30), slice(10, 30)), box(50, 50, 80, 70)])
    # the ontology changes after labeling: coin becomes a point class (nothing a merge makes)
    ontology = team.ada.ontology.to_dict()
    for cls_ in ontology["classes"]:
        if cls_["name"] == "coin":
            cls_["kinds"] = ["point"]
    team.ada.set_ontology(ontology)
    rey = team["rey"]

    # the CLI, as a team lead runs it: says what it did not write, and why
    assert main(["consensus", str(item), "--method", "majority", "--db", db_url, "--user", "rey"]) == 0
    why = "class 'coin' does not allow mask, box or polygon; allowed: ['point']"
    assert f"  not written: coin on frame 0: {why}" in capsys.readouterr().out.splitlines()
    review = rey.review_history(item)[-1]
    stored = _stored(rey, item)
    assert_ontology_allows(rey, [a for anns in stored.values() for a in anns])
    assert sorted(stored) == ["lesion"]  # lesion still allows masks: its boxes are merged as one
    assert review.details["skipped"] == [["coin", 0, why]]


def test_storing_a_consensus_the_ontology_refuses_is_refused(db_url: str) -> None:
    team = make_team(db_url, images=1, consensus={0: 2})
    (item,) = team.assets
    for name in ("lee", "kim"):
        work_on(team[name], item, [mask(COINS, slice(10, 30), slice(10, 30), label="lesion")])
    ontology = team.ada.ontology.to_dict()
    for cls_ in ontology["classes"]:
        if cls_["name"] == "lesion":
            cls_["kinds"] = ["box"]
    team.ada.set_ontology(ontology)
    rey = team["rey"]

    # lee's masks no longer fit: taking them as the consensus is refused like a direct upload
    with pytest.raises(ValidationError, match=r"class 'lesion' does not allow mask; allowed: \['box'\]"):
        rey.choose_consensus(item, "lee")
    assert _stored(rey, item) == {} and task_of(rey, item).status is TaskStatus.SUBMITTED

    # a merge writes what the class allows now: the box around the agreed pixels
    rey.merge_consensus(item, method="staple")
    (lesion,) = _stored(rey, item)["lesion"]
    assert_ontology_allows(rey, [lesion])
    assert lesion.kind is Kind.BOX and lesion.box == (10.0, 10.0, 30.0, 30.0)
