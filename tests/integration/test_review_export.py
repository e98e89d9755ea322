"""Export filters on review status and consensus, read back by the real consumers (pycocotools,
the project JSON), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _review_setup import Team, make_team, mask, square
from support.labeling import work_on
from support.ontology_check import assert_ontology_allows

from app.core.errors import ValidationError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")
ASTRONAUT = (512, 512)  # the consensus item (astronaut.png)


@pytest.fixture
def reviewed(db_url: str) -> Team:
    """Five images, one per review state:
    0 accepted (lee), 1 submitted (kim), 2 consensus merged by majority (lee, kim, max),
    3 rejected back to max, 4 never labeled (new)."""
    team = make_team(db_url, images=5, consensus={2: 3})
    accepted, submitted, consensus, rejected, _new = team.assets
    lee, kim, max_, rey = team["lee"], team["kim"], team["max"], team["rey"]
    work_on(lee, accepted, [square(10, 10, 60, 60)])
    work_on(kim, submitted, [square(20, 20, 80, 80)])
    for name, cols in (("lee", slice(10, 30)), ("kim", slice(20, 40)), ("max", slice(25, 45))):
        work_on(team[name], consensus, [mask(ASTRONAUT, slice(10, 30), cols)])
    work_on(max_, rejected, [square(5, 5, 50, 50)])
    rey.accept(accepted)
    rey.merge_consensus(consensus, method="majority")
    assert_ontology_allows(rey, rey.review_item(consensus).consensus)
    rey.reject(rejected, "max", "that is not a coin")
    return team


def _coco(path: Path) -> object:
    from pycocotools.coco import COCO

    return COCO(str(path / "annotations.json"))


def _exported_assets(coco: object) -> list[int]:
    return sorted(img["sitelabel"]["asset_id"] for img in coco.loadImgs(coco.getImgIds()))  # type: ignore[attr-defined]


def test_status_filter_exports_exactly_the_items_in_that_state(reviewed: Team, tmp_path: Path) -> None:
    accepted, submitted, consensus, rejected, new = reviewed.assets
    rey = reviewed["rey"]
    for status, expected in (
        ("accepted", [accepted, consensus]),
        ("submitted", [submitted]),
        ("rejected", [rejected]),
        ("any", [accepted, submitted, consensus, rejected]),  # COCO leaves unlabeled items out
    ):
        report = rey.export("coco", tmp_path / status, status=status, labels="all")
        assert _exported_assets(_coco(tmp_path / status)) == expected, status
        assert report.assets == len(expected)
    # the final labels (the default) of a rejected item are none: it is being corrected
    report = rey.export("coco", tmp_path / "final-rejected", status="rejected")
    assert report.assets == 0
    assert {r.why: r.count for r in report.reasons()} == {
        "rejected: review sent it back to max, its labels are not final": 1,
        "its status is accepted, not rejected (status filter)": 2,
        "its status is submitted, not rejected (status filter)": 1,
        "its status is new, not rejected (status filter)": 1,
    }
    report = rey.export("project-json", tmp_path / "new", status="new")
    data = json.loads((tmp_path / "new/project.json").read_text())
    assert [a["id"] for a in data["assets"]] == [new] and data["assets"][0]["review"]["status"] == "new"


def test_consensus_filter_exports_only_the_consensus_label(reviewed: Team, tmp_path: Path) -> None:
    accepted, _submitted, consensus, _rejected, _new = reviewed.assets
    rey = reviewed["rey"]
    rey.export("coco", tmp_path / "c", status="accepted", consensus="consensus")
    coco = _coco(tmp_path / "c")
    assert _exported_assets(coco) == [consensus]
    (ann,) = coco.loadAnns(coco.getAnnIds())  # type: ignore[attr-defined]
    expected = np.zeros(ASTRONAUT, dtype=bool)
    expected[10:30, 20:40] = True  # the majority of the three labelers' masks
    assert np.array_equal(coco.annToMask(ann).astype(bool), expected)  # type: ignore[attr-defined]

    item_score = reviewed["rey"].review_item(consensus).agreement
    assert item_score is not None and item_score.overall is not None
    below, above = item_score.overall - 0.01, item_score.overall + 0.01
    rey.export("coco", tmp_path / "low", consensus=f"agreed-above:{below}")
    assert _exported_assets(_coco(tmp_path / "low")) == [consensus]
    report = rey.export("coco", tmp_path / "high", consensus=f"agreed-above:{above}")
    assert report.assets == 0
    assert accepted != consensus
    for bad in ("agreed", "agreed-above:2", "agreed-above:x"):
        with pytest.raises(ValidationError, match="unknown consensus filter"):
            rey.export("coco", tmp_path / "bad", consensus=bad)
    with pytest.raises(ValidationError, match="unknown status 'approved'"):
        rey.export("coco", tmp_path / "bad", status="approved")


def test_project_json_carries_review_status_history_and_consensus(reviewed: Team, tmp_path: Path) -> None:
    accepted, submitted, consensus, rejected, new = reviewed.assets
    reviewed["rey"].export("project-json", tmp_path)
    data = json.loads((tmp_path / "project.json").read_text())
    by_id = {a["id"]: a for a in data["assets"]}
    assert set(by_id) == {accepted, submitted, consensus, rejected, new}

    done = by_id[accepted]["review"]
    assert (done["status"], done["verdict"], done["consensus"]) == ("accepted", "accepted", None)
    assert [(h["verdict"], h["reviewer"], h["labeler"]) for h in done["history"]] == [
        ("accepted", "rey", None)
    ]
    assert by_id[submitted]["review"]["history"] == [] and by_id[submitted]["review"]["verdict"] is None

    sent_back = by_id[rejected]["review"]
    assert sent_back["status"] == "rejected"
    assert [(h["verdict"], h["labeler"], h["note"]) for h in sent_back["history"]] == [
        ("rejected", "max", "that is not a coin")
    ]

    merged = by_id[consensus]["review"]
    assert merged["required_labelers"] == 3 and merged["agreement"] is not None
    assert merged["consensus"]["consensus"] == "majority"
    assert merged["consensus"]["labelers"] == ["lee", "kim", "max"]
    flagged = [a for a in by_id[consensus]["annotations"] if a["consensus"]]
    assert [a["id"] for a in flagged] == merged["consensus"]["annotations"]
    assert {a["source"] for a in flagged} == {"consensus"} and len(by_id[consensus]["annotations"]) == 4
