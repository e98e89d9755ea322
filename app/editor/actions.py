"""Every user action as one table row: text, keys, slot. The help overlay lists the same table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu


@dataclass(frozen=True)
class Binding:
    menu: str
    text: str
    keys: str
    slot: Callable[[], object]
    checkable_group: str | None = None  # actions in one group are mutually exclusive (tools)


def install(window: QMainWindow, bindings: Sequence[Binding]) -> dict[str, QAction]:
    """Create menu entries and window-wide shortcuts; returns actions by text."""
    menus: dict[str, QMenu] = {}
    groups: dict[str, QActionGroup] = {}
    actions: dict[str, QAction] = {}
    for binding in bindings:
        menu = menus.get(binding.menu)
        if menu is None:
            menu = menus[binding.menu] = window.menuBar().addMenu(binding.menu)
        action = QAction(binding.text, window)
        if binding.keys:
            action.setShortcuts([QKeySequence(k) for k in binding.keys.split(" or ")])
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
        actions[binding.text] = action
    return actions


def help_entries(bindings: Sequence[Binding]) -> list[tuple[str, str]]:
    return [(b.keys, b.text) for b in bindings if b.keys]
