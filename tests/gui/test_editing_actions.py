"""Keyboard-driven editing in the real window: classification, attributes, conversions, W/L, help."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox
from support.windows import focus, show_asset

from app import api
from app.core.annotations import Kind
from app.core.raster import rasterize_polygon
from app.editor.main_window import MainWindow


def _window(qtbot, open_window, tmp_path: Path, asset_name: str) -> MainWindow:  # type: ignore[no-untyped-def]
    from app.demo import build_demo

    db, _ = build_demo(tmp_path / "demo")
    window = open_window(api.open_project(db, create=False))
    show_asset(qtbot, window, lambda asset: asset.rel_path.endswith(asset_name))
    focus(qtbot, window.canvas)  # the tests type window shortcuts and tool keys
    return window


def _session(window: MainWindow):  # type: ignore[no-untyped-def]
    assert window.editing.session is not None
    return window.editing.session


def test_whole_asset_classification_with_answers_is_saved(qtbot, open_window, tmp_path: Path) -> None:
    window = _window(qtbot, open_window, tmp_path, "camera.png")
    panel = window.annotation_panel
    item = panel.classes.item(0)
    assert item.text() == "image quality"
    item.setCheckState(Qt.CheckState.Checked)
    panel.classes.setCurrentItem(item)
    (classification,) = [
        a for a in _session(window).doc.annotations(0).values() if a.kind is Kind.CLASSIFICATION
    ]
    assert classification.label == "image quality"
    panel.form.findChild(QComboBox).setCurrentText("poor")  # the form built from the ontology
    window.editing.saves.save()
    session = _session(window)
    qtbot.waitUntil(lambda: session.pending_count == 0, timeout=20_000)
    asset_id = window.current.asset.id if window.current else -1
    window.close()
    stored = [
        a for a in api.open_project(window.project.db).annotations(asset_id) if a["kind"] == "classification"
    ]
    assert [(a["label"], a["attributes"]) for a in stored] == [("image quality", {"quality": "poor"})]


def test_polygon_to_mask_and_back_through_the_keyboard(qtbot, open_window, tmp_path: Path) -> None:
    window = _window(qtbot, open_window, tmp_path, "coins.png")
    doc = _session(window).doc
    polygons = [(aid, a) for aid, a in doc.annotations(0).items() if a.kind is Kind.POLYGON]
    assert polygons  # the demo's coin polygon
    aid, polygon = polygons[0]
    qtbot.keyClick(window.canvas, Qt.Key.Key_V)  # select tool
    x, y = polygon.points.mean(axis=0)
    qtbot.mouseClick(
        window.canvas, Qt.MouseButton.LeftButton, pos=window.canvas.view.to_widget(x, y).toPoint()
    )
    assert window.editing.tools.tool.selected == aid  # type: ignore[union-attr]
    qtbot.keyClick(window.canvas, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    index = window.project.ontology.index_of(polygon.label)
    expected = rasterize_polygon(polygon.points, doc.shape)
    assert np.array_equal(doc.label_map(0) == index, expected)
    assert aid not in doc.annotations(0)
    window.classes.choose(polygon.label)
    qtbot.keyClick(
        window.canvas, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    back = [a for a in doc.annotations(0).values() if a.kind is Kind.POLYGON and a.label == polygon.label]
    union = np.zeros(doc.shape, dtype=bool)
    for a in back:
        union |= rasterize_polygon(a.points, doc.shape)
    assert np.array_equal(union, expected) and not (doc.label_map(0) == index).any()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert aid in doc.annotations(0) and not doc.label_map(0).any()
    window.close()


def test_window_presets_and_help_overlay(qtbot, open_window, tmp_path: Path) -> None:
    window = _window(qtbot, open_window, tmp_path, "693_UNCI.dcm")
    qtbot.keyClick(window.canvas, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)  # bone
    from app.sources import WINDOW_PRESETS

    assert window.window_level == WINDOW_PRESETS["bone"]
    assert window.canvas.window_level == WINDOW_PRESETS["bone"]
    qtbot.keyClick(window.canvas, Qt.Key.Key_F1)
    assert window.help.isVisible()
    keys = dict((action, keys) for keys, action in window.help.entries)
    assert keys["Brush"] == "B" and keys["Undo"] == "Ctrl+Z" and keys["Class: liver"] == "1"
    qtbot.keyClick(window.help, Qt.Key.Key_Escape)
    assert not window.help.isVisible()
    window.close()


def test_a_class_cannot_be_drawn_with_a_kind_the_ontology_forbids(qtbot, open_window, tmp_path: Path) -> None:
    window = _window(qtbot, open_window, tmp_path, "camera.png")
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)  # brush
    window.classes.choose("landmark")  # the demo ontology allows only points for landmarks
    assert window.editing.tools.tool is None
    assert "landmark" in window.save_label.text() and "point" in window.save_label.text()
    qtbot.keyClick(window.canvas, Qt.Key.Key_O)  # the point tool is fine
    assert window.editing.tools.tool is not None and window.editing.tools.tool.name == "point"
    window.classes.choose("liver")
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)
    assert window.editing.tools.tool is not None and window.editing.tools.tool.name == "brush"
    window.close()


def test_a_newer_save_elsewhere_opens_the_conflict_dialog(qtbot, open_window, tmp_path: Path) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QPushButton

    from app.core.commands import ReplaceAnnotation
    from app.editor.conflict_dialog import ConflictDialog

    window = _window(qtbot, open_window, tmp_path, "coins.png")
    session = _session(window)
    aid, mine = next((aid, a) for aid, a in session.doc.annotations(0).items() if a.kind is Kind.POLYGON)
    asset_id = window.current.asset.id if window.current else -1
    # another workstation (its own database connection) saves a newer version first
    elsewhere = api.open_project(window.project.db.path, create=False)
    stored = next(a for a in elsewhere.annotation_objects(asset_id) if a.kind is Kind.POLYGON)
    elsewhere.save_annotation(stored.evolve(points=stored.points + 5.0))
    elsewhere.close()

    session.stack.push(ReplaceAnnotation(aid, mine, mine.evolve(points=mine.points - 3.0)))
    seen: list[str] = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, ConflictDialog):
            QTimer.singleShot(50, answer)
            return
        buttons = {b.text(): b for b in dialog.findChildren(QPushButton)}
        buttons["View both"].click()
        seen.append("both shown" if dialog.both.isVisible() else "both hidden")
        buttons["Keep mine"].click()

    QTimer.singleShot(50, answer)
    window.editing.saves.save()
    qtbot.waitUntil(
        lambda: bool(seen) and session.pending_count == 0 and not session.conflicts, timeout=20_000
    )
    assert seen == ["both shown"]
    window.close()
    final = next(
        a for a in api.open_project(window.project.db).annotation_objects(asset_id) if a.kind is Kind.POLYGON
    )
    assert np.allclose(final.points, mine.points - 3.0) and final.version == 3  # mine, on top of theirs


def test_ctrl_o_turns_the_label_outline_on_and_off_again(qtbot, open_window, tmp_path: Path) -> None:
    window = _window(qtbot, open_window, tmp_path, "camera.png")
    assert not window.canvas.layers.outline
    qtbot.keyClick(window.canvas, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert window.canvas.layers.outline
    qtbot.keyClick(window.canvas, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert not window.canvas.layers.outline  # it only ever turned on before
