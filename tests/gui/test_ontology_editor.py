"""The ontology editor: built with the keyboard, nested attributes round-tripped through JSON
files exactly, invalid input shown next to its field with OK disabled, and Project > Edit
ontology... storing a new version for project admins only."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QFileDialog, QMessageBox
from support.windows import activate, focus

from app import api
from app.core.ontology import Ontology
from app.editor.ontology_editor import OntologyDialog, OntologyEditor

NESTED = {
    "version": 3,
    "classes": [
        {
            "name": "nodule",
            "color": "#E6194B",
            "hotkey": "Ctrl+1",
            "kinds": ["box", "point"],
            "description": "on the slice where it is largest",
            "attributes": [
                {"name": "type", "type": "enum", "options": ["solid", "part-solid"], "required": True},
                {"name": "diameter_mm", "type": "number", "min": 0.5, "max": 42},
                {
                    "name": "suspicion",
                    "type": "enum",
                    "options": ["low", "high"],
                    "children": {
                        "high": [
                            {
                                "name": "biopsy",
                                "type": "bool",
                                "children": {
                                    "true": [
                                        {
                                            "name": "method",
                                            "type": "enum",
                                            "options": ["CT-guided", "bronchoscopy"],
                                            "children": {"bronchoscopy": [{"name": "note", "type": "text"}]},
                                        }
                                    ]
                                },
                            },
                            {"name": "lung-rads", "type": "enum", "options": ["4A", "4B"]},
                        ]
                    },
                },
            ],
        },
        {"name": "vessel", "color": "#4f81bd", "kinds": ["polyline", "mask"]},
        {
            "name": "quality",
            "color": "#7f7f7f",
            "kinds": ["classification"],
            "attributes": [{"name": "grade", "type": "enum", "options": ["good", "poor"]}],
        },
    ],
}


def _editor(qtbot, ontology=None) -> OntologyEditor:  # type: ignore[no-untyped-def]
    editor = OntologyEditor(ontology)
    qtbot.addWidget(editor)
    editor.resize(980, 660)
    activate(qtbot, editor)  # shortcuts and focus need an active window
    return editor


def test_nested_attributes_round_trip_through_json_files_exactly(qtbot, themed_qapp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    original = Ontology.from_dict(NESTED)
    editor = _editor(qtbot, original)
    assert editor.is_valid()
    first = tmp_path / "exported.json"
    editor.export_json(first)
    assert json.loads(first.read_text()) == original.to_dict()  # exactly Ontology.to_dict()

    other = _editor(qtbot)
    assert not other.is_valid()  # blank: no class yet
    imported = other.import_json(first)
    assert imported.to_dict() == original.to_dict() and other.to_dict() == original.to_dict()
    second = tmp_path / "again.json"
    other.export_json(second)
    assert second.read_bytes() == first.read_bytes()
    # the tree shows the nesting three levels down
    other.select_class("nodule")
    tree = other.attributes.tree
    suspicion = tree.topLevelItem(2)
    assert suspicion.text(0) == "suspicion" and suspicion.child(0).text(0) == "if suspicion = high"
    biopsy = suspicion.child(0).child(0)
    assert biopsy.child(0).text(0) == "if biopsy = true"
    assert biopsy.child(0).child(0).child(0).child(0).text(0) == "note"


def test_export_and_import_buttons_use_file_dialogs(qtbot, themed_qapp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    editor = _editor(qtbot, Ontology.from_dict(NESTED))
    target = tmp_path / "via-button.json"

    def answer_file_dialog() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QFileDialog):
            dialog.selectFile(str(target))
            dialog.accept()
            return
        QTimer.singleShot(50, answer_file_dialog)

    QTimer.singleShot(0, answer_file_dialog)
    qtbot.mouseClick(editor.export_button, Qt.MouseButton.LeftButton)
    assert json.loads(target.read_text()) == Ontology.from_dict(NESTED).to_dict()
    blank = _editor(qtbot)
    QTimer.singleShot(0, answer_file_dialog)
    qtbot.mouseClick(blank.import_button, Qt.MouseButton.LeftButton)
    assert blank.to_dict() == Ontology.from_dict(NESTED).to_dict()


def test_building_an_ontology_with_the_keyboard(
    qtbot, themed_qapp, tmp_path: Path, screenshot_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    editor = _editor(qtbot)
    assert "add at least one class" in editor.summary_text
    focus(qtbot, editor.class_list)
    qtbot.keyClick(editor.class_list, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert editor.form.name.hasFocus()
    qtbot.keyClicks(editor.form.name, "liver")  # replaces the suggested, selected name
    editor.form.set_color("#c0504d")  # what the colour dialog hands back
    box = editor.form.kinds["box"]
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))  # its tick box
    qtbot.keyClick(
        editor, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    attrs = editor.attributes
    assert attrs.name.hasFocus()
    qtbot.keyClicks(attrs.name, "confidence")
    attrs.type.setCurrentText("enum")
    assert "an enum attribute needs options" in attrs.error.text() and not editor.is_valid()
    qtbot.keyClicks(attrs.options, "sure, unsure")
    assert editor.is_valid()
    attrs.under.setCurrentText("unsure")
    qtbot.mouseClick(attrs.nest_button, Qt.MouseButton.LeftButton)
    attrs.name.selectAll()
    qtbot.keyClicks(attrs.name, "reason")
    qtbot.keyClick(editor.class_list, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(editor.form.name, "bone")
    assert editor.ontology().to_dict() == {
        "version": 1,
        "classes": [
            {
                "name": "liver",
                "color": "#c0504d",
                "kinds": ["polygon", "mask", "box"],
                "hotkey": "1",
                "attributes": [
                    {
                        "name": "confidence",
                        "type": "enum",
                        "options": ["sure", "unsure"],
                        "children": {"unsure": [{"name": "reason", "type": "text"}]},
                    }
                ],
            },
            {"name": "bone", "color": "#e6194b", "kinds": ["polygon", "mask"], "hotkey": "2"},
        ],
    }
    editor.select_class("liver")
    editor.grab().save(str(screenshot_dir / "ontology_editor.png"))
    # Del in the attribute tree removes the nested attribute and its now empty branch
    tree = attrs.tree
    focus(qtbot, tree)
    tree.setCurrentItem(tree.topLevelItem(0).child(0).child(0))
    assert attrs.name.text() == "reason"
    qtbot.keyClick(tree, Qt.Key.Key_Delete)
    assert editor.ontology().get("liver").attributes[0].children == {}
    assert tree.topLevelItem(0).childCount() == 0
    # Alt+Down moves the class, Del on the list removes it
    focus(qtbot, editor.class_list)
    qtbot.keyClick(editor.class_list, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    assert [c.name for c in editor.ontology().classes] == ["bone", "liver"]
    qtbot.keyClick(editor.class_list, Qt.Key.Key_Delete)
    assert [c.name for c in editor.ontology().classes] == ["bone"]


def test_invalid_input_is_shown_beside_its_field_and_ok_is_disabled(
    qtbot, themed_qapp, screenshot_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    dialog = OntologyDialog(Ontology.from_dict(NESTED))
    qtbot.addWidget(dialog)
    dialog.show()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    editor, form = dialog.editor, dialog.editor.form
    assert ok.isEnabled()

    editor.select_class("vessel")
    qtbot.keyClicks(form.hotkey, "Ctrl+1")  # nodule's
    assert not ok.isEnabled()
    assert form.errors["hotkey"].isVisible()
    assert "hotkey Ctrl+1 is also used by class nodule" in form.errors["hotkey"].text()
    form.hotkey.selectAll()
    qtbot.keyClicks(form.hotkey, "b")  # the brush tool's key
    assert "taken by tool brush" in form.errors["hotkey"].text() and not ok.isEnabled()
    form.hotkey.selectAll()
    qtbot.keyClicks(form.hotkey, "2")
    assert not form.errors["hotkey"].isVisible() and ok.isEnabled()

    form.color.selectAll()
    qtbot.keyClicks(form.color, "#12345g")
    assert "colour must look like #rrggbb" in form.errors["color"].text() and not ok.isEnabled()
    form.name.selectAll()
    qtbot.keyClick(form.name, Qt.Key.Key_Backspace)
    assert "needs a name" in form.errors["name"].text()
    assert form.errors["name"].isVisible() and form.errors["color"].isVisible()
    assert "(no name)" in editor.class_list.currentItem().text()
    assert "2 problems to fix" in editor.summary_text
    assert not editor.export_button.isEnabled()
    dialog.grab().save(str(screenshot_dir / "ontology_editor_invalid.png"))

    qtbot.keyClicks(form.name, "vessel")
    form.color.selectAll()
    qtbot.keyClicks(form.color, "#4f81bd")
    assert ok.isEnabled()
    # an attribute's problem is shown under the attribute fields and marks its row
    editor.select_class("quality")
    attrs = editor.attributes
    attrs.options.selectAll()
    qtbot.keyClick(attrs.options, Qt.Key.Key_Backspace)
    assert "grade: an enum attribute needs options" in attrs.error.text() and not ok.isEnabled()


def _answer_modal(act) -> None:  # type: ignore[no-untyped-def]
    """Run ``act(widget)`` on the first modal dialog that shows up."""
    widget = QApplication.activeModalWidget()
    if widget is not None:
        act(widget)
        return
    QTimer.singleShot(50, lambda: _answer_modal(act))


def test_edit_ontology_from_the_main_window_stores_a_new_version(open_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.demo import build_demo

    db, _ = build_demo(tmp_path / "demo")
    project = api.open_project(db, create=False)
    project.set_member("bob", "labeler")
    before = project.ontology
    window = open_window(project, show=False)  # the action works on a window never shown
    action = window.actions_by_id["sitelabel.project.edit_ontology"]
    assert action.shortcut().toString() == "Ctrl+Shift+O"
    assert ("Ctrl+Shift+O", "Edit ontology...") in [(b.keys, b.text) for b in window.bindings]

    def add_class_and_save(dialog) -> None:  # type: ignore[no-untyped-def]
        assert isinstance(dialog, OntologyDialog)
        dialog.editor.add_class()
        dialog.editor.form.name.setText("nodule")
        dialog.editor.form.set_field("name", "nodule")
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

    QTimer.singleShot(0, lambda: _answer_modal(add_class_and_save))
    action.trigger()
    after = project.ontology
    assert after.version == before.version + 1
    assert [c.name for c in after.classes] == [*(c.name for c in before.classes), "nodule"]
    assert "nodule" in [
        window.classes.list.item(r).text().split()[-1] for r in range(window.classes.list.count())
    ]
    window.close()

    labeler = api.open_project(db, user="bob", create=False)
    window = open_window(labeler, show=False)
    messages: list[str] = []

    def read_and_close(box) -> None:  # type: ignore[no-untyped-def]
        assert isinstance(box, QMessageBox)
        messages.append(box.text())
        box.accept()

    QTimer.singleShot(0, lambda: _answer_modal(read_and_close))
    window.actions_by_id["sitelabel.project.edit_ontology"].trigger()
    assert messages and "Only project admins can change the ontology" in messages[0]
    assert labeler.ontology.version == after.version
    window.close()
