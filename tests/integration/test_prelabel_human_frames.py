"""A pre-label pass leaves alone the frames a person already labeled with the class (issue #16),
on both backends, through the API and the command line.

Data: pydicom-data's real enhanced MR series ``emri_small.dcm`` (10 slices of 64x64). A labeler
draws the bright tissue of class ``vessel`` on slices 0, 2, 4, 6 and 8 (the pixels above 300, a
stated rule), and ``tissue`` on slice 1; the threshold model (p >= 0.5 above 300 of 0..600)
pre-labels ``vessel``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _prelabel_setup import ADMIN, LABELER, REVIEWER, make_team_project
from support.models import threshold_model

from app import api, sample_data
from app.core.annotations import HUMAN, Annotation

ONTOLOGY = {
    "classes": [
        {"name": "vessel", "color": "#c0504d", "kinds": ["polygon", "mask"]},
        {"name": "tissue", "color": "#4f81bd", "kinds": ["mask"]},
    ]
}
HUMAN_SLICES = (0, 2, 4, 6, 8)
MODEL = "model:bright@1"


def _fingerprint(ann: Annotation) -> tuple[Any, ...]:
    """Everything stored about an annotation, its mask as bytes."""
    mask = ann.mask
    bits = (mask.x0, mask.y0, mask.bits.shape, mask.bits.tobytes()) if mask is not None else None
    return (ann.id, ann.version, ann.kind, ann.label, ann.frame, ann.source, ann.author, ann.confidence, bits)


def _stored(project: api.Project, asset_id: int) -> dict[int, set[tuple[Any, ...]]]:
    """Frame -> the fingerprints of its live annotations."""
    out: dict[int, set[tuple[Any, ...]]] = {}
    for ann in project.annotation_objects(asset_id):
        out.setdefault(ann.frame, set()).add(_fingerprint(ann))
    return out


def _series_with_human_slices(db_url: str, tmp_path: Path) -> tuple[dict[str, api.Project], int]:
    people = make_team_project(db_url, ontology=ONTOLOGY)
    admin, ana = people[ADMIN], people[LABELER]
    (mr_id,) = admin.import_data([sample_data.dicom_file("emri_small.dcm")])
    admin.register_model(threshold_model(tmp_path / "incoming", "bright", normalise={"range": [0.0, 600.0]}))
    with admin.open_asset(mr_id) as source:
        slices = [np.asarray(source.frame(i)) for i in range(source.frame_count)]
    assert len(slices) == 10
    ana.upload_annotations(
        mr_id,
        [{"kind": "mask", "label": "vessel", "frame": f, "mask": slices[f] > 300} for f in HUMAN_SLICES]
        + [{"kind": "mask", "label": "tissue", "frame": 1, "mask": slices[1] > 100}],
    )
    return people, mr_id


def test_a_pass_skips_slices_a_person_labeled_and_labels_the_rest(db_url: str, tmp_path: Path) -> None:
    people, mr_id = _series_with_human_slices(db_url, tmp_path)
    rita = people[REVIEWER]
    before = _stored(rita, mr_id)

    report = rita.prelabel(["bright"], asset_ids=[mr_id])
    assert report.human_frames == 5 and report.frames == 5 and report.annotations > 0
    after = _stored(rita, mr_id)
    for f in HUMAN_SLICES:  # byte-identical, nothing added
        assert after[f] == before[f], f
    model_frames = {a.frame for a in rita.annotation_objects(mr_id) if a.source == MODEL}
    assert model_frames == {1, 3, 5, 7, 9}  # slice 1's human label is another class
    assert after[1] >= before[1]

    # a second pass replaces its own pre-labels and still leaves the human slices alone
    again = rita.prelabel(["bright"], asset_ids=[mr_id])
    assert again.human_frames == 5 and again.withdrawn == report.annotations
    assert {f: after[f] for f in HUMAN_SLICES} == {f: _stored(rita, mr_id)[f] for f in HUMAN_SLICES}

    # asked for, the pass labels them too, next to (never instead of) the person's masks
    forced = rita.prelabel(["bright"], asset_ids=[mr_id], overwrite_human=True)
    assert forced.human_frames == 0 and forced.frames == 10
    final = rita.annotation_objects(mr_id)
    assert {a.frame for a in final if a.source == MODEL} == set(range(10))
    humans = {_fingerprint(a) for a in final if a.source == HUMAN}
    assert humans == set().union(*(before[f] for f in (*HUMAN_SLICES, 1)))
    with rita.db.unit_of_work(readonly=True) as uow:
        audits = [e for e in uow.audit.list(100) if e.action == "model.prelabel_run"]
    assert sorted(e.details["human_frames"] for e in audits) == [0, 5, 5]
    for project in people.values():
        project.close()


def test_the_command_line_says_how_many_frames_it_skipped(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "site.toml"
    config.write_text(f'models_dir = "{(tmp_path / "models").as_posix()}"\n')
    monkeypatch.setenv("SITELABEL_CONFIG", str(config))  # one models folder for the API and the CLI
    people, mr_id = _series_with_human_slices(db_url, tmp_path)
    for project in people.values():
        project.close()
    env = {**os.environ, "SITELABEL_USER": ADMIN}

    def prelabel(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "app",
                "prelabel",
                "--model",
                "bright",
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
            env=env,
        )

    def model_frames() -> set[int]:
        with api.open_project(db_url, "prelabels", user=ADMIN) as admin:
            return {a.frame for a in admin.annotation_objects(mr_id) if a.source == MODEL}

    done = prelabel()
    assert done.returncode == 0, done.stderr
    assert "pre-labeled 1 assets (5 frames)" in done.stdout
    assert "5 frames skipped: a person already labeled the class there (--overwrite-human" in done.stdout
    assert model_frames() == {1, 3, 5, 7, 9}

    forced = prelabel("--overwrite-human")
    assert forced.returncode == 0, forced.stderr
    assert "pre-labeled 1 assets (10 frames)" in forced.stdout and "skipped" not in forced.stdout
    assert model_frames() == set(range(10))
