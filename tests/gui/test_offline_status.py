"""The real main window while its PostgreSQL server is stopped and started again (this module's own
throwaway cluster): the status bar says "Offline, N edits waiting" in amber, the strokes reach the
database once it is back; in queue mode Submit keeps the item while offline and goes through after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app import api, sample_data
from app.core.annotations import Annotation, Kind
from app.core.commands import AddAnnotation
from app.core.records import ProjectSettings
from app.editor.main_window import MainWindow
from app.editor.queue_controller import ItemState
from app.workflow.editing import SaveState

ONTOLOGY = {"classes": [{"name": "liver", "color": "#c0504d"}, {"name": "lesion", "color": "#4f81bd"}]}
IMAGES = ["camera.png", "coins.png", "moon.png"]
SQUARE = np.array([[20.0, 20.0], [90.0, 20.0], [90.0, 80.0], [20.0, 80.0]])
WAIT = 30_000

pytestmark = pytest.mark.postgres


@pytest.fixture
def up(pg_up: Any) -> Any:
    """This module's own cluster (tests/conftest.py), started again should a test fail while it is down."""
    return pg_up


def _stroke(window: MainWindow, i: int) -> None:
    """One brush stroke through the canvas with real mouse events."""
    canvas = window.canvas
    w, h = canvas.width(), canvas.height()
    a = QPoint(int(w * 0.3) + (i * 37) % int(w * 0.3), int(h * 0.3) + (i * 53) % int(h * 0.3))
    b = QPoint(a.x() + w // 12, a.y() + h // 25)
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(canvas, b)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    QApplication.processEvents()


def _stored_labels(project: api.Project, asset_id: int, shape: tuple[int, int]) -> np.ndarray:
    """The label map the database holds for the asset (class index per pixel)."""
    out = np.zeros(shape, dtype=np.uint16)
    for ann in project.annotation_objects(asset_id):
        if ann.kind is Kind.MASK and ann.mask is not None:
            out[ann.mask.to_full()] = project.ontology.index_of(ann.label)
    return out


def test_status_bar_says_offline_with_the_edits_waiting_and_saves_them_after_restart(
    qtbot, up: Any, open_window, screenshot_dir: Path
) -> None:
    url = up.database("gui_status")
    project = api.create_project(url, "offline", ontology=ONTOLOGY, user="ann")
    (asset_id,) = project.import_data([sample_data.skimage_images() / IMAGES[0]])
    window = open_window(project)
    window.editing.tools.set_tool("brush")
    label = window.save_label
    _stroke(window, 0)
    qtbot.waitUntil(lambda: label.text() == "All changes saved", timeout=WAIT)  # the autosave

    up.stop()
    for i in range(1, 4):
        _stroke(window, i)
    qtbot.waitUntil(lambda: label.text().startswith("Offline, 3 edits waiting — "), timeout=WAIT)
    assert "the database is unreachable" in label.text() and "last saved" in label.text()
    assert window.editing.saves.offline and "background: #8a5a00" in label.styleSheet()
    # not clipped, once the status bar has laid the longer, bold text out
    qtbot.waitUntil(lambda: label.width() >= label.sizeHint().width(), timeout=WAIT)
    window.grab().save(str(screenshot_dir / "offline_status.png"))
    label.grab().save(str(screenshot_dir / "offline_status_label.png"))
    session = window.editing.session
    assert session is not None and session.status is SaveState.OFFLINE

    up.start()
    qtbot.waitUntil(lambda: label.text() == "All changes saved", timeout=WAIT)  # retried by itself
    assert label.styleSheet() == ""
    painted = session.doc.label_map(0)
    assert np.count_nonzero(painted) > 0
    assert np.array_equal(_stored_labels(project, asset_id, painted.shape), painted)
    assert window.editing.journal.count(session.key) == 0


def test_queue_submit_while_offline_keeps_the_item_and_goes_through_after_restart(
    qtbot, up: Any, open_window
) -> None:
    url = up.database("gui_queue")
    settings = ProjectSettings(batch_size=2)
    project = api.create_project(url, "offline", ontology=ONTOLOGY, settings=settings, user="ann")
    project.import_data([sample_data.skimage_images() / name for name in IMAGES])
    window = open_window(project)
    c = window.queue.controller
    notices: list[str] = []
    c.notice.connect(notices.append)
    start = window.actions_by_id["sitelabel.queue.start"]

    up.stop()  # claiming while offline: a message, no crash, no item
    start.trigger()
    qtbot.waitUntil(lambda: any(n.startswith("Could not claim items") for n in notices), timeout=WAIT)
    assert c.item is None

    up.start()
    start.trigger()
    qtbot.waitUntil(lambda: c.current == 0 and not c.opening and c.idle, timeout=WAIT)
    item = c.items[0]
    session = window.editing.session
    assert session is not None and session.asset.id == item.asset.id
    session.stack.push(AddAnnotation(Annotation(kind=Kind.POLYGON, label="liver", frame=0, points=SQUARE)))

    up.stop()
    session.stack.push(AddAnnotation(Annotation(kind=Kind.POLYGON, label="lesion", points=SQUARE + 100)))
    window.actions_by_id["sitelabel.queue.submit"].trigger()
    qtbot.waitUntil(lambda: any(n.startswith("Offline: ") for n in notices), timeout=WAIT)
    offline_notice = next(n for n in notices if n.startswith("Offline: "))
    assert "edits waiting; Submit will be possible when the database is back" in offline_notice
    assert window.queue.notice.text() == offline_notice and window.queue.notice.isVisible()
    assert c.current == 0 and item.state is ItemState.CURRENT and window.editing.session is session
    c.renew()  # the lease renewal fails too: the item stays
    qtbot.waitUntil(lambda: any(n.startswith("Could not renew") for n in notices), timeout=WAIT)
    assert c.current == 0 and item.state is ItemState.CURRENT and session.pending_count > 0

    up.start()
    window.actions_by_id["sitelabel.queue.submit"].trigger()
    qtbot.waitUntil(lambda: item.state is ItemState.SUBMITTED, timeout=WAIT)
    stored = sorted(a.label for a in project.annotation_objects(item.asset.id))
    assert stored == ["lesion", "liver"]
    assert project.queue_stats()["submitted"] == 1
