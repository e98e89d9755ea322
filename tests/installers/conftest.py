"""Installer tests: the offline bundle and the frozen app are built once per session.

Tests marked ``installer`` download ~400 MB (once; pip's cache is build/pip-cache) and run
PyInstaller for minutes, so only ``make installer-check`` (SITELABEL_INSTALLER_CHECK=1) runs them;
other runs deselect them. Unmarked tests here (the site config) run in ``make test``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _installer_helpers import ROOT, record_time


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("SITELABEL_INSTALLER_CHECK") == "1":
        return
    chosen = [i for i in items if i.get_closest_marker("installer") is None]
    dropped = [i for i in items if i.get_closest_marker("installer") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = chosen


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from _installer_helpers import TIMES

    if TIMES:
        terminalreporter.section("installer timings (s)")
        for name, seconds in TIMES.items():
            terminalreporter.write_line(f"{name:16} {seconds:8.1f}")


@pytest.fixture(scope="session")
def bundle_dir() -> Path:
    """Build the Linux bundle (pip cache under build/, so a rerun only checks the index)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "installers" / "build_bundle.py")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    record_time("bundle_build", time.monotonic() - started)
    assert done.returncode == 0, done.stdout + done.stderr
    folders = sorted((ROOT / "dist").glob("sitelabel-bundle-*-linux_x86_64-cp*"))
    folders = [f for f in folders if f.is_dir() and not f.name.endswith(".partial")]
    assert folders, done.stdout
    return max(folders, key=lambda f: f.stat().st_mtime)


@pytest.fixture(scope="session")
def frozen_app() -> Path:
    exe = ROOT / "dist" / "sitelabel" / "sitelabel"
    if os.environ.get("SITELABEL_REUSE_FROZEN") == "1" and exe.is_file():  # iterating on the tests only
        return exe
    started = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "scripts" / "installer.sh"), "freeze"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    record_time("freeze", time.monotonic() - started)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]
    assert exe.is_file()
    return exe


@pytest.fixture
def clean_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """HOME, config and data folders of a fresh user; offscreen Qt."""
    home = tmp_path / "home"
    home.mkdir()
    yield {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "SITELABEL_CACHE_DIR": str(home / ".cache" / "sitelabel"),
        "QT_QPA_PLATFORM": "offscreen",
        "SITELABEL_USER": "ana",
    }
