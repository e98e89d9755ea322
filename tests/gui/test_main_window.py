"""The main window on the real demo project: real pixels, the canvas, the tools, autosave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from support.windows import focus, show_asset

from app import api
from app.core.raster import rasterize_stroke
from app.editor.main_window import MainWindow
from app.editor.qimages import to_array


def _open(open_window, db: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    return open_window(api.open_project(db, create=False))


def test_demo_project_lists_real_assets_and_shows_the_first(qtbot, open_window, demo_db: Path) -> None:
    window = _open(open_window, demo_db)
    assert window.assets.model.rowCount() == 10
    assert window.current is not None and window.current.asset.id == window.assets.model.asset_at(0).id
    layers = window.canvas.backend.render_layers()
    assert layers.shape[:2] == window.current.raw.shape[:2]
    assert layers[..., :3].std() > 10  # a real picture, not a blank
    assert window.classes.list.count() == 6  # the demo classes one can draw (not the classification)
    window.close()


def test_stepping_through_every_asset_decodes_each(qtbot, open_window, demo_db: Path) -> None:
    window = _open(open_window, demo_db)
    seen = set()
    for row in range(window.assets.model.rowCount()):
        wanted = window.assets.model.asset_at(row).id
        show_asset(qtbot, window, lambda asset, w=wanted: asset.id == w)
        assert window.current is not None
        seen.add(str(window.current.asset.kind))
        assert window.current.raw.shape[:2] == (window.current.asset.height, window.current.asset.width)
    assert {"image", "dicom-series", "video"} <= seen
    window.close()


def test_ct_slice_shows_hu_readout_and_the_stored_prelabel(qtbot, open_window, demo_db: Path) -> None:
    window = _open(open_window, demo_db)
    show_asset(qtbot, window, lambda asset: asset.rel_path.endswith("693_UNCI.dcm"))
    assert window.current is not None and window.current.raw.min() < -500  # air in HU
    session = window.editing.session
    assert session is not None
    assert [a.label for a in session.doc.annotations(0).values()] == ["bone"]  # the model pre-label
    window._show_position(256.5, 256.5)
    assert "HU" in window.position_label.text()
    window.close()


def test_video_frames_step_with_the_keyboard(qtbot, open_window, demo_db: Path) -> None:
    window = _open(open_window, demo_db)
    show_asset(qtbot, window, lambda asset: asset.kind == "video")
    first = window.current
    focus(qtbot, window.canvas)  # a window shortcut: the window must be active (Xvfb activates later)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Down)  # the "Next frame" shortcut
    qtbot.waitUntil(lambda: window.current is not None and window.current.index == 1, timeout=20_000)
    assert window.current is not None and first is not None
    assert not np.array_equal(window.current.raw, first.raw)
    assert "frame 2/250" in window.frame_label.text()
    window.close()


def test_a_brush_stroke_is_saved_and_comes_back(qtbot, open_window, tmp_path: Path) -> None:
    from app.demo import build_demo

    db, _ = build_demo(tmp_path / "demo")
    window = _open(open_window, db)
    show_asset(qtbot, window, lambda asset: asset.rel_path.endswith("camera.png"))
    window.classes.choose("liver")
    focus(qtbot, window.canvas)
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)  # brush
    canvas = window.canvas
    a, b = QPoint(300, 250), QPoint(380, 290)
    points = np.array([canvas.view.to_image(a), canvas.view.to_image(b)])
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(canvas, b)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=b)
    radius = window.editing.tools.tool.radius  # type: ignore[union-attr]
    expected = rasterize_stroke(points, radius, (512, 512))
    labels = window.editing.frame_labels()
    assert labels is not None and np.array_equal(labels == 1, expected)  # liver is class 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    session = window.editing.session
    # the status label follows the save through a queued signal: wait for both, not one then the other
    qtbot.waitUntil(
        lambda: (
            session is not None and session.pending_count == 0 and "saved" in window.save_label.text().lower()
        ),
        timeout=20_000,
    )
    asset_id = window.current.asset.id if window.current else -1
    window.close()
    reopened = api.open_project(db, create=False)
    stored = [a for a in reopened.annotations(asset_id) if a["label"] == "liver"]
    assert len(stored) == 1 and np.array_equal(stored[0]["mask"], expected)
    reopened.close()


@pytest.mark.gl
def test_screenshot_of_the_real_window_under_xvfb(qtbot, open_window, demo_db: Path, screenshot_dir) -> None:
    window = _open(open_window, demo_db)
    show_asset(qtbot, window, lambda asset: asset.rel_path.endswith("693_UNCI.dcm"))
    assert window.canvas.backend.name == "gl", window.canvas.backend.fallback_reason
    origin = window.canvas.mapToGlobal(QPoint(0, 0))
    h, w = window.canvas.height(), window.canvas.width()
    shots: list[np.ndarray] = []

    def slice_on_screen() -> bool:  # the X server shows the GL frame a moment after it is drawn
        shot = QGuiApplication.primaryScreen().grabWindow(0)  # the whole X screen, as a person sees it
        shots.append(to_array(shot.toImage()))
        centre = shots[-1][
            origin.y() + h // 4 : origin.y() + 3 * h // 4, origin.x() + w // 4 : origin.x() + 3 * w // 4
        ]
        return bool(centre.std() > 20)  # the CT slice is on screen, not an empty view

    qtbot.waitUntil(slice_on_screen, timeout=10_000)
    pixels = shots[-1]
    Image.fromarray(pixels).save(screenshot_dir / "main_window_ct.png")
    panel = window.info.viewport()
    top = panel.mapToGlobal(QPoint(0, 0))
    assert (
        pixels[top.y() : top.y() + panel.height(), top.x() : top.x() + panel.width()].mean() < 70
    )  # dark theme
    window.close()


def test_open_issues_show_beside_their_asset(open_window, tmp_path: Path) -> None:
    from app.demo import build_demo

    db, _ = build_demo(tmp_path / "demo")
    project = api.open_project(db, create=False)
    coins = next(a for a in project.assets() if a.rel_path.endswith("coins.png"))
    project.comment(coins.id, "the rim is cut off")
    project.comment(coins.id, "second opinion please")
    window = _open(open_window, db)
    model = window.assets.model
    shown = [model.data(model.index(r, 0)) for r in range(model.rowCount())]
    assert any(text.endswith("coins.png  (2 open issues)") for text in shown)
    window.close()
