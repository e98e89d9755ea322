"""The tool adapter: Qt mouse/wheel/key events -> image coordinates -> ``Tool`` calls.

Whatever the tool does not consume drives the view: middle-drag or Space+left-drag pans,
Ctrl+wheel zooms at the cursor, the plain wheel steps frames, right-drag sets window/level.
Mixed into ``Canvas`` (listed before QWidget so these overrides are the ones Qt calls).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent

from app.core.tools.base import Button, Modifiers
from app.editor.canvas.pin_painter import spots
from app.editor.canvas.pins import Pin, pin_at, takes_pin_clicks

if TYPE_CHECKING:
    from app.editor.canvas.base import Canvas

TOLERANCE_PX = 6.0  # hit tolerance in screen pixels, handed to tools in image units
WINDOW_DRAG_PX = 512.0  # a drag this long changes the window by the whole data range
ZOOM_STEP = 1.25

_BUTTONS = {
    Qt.MouseButton.LeftButton: Button.LEFT,
    Qt.MouseButton.RightButton: Button.RIGHT,
    Qt.MouseButton.MiddleButton: Button.MIDDLE,
}
_KEYS = {
    Qt.Key.Key_Return: "Return",
    Qt.Key.Key_Enter: "Enter",
    Qt.Key.Key_Escape: "Escape",
    Qt.Key.Key_Backspace: "Backspace",
    Qt.Key.Key_Delete: "Delete",
}


def modifiers(mods: Qt.KeyboardModifier) -> Modifiers:
    out = Modifiers.NONE
    if mods & Qt.KeyboardModifier.ShiftModifier:
        out |= Modifiers.SHIFT
    if mods & Qt.KeyboardModifier.ControlModifier:
        out |= Modifiers.CTRL
    if mods & Qt.KeyboardModifier.AltModifier:
        out |= Modifiers.ALT
    return out


def key_name(event: QKeyEvent) -> str:
    return _KEYS.get(Qt.Key(event.key()), event.text())


class CanvasInput:
    """Event handlers; ``self`` is the ``Canvas``."""

    _drag: str | None = None  # "pan" | "window" while a view drag is in progress
    _drag_button = Qt.MouseButton.NoButton
    _drag_last = QPointF()
    _drag_start: tuple[QPointF, tuple[float, float]] | None = None
    _space = False

    def mousePressEvent(self: Canvas, event: QMouseEvent) -> None:  # type: ignore[misc]
        pos = event.position()
        x, y = self.widget_to_image(pos)
        qt_button = event.button()
        pin = self._pin_under(event)
        if pin is not None:
            event.accept()
            self.pin_clicked.emit(pin.thread_id)
            return
        if qt_button == Qt.MouseButton.MiddleButton or (
            qt_button == Qt.MouseButton.LeftButton and self._space
        ):
            self._drag, self._drag_button, self._drag_last = "pan", qt_button, pos
        else:
            button = _BUTTONS.get(qt_button)
            tool = None if self.locked else self.tool  # no image of the item on screen: no drawing
            if self.locked and button is Button.LEFT:
                self.refused.emit(self.locked)
            consumed = (
                tool is not None
                and button is not None
                and tool.press(x, y, button, modifiers(event.modifiers()))
            )
            if not consumed and qt_button == Qt.MouseButton.RightButton and self.layers.frame is not None:
                self._drag, self._drag_button = "window", qt_button
                self._drag_start = (pos, self.window or (127.5, 255.0))
            self.refresh_tool()
        event.accept()
        self.pointer_pressed.emit(x, y)

    def _pin_under(self: Canvas, event: QMouseEvent) -> Pin | None:  # type: ignore[misc]
        """The comment pin a left click lands on, when the active tool lets pins take clicks."""
        if event.button() != Qt.MouseButton.LeftButton or self._space or not takes_pin_clicks(self.tool):
            return None
        pos = event.position()
        return pin_at(spots(self.pins, self.view.transform()), pos.x(), pos.y())

    def mouseMoveEvent(self: Canvas, event: QMouseEvent) -> None:  # type: ignore[misc]
        pos = event.position()
        if self._drag == "pan":
            self.view.pan(pos.x() - self._drag_last.x(), pos.y() - self._drag_last.y())
            self._drag_last = pos
            self._view_changed()
        elif self._drag == "window" and self._drag_start is not None:
            start, (centre, width) = self._drag_start
            k = self.data_span / WINDOW_DRAG_PX
            width = max(1e-3, width + (pos.x() - start.x()) * k)
            centre = centre + (pos.y() - start.y()) * k
            self.set_window(centre, width)
            self.window_changed.emit(centre, width)
        x, y = self.widget_to_image(pos)
        if self._drag is None and self.tool is not None and not self.locked:
            self.tool.move(x, y)
            self.refresh_tool()
        event.accept()
        self.hovered.emit(x, y)

    def mouseReleaseEvent(self: Canvas, event: QMouseEvent) -> None:  # type: ignore[misc]
        if self._drag is not None:
            if event.button() == self._drag_button:
                self._drag, self._drag_start = None, None
            event.accept()
            return
        if self.tool is not None and not self.locked:
            x, y = self.widget_to_image(event.position())
            self.tool.release(x, y)
            self.refresh_tool()
        event.accept()

    def mouseDoubleClickEvent(self: Canvas, event: QMouseEvent) -> None:  # type: ignore[misc]
        # Qt sends press, release, double-click, release: the double-click replaces the 2nd press.
        x, y = self.widget_to_image(event.position())
        tool = self.tool
        if self._pin_under(event) is not None:
            event.accept()  # the press already selected the pin's thread
            return
        if event.button() == Qt.MouseButton.LeftButton and tool is not None and not self._space:
            if self.locked:
                event.accept()  # the press already said why
                return
            if not tool.double_click(x, y):
                tool.press(x, y, Button.LEFT, modifiers(event.modifiers()))
            self.refresh_tool()
        event.accept()

    def wheelEvent(self: Canvas, event: QWheelEvent) -> None:  # type: ignore[misc]
        # some platforms turn Shift+wheel into a horizontal wheel
        dy = event.angleDelta().y() or event.angleDelta().x()
        if dy == 0:
            event.ignore()
            return
        steps = round(dy / 120) or (1 if dy > 0 else -1)
        modifiers = event.modifiers()
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            self.view.zoom_at(ZOOM_STEP**steps, event.position())
            self._view_changed()
        elif modifiers & Qt.KeyboardModifier.ShiftModifier:
            # Shift+wheel sizes the brush / tolerance: the plain wheel always scrolls slices,
            # which radiologists do constantly while painting
            if self.tool is not None and self.tool.wheel(steps):
                self.refresh_tool()
        else:
            self.frame_step.emit(-1 if dy > 0 else 1)  # wheel towards the user: next frame
        event.accept()

    def keyPressEvent(self: Canvas, event: QKeyEvent) -> None:  # type: ignore[misc]
        if event.key() == Qt.Key.Key_Space:
            self._space = True
            event.accept()
            return
        if self.tool is not None and not self.locked and self.tool.key(key_name(event)):
            self.refresh_tool()
            event.accept()
            return
        event.ignore()

    def keyReleaseEvent(self: Canvas, event: QKeyEvent) -> None:  # type: ignore[misc]
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
        event.ignore()
