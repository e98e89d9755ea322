"""Real failing targets: a full tmpfs, a read-only remount, a folder deleted mid-export.

The mounts need root (the test sandbox runs as root); elsewhere those two tests skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _exchange_setup import annotate, export, make_project, tree

from app import api
from app.exchange.export import ExportError


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[api.Project, list[int]]]:
    project, ids = make_project(str(tmp_path / "labels.db"))
    annotate(project, ids)
    yield project, ids
    project.close()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"cannot mount a tmpfs: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_gives_a_clear_error_and_keeps_the_previous_export(project, small_tmpfs: Path) -> None:
    proj, _ids = project
    out = small_tmpfs / "export"
    export(proj, "csv", out)  # a small previous export that fits
    before = tree(out)
    stat = os.statvfs(small_tmpfs)  # fill the disk up to 16 KiB: the PNGs need far more
    (small_tmpfs / "filler").write_bytes(b"x" * (stat.f_bavail * stat.f_frsize - 16384))
    with pytest.raises(ExportError, match=r"is full .*nothing was changed"):
        export(proj, "png-masks", out)
    assert tree(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["annotations.csv", "manifest.json", "provenance.json"]


def test_read_only_target(project, small_tmpfs: Path) -> None:
    proj, _ = project
    out = small_tmpfs / "export"
    export(proj, "csv", out)
    before = tree(out)
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    with pytest.raises(ExportError, match="read-only: nothing was changed"):
        export(proj, "coco", out)
    assert tree(out) == before


@pytest.mark.parametrize("how", ["delete", "rename"])
def test_target_vanishing_mid_export(project, tmp_path: Path, how: str) -> None:
    proj, _ = project
    out = tmp_path / "share" / "export"

    def vanish(done: int, total: int) -> None:
        if done == 1 and out.exists():
            if how == "delete":
                shutil.rmtree(out)
            else:
                out.rename(tmp_path / "share" / "moved")

    with pytest.raises(ExportError, match="disappeared during the export"):
        export(proj, "png-masks", out, progress=vanish)
    assert not out.exists()  # not re-created half-written
    if how == "rename":
        assert [p.name for p in (tmp_path / "share" / "moved").iterdir()] == []
