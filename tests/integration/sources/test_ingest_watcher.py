from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from app.ingest import FolderWatcher
from app.sample_data import dicom_file


def _wait(cond: threading.Event, seconds: float) -> bool:
    return cond.wait(seconds)


def test_series_reported_once_when_quiet(tmp_path: Path) -> None:
    got: list[list[Path]] = []
    done = threading.Event()

    def on_ready(files: list[Path]) -> None:
        got.append(files)
        done.set()

    with FolderWatcher(tmp_path, on_ready, settle_seconds=0.6):
        series = tmp_path / "series1"
        series.mkdir()
        for k in range(4):  # a slow copy: one slice every 0.2 s, less than the settle time
            shutil.copy(dicom_file("MR_small.dcm"), series / f"{k}.dcm")
            time.sleep(0.2)
            assert not got, "reported while the series was still being copied"
        (series / "partial.dcm.part").write_bytes(b"ignored")
        assert _wait(done, 15)
        time.sleep(1.0)
    assert len(got) == 1
    assert [p.name for p in got[0]] == ["0.dcm", "1.dcm", "2.dcm", "3.dcm"]


def test_growing_file_waits_until_stable(tmp_path: Path) -> None:
    clock = [0.0]
    got: list[list[Path]] = []
    w = FolderWatcher(tmp_path, got.append, settle_seconds=5, clock=lambda: clock[0])
    f = tmp_path / "a.png"
    f.write_bytes(b"x")
    w.notice(f)
    w.poll()
    clock[0] = 4.0
    with f.open("ab") as fh:
        fh.write(b"more")
    w.poll()  # size changed: stability restarts
    clock[0] = 8.0
    w.poll()
    assert got == []
    clock[0] = 9.5
    w.poll()
    assert got == [[f]]
    assert w.pending == 0
