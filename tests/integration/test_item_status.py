"""One status vocabulary and one set of queue numbers (app.core.item_status), on SQLite and
PostgreSQL: the queue counts, the activity list (workflow, API and CLI) and the export filter agree."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from support.labeling import label_batch

from app import api, sample_data
from app.cli import main
from app.core.errors import ValidationError
from app.core.item_status import counts_line
from app.core.records import ProjectSettings
from app.workflow import queue
from app.workflow.activity import item_rows

ONTOLOGY = {"classes": [{"name": "object", "kinds": ["box"]}]}
IMAGES = ("coins.png", "camera.png", "astronaut.png")
BOX = [{"kind": "box", "label": "object", "box": [5, 5, 40, 40]}]


def _project(db_url: str, **settings: float) -> tuple[api.Project, list[int]]:
    admin = api.create_project(
        db_url, "words", ontology=ONTOLOGY, user="ada", settings=ProjectSettings(**settings)
    )
    ids = admin.import_data([sample_data.skimage_images() / name for name in IMAGES])
    for name, role in (("lee", "labeler"), ("max", "labeler"), ("rey", "reviewer")):
        admin.set_member(name, role)
    return admin, ids


def _activity_counts(project: api.Project) -> Counter[str]:
    return Counter(row.status for row in project.activity().rows)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_consensus_items_one_labeler_submitted_are_in_progress_everywhere(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    admin, ids = _project(db_url, consensus_share=1.0, consensus_count=3)
    lee = api.open_project(admin.db, "words", user="lee")
    worked = label_batch(lee, lambda lease: BOX, batch=10)
    assert sorted(lease.asset_id for lease in worked.submitted) == sorted(ids)
    assert all(lease.required_labelers == 3 for lease in worked.submitted)

    stats = queue.queue_stats(admin.db, admin.id)
    # "new" means nobody has started the item: these three wait for their other two labelers
    assert (stats["new"], stats["in_progress"], stats["leased"], stats["submitted"], stats["total"]) == (
        0,
        3,
        0,
        0,
        3,
    )
    assert admin.queue_stats() == lee.queue_stats() == stats  # the API is the same function
    rows = item_rows(admin.db, admin.id).rows
    assert [r.status for r in rows] == ["in_progress"] * 3
    assert _activity_counts(admin) == {s: n for s, n in stats.items() if n and s != "total"}

    max_ = api.open_project(admin.db, "words", user="max")
    (taken,) = max_.claim(batch=1)
    stats = admin.queue_stats()
    assert (stats["new"], stats["leased"], stats["in_progress"]) == (0, 1, 2)
    assert _activity_counts(admin) == {"leased": 1, "in_progress": 2}
    leased = admin.activity(status="leased").rows
    assert [r.asset_id for r in leased] == [taken.asset_id]

    code, out, err = _cli(capsys, "activity", "--db", db_url, "--user", "ada")
    assert code == 0, err
    assert f"queue: {counts_line(stats)} (3 queued, 0 not queued)" in out
    assert "0 new · 1 leased · 2 in progress" in out
    code, out, err = _cli(capsys, "activity", "--db", db_url, "--user", "ada", "--json")
    assert code == 0 and json.loads(out)["counts"] == stats
    for project in (admin, lee, max_):
        project.close()


def test_status_words_are_one_vocabulary_in_activity_and_export(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    admin, ids = _project(db_url)
    coins, camera, astronaut = ids
    lee = api.open_project(admin.db, "words", user="lee")
    label_batch(lee, lambda lease: BOX if lease.asset_id != astronaut else None, batch=3)
    rey = api.open_project(admin.db, "words", user="rey")
    rey.accept(coins)
    expected = {coins: "accepted", camera: "submitted", astronaut: "leased"}
    assert {r.asset_id: r.status for r in rey.activity().rows} == expected
    assert [r.asset_id for r in rey.activity(status="done").rows] == [coins]  # a synonym

    # the export filter: "done" and "accepted" select the same items, and what the activity calls
    # an item's status is what the export says
    for word in ("accepted", "done", "Accepted", "submitted", "leased"):
        report = rey.export("project-json", tmp_path / word, status=word)
        data = json.loads((tmp_path / word / "project.json").read_text())
        got = {a["id"]: a["review"]["status"] for a in data["assets"]}
        want = {
            a: s for a, s in expected.items() if s == ("accepted" if word in ("done", "Accepted") else word)
        }
        assert got == want, word
        assert report.assets == len(want)
    everything = tmp_path / "any"
    rey.export("project-json", everything, status="any")
    data = json.loads((everything / "project.json").read_text())
    assert {a["id"]: a["review"]["status"] for a in data["assets"]} == expected
    with pytest.raises(ValidationError, match=r"status 'reviewed' is ambiguous .*accepted or rejected"):
        rey.export("coco", tmp_path / "bad", status="reviewed")

    base = ("--db", db_url, "--user", "rey")
    outs = {}
    for word in ("done", "accepted"):
        out_dir = str(tmp_path / f"cli-{word}")
        code, out, err = _cli(capsys, "export", "--format", "coco", "--out", out_dir, *base, "--status", word)
        assert code == 0, err
        outs[word] = json.loads((tmp_path / f"cli-{word}" / "annotations.json").read_text())["images"]
    assert [i["sitelabel"]["asset_id"] for i in outs["done"]] == [coins]
    assert outs["done"] == outs["accepted"]
    code, out, err = _cli(capsys, "activity", *base, "--status", "done")
    assert code == 0 and "accepted" in out and "done" not in out.replace("done (", "")
    code, _, err = _cli(capsys, "export", "--format", "coco", "--out", str(tmp_path / "x"), *base,
                        "--status", "reviewed")  # fmt: skip
    assert code == 1 and "ambiguous" in err and "use one of unqueued, new, leased" in err
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "done (= accepted)" in " ".join(capsys.readouterr().out.split())
    for project in (admin, lee, rey):
        project.close()
