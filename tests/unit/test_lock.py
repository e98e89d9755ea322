"""The lock check in `make test`: it fails with one line naming `make lock` when the lock is stale."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")
pytestmark = pytest.mark.skipif(not UV.exists(), reason="uv comes with the locked venv (make test)")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The lock's files in a folder of their own, using this venv (the check never touches the network)."""
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    (tmp_path / "scripts").mkdir()
    for name in ("lock.sh", "lock_diff.py"):
        shutil.copy2(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    return tmp_path


def _check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "scripts/lock.sh", "check"], cwd=folder, capture_output=True, text=True, check=False
    )


def test_the_committed_lock_is_current_and_the_venv_holds_it(checkout: Path) -> None:
    done = _check(checkout)
    assert done.returncode == 0, done.stderr
    assert "holds exactly the" in done.stdout


def test_a_requirement_the_lock_does_not_satisfy_fails_with_one_line(checkout: Path) -> None:
    pyproject = checkout / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert '"numpy>=1.26"' in text
    pyproject.write_text(text.replace('"numpy>=1.26"', '"numpy>=99"'), encoding="utf-8")
    done = _check(checkout)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "lock: pyproject.toml asks for something uv.lock does not hold: run 'make lock'"
    ]


def test_an_edited_export_is_caught(checkout: Path) -> None:
    export = checkout / "requirements" / "venv.txt"
    export.write_text(export.read_text(encoding="utf-8").replace("numpy==", "numpy>=", 1), encoding="utf-8")
    done = _check(checkout)
    assert done.returncode == 1
    assert "requirements/venv.txt is not the export of uv.lock: run 'make lock'" in done.stderr
