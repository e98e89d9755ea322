"""What the canvas's parts need from the canvas widget, as Protocols in a leaf module.

``CanvasInput`` (mouse, wheel, keys) and ``GLSurface`` (the GL backend) are built by the canvas in
``base``; typing them against these Protocols keeps both from importing ``base`` back.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import SignalInstance
from PySide6.QtGui import QPainter

from app.editor.canvas.layers import LayerState
from app.editor.canvas.overlay_stack import OverlayStack
from app.editor.canvas.tool_slot import ToolSlot
from app.editor.canvas.view import CanvasView


class SurfaceHost(Protocol):
    """What a drawing backend reads: the layers, the view, and the vector overlays to paint last."""

    @property
    def layers(self) -> LayerState: ...

    @property
    def view(self) -> CanvasView: ...

    def paint_overlays(self, painter: QPainter) -> None: ...


class CanvasHost(SurfaceHost, Protocol):
    """What the input handler reads, calls and emits on the canvas."""

    @property
    def tool_slot(self) -> ToolSlot: ...

    @property
    def overlays(self) -> OverlayStack:
        """The comment pins are there."""
        ...

    @property
    def data_span(self) -> float:
        """max - min of the frame: scales the window/level drag."""
        ...

    @property
    def window_level(self) -> tuple[float, float] | None: ...

    def set_window(self, centre: float, width: float) -> None: ...

    # the canvas's signals
    @property
    def pointer_pressed(self) -> SignalInstance: ...

    @property
    def hovered(self) -> SignalInstance: ...

    @property
    def frame_step(self) -> SignalInstance: ...

    @property
    def window_changed(self) -> SignalInstance: ...

    @property
    def pin_clicked(self) -> SignalInstance: ...

    @property
    def refused(self) -> SignalInstance: ...
