"""The canvas widget: the image + label layers, shown under a view, with input handed to a tool.

It composes its parts and is their host: ``view`` (the transform and its changes), ``backend``
(GL surface or raster path, see ``backend``), ``overlays`` (vectors, pins, review images, the lock
notice), ``tool_slot`` (the active tool and the drawing lock) and ``input`` (Qt events -> tool or
view). ``CanvasInput`` and the GL surface see the canvas as a host Protocol (``host``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import (
    QColor,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from app.core.compose import COLORMAPS
from app.core.display import auto_window
from app.core.errors import ValidationError
from app.editor.canvas.backend import Bbox, CanvasBackend
from app.editor.canvas.input import CanvasInput
from app.editor.canvas.layers import LayerState
from app.editor.canvas.overlay_stack import OverlayStack
from app.editor.canvas.tool_slot import ToolSlot
from app.editor.canvas.view import CanvasView

BACKGROUND = QColor(11, 11, 13)


class Canvas(QWidget):
    pointer_pressed = Signal(float, float)
    hovered = Signal(float, float)
    frame_step = Signal(int)
    window_changed = Signal(float, float)
    view_changed = Signal()
    pin_clicked = Signal(int)  # thread id of the comment pin clicked
    refused = Signal(str)  # a press a tool would have taken while drawing is locked: why it is locked

    def __init__(self, parent: QWidget | None = None, *, use_gl: bool = False) -> None:
        super().__init__(parent)
        self.layers = LayerState()
        self.data_span = 255.0  # max - min of the frame, scales the W/L drag
        self.view = CanvasView(self._view_changed)
        self.backend = CanvasBackend(self, self, use_gl=use_gl)
        self.overlays = OverlayStack(self.backend.repaint)
        self.tool_slot = ToolSlot(self.view, self.overlays)
        self.input = CanvasInput(self)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self.setMinimumSize(64, 64)

    # --- image ------------------------------------------------------------------------------------
    def set_image(
        self,
        frame: np.ndarray,
        *,
        window: tuple[float, float] | None = None,
        invert: bool = False,
        keep_view: bool = False,
    ) -> None:
        frame = np.asarray(frame)
        colour = frame.ndim == 3
        if not (frame.ndim == 2 or (colour and frame.shape[2] in (3, 4) and frame.dtype == np.uint8)):
            raise ValidationError(
                f"a canvas frame is (H, W) or (H, W, 3|4) uint8, got {frame.shape} {frame.dtype}"
            )
        old_shape = self.layers.shape if self.layers.frame is not None else None
        if window is None and not colour and frame.dtype != np.uint8:
            window = auto_window(frame)
        if not colour:
            sample = frame[:: max(1, frame.shape[0] // 256), :: max(1, frame.shape[1] // 256)]
            self.data_span = max(float(np.nanmax(sample)) - float(np.nanmin(sample)), 1.0)
        s = self.layers
        s.frame, s.invert = frame, invert
        s.window = None if window is None else (float(window[0]), float(window[1]))
        shape = s.shape
        if s.labels is not None and s.labels.shape != shape:
            s.labels = None
        self.view.show_image(shape[1], shape[0], keep=keep_view and old_shape == shape)
        self.backend.image_changed()
        self.view.refresh(user=False)

    # Not ``window``: that would shadow QWidget.window(), which Qt code and tests call on any widget.
    @property
    def window_level(self) -> tuple[float, float] | None:
        return self.layers.window

    def set_window(self, centre: float, width: float) -> None:
        self.layers.window = (float(centre), float(width))
        self.backend.style_changed()

    def set_colormap(self, name: str) -> None:
        if name not in COLORMAPS:
            raise ValidationError(f"unknown colour map {name!r}; known: {', '.join(COLORMAPS)}")
        self.layers.colormap = name
        self.backend.colormap_changed()

    # --- labels -----------------------------------------------------------------------------------
    def set_labels(self, labels: np.ndarray | None, colors: Mapping[int, tuple[int, int, int]]) -> None:
        if labels is not None:
            if labels.dtype != np.uint16 or labels.ndim != 2:
                raise ValidationError(f"a label map is (H, W) uint16, got {labels.shape} {labels.dtype}")
            if self.layers.frame is not None and labels.shape != self.layers.shape:
                raise ValidationError(
                    f"label map {labels.shape} does not match the frame {self.layers.shape}"
                )
        self.layers.labels = labels  # by reference: the document paints into it, we follow bboxes
        self.layers.set_colors(colors)
        self.overlays.vectors.class_colors = dict(colors)
        self.backend.labels_replaced()

    def labels_changed(self, bbox: Bbox | None) -> None:
        self.backend.labels_changed(bbox)

    def set_label_style(self, *, opacity: float | None = None, outline: bool | None = None) -> None:
        if opacity is not None:
            self.layers.opacity = min(max(float(opacity), 0.0), 1.0)
        if outline is not None:
            self.layers.outline = bool(outline)
        self.backend.style_changed()

    # --- the parts' callbacks ---------------------------------------------------------------------------
    def _view_changed(self) -> None:
        self.tool_slot.match_zoom()
        self.backend.repaint()
        self.view_changed.emit()

    def paint_overlays(self, painter: QPainter) -> None:
        """Vectors, pins and the rest over the layers (both backends call this last)."""
        if self.layers.frame is not None:
            h, w = self.layers.shape
            self.overlays.paint(painter, self.view.state, (w, h), self.rect())

    # --- Qt ---------------------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        self.view.resize(self.width(), self.height())
        self.backend.resize(self.rect())
        self.tool_slot.match_zoom()
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        if self.backend.name == "gl":
            return  # the GL child covers the canvas
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self.layers.frame is not None:
            view = self.view.state
            self.backend.raster.paint(painter, view.transform(), view.visible_image_rect(), view.zoom)
            self.paint_overlays(painter)
        painter.end()

    # --- input: Qt calls these overrides, the handler does the work ----------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.input.mouse_press(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self.input.mouse_move(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self.input.mouse_release(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.input.mouse_double_click(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.input.wheel(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        self.input.key_press(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        self.input.key_release(event)
