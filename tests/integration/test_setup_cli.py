"""`sitelabel init` in three steps, and `sitelabel ontology export/import`: real processes, real
data (skimage photos written as PNG, a CT series built from a real slice), SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from app import api
from app.core.ontology import Ontology
from app.core.records import ProjectSettings
from app.resources import ontology_templates
from app.sources.synthetic import build_ct_series


def sitelabel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ),
    )


def _data(root: Path) -> tuple[Path, Path, Path]:
    from skimage import data

    photos, ct, incoming = root / "photos", root / "ct", root / "incoming"
    for folder in (photos, incoming):
        folder.mkdir(parents=True)
    Image.fromarray(data.camera()).save(photos / "camera.png")
    Image.fromarray(data.coins()).save(photos / "coins.png")
    build_ct_series(ct, n=6)
    Image.fromarray(data.moon()).save(incoming / "moon.png")
    return photos, ct, incoming


def test_init_with_data_watch_ontology_and_consensus_creates_everything(db_url: str, tmp_path: Path) -> None:
    photos, ct, incoming = _data(tmp_path / "data")
    ontology_file = tmp_path / "onto.json"
    template = json.loads(ontology_templates()["chest_ct_organs"].read_text())
    ontology_file.write_text(json.dumps(template))
    result = sitelabel(
        "init", "chest", "--db", db_url, "--user", "carol",
        "--data", str(photos), str(ct), "--watch", str(incoming),
        "--ontology", str(ontology_file), "--consensus-share", "0.25", "--consensus-count", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "created project 'chest'" in result.stdout
    assert f"watch folders remembered: {incoming.resolve()}" in result.stdout
    assert "registered 4 assets (0 problems)" in result.stdout

    project = api.open_project(db_url, "chest", user="carol", create=False)
    try:
        kinds = sorted(a.kind.value for a in project.assets())
        assert kinds == ["dicom-series", "image", "image", "image"]
        assert project.ontology.to_dict()["classes"] == Ontology.from_dict(template).to_dict()["classes"]
        assert project.settings == ProjectSettings(consensus_share=0.25, consensus_count=3)
        assert project.watch_folders == [incoming.resolve()]
        assert project.queue_stats()  # the imported data joined the labeling queue
    finally:
        project.close()


def test_init_from_a_template_and_the_old_form_still_work(tmp_path: Path) -> None:
    db = str(tmp_path / "labels.db")
    templated = sitelabel("init", "lesions", "--db", db, "--user", "carol", "--template", "lesion_boxes")
    assert templated.returncode == 0, templated.stderr
    plain = sitelabel("init", "plain", "--db", db, "--user", "carol")
    assert plain.returncode == 0, plain.stderr
    with api.open_project(db, "lesions", user="carol", create=False) as project:
        assert [c.name for c in project.ontology.classes][:2] == ["nodule", "mass"]
        assert project.assets() == [] and project.watch_folders == []
    with api.open_project(db, "plain", user="carol", create=False) as project:
        assert project.ontology.classes == ()
    unknown = sitelabel("init", "x", "--db", db, "--user", "carol", "--template", "no-such")
    assert unknown.returncode == 2 and "no ontology template 'no-such'" in unknown.stderr
    assert "chest_ct_organs" in unknown.stderr
    missing = sitelabel("init", "y", "--db", db, "--user", "carol", "--watch", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "watch folders must be existing folders" in missing.stderr
    bad_share = sitelabel("init", "z", "--db", db, "--user", "carol", "--consensus-share", "1.5")
    assert bad_share.returncode == 1 and "consensus share must be within 0..1" in bad_share.stderr


def test_ontology_export_import_round_trip_and_a_labeler_is_refused(db_url: str, tmp_path: Path) -> None:
    created = sitelabel("init", "videos", "--db", db_url, "--user", "carol", "--template", "video_objects")
    assert created.returncode == 0, created.stderr
    exported = tmp_path / "exported.json"
    out = sitelabel("ontology", "export", "--db", db_url, "--user", "carol", "--out", str(exported))
    assert out.returncode == 0, out.stderr
    assert "wrote ontology version 1 (6 classes)" in out.stdout
    data = json.loads(exported.read_text())
    template = json.loads(ontology_templates()["video_objects"].read_text())
    assert data == Ontology.from_dict(template).to_dict()
    printed = sitelabel("ontology", "export", "--db", db_url, "--user", "carol")
    assert json.loads(printed.stdout) == data

    data["classes"].append({"name": "sign", "color": "#ffe119", "hotkey": "6", "kinds": ["box"]})
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))
    stored = sitelabel("ontology", "import", str(changed), "--db", db_url, "--user", "carol")
    assert stored.returncode == 0, stored.stderr
    assert "ontology version 2 stored in 'videos' (7 classes)" in stored.stdout
    again = sitelabel("ontology", "export", "--db", db_url, "--user", "carol")
    assert json.loads(again.stdout) == {**data, "version": 2}

    added = sitelabel(
        "users", "add", "bob", "--role", "labeler", "--project", "videos", "--db", db_url, "--user", "carol"
    )
    assert added.returncode == 0, added.stderr
    refused = sitelabel("ontology", "import", str(exported), "--db", db_url, "--user", "bob")
    assert refused.returncode != 0
    line = refused.stderr.strip()
    assert "\n" not in line and "Traceback" not in refused.stderr
    assert line == (
        "sitelabel: bob is a labeler in project 'videos'; to change the ontology needs project admin or above"
    )
    with api.open_project(db_url, "videos", user="carol", create=False) as project:
        assert project.ontology.version == 2  # unchanged by the refused import
        with project.db.unit_of_work() as uow:
            sets = [e for e in uow.audit.list(50) if e.action == "ontology.set"]
        assert [e.details["version"] for e in sets] == [2]  # audited via Project.set_ontology

    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"classes": [{"name": "a", "color": "red"}]}))
    bad = sitelabel("ontology", "import", str(invalid), "--db", db_url, "--user", "carol")
    assert bad.returncode == 1 and "colour must look like #rrggbb" in bad.stderr
