"""The tool adapter: Qt mouse/wheel/key events -> image coordinates -> ``Tool`` calls.

Whatever the tool does not consume drives the view: middle-drag or Space+left-drag pans,
Ctrl+wheel zooms at the cursor, the plain wheel steps frames, right-drag sets window/level.
The canvas owns one ``CanvasInput`` and forwards its Qt event overrides to it; the handler sees the
canvas only as a ``CanvasHost``.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent

from app.core.tools.base import Button, Modifiers
from app.editor.canvas.host import CanvasHost
from app.editor.canvas.pin_painter import spots
from app.editor.canvas.pins import Pin, pin_at, takes_pin_clicks

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
    """The canvas's event handling: view drags (pan, window/level), tools, pins and frame steps."""

    def __init__(self, host: CanvasHost) -> None:
        self.host = host
        self.drag: str | None = None  # "pan" | "window" while a view drag is in progress
        self.drag_button = Qt.MouseButton.NoButton
        self.drag_last = QPointF()
        self.drag_start: tuple[QPointF, tuple[float, float]] | None = None
        self.space = False  # Space is held: a left drag pans

    def mouse_press(self, event: QMouseEvent) -> None:
        host = self.host
        pos = event.position()
        x, y = host.view.to_image(pos)
        qt_button = event.button()
        pin = self.pin_under(event)
        if pin is not None:
            event.accept()
            host.pin_clicked.emit(pin.thread_id)
            return
        if qt_button == Qt.MouseButton.MiddleButton or (
            qt_button == Qt.MouseButton.LeftButton and self.space
        ):
            self.drag, self.drag_button, self.drag_last = "pan", qt_button, pos
        else:
            button = _BUTTONS.get(qt_button)
            slot = host.tool_slot
            tool = None if slot.locked else slot.active  # no image of the item on screen: no drawing
            if slot.locked and button is Button.LEFT:
                host.refused.emit(slot.locked)
            consumed = (
                tool is not None
                and button is not None
                and tool.press(x, y, button, modifiers(event.modifiers()))
            )
            if not consumed and qt_button == Qt.MouseButton.RightButton and host.layers.frame is not None:
                self.drag, self.drag_button = "window", qt_button
                self.drag_start = (pos, host.window_level or (127.5, 255.0))
            slot.refresh()
        event.accept()
        host.pointer_pressed.emit(x, y)

    def pin_under(self, event: QMouseEvent) -> Pin | None:
        """The comment pin a left click lands on, when the active tool lets pins take clicks."""
        host = self.host
        if (
            event.button() != Qt.MouseButton.LeftButton
            or self.space
            or not takes_pin_clicks(host.tool_slot.active)
        ):
            return None
        pos = event.position()
        return pin_at(spots(host.overlays.pins, host.view.transform()), pos.x(), pos.y())

    def mouse_move(self, event: QMouseEvent) -> None:
        host = self.host
        pos = event.position()
        if self.drag == "pan":
            host.view.pan(pos.x() - self.drag_last.x(), pos.y() - self.drag_last.y())
            self.drag_last = pos
        elif self.drag == "window" and self.drag_start is not None:
            start, (centre, width) = self.drag_start
            k = host.data_span / WINDOW_DRAG_PX
            width = max(1e-3, width + (pos.x() - start.x()) * k)
            centre = centre + (pos.y() - start.y()) * k
            host.set_window(centre, width)
            host.window_changed.emit(centre, width)
        x, y = host.view.to_image(pos)
        slot = host.tool_slot
        tool = slot.active
        if self.drag is None and tool is not None and not slot.locked:
            tool.move(x, y)
            slot.refresh()
        event.accept()
        host.hovered.emit(x, y)

    def mouse_release(self, event: QMouseEvent) -> None:
        host = self.host
        if self.drag is not None:
            if event.button() == self.drag_button:
                self.drag, self.drag_start = None, None
            event.accept()
            return
        slot = host.tool_slot
        tool = slot.active
        if tool is not None and not slot.locked:
            x, y = host.view.to_image(event.position())
            tool.release(x, y)
            slot.refresh()
        event.accept()

    def mouse_double_click(self, event: QMouseEvent) -> None:
        # Qt sends press, release, double-click, release: the double-click replaces the 2nd press.
        host = self.host
        x, y = host.view.to_image(event.position())
        slot = host.tool_slot
        tool = slot.active
        if self.pin_under(event) is not None:
            event.accept()  # the press already selected the pin's thread
            return
        if event.button() == Qt.MouseButton.LeftButton and tool is not None and not self.space:
            if slot.locked:
                event.accept()  # the press already said why
                return
            if not tool.double_click(x, y):
                tool.press(x, y, Button.LEFT, modifiers(event.modifiers()))
            slot.refresh()
        event.accept()

    def wheel(self, event: QWheelEvent) -> None:
        host = self.host
        # some platforms turn Shift+wheel into a horizontal wheel
        dy = event.angleDelta().y() or event.angleDelta().x()
        if dy == 0:
            event.ignore()
            return
        steps = round(dy / 120) or (1 if dy > 0 else -1)
        mods = event.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            host.view.zoom_by(ZOOM_STEP**steps, event.position())
        elif mods & Qt.KeyboardModifier.ShiftModifier:
            # Shift+wheel sizes the brush / tolerance: the plain wheel always scrolls slices,
            # which radiologists do constantly while painting
            tool = host.tool_slot.active
            if tool is not None and tool.wheel(steps):
                host.tool_slot.refresh()
        else:
            host.frame_step.emit(-1 if dy > 0 else 1)  # wheel towards the user: next frame
        event.accept()

    def key_press(self, event: QKeyEvent) -> None:
        host = self.host
        if event.key() == Qt.Key.Key_Space:
            self.space = True
            event.accept()
            return
        slot = host.tool_slot
        tool = slot.active
        if tool is not None and not slot.locked and tool.key(key_name(event)):
            slot.refresh()
            event.accept()
            return
        event.ignore()

    def key_release(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.space = False
        event.ignore()
