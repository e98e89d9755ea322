"""An export holds the final labels by default (issue #17), on SQLite and PostgreSQL.

The project (``_final_labels_setup``) has real model pre-labels, an accepted item with pre-labels a
labeler took over, a rejected item, a STAPLE consensus, a requeued consensus item, a reviewer's fix
and an item waiting for review. The default export must hold exactly the labels the set-up recorded
as final, ``provenance.json`` must say why each is there, ``labels="labeler:NAME"`` must leave out
the pre-labels NAME ran unless asked for them, and ``--status done`` is ``--status accepted``.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from _final_labels_setup import MODEL, Worked, work_the_project

from app.cli import main
from app.core.errors import ValidationError


@pytest.fixture
def worked(db_url: str, tmp_path: Path) -> Worked:
    return work_the_project(db_url, tmp_path / "setup")


def _coco_ids(folder: Path) -> dict[int, set[int]]:
    """Exported annotation ids per asset, read from the COCO file."""
    coco = json.loads((folder / "annotations.json").read_text())
    asset_of = {image["id"]: image["sitelabel"]["asset_id"] for image in coco["images"]}
    out: dict[int, set[int]] = defaultdict(set)
    for ann in coco["annotations"]:
        out[asset_of[ann["image_id"]]].add(ann["sitelabel"]["annotation_id"])
    return dict(out)


def _provenance(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "provenance.json").read_text())
    return data


def test_the_default_export_holds_exactly_the_final_labels_and_says_why(
    worked: Worked, tmp_path: Path
) -> None:
    rey = worked.project("rey")
    items = worked.items
    report = rey.export("coco", tmp_path / "final")
    expected = {asset: ids for asset, ids in worked.final.items() if ids}
    got = _coco_ids(tmp_path / "final")
    assert got == expected
    counts = {asset: len(ids) for asset, ids in got.items()}
    assert counts == {
        items["coins"]: worked.accepted_prelabels + 1,  # the pre-labels lee took over and her box
        items["astronaut"]: len(worked.final[items["astronaut"]]),  # the consensus, not the 2 masks
        items["coffee"]: 1,  # rey's fix, not max's box
        items["moon"]: 1,  # max's square, not ada's box or the pre-labels
    }
    assert (report.assets, report.annotations) == (4, sum(counts.values()))
    untouched = worked.prelabels()
    assert untouched[items["coins"]] and untouched[items["camera"]] and untouched[items["moon"]]
    exported = set().union(*got.values())
    assert not exported & set().union(*untouched.values())  # no untouched pre-label left the project

    why = {r.why: r.count for r in report.reasons()}
    assert why == {
        "rejected: review sent it back to kim, its labels are not final": 1,
        "in progress: not submitted yet, its labels are drafts": 1,
    }

    # provenance.json: every exported annotation, the rule that picked it and its review state
    prov = _provenance(tmp_path / "final")
    assert prov["schema"] == "sitelabel-provenance/1" and prov["format"] == "coco"
    assert prov["options"]["labels"] == "final" and prov["options"]["include_prelabels"] is False
    by_item = {entry["asset_id"]: entry for entry in prov["items"]}
    assert {a: {x["id"] for x in e["annotations"]} for a, e in by_item.items()} == expected
    reviews = worked.reviews
    rules = {
        items["coins"]: f"accepted as submitted (review #{reviews[items['coins']]})",
        items["astronaut"]: f"consensus merge (staple) (review #{reviews[items['astronaut']]})",
        items[
            "coffee"
        ]: f"fixed and accepted by rey (review #{reviews[items['coffee']]}): the reviewer's labels",
        items["moon"]: "single labeler submission, not reviewed yet",
    }
    for asset, rule in rules.items():
        entry = by_item[asset]
        assert entry["rule"] == rule
        assert {x["rule"] for x in entry["annotations"]} == {rule}
        assert all(x["written"] and x["version"] >= 1 for x in entry["annotations"])
    sources = {a: {(x["source"], x["author"]) for x in e["annotations"]} for a, e in by_item.items()}
    assert sources == {
        items["coins"]: {("human", "lee")},
        items["astronaut"]: {("consensus", "rey")},  # stored by the reviewer who merged it
        items["coffee"]: {("human", "rey")},
        items["moon"]: {("human", "max")},
    }
    states = {a: (e["status"], e["review"] and e["review"]["verdict"]) for a, e in by_item.items()}
    assert states == {
        items["coins"]: ("accepted", "accepted"),
        items["astronaut"]: ("accepted", "accepted"),
        items["coffee"]: ("accepted", "fixed"),
        items["moon"]: ("submitted", None),
    }
    assert by_item[items["astronaut"]]["review"]["consensus"] == "staple"
    assert by_item[items["coins"]]["labelers"] == ["lee"]
    humans = worked.accepted_prelabels + 1 + 1 + 1  # coins (taken over + box), coffee, moon
    consensus = len(worked.final[items["astronaut"]])
    assert prov["counts"] == {
        "items": 4,
        "annotations": report.annotations,
        "sources": {"consensus": consensus, "human": humans},
    }
    assert {s["reason"] for s in prov["skipped"]} == set(why)
    # each item's stored split, and the split of the exported items
    assert {e["split"] for e in prov["items"]} <= {"train", "val", "test"}
    assert sorted(a["asset_id"] for a in prov["splits"]["assets"]) == sorted(by_item)
    # listed in the manifest like every other file, with its checksum
    manifest = json.loads((tmp_path / "final" / "manifest.json").read_text())
    digest = hashlib.sha256((tmp_path / "final" / "provenance.json").read_bytes()).hexdigest()
    assert manifest["files"]["provenance.json"]["sha256"] == digest
    assert manifest["summary"]["provenance"]["labels"] == "final"


def test_labeler_status_and_prelabel_options(
    worked: Worked, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rey, items = worked.project("rey"), worked.items
    untouched = worked.prelabels()
    ada_prelabels = set().union(*untouched.values())

    # labeler:ada holds ada's own box, not the pre-labels she ran, unless they are asked for
    report = rey.export("coco", tmp_path / "ada", labels="labeler:ada")
    assert _coco_ids(tmp_path / "ada") == {items["moon"]: {_box_of_ada(worked)}}
    report = rey.export("coco", tmp_path / "ada-pre", labels="labeler:ada", include_prelabels=True)
    got = _coco_ids(tmp_path / "ada-pre")
    assert set().union(*got.values()) == ada_prelabels | {_box_of_ada(worked)}
    assert report.annotations == len(ada_prelabels) + 1
    rules = {x["rule"] for e in _provenance(tmp_path / "ada-pre")["items"] for x in e["annotations"]}
    assert rules == {"the labels of ada", "a pre-label ada ran (include_prelabels)"}
    # the older --labeler flag is the same rule
    rey.export("coco", tmp_path / "ada-old", labeler="ada")
    assert _coco_ids(tmp_path / "ada-old") == _coco_ids(tmp_path / "ada")
    with pytest.raises(ValidationError, match="disagree"):
        rey.export("coco", tmp_path / "x", labeler="ada", labels="labeler:lee")

    # the model's pre-labels by source; the final labels plus the exported items' pre-labels
    rey.export("coco", tmp_path / "model", labels=f"source:{MODEL}")
    assert set().union(*_coco_ids(tmp_path / "model").values()) == ada_prelabels
    rey.export("coco", tmp_path / "final-pre", include_prelabels=True)
    got = _coco_ids(tmp_path / "final-pre")
    # pre-labels of the items with final labels only (camera was rejected: none of its labels)
    assert got[items["coins"]] == worked.final[items["coins"]] | untouched[items["coins"]]
    assert got[items["moon"]] == worked.final[items["moon"]] | untouched[items["moon"]]
    assert items["camera"] not in got

    # status: "done" and "accepted" are one word; with final labels they select the reviewed items
    base = ("--db", rey.db.url, "--user", "rey", "--project", "review", "--format", "coco")
    outs = {}
    for word in ("done", "accepted"):
        code = main(["export", *base, "--out", str(tmp_path / f"cli-{word}"), "--status", word])
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "labels final:" in out.out and "why each: provenance.json" in out.out
        outs[word] = _coco_ids(tmp_path / f"cli-{word}")
    assert outs["done"] == outs["accepted"]
    assert outs["done"] == {a: worked.final[a] for a in (items["coins"], items["astronaut"], items["coffee"])}
    assert _provenance(tmp_path / "cli-done")["items"] == _provenance(tmp_path / "cli-accepted")["items"]

    # the CLI's --labels and --include-prelabels
    code = main(["export", *base, "--out", str(tmp_path / "cli-ada"), "--labels", "labeler:ada"])
    assert code == 0 and "1 annotations of 1 assets" in capsys.readouterr().out
    code = main(
        [
            "export",
            *base,
            "--out",
            str(tmp_path / "cli-pre"),
            "--labels",
            "labeler:ada",
            "--include-prelabels",
        ]
    )
    assert code == 0 and f"{len(ada_prelabels) + 1} annotations of 3 assets" in capsys.readouterr().out
    code = main(["export", *base, "--out", str(tmp_path / "cli-bad"), "--labels", "mine"])
    assert code != 0 and "unknown labels choice 'mine'" in capsys.readouterr().err

    # the preview counts what the export holds, without writing
    preview = rey.export_preview("coco")
    final = rey.export("coco", tmp_path / "again")
    assert (preview.items, preview.annotations) == (final.assets, final.annotations)
    assert sum(preview.per_class.values()) == final.annotations
    assert {r.why: r.count for r in preview.skipped} == {r.why: r.count for r in final.reasons()}
    assert not preview.unwritable


def _box_of_ada(worked: Worked) -> int:
    moon = worked.items["moon"]
    (found,) = [a.id for a in worked.team.ada.annotation_objects(moon, labeler="ada") if a.source == "human"]
    assert found is not None
    return found
