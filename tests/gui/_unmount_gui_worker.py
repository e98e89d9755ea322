"""The real main window (offscreen) while its data root is unmounted; prints one JSON object.

Run by tests/gui/test_unmount_gui.py inside a private mount namespace (see
tests/reliability/_unmount_worker.py for the data and the mount helpers):

    python _unmount_gui_worker.py STAGING WORK METHOD SCREENSHOT

Opens the CT series, decodes slice 0, unmounts the data root, paints on slice 0 and saves with
Ctrl+S, presses the next-slice key until a slice must come from the lost folder, records the status
bar, opens another asset of that root and one of another root, saves SCREENSHOT, mounts the folder
again and presses the next-slice key once more.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).parents[1] / "reliability"))

import numpy as np
from _unmount_worker import DataFolder, data_root
from PySide6.QtCore import QPoint, Qt, QThreadPool
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDockWidget, QWidget

from app import api
from app.editor.app import create_application
from app.editor.main_window import MainWindow
from app.workflow.journal import Journal


def wait_until(check: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if check():
            return True
        time.sleep(0.01)
    return False


def settle() -> bool:
    """Wait until the workers are done and what they posted back ran: nothing left to happen."""

    def idle() -> bool:
        QApplication.processEvents()  # results the workers posted, before the pool counts as idle
        return QThreadPool.globalInstance().activeThreadCount() == 0

    return wait_until(lambda: idle() and idle())


def focus(widget: QWidget) -> bool:
    """Keys reach window shortcuts only in the active window (a real X server activates it later)."""
    window = widget.window()
    window.raise_()
    window.activateWindow()
    widget.setFocus()
    return wait_until(lambda: window.isActiveWindow() and widget.hasFocus())


def list_texts(window: MainWindow) -> dict[str, str]:
    model = window.assets.model
    return {
        model.asset_at(r).rel_path: str(model.data(model.index(r, 0), Qt.ItemDataRole.DisplayRole))
        for r in range(model.rowCount())
    }


def paint_and_save(window: MainWindow, offset: int) -> int:
    """A brush stroke across the middle of the canvas, then Ctrl+S; the painted pixel count."""
    canvas = window.canvas
    w, h = canvas.width(), canvas.height()
    a, b = QPoint(w // 2 - 60, h // 2 + offset), QPoint(w // 2 + 60, h // 2 + 30 + offset)
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(canvas, b)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    painted = window.editing.frame_labels()
    QTest.keyClick(canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    return int((painted > 0).sum()) if painted is not None else 0


def stored_masks(project: api.Project, asset_id: int) -> list[list[int]]:
    """(frame, pixel count) of the masks in the database."""
    found = [x for x in project.annotations(asset_id) if x["kind"] == "mask"]
    return sorted([int(x["frame"]), int(np.asarray(x["mask"]).sum())] for x in found)


def open_and_wait(window: MainWindow, asset_id: int, done: Callable[[], bool]) -> bool:
    window.open_asset_id(asset_id)
    return wait_until(done)


def run(staging: Path, work: Path, method: str, screenshot: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    folder = DataFolder(staging / "data", data_root(), method)
    folder.mount()
    ontology = {"classes": [{"name": "organ", "color": "#ff4040", "kinds": ["mask", "polygon"]}]}
    project = api.create_project(work / "labels.db", "unmount", ontology=ontology, user="kim")
    project.import_data([folder.mount_point])
    project.import_data([staging / "other"])
    assets = {a.rel_path: a for a in project.assets()}
    series = next(a for a in assets.values() if a.kind.startswith("dicom"))
    tiff, other = assets["big.tif"], assets["coffee.png"]  # the TIFF is never opened before the unmount

    create_application()
    window = MainWindow(project, journal=Journal(work / "journal.db"))
    window.resize(1400, 900)
    window.show()
    messages: list[str] = []
    window.statusBar().messageChanged.connect(lambda text: messages.append(text) if text else None)
    out["series_open"] = open_and_wait(
        window, series.id, lambda: window.current is not None and window.current.asset.id == series.id
    )
    settle()  # the neighbours of slice 0 are prefetched in the background
    out["umount_rc"] = folder.unmount(lazy=method == "lazy")

    # paint on the slice on screen (decoded before the unmount) and save with Ctrl+S
    canvas = window.canvas
    focus(canvas)
    window.classes.choose("organ")
    QTest.keyClick(canvas, Qt.Key.Key_B)  # brush
    out["painted_pixels"] = paint_and_save(window, 0)
    out["saved"] = wait_until(lambda: (s := window.editing.session) is not None and s.pending_count == 0)
    out["stored_masks"] = stored_masks(project, series.id)

    # next slice, again and again: cached slices show, the first one from disk fails with one message
    steps: list[Any] = []
    for _ in range(series.frame_count):
        before = window.current.index if window.current else -1
        told = len(messages)
        QTest.keyClick(canvas, Qt.Key.Key_Down)
        wait_until(
            lambda b=before, t=told: (
                (window.current is not None and window.current.index != b) or (len(messages) > t)
            )
        )
        steps.append(window.current.index if window.current else None)
        if len(messages) > told:
            break
    out["steps"] = steps
    for _ in range(4):  # more presses in the same outage: no new message
        QTest.keyClick(canvas, Qt.Key.Key_Down)
        settle()
    out["index_after_presses"] = window.current.index if window.current else None
    # the slice still on screen takes labels too
    out["painted_pixels_during_outage"] = paint_and_save(window, 40)
    out["saved_during_outage"] = wait_until(
        lambda: (s := window.editing.session) is not None and s.pending_count == 0
    )
    out["stored_masks_during_outage"] = stored_masks(project, series.id)
    out["status_now"] = window.statusBar().currentMessage()
    out["messages_after_navigation"] = list(messages)
    out["frame_label"] = window.frame_label.text()
    out["list_during_outage"] = list_texts(window)
    assets_dock = window.findChild(QDockWidget, "dock-assets")
    if assets_dock is not None:
        assets_dock.raise_()  # the list with its "(unavailable)" marks in front for the screenshot
    settle()
    window.grab().save(str(screenshot))

    # another asset of the lost root: the same clear error; an asset of another root: works
    shown = len(messages)
    window.open_asset_id(tiff.id)
    out["tiff_told"] = wait_until(lambda: len(messages) > shown)
    out["tiff_message"] = messages[-1] if len(messages) > shown else ""
    out["tiff_details"] = window.info.toPlainText()
    out["tiff_current"] = window.current.asset.id if window.current else None
    out["other_open"] = open_and_wait(
        window, other.id, lambda: window.current is not None and window.current.asset.id == other.id
    )
    out["messages_total_outage"] = list(messages)

    # the folder comes back: going back to the series and the next slice decode again
    folder.mount()
    out["series_back"] = open_and_wait(
        window, series.id, lambda: window.current is not None and window.current.asset.id == series.id
    )
    index = window.current.index if window.current else -1
    focus(canvas)
    for _ in range(len(steps) + 1):  # the series reopens on slice 0: walk past what was cached
        QTest.keyClick(canvas, Qt.Key.Key_Down)
        wait_until(lambda i=index: window.current is not None and window.current.index != i, 20)
        index = window.current.index if window.current else -1
    out["index_after_remount"] = index
    out["status_after_remount"] = messages[-1] if messages else ""
    out["list_after_remount"] = list_texts(window)
    out["mount_point"] = str(folder.mount_point)
    out["series_rel_path"] = series.rel_path
    window.close()
    return out


def main() -> None:
    staging, work, method, screenshot = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    print(json.dumps(run(staging, work, method, screenshot)))


if __name__ == "__main__":
    main()
