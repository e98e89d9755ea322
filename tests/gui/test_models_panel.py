"""The Models dock on a real project (the trained micro-model of test_prelabel_review.build_world):
the model list with its hash check, pre-label passes with progress and cancel (from the dock and
from the main window's key), the refusals a labeler gets, on-site training by the project admin,
and the quality table against project.model_quality()."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from support.windows import focus
from test_prelabel_review import (
    ADMIN,
    FRESH,
    LABELER,
    REVIEWER,
    SOURCE,
    TRAIN,
    World,
    _site,
    build_world,
    open_item,
)

from app import api
from app.editor.models_panel import ModelsPanel
from app.workflow.editing import EditSession
from app.workflow.journal import Journal
from app.workflow.prelabel import PrelabelReport


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("models-world"))


@pytest.fixture
def copy(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    db, models = tmp_path / "labels.db", tmp_path / "models"
    shutil.copy(world.db, db)
    shutil.copytree(world.models, models)
    monkeypatch.setenv("SITELABEL_CONFIG", str(_site(tmp_path, models)))
    return World(tmp_path, db, models, world.assets)


def _panel(qtbot, copy: World, user: str, asset_id: int | None = None) -> ModelsPanel:  # type: ignore[no-untyped-def]
    project = api.open_project(copy.db, "retina", user=user, create=False)
    panel = ModelsPanel(project, lambda: asset_id)
    qtbot.addWidget(panel)
    panel.resize(760, 640)
    panel.show()
    panel.refresh()
    qtbot.waitUntil(lambda: panel.models_table.rowCount() > 0, timeout=20_000)
    return panel


def _cells(table, row: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [table.item(row, c).text() for c in range(table.columnCount())]


def _wait_done(qtbot, panel: ModelsPanel) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: panel.job is None, timeout=120_000)


def test_reviewer_runs_a_pass_with_progress_and_can_cancel_one(qtbot, themed_qapp, copy: World) -> None:
    panel = _panel(qtbot, copy, REVIEWER)
    assert _cells(panel.models_table, 0) == ["mm-vessel", "1", "segmentation", "vessel", "hash ok"]
    assert panel.chosen_models() is None  # nothing selected: every usable model
    panel.models_table.selectRow(0)
    assert panel.chosen_models() == ["mm-vessel@1"]
    values: list[int] = []
    panel.progress.valueChanged.connect(values.append)
    with qtbot.waitSignal(panel.prelabels_changed, timeout=120_000):
        qtbot.mouseClick(panel.run_all_button, Qt.MouseButton.LeftButton)
        assert not panel.progress.isHidden() and not panel.cancel_button.isHidden()
        assert not panel.run_all_button.isEnabled()  # one job at a time
    report = panel.logic.last_result
    total = len(copy.assets) - len(TRAIN)  # the tiles alice labeled are left alone
    assert isinstance(report, PrelabelReport) and not report.cancelled and report.assets == total
    assert report.annotations > 0 and values and max(values) == total
    assert report.human_frames == len(TRAIN)
    assert panel.progress.isHidden() and "Pre-label pass done" in panel.message.text()
    assert (
        f"{len(TRAIN)} frame(s) left alone: a person had already labeled the class there."
        in panel.message.text()
    )
    fresh = copy.assets[FRESH]
    assert all(a.source == SOURCE for a in panel.project.annotation_objects(fresh, labeler=REVIEWER))

    # cancel: pressed right after the start, the pass stops before it got through the items
    qtbot.mouseClick(panel.run_all_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    _wait_done(qtbot, panel)
    cancelled = panel.logic.last_result
    assert isinstance(cancelled, PrelabelReport) and cancelled.cancelled and cancelled.assets < total
    assert "cancelled" in panel.message.text()


def test_a_labeler_is_told_what_role_it_takes(qtbot, themed_qapp, copy: World) -> None:
    panel = _panel(qtbot, copy, LABELER, copy.assets[FRESH])
    qtbot.mouseClick(panel.run_item_button, Qt.MouseButton.LeftButton)
    _wait_done(qtbot, panel)
    assert "ana is a labeler" in panel.message.text()
    assert "to run pre-label passes needs reviewer or above" in panel.message.text()
    assert panel.message.styleSheet()  # shown as an error
    qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    _wait_done(qtbot, panel)
    assert "to train models needs project admin or above" in panel.message.text()
    assert not panel.project.annotation_objects(copy.assets[FRESH])


def test_admin_trains_a_micro_model_and_the_quality_table_matches_the_api(
    qtbot, themed_qapp, copy: World, screenshot_dir: Path
) -> None:
    # ana reviews the pre-labels of one held-out tile: accepts the sure ones, rejects the rest
    ana = api.open_project(copy.db, "retina", user=LABELER, create=False)
    asset = ana.asset(copy.held[0])
    session = EditSession(
        ana.db, ana.id, asset, ana.user, ana.ontology, journal=Journal(copy.folder / "j.db")
    )
    session.load()
    pending = session.prelabels()
    assert session.accept_prelabels(None, min_confidence=0.9) > 0
    from app.core.commands import RemoveAnnotation

    for aid in session.prelabels():
        session.stack.push(RemoveAnnotation(aid))
    assert session.flush().error is None and len(pending) > 1
    session.close()
    ana.close()

    panel = _panel(qtbot, copy, ADMIN)
    assert panel.train_class.currentText() == "vessel"
    with qtbot.waitSignal(panel.models_changed, timeout=120_000):
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    assert "Trained and registered mm-vessel@2" in panel.message.text()
    assert "validation Dice 0." in panel.message.text() and "training Dice 0." in panel.message.text()
    qtbot.waitUntil(lambda: panel.models_table.rowCount() == 2, timeout=20_000)
    assert {tuple(_cells(panel.models_table, r)[:2]) for r in range(2)} == {
        ("mm-vessel", "1"),
        ("mm-vessel", "2"),
    }

    expected = panel.project.model_quality()
    assert expected and expected[0].reviewed > 0
    qtbot.waitUntil(lambda: panel.quality_table.rowCount() == len(expected), timeout=20_000)
    for r, q in enumerate(expected):
        cells = _cells(panel.quality_table, r)
        assert cells[:6] == [q.model, q.version, q.label, str(q.groups), str(q.reviewed), str(q.accepted)]
        assert q.mean_dice is not None and q.mean_iou is not None and q.accept_rate is not None
        assert cells[6] == f"{q.accept_rate * 100:.0f} %"
        assert float(cells[7]) == pytest.approx(q.mean_dice, abs=5e-4)
        assert float(cells[8]) == pytest.approx(q.mean_iou, abs=5e-4)
    panel.grab().save(str(screenshot_dir / "models_panel.png"))


def test_prelabel_from_the_window_key_shows_new_prelabels(qtbot, open_window, copy: World) -> None:
    fresh = copy.assets[FRESH]
    window = open_item(qtbot, open_window, copy.db, REVIEWER, fresh)
    session = window.editing.session
    assert session is not None and not session.prelabels()
    keys = [k for b in window.bindings for k in b.keys.split(" or ") if k]
    for mine in ("A", "Shift+A", "J", "Shift+J", "H", "Shift+H", "Ctrl+Shift+R", "F7", "F8"):
        assert keys.count(mine) == 1, mine  # no other action shares the key
    help_keys = {keys for keys, _ in window.help.entries}
    assert {"A", "J", "Shift+A", "H", "Delete"} <= help_keys
    focus(qtbot, window.canvas)  # Ctrl+Shift+R is a window shortcut: the window must be active
    with qtbot.waitSignal(window.models_panel.prelabels_changed, timeout=120_000):
        qtbot.keyClick(
            window.canvas,
            Qt.Key.Key_R,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )
    qtbot.waitUntil(lambda: window.editing.session is not session, timeout=20_000)
    reopened = window.editing.session
    assert reopened is not None and reopened.asset.id == fresh
    shown = reopened.prelabels(0)
    assert shown and all(a.source == SOURCE for a in shown.values())
    drawn = window.canvas.overlays.vectors.items
    assert len(drawn) == len(reopened.doc.annotations(0))  # drawn on the canvas
    assert window.prelabels.table.rowCount() == len(shown)
    window.close()
