"""`sitelabel review` and `sitelabel consensus` as a team lead runs them: real processes, real databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from _review_setup import make_team, mask, square, task_of
from support.labeling import work_on
from support.ontology_check import assert_ontology_allows

from app.core.records import TaskStatus


def sitelabel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_review_list_accept_reject_and_consensus(db_url: str) -> None:
    team = make_team(db_url, images=4, consensus={2: 3, 3: 2})
    single, other, merged, chosen = team.assets
    lee, kim, max_ = team["lee"], team["kim"], team["max"]
    work_on(lee, single, [square(10, 10, 60, 60)])
    work_on(kim, other, [square(10, 10, 60, 60)])
    shape = (512, 512)  # astronaut.png
    for name, cols in (("lee", slice(10, 30)), ("kim", slice(20, 40)), ("max", slice(25, 45))):
        work_on(team[name], merged, [mask(shape, slice(10, 30), cols)])
    work_on(lee, chosen, [square(10, 10, 60, 60)])
    work_on(max_, chosen, [square(30, 10, 80, 60)])
    rey = ["--db", db_url, "--user", "rey"]

    listed = sitelabel("review", "list", *rey)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["asset", "agreement", "issues", "labelers"]
    order = [int(line.split()[0]) for line in lines[1:-1]]
    # lowest agreement first: merged (mean pairwise Dice 0.5), chosen (Dice 0.6), then the unscored
    assert order[:2] == [merged, chosen] and set(order[2:]) == {single, other}
    assert [line.split()[1] for line in lines[1:-1]] == ["0.500", "0.600", "-", "-"]
    assert lines[-1] == "4 item(s) waiting for review"
    as_json = json.loads(sitelabel("review", "list", "--json", *rey).stdout)
    assert [row["asset_id"] for row in as_json] == order and as_json[1]["labelers"] == ["lee", "max"]

    accepted = sitelabel("review", "accept", str(single), *rey)
    assert accepted.returncode == 0 and f"item {single} accepted" in accepted.stdout
    again = sitelabel("review", "accept", str(single), "--db", db_url, "--user", "sam")
    assert again.returncode == 1 and "already decided by rey" in again.stderr
    rejected = sitelabel(
        "review", "reject", str(other), "--labeler", "kim", "--reason", "missed two coins", *rey
    )
    assert rejected.returncode == 0, rejected.stderr
    assert "sent back to kim: missed two coins" in rejected.stdout
    assert [lease.note for lease in kim.claim()] == ["missed two coins"]

    merge = sitelabel("consensus", str(merged), "--method", "staple", *rey)
    assert merge.returncode == 0, merge.stderr
    assert "consensus: staple of lee, kim, max (1 consensus annotations); accepted" in merge.stdout
    pick = sitelabel("consensus", str(chosen), "--labeler", "max", *rey)
    assert pick.returncode == 0 and "the labels of max" in pick.stdout
    for item in (merged, chosen):
        assert_ontology_allows(team["rey"], team["rey"].review_item(item).consensus)
    statuses = {a: task_of(lee, a).status for a in team.assets}
    assert statuses == {
        single: TaskStatus.DONE,
        other: TaskStatus.REJECTED,
        merged: TaskStatus.DONE,
        chosen: TaskStatus.DONE,
    }
    assert sitelabel("review", "list", *rey).stdout.splitlines()[-1] == "0 item(s) waiting for review"


def test_a_labeler_is_refused_and_bad_arguments_are_explained(db_url: str) -> None:
    make_team(db_url, images=1)
    refused = sitelabel("review", "list", "--db", db_url, "--user", "lee")
    assert refused.returncode == 1 and "lee is a labeler" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = sitelabel("review", "reject", "1", "--db", db_url, "--user", "rey", "--labeler", "lee")
    assert missing.returncode == 2 and "--reason" in missing.stderr
    both = sitelabel("consensus", "1", "--method", "majority", "--labeler", "lee", "--db", db_url)
    assert both.returncode == 2 and "not allowed with" in both.stderr
    not_ready = sitelabel("consensus", "1", "--method", "majority", "--db", db_url, "--user", "rey")
    assert not_ready.returncode == 1 and "not waiting for review: it is new" in not_ready.stderr
