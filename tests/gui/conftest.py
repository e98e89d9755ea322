"""GUI tests: real widgets offscreen; tests marked ``gl`` run on an X display (Xvfb)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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
