"""`sitelabel models | train | prelabel` as real processes on a real SQLite project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _prelabel_setup import ADMIN, LABELER, make_team_project
from support.models import threshold_model

from app import sample_data


def sitelabel(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def test_models_train_and_prelabel_from_the_command_line(tmp_path: Path) -> None:
    from skimage import io

    db = str(tmp_path / "labels.db")
    people = make_team_project(db)
    admin, ana = people[ADMIN], people[LABELER]
    coins = sample_data.skimage_images() / "coins.png"
    camera = sample_data.skimage_images() / "camera.png"
    page = sample_data.skimage_images() / "page.png"
    coin_id, camera_id, _ = admin.import_data([coins, camera, page])
    # ana's labels: the bright pixels (a stated threshold) of the coins and the camera images
    for asset_id, path in ((coin_id, coins), (camera_id, camera)):
        ana.upload_annotations(asset_id, [{"kind": "mask", "label": "vessel", "mask": io.imread(path) > 120}])
    for project in people.values():
        project.close()
    models = tmp_path / "site-models"
    config = tmp_path / "site.toml"
    config.write_text(f'models_dir = "{models.as_posix()}"\n')
    env = {"SITELABEL_CONFIG": str(config), "SITELABEL_USER": ADMIN}
    base = ("--db", db, "--project", "prelabels")

    added = sitelabel("models", "add", str(threshold_model(tmp_path / "incoming")), *base, env=env)
    assert added.returncode == 0, added.stderr
    assert "registered bright@1 (segmentation, classes ['vessel'])" in added.stdout
    assert (models / "bright" / "1" / "bright.onnx").is_file()

    not_yet = sitelabel("train", "--class", "vessel", "--every", "3", *base, env=env)
    assert not_yet.returncode == 0 and "not due: 2 new 'vessel' labels and no model yet" in not_yet.stdout

    trained = sitelabel("train", "--class", "vessel", "--from-labeler", LABELER, *base, env=env)
    assert trained.returncode == 0, trained.stderr
    assert "trained mm-vessel@1 on 2 labeled frames (2 labels)" in trained.stdout
    assert ": validation Dice 0.9" in trained.stdout
    assert "(leave-one-frame-out over 2 frames)" in trained.stdout

    listed = sitelabel("models", "list", "--json", "--check", *base, env=env)
    assert listed.returncode == 0, listed.stderr
    refs = {m["ref"]: m for m in json.loads(listed.stdout)}
    assert set(refs) == {"bright@1", "mm-vessel@1"} and all(m["problem"] is None for m in refs.values())

    labeled = sitelabel("prelabel", "--model", "mm-vessel", "--model", "bright@1", *base, env=env)
    assert labeled.returncode == 0, labeled.stderr
    assert "pre-labeled 1 assets (1 frames) with mm-vessel@1, bright@1" in labeled.stdout
    assert "2 frames skipped: a person already labeled the class there" in labeled.stdout

    denied = sitelabel("prelabel", "--model", "bright", *base, env={**env, "SITELABEL_USER": LABELER})
    assert denied.returncode == 1 and "needs reviewer or above" in denied.stderr

    quality = sitelabel("models", "quality", "--json", *base, env=env)
    assert quality.returncode == 0, quality.stderr
    rows = json.loads(quality.stdout)
    assert {(r["model"], r["label"]) for r in rows} == {("bright", "vessel"), ("mm-vessel", "vessel")}
    assert all(r["reviewed"] == 0 for r in rows)

    # a file changed after registration: verify refuses it and says why, on one line per model
    onnx_file = models / "bright" / "1" / "bright.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    verified = sitelabel("models", "verify", *base, env=env)
    assert verified.returncode == 1
    assert "REFUSED  bright@1: model bright@1: bright.onnx has sha256" in verified.stdout
    assert "ok       mm-vessel@1" in verified.stdout
