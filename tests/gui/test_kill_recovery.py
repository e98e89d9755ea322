"""SIGKILL the real app while a radiologist paints; the next start recovers every stroke committed
more than one second before the kill (autosave is off, so the local journal is all there is)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app import api, sample_data
from app.core.raster import rasterize_stroke
from app.workflow.editing import EditSession
from app.workflow.journal import Journal

WORKER = Path(__file__).with_name("_kill_worker.py")


@pytest.mark.slow
def test_strokes_survive_sigkill_of_the_app(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text("autosave_seconds = 3600\n")  # nothing reaches the database before the kill
    env = {
        **os.environ,
        "SITELABEL_CONFIG": str(config),
        "QT_QPA_PLATFORM": "offscreen",
        "SITELABEL_USER": "kim",
    }
    db = tmp_path / "labels.db"
    ontology = {"classes": [{"name": "organ", "color": "#ff0000", "kinds": ["mask"]}]}
    project = api.create_project(db, "kill", ontology=ontology, user="kim")
    (asset_id,) = project.import_data([sample_data.skimage_images() / "camera.png"])
    project.close()
    journal = tmp_path / "journal.db"
    child = subprocess.Popen(
        [sys.executable, str(WORKER), str(db), str(journal)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    radius = float(child.stdout.readline().split()[1])
    strokes: list[tuple[float, list[tuple[float, float]]]] = []
    while len(strokes) < 25:
        line = child.stdout.readline()
        assert line.startswith("committed"), line
        fields = line.split()
        values = [float(v) for v in fields[3:]]
        strokes.append((float(fields[2]), list(zip(values[::2], values[1::2], strict=True))))
    killed_at = time.time()
    child.send_signal(signal.SIGKILL)
    child.wait(10)

    os.environ["SITELABEL_CONFIG"] = str(config)
    project = api.open_project(db, user="kim", create=False)
    pending = Journal(journal).pending()
    assert pending and pending[0].asset_id == asset_id
    session = EditSession(
        project.db,
        project.id,
        project.asset(asset_id),
        project.user,
        project.ontology,
        journal=Journal(journal),
    ).load()
    assert session.recoverable() > 0
    session.recover()
    assert not session.flush().conflicts
    stored = project.annotations(asset_id)
    assert len(stored) == 1 and stored[0]["label"] == "organ"
    got = stored[0]["mask"]
    must = np.zeros_like(got)
    for committed_at, points in strokes:
        if committed_at < killed_at - 1.0:
            must |= rasterize_stroke(np.array(points), radius, got.shape)
    assert must.sum() > 0
    assert not (must & ~got).any(), "a stroke committed more than 1 s before the kill was lost"
    everything = np.zeros_like(got)
    for _, points in strokes:
        everything |= rasterize_stroke(np.array(points), radius, got.shape)
    assert not (got & ~everything).any()  # and nothing that was never painted appears
    session.close()
    project.close()
