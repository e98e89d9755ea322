"""Every action has a stable id: code and tests find it by id, never by its menu text, and its
shortcuts are bound to that id, so renaming a menu entry breaks no shortcut, toolbar or test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow
from support.windows import focus

from app import api
from app.editor import actions
from app.editor.tool_registry import TOOLS

ID = re.compile(r"sitelabel(\.[a-z0-9_]+)+")


def test_every_window_action_has_a_unique_id_and_its_shortcuts_bound_to_it(
    open_window, demo_db: Path
) -> None:
    window = open_window(api.open_project(demo_db, create=False), show=False)
    ids = [b.id for b in window.bindings]
    assert len(ids) == len(set(ids)), sorted(i for i in set(ids) if ids.count(i) > 1)
    names = {b.id: b.text for b in window.bindings}
    for binding_id in ids:
        if binding_id.startswith(actions.CLASS_PREFIX):  # the rest is the project's class name
            assert names[binding_id] == f"Class: {binding_id.removeprefix(actions.CLASS_PREFIX)}"
        else:
            assert ID.fullmatch(binding_id), binding_id
    assert set(window.actions_by_id) == set(ids)
    for binding in window.bindings:
        action = window.actions_by_id[binding.id]
        assert action.objectName() == binding.id and action.text() == binding.text
        assert window.findChild(QAction, binding.id) is action
        assert action.shortcuts() == [QKeySequence(k) for k in binding.keys.split(" or ") if k]
    # no shortcut in the window outside the table of ids
    for action in window.findChildren(QAction):
        if action.shortcuts():
            assert window.actions_by_id.get(action.objectName()) is action, action.text()
    # tools and class hotkeys are found by their ids
    for spec in TOOLS:
        action = window.actions_by_id[actions.tool_action(spec.name)]
        assert action.shortcut() == QKeySequence(spec.shortcut) and action.isCheckable()
    assert window.actions_by_id[actions.tool_action("brush")].isChecked()  # the default tool
    assert any(i.startswith(actions.CLASS_PREFIX) for i in ids)  # the demo's classes have hotkeys


def test_a_shortcut_follows_the_id_when_the_menu_text_changes(qtbot) -> None:  # type: ignore[no-untyped-def]
    fired: list[str] = []
    for text in ("Next frame", "Next frame / slice"):  # a menu entry renamed between releases
        window = QMainWindow()
        qtbot.addWidget(window)
        found = actions.install(
            window,
            [
                actions.Binding(
                    "sitelabel.navigate.next_frame",
                    "&Navigate",
                    text,
                    "Ctrl+U",
                    lambda text=text: fired.append(text),
                )
            ],
        )
        action = found["sitelabel.navigate.next_frame"]
        assert action.text() == text and action.shortcut() == QKeySequence("Ctrl+U")
        focus(qtbot, window)
        qtbot.keyClick(window, "u", QKeySequence("Ctrl+U")[0].keyboardModifiers())
        window.close()
    assert fired == ["Next frame", "Next frame / slice"]


def test_two_bindings_with_one_id_are_refused(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = QMainWindow()
    qtbot.addWidget(window)
    twice = [
        actions.Binding("sitelabel.edit.undo", "&Edit", text, "", lambda: None)
        for text in ("Undo", "Undo again")
    ]
    with pytest.raises(ValueError, match=re.escape("sitelabel.edit.undo")):
        actions.install(window, twice)
