"""`sitelabel activity` as a reviewer runs it: a real process on a real project on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.labeling import label_batch

from app import api, sample_data
from app.cli import main


def sitelabel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_activity_verb_lists_filters_and_reports_labelers(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = api.create_project(
        db_url, "cli", ontology={"classes": [{"name": "object", "kinds": ["box"]}]}, user="ada"
    )
    admin.import_data([sample_data.skimage_images() / "coins.png", sample_data.dicom_file("CT_small.dcm")])
    ids = {a.rel_path.rsplit("/", 1)[-1]: a.id for a in admin.assets()}
    admin.set_member("lee", "labeler")
    lee = api.open_project(admin.db, "cli", user="lee")
    box = {"kind": "box", "label": "object", "box": [1, 1, 20, 20]}
    label_batch(lee, lambda lease: [box] if lease.asset_id == ids["coins.png"] else None, batch=5)
    admin.close()

    base = ("activity", "--db", db_url, "--user", "ada")
    everything = sitelabel(*base, "--json")
    assert everything.returncode == 0, everything.stderr
    data = json.loads(everything.stdout)
    assert data["total"] == 2
    by_id = {item["asset_id"]: item for item in data["items"]}
    assert by_id[ids["coins.png"]]["status"] == "submitted"
    assert by_id[ids["coins.png"]]["labelers"] == ["lee"] and by_id[ids["coins.png"]]["classes"] == ["object"]
    assert by_id[ids["CT_small.dcm"]]["status"] == "leased"
    assert by_id[ids["CT_small.dcm"]]["modality"] == "CT"

    def in_process(*args: str) -> tuple[int, str, str]:  # the same verb, without a process start each
        code = main([*base, *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    for flags, expected in (
        (("--status", "submitted"), ["coins.png"]),
        (("--class", "object"), ["coins.png"]),
        (("--modality", "ct"), ["CT_small.dcm"]),
        (("--search", "coins"), ["coins.png"]),
        (("--labeler", "lee"), ["coins.png", "CT_small.dcm"]),
    ):
        code, out, err = in_process(*flags, "--json")
        assert code == 0, err
        got = {item["asset_id"] for item in json.loads(out)["items"]}
        assert got == {ids[name] for name in expected}, flags

    code, out, _ = in_process("--status", "leased")
    assert code == 0 and "CT_small.dcm" in out and "1 of 1 item(s)" in out
    code, out, _ = in_process("--labelers", "--json")
    (row,) = json.loads(out)
    assert (code, row["name"], row["submitted"], row["skipped"]) == (0, "lee", 1, 0)
    code, out, _ = in_process("--labelers")
    assert code == 0 and out.splitlines()[1].startswith("lee")

    code, _, err = in_process("--status", "finished")
    assert code == 1 and "status 'finished' is ambiguous" in err and "submitted or accepted" in err
    code, _, err = in_process("--status", "finishd")
    assert code == 1 and "unknown status 'finishd'" in err
    code = main(["activity", "--db", db_url, "--user", "lee", "--labeler", "ada"])
    assert code == 1 and "labeler" in capsys.readouterr().err
