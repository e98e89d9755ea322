"""The main window opens the real demo project and shows real pixels and annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage

from app import api
from app.editor.main_window import MainWindow


def _image_array(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    ptr = image.constBits()
    arr = np.frombuffer(ptr, dtype=np.uint8, count=image.sizeInBytes())
    rows = arr.reshape(image.height(), image.bytesPerLine())[:, : image.width() * 3]
    return rows.reshape(image.height(), image.width(), 3).copy()  # copy: the QImage buffer dies with it


def _open(qtbot, demo_db: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    project = api.open_project(demo_db, create=False)
    window = MainWindow(project)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.current is not None, timeout=20_000)
    return window


def _show_asset(qtbot, window: MainWindow, wanted) -> None:  # type: ignore[no-untyped-def]
    """Select the first asset matching ``wanted`` and wait until its frame is on screen."""
    model = window.assets.model
    row = next(r for r in range(model.rowCount()) if wanted(model.asset_at(r)))
    window.assets.select_row(row)
    qtbot.waitUntil(lambda: window.current is not None and wanted(window.current.asset), timeout=20_000)


def test_demo_project_lists_real_assets_and_shows_the_first(qtbot, themed_qapp, demo_db: Path) -> None:
    window = _open(qtbot, demo_db)
    assert window.assets.model.rowCount() == 10
    frame = window.current
    assert frame is not None
    assert frame.asset.id == window.assets.model.asset_at(0).id
    assert frame.display.dtype == np.uint8
    assert frame.display.std() > 10  # a real picture, not a blank
    window.close()


def test_stepping_through_every_asset_decodes_each(qtbot, themed_qapp, demo_db: Path) -> None:
    window = _open(qtbot, demo_db)
    seen = set()
    for row in range(window.assets.model.rowCount()):
        window.assets.select_row(row)
        wanted = window.assets.model.asset_at(row).id
        qtbot.waitUntil(
            lambda w=wanted: window.current is not None and window.current.asset.id == w, timeout=20_000
        )
        assert window.current is not None
        seen.add(window.current.asset.kind)
        assert window.current.display.shape[:2] == (window.current.asset.height, window.current.asset.width)
    assert {"image", "dicom-series", "video"} <= {str(k) for k in seen}
    window.close()


def test_ct_slice_shows_hu_readout_and_stored_mask(qtbot, themed_qapp, demo_db: Path) -> None:
    window = _open(qtbot, demo_db)
    _show_asset(qtbot, window, lambda asset: asset.rel_path.endswith("693_UNCI.dcm"))
    frame = window.current
    assert frame is not None
    assert [a.label for a in frame.annotations] == ["bone"]
    assert frame.raw.min() < -500  # air in HU: values are rescaled modality values
    window._show_position(256.5, 256.5)
    assert "HU" in window.position_label.text()
    window.close()


def test_video_frames_step_with_the_keyboard(qtbot, themed_qapp, demo_db: Path) -> None:
    window = _open(qtbot, demo_db)
    _show_asset(qtbot, window, lambda asset: asset.kind == "video")
    first = window.current
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Down)  # the "Next frame" shortcut
    qtbot.waitUntil(lambda: window.current is not None and window.current.index == 1, timeout=20_000)
    assert window.current is not None and first is not None
    assert not np.array_equal(window.current.raw, first.raw)
    assert "frame 2/250" in window.frame_label.text()
    window.close()


@pytest.mark.gl
def test_screenshot_of_the_real_window_under_xvfb(
    qtbot, themed_qapp, demo_db: Path, screenshot_dir: Path
) -> None:
    window = _open(qtbot, demo_db)
    _show_asset(qtbot, window, lambda asset: asset.rel_path.endswith("693_UNCI.dcm"))
    qtbot.waitExposed(window)
    qtbot.wait(300)
    screen = QGuiApplication.primaryScreen()
    shot = screen.grabWindow(0)  # the whole X screen, as a person would see it
    path = screenshot_dir / "main_window_ct.png"
    assert shot.save(str(path))
    pixels = _image_array(shot.toImage())
    viewport = window.view.viewport()
    origin = viewport.mapToGlobal(viewport.rect().topLeft())
    h, w = viewport.height(), viewport.width()
    centre = pixels[
        origin.y() + h // 4 : origin.y() + 3 * h // 4, origin.x() + w // 4 : origin.x() + 3 * w // 4
    ]
    assert centre.std() > 20  # the CT slice is on screen, not an empty view
    # the dark theme is on: the details panel is light text on a dark background
    panel = window.info.viewport()
    top = panel.mapToGlobal(panel.rect().topLeft())
    assert pixels[top.y() : top.y() + panel.height(), top.x() : top.x() + panel.width()].mean() < 70
    window.close()
