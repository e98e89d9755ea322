"""Every user action as one table row: a stable id, menu, text, keys, slot. The help overlay lists
the same table.

Code and tests find an action by its id (``window.actions_by_id["sitelabel.queue.submit"]``), never
by its menu text, as napari's ``Action(id=...)`` does: renaming a menu entry breaks no shortcut,
toolbar button or test. Ids are ``sitelabel.<area>.<name>``; tools and ontology classes get theirs
from :func:`tool_action` and :func:`class_action`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

TOOL_PREFIX = "sitelabel.tool."
CLASS_PREFIX = "sitelabel.class."


def tool_action(name: str) -> str:
    """The id of the action that picks a tool of ``app.editor.tool_registry.TOOLS`` (its name with
    underscores for spaces: ``sitelabel.tool.threshold_brush``)."""
    return TOOL_PREFIX + name.replace(" ", "_")


def class_action(name: str) -> str:
    """The id of the action that picks an ontology class by its hotkey (the name is the project's)."""
    return CLASS_PREFIX + name


@dataclass(frozen=True)
class Binding:
    id: str  # stable: what code and tests look the action up by; the menu text may change
    menu: str
    text: str
    keys: str  # "" or key sequences joined by " or "
    slot: Callable[[], object]
    checkable_group: str | None = None  # actions in one group are mutually exclusive (tools)

    def shortcuts(self) -> list[QKeySequence]:
        return [QKeySequence(k) for k in self.keys.split(" or ") if k]


def install(window: QMainWindow, bindings: Sequence[Binding]) -> dict[str, QAction]:
    """Create menu entries and window-wide shortcuts; returns the actions by binding id (each
    action's objectName is its id too)."""
    menus: dict[str, QMenu] = {}
    groups: dict[str, QActionGroup] = {}
    actions: dict[str, QAction] = {}
    for binding in bindings:
        if binding.id in actions:
            raise ValueError(f"two actions with the id {binding.id!r}")
        menu = menus.get(binding.menu)
        if menu is None:
            menu = menus[binding.menu] = window.menuBar().addMenu(binding.menu)
        action = QAction(binding.text, window)
        action.setObjectName(binding.id)
        action.setShortcuts(binding.shortcuts())
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if binding.checkable_group:
            group = groups.get(binding.checkable_group)
            if group is None:
                group = groups[binding.checkable_group] = QActionGroup(window)
            action.setCheckable(True)
            group.addAction(action)
        action.triggered.connect(lambda _checked=False, slot=binding.slot: slot())
        menu.addAction(action)
        window.addAction(action)
        actions[binding.id] = action
    return actions


def help_entries(bindings: Sequence[Binding]) -> list[tuple[str, str]]:
    return [(b.keys, b.text) for b in bindings if b.keys]
