"""GUI tests: real widgets offscreen; tests marked ``gl`` run on an X display (Xvfb)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.windows import WAIT, open_main_window

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.main_window import MainWindow

# Offscreen unless the runner chose a platform (scripts/test.sh picks xcb on Xvfb for `-m gl`).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if os.environ["QT_QPA_PLATFORM"] == "xcb":
    # the GL tests exercise the GL path even on Xvfb's software renderer, where the app picks raster
    os.environ.setdefault("SITELABEL_CANVAS", "gl")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A GL test without an X display is skipped on a developer's machine and fails in CI."""
    if item.get_closest_marker("gl") is None:
        return
    if os.environ.get("QT_QPA_PLATFORM") != "xcb" or not os.environ.get("DISPLAY"):
        reason = "needs an X display with QT_QPA_PLATFORM=xcb (make test starts Xvfb)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def raster_canvas(monkeypatch: pytest.MonkeyPatch) -> None:
    """The raster path on any platform: offscreen picks it by itself, on Xvfb it must be asked for."""
    if os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        monkeypatch.setenv("SITELABEL_CANVAS", "raster")


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real demo project (sample DICOM, images, video registered in place), built once."""
    from app.demo import build_demo

    path, created = build_demo(tmp_path_factory.mktemp("demo"))
    assert created
    return path


@pytest.fixture
def themed_qapp(qapp):  # type: ignore[no-untyped-def]
    from app.editor.theme import apply_dark_theme

    apply_dark_theme(qapp)
    return qapp


@pytest.fixture
def screenshot_dir() -> Iterator[Path]:
    """Screenshots land here for a person to look at (SITELABEL_SCREENSHOT_DIR, default build/screenshots)."""
    folder = Path(
        os.environ.get("SITELABEL_SCREENSHOT_DIR", Path(__file__).parents[2] / "build" / "screenshots")
    )
    folder.mkdir(parents=True, exist_ok=True)
    yield folder


@pytest.fixture
def open_window(qtbot, themed_qapp, tmp_path: Path) -> Iterator[Callable[..., MainWindow]]:  # type: ignore[no-untyped-def]
    """``open_window(project, journal=None, size=None, show=True, first_frame=True)``: a MainWindow
    shown, exposed and active (window shortcuts work, offscreen and on Xvfb alike) with the first
    asset on screen; see support.windows.open_main_window. Each user's edit journal is
    ``journal-USER.db`` in the test's folder unless ``journal`` names another. After the test the
    windows are closed and no worker may be left running."""
    from PySide6.QtCore import QThreadPool

    windows: list[MainWindow] = []

    def make(project: Project, journal: str | None = None, **options: Any) -> MainWindow:
        path = tmp_path / (journal or f"journal-{project.user_name}.db")
        window = open_main_window(qtbot, project, path, **options)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
    assert QThreadPool.globalInstance().waitForDone(WAIT)  # no worker left running
