"""Training refuses a model it cannot vouch for (issue #16), on both backends: a class labeled at
random places is refused with its validation Dice and nothing is registered or written; one
labeled frame and too few labeled pixels are refused before training; the command line exits
non-zero and says what to label next. (A learnable class, the retina vessels, registers and
reports both Dices in test_prelabel_pass.py.)

Data: 128x128 crops of three real photos from scikit-image (coins, a scanned page, text). The
"blob" labels are three disks of radius 12 per crop at positions drawn from a seeded generator,
unrelated to what the crops show: no model can predict them on a crop it did not learn from.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _prelabel_setup import ADMIN, LABELER, make_team_project
from PIL import Image

from app import api, sample_data
from app.workflow.training import TrainingRefused

ONTOLOGY = {"classes": [{"name": "blob", "color": "#c0504d", "kinds": ["polygon", "mask"]}]}
CROPS = (("coins.png", 40, 100), ("page.png", 20, 100), ("text.png", 10, 150))
SIZE, RADIUS = 128, 12


def _random_disks(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    for _ in range(3):
        cy, cx = rng.integers(RADIUS + 2, SIZE - RADIUS - 2, size=2)
        mask |= (yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2 <= RADIUS**2
    return mask


def _labeled_crops(
    db_url: str, folder: Path, count: int = len(CROPS)
) -> tuple[dict[str, api.Project], list[int]]:
    """``count`` crops imported, each labeled "blob" by ana at random places (seed 16)."""
    people = make_team_project(db_url, ontology=ONTOLOGY)
    admin, ana = people[ADMIN], people[LABELER]
    paths = []
    for name, y, x in CROPS[:count]:
        pixels = np.asarray(Image.open(sample_data.skimage_images() / name).convert("L"))
        path = folder / f"crop-{name}"
        Image.fromarray(np.ascontiguousarray(pixels[y : y + SIZE, x : x + SIZE])).save(path)
        paths.append(path)
    ids = admin.import_data(paths)
    rng = np.random.default_rng(16)
    for asset_id in ids:
        ana.upload_annotations(asset_id, [{"kind": "mask", "label": "blob", "mask": _random_disks(rng)}])
    return people, ids


def _nothing_registered(admin: api.Project) -> None:
    assert admin.models() == []
    folder = admin.models_folder
    assert not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))


def test_a_class_labeled_at_random_is_refused_with_its_validation_dice(db_url: str, tmp_path: Path) -> None:
    people, _ = _labeled_crops(db_url, tmp_path)
    admin = people[ADMIN]
    with pytest.raises(TrainingRefused) as caught:
        admin.train_micro_model("blob")
    refused = caught.value
    message = str(refused)
    assert refused.validation_dice is not None and refused.validation_dice < 0.2
    assert refused.train_dice is not None and refused.frames == 3
    assert f"validation Dice {refused.validation_dice:.3f} (leave-one-frame-out over 3 frames)" in message
    assert "is below the floor of 0.50 (--min-dice)" in message
    assert "Label 2 more frames of 'blob', especially frames like " in message
    assert "crop-page.png (Dice 0.0" in message and "labeled pixels and marked" in message
    _nothing_registered(admin)
    with admin.db.unit_of_work(readonly=True) as uow:
        (audit,) = [e for e in uow.audit.list(50) if e.action == "model.train_refused"]
        assert not [e for e in uow.audit.list(50) if e.action == "model.train"]
    assert audit.details["validation_dice"] == round(refused.validation_dice, 4)
    for project in people.values():
        project.close()


def test_one_frame_or_too_few_pixels_are_refused_before_training(db_url: str, tmp_path: Path) -> None:
    people, ids = _labeled_crops(db_url, tmp_path, count=1)
    admin = people[ADMIN]
    with pytest.raises(
        TrainingRefused, match=r"'blob' is labeled on 1 frame \(\S*crop-coins.png\) only"
    ) as one:
        admin.train_micro_model("blob")
    assert "Label 'blob' on at least 2 frames" in str(one.value) and one.value.validation_dice is None

    (second,) = admin.import_data([sample_data.skimage_images() / "camera.png"])
    people[LABELER].upload_annotations(
        second,
        [{"kind": "polygon", "label": "blob", "points": [[100, 100], [110, 100], [110, 110], [100, 110]]}],
    )
    pixels = one.value.pixels + 100
    with pytest.raises(TrainingRefused) as few:
        admin.train_micro_model("blob", min_pixels=pixels + 1)
    assert f"cover {pixels} pixels on 2 frames, fewer than the {pixels + 1}" in str(few.value)
    assert "Label about 1 more frames of 'blob'" in str(few.value)
    _nothing_registered(admin)
    assert ids
    for project in people.values():
        project.close()


def test_the_command_line_exits_non_zero_and_says_what_to_label(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "site.toml"
    config.write_text(f'models_dir = "{(tmp_path / "models").as_posix()}"\n')
    monkeypatch.setenv("SITELABEL_CONFIG", str(config))
    people, _ = _labeled_crops(db_url, tmp_path, count=2)
    for project in people.values():
        project.close()

    def train(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "app",
                "train",
                "--class",
                "blob",
                "--db",
                db_url,
                "--project",
                "prelabels",
                *extra,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "SITELABEL_USER": ADMIN},
        )

    refused = train("--quiet")
    assert refused.returncode == 1, refused.stdout
    assert "sitelabel: not registered: validation Dice 0.0" in refused.stderr
    assert "Label 3 more frames of 'blob', especially frames like " in refused.stderr
    assert "and on other items too (the 2 labeled frames come from 2 item(s))" in refused.stderr
    assert "pre-label with" not in refused.stdout
    too_few = train("--quiet", "--min-pixels", "100000")
    assert too_few.returncode == 1 and "fewer than the 100000" in too_few.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("*.onnx"))

    # the floor is the caller's: at 0 the same labels register, with both figures reported
    floor = float(refused.stderr.split("validation Dice ", 1)[1].split(" ", 1)[0])
    kept = train("--quiet", "--min-dice", "0")
    assert kept.returncode == 0, kept.stderr
    assert (
        "trained mm-blob@1 on 2 labeled frames (2 labels) in" in kept.stdout
        and f": validation Dice {floor:.3f} (leave-one-frame-out over 2 frames), training Dice "
        in kept.stdout
    )
    assert "pre-label with: sitelabel prelabel --model mm-blob@1" in kept.stdout
    assert len(list((tmp_path / "models").rglob("*.onnx"))) == 1
