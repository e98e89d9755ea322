"""A requeue supersedes the item's consensus (issue #16), on SQLite and PostgreSQL: after requeue,
relabel and a new decision, ``export --consensus consensus`` holds only the new consensus, and an
item accepted without a new consensus exports none rather than the stale one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _review_setup import Team, make_team, mask, task_of
from support.labeling import work_on
from support.ontology_check import assert_ontology_allows

from app import api
from app.core.annotations import HUMAN
from app.core.errors import NotFoundError
from app.core.records import TaskStatus
from app.workflow.review import CONSENSUS

COINS = (303, 384)  # coins.png (height, width)
OLD, NEW = (slice(10, 30), slice(10, 30)), (slice(100, 140), slice(200, 240))


def _relabel(project: api.Project, item: int, rows: slice, cols: slice) -> None:
    """Claim the requeued item, replace one's own labels by a mask over ``rows`` x ``cols``, submit."""
    (lease,) = [x for x in project.claim(batch=10) if x.asset_id == item]
    for old in project.annotation_objects(item, labeler=project.user_name):
        if old.source == HUMAN:
            project.delete_annotation(old)
    project.upload_annotations(item, [mask(COINS, rows, cols)])
    project.submit(lease)


def _requeued_and_relabeled(db_url: str) -> tuple[Team, int, list[int]]:
    """Merged once (OLD), requeued, relabeled (NEW), kim rejected and resubmitted: waits for review."""
    team = make_team(db_url, images=1, consensus={0: 2})
    (item,) = team.assets
    lee, kim, rey = team["lee"], team["kim"], team["rey"]
    for labeler in (lee, kim):
        work_on(labeler, item, [mask(COINS, *OLD)])
    first = rey.merge_consensus(item, method="majority")
    old_ids = list(first.details["annotations"])
    assert_ontology_allows(rey, rey.review_item(item).consensus)

    assert rey.requeue([item]) == 1
    assert rey.review_item(item).consensus == []  # superseded at once, kept in history only
    for labeler in (lee, kim):
        _relabel(labeler, item, *NEW)
    rey.reject(item, "kim", "trace the edge again")
    (lease,) = kim.claim()
    kim.submit(lease)
    assert task_of(rey, item).status is TaskStatus.SUBMITTED
    return team, item, old_ids


def _consensus_export(project: api.Project, out: Path) -> dict[str, Any]:
    project.export("project-json", out, consensus="consensus")
    (asset,) = json.loads((out / "project.json").read_text())["assets"]
    return asset


def test_after_requeue_relabel_and_merge_the_export_holds_only_the_new_consensus(
    db_url: str, tmp_path: Path
) -> None:
    team, item, old_ids = _requeued_and_relabeled(db_url)
    rey = team["rey"]
    rey.merge_consensus(item, method="staple")
    consensus = rey.review_item(item).consensus
    assert_ontology_allows(rey, consensus)

    asset = _consensus_export(rey, tmp_path / "json")
    exported = asset["annotations"]
    assert [a["id"] for a in exported] == [a.id for a in consensus]
    assert not set(old_ids) & {a["id"] for a in exported}
    assert asset["review"]["consensus"]["consensus"] == "staple"
    (new,) = consensus
    expected = np.zeros(COINS, dtype=bool)
    expected[NEW] = True
    assert new.mask is not None and np.array_equal(new.mask.to_full(), expected)


def test_after_requeue_relabel_and_accept_the_stale_consensus_is_not_exported(
    db_url: str, tmp_path: Path
) -> None:
    team, item, old_ids = _requeued_and_relabeled(db_url)
    rey = team["rey"]
    rey.accept(item)  # accepted as labeled: no consensus was chosen or merged this time
    assert rey.review_item(item).consensus == []

    report = rey.export("coco", tmp_path / "coco", consensus="consensus")
    assert (report.assets, report.annotations) == (0, 0)
    assert [why for _, why in report.skipped] == [
        "no consensus label: none was chosen or merged since the item was last queued"
    ]
    asset = _consensus_export(rey, tmp_path / "json")
    assert asset["annotations"] == [] and asset["review"]["consensus"] is None
    with rey.db.unit_of_work(readonly=True) as uow:  # the old set stays for history, deleted
        for old in old_ids:
            assert uow.annotations.get(old, include_deleted=True).source == CONSENSUS
            with pytest.raises(NotFoundError, match="was deleted"):
                uow.annotations.get(old)
