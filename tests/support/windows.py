"""Opening the main window in GUI tests, reliably offscreen and on a real X server (Xvfb, xcb).

On X11 ``show()`` maps a window later, and the window manager (or, without one, the server) makes
it active later still. Every QAction of the main window has a window-scoped shortcut, which fires
only in the active window: a key sent before that is lost. So a window is shown, waited for until
exposed, raised, activated and waited for until active; a test that sends keys focuses the widget
first and waits for the focus. Every wait is on a condition, never a fixed time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from app.api import Project
    from app.core.records import Asset
    from app.editor.main_window import MainWindow

WAIT = 20_000  # ms: decoding a frame on a loaded CI machine can take seconds


def _window_of(widget: QWidget) -> QWidget:
    from PySide6.QtWidgets import QWidget

    return QWidget.window(widget)


def wait_exposed(qtbot: Any, widget: QWidget, timeout: int = WAIT) -> None:
    """Show ``widget``'s window and wait until the platform has mapped it on screen."""
    window = _window_of(widget)
    if not window.isVisible():
        window.show()

    def exposed() -> bool:
        handle = window.windowHandle()
        return handle is not None and handle.isExposed()

    qtbot.waitUntil(exposed, timeout=timeout)


def activate(qtbot: Any, widget: QWidget, timeout: int = WAIT) -> None:
    """Make ``widget``'s window the active one (window-scoped shortcuts need it), and wait for it."""
    from PySide6.QtGui import QGuiApplication

    wait_exposed(qtbot, widget, timeout)
    window = _window_of(widget)
    if QGuiApplication.platformName() != "offscreen":  # which has no stacking order (and says so)
        window.raise_()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=timeout)


def focus(qtbot: Any, widget: QWidget, timeout: int = WAIT) -> None:
    """Give ``widget`` the keyboard focus in the active window, and wait until it has it."""
    activate(qtbot, widget, timeout)
    widget.setFocus()
    qtbot.waitUntil(widget.hasFocus, timeout=timeout)


def open_main_window(
    qtbot: Any,
    project: Project,
    journal: Path,
    *,
    size: tuple[int, int] | None = None,
    show: bool = True,
    first_frame: bool = True,
) -> MainWindow:
    """A MainWindow on ``project`` with its own edit journal at ``journal``, closed with the test.

    ``show``: shown, exposed and active; ``first_frame``: and the asset list's first item on screen.
    ``show=False`` builds the window only (its actions and menus work without a screen)."""
    from app.editor.main_window import MainWindow
    from app.workflow.journal import Journal

    window = MainWindow(project, journal=Journal(journal))
    qtbot.addWidget(window)
    if size is not None:
        window.resize(*size)
    if show:
        activate(qtbot, window)
        if first_frame:
            qtbot.waitUntil(lambda: window.current is not None, timeout=WAIT)
    return window


def show_asset(qtbot: Any, window: MainWindow, wanted: Callable[[Asset], bool]) -> None:
    """Select the first listed asset matching ``wanted`` and wait until its frame is on screen."""
    model = window.assets.model
    row = next(r for r in range(model.rowCount()) if wanted(model.asset_at(r)))
    window.assets.select_row(row)
    qtbot.waitUntil(lambda: window.current is not None and wanted(window.current.asset), timeout=WAIT)
