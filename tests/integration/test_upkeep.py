"""Watch folders register complete series once; verify notices missing, changed and re-copied files."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from app import api, sample_data
from app.sources.synthetic import build_ct_series


@pytest.fixture
def project(db_url: str) -> api.Project:
    opened = api.create_project(db_url, "upkeep", user="erin")
    yield opened
    opened.close()


def test_verify_reports_missing_changed_and_recopied_files(project: api.Project, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("camera.png", "coins.png", "astronaut.png"):
        shutil.copy(sample_data.skimage_images() / name, data / name)
    series = tmp_path / "series"
    build_ct_series(series, 6)
    ids = project.import_data([data, series])
    assert len(ids) == 4
    assert {c.state for c in project.verify()} == {"ok"}

    (data / "camera.png").unlink()  # deleted
    (data / "coins.png").write_bytes((data / "coins.png").read_bytes() + b"\0")  # changed content
    stat = (data / "astronaut.png").stat()
    os.utime(data / "astronaut.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same bytes, new mtime
    next(series.iterdir()).unlink()  # a slice removed from the series

    states = {c.path.name if c.path else "?": c.state for c in project.verify()}
    assert states == {
        "camera.png": "missing",
        "coins.png": "changed",
        "astronaut.png": "moved?",
        "series": "changed",
    }


def test_watch_registers_a_series_only_once_it_is_complete(project: api.Project, tmp_path: Path) -> None:
    staging, watched = tmp_path / "staging", tmp_path / "inbox"
    watched.mkdir()
    files = build_ct_series(staging, 8)
    reports = []
    done = threading.Event()

    def on_import(report) -> None:  # type: ignore[no-untyped-def]
        reports.append(report)
        done.set()

    watcher = project.watch(watched, settle_seconds=1.0, on_import=on_import)
    try:
        target = watched / "study1"
        target.mkdir()
        for file in files:  # a slow copy, as from a modality: a slice every 0.3 s
            shutil.copy(file, target / file.name)
            time.sleep(0.3)
            assert not reports, "the series was registered before its copy finished"
        assert done.wait(20), "the watcher never registered the series"
    finally:
        watcher.stop()
    assets = project.assets()
    assert len(assets) == 1 and sum(len(r.asset_ids) for r in reports) == 1
    assert assets[0].kind == "dicom-series" and assets[0].frame_count == 8
