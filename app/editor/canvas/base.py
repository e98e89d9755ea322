"""The canvas widget: layer state, view transform and input shared by both backends.

Only drawing the image + label layers differs: ``RasterLayers`` in ``paintEvent``, or a
``GLSurface`` child widget (QOpenGLWidget) filling the canvas. Vectors use ``OverlayPainter``.
Events go to a ``CanvasInput``; it and the surface see the canvas as a host Protocol (``host``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from app.core.annotations import Annotation
from app.core.compose import COLORMAPS
from app.core.display import auto_window
from app.core.errors import ValidationError
from app.core.tools.base import Preview, Tool
from app.editor.canvas.gl_surface import GLSurface
from app.editor.canvas.input import TOLERANCE_PX, CanvasInput
from app.editor.canvas.layers import LayerState
from app.editor.canvas.overlay import OverlayPainter
from app.editor.canvas.pin_painter import paint_pins
from app.editor.canvas.pins import Pin
from app.editor.canvas.raster_layers import RasterLayers
from app.editor.canvas.view import ViewState

BACKGROUND = QColor(11, 11, 13)
LOCK_TEXT = QColor(235, 235, 235)  # the "image not loaded" notice: readable in a dark room
LOCK_BOX = QColor(40, 40, 46, 220)
Bbox = tuple[int, int, int, int]


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
        self.view = ViewState()
        self.overlay = OverlayPainter()
        self.pins: list[Pin] = []  # comment pins of the frame on screen
        self.overlay_image: tuple[QPointF, QImage] | None = None  # review overlays, over the labels
        self.fallback_reason = ""
        self.data_span = 255.0  # max - min of the frame, scales the W/L drag
        self._raster = RasterLayers(self.layers)
        self._surface: GLSurface | None = GLSurface(self, self._fall_back, self) if use_gl else None
        self._tool: Tool | None = None
        self._auto_fit = True  # refit on resize until the user changes the view
        self.locked = ""  # why tools take no input ("" when they do): the image on screen is not the item's
        self._lock_shown = False  # the reason is also written over the frame
        self.input = CanvasInput(self)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self.setMinimumSize(64, 64)

    # --- backend -----------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return "gl" if self._surface is not None else "raster"

    def _fall_back(self, reason: str) -> None:
        """The GL context or shaders failed after all: draw with the raster path from now on."""
        if self._surface is None:
            return
        self._surface.hide()
        self._surface.deleteLater()
        self._surface = None
        self.fallback_reason = reason
        self._raster.invalidate()
        self.update()

    def _repaint(self) -> None:
        if self._surface is not None:
            self._surface.update()
        else:
            self.update()

    def repaint_now(self) -> None:
        """Synchronous repaint (benchmarks, screenshots)."""
        if self._surface is not None:
            self._surface.repaint()
        else:
            self.repaint()

    @property
    def uploaded_pixels(self) -> int:
        """Label texels uploaded (GL) or pixels recomposed (raster) since creation."""
        return self._surface.uploaded_texels if self._surface is not None else self._raster.uploaded_pixels

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
        self.view.set_image_size(shape[1], shape[0])
        if not keep_view or old_shape != shape:
            self._auto_fit = True
            self.view.fit()
        self._raster.invalidate()
        if self._surface is not None:
            self._surface.image_changed()
        self.refresh_view(user=False)

    # The agreed interface shadows QWidget.window() (Qt's C++ side is unaffected).
    @property
    def window(self) -> tuple[float, float] | None:  # type: ignore[override]
        return self.layers.window

    def set_window(self, centre: float, width: float) -> None:
        self.layers.window = (float(centre), float(width))
        self._raster.invalidate()
        self._repaint()

    def set_colormap(self, name: str) -> None:
        if name not in COLORMAPS:
            raise ValidationError(f"unknown colour map {name!r}; known: {', '.join(COLORMAPS)}")
        self.layers.colormap = name
        self._raster.invalidate()
        if self._surface is not None:
            self._surface.colormap_changed()
        self._repaint()

    def pixel_value(self, x: float, y: float) -> float | tuple[int, ...] | None:
        """The raw value under image point (x, y) (HU for CT), or None outside the image."""
        frame = self.layers.frame
        c, r = int(np.floor(x)), int(np.floor(y))
        if frame is None or not (0 <= r < frame.shape[0] and 0 <= c < frame.shape[1]):
            return None
        value = frame[r, c]
        return tuple(int(v) for v in value) if frame.ndim == 3 else float(value)

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
        self.overlay.class_colors = dict(colors)
        self._raster.invalidate()
        if self._surface is not None:
            self._surface.labels_replaced()
        self._repaint()

    def labels_changed(self, bbox: Bbox | None) -> None:
        if self._surface is not None:
            self._surface.labels_changed(bbox)
        else:
            self._raster.labels_changed(bbox)
        self._repaint()

    def set_label_style(self, *, opacity: float | None = None, outline: bool | None = None) -> None:
        if opacity is not None:
            self.layers.opacity = min(max(float(opacity), 0.0), 1.0)
        if outline is not None:
            self.layers.outline = bool(outline)
        self._raster.invalidate()
        self._repaint()

    # --- vectors and tools --------------------------------------------------------------------------
    def set_annotations(
        self, items: Sequence[tuple[Annotation, str, bool]], interpolated: Sequence[Annotation] = ()
    ) -> None:
        """(annotation, colour, selected) to draw; ``interpolated`` ones (a track's frames between
        keyframes, not stored) are drawn dotted."""
        self.overlay.set_items(items, interpolated)
        self._repaint()

    @property
    def tool(self) -> Tool | None:
        return self._tool

    def set_tool(self, tool: Tool | None) -> None:
        if self._tool is not None and self._tool is not tool:
            self._tool.cancel()
        self._tool = tool
        self._update_tolerance()
        self.refresh_tool()

    def lock_drawing(self, reason: str, *, shown: bool = False) -> None:
        """Tools take no input while ``reason`` is set ("" unlocks): the frame on screen is not the
        image of the item being edited (still opening, or it could not be opened). A press says
        ``reason`` through ``refused``; ``shown`` also writes it over the frame. The view (pan,
        zoom, frame steps) keeps working."""
        if reason and self._tool is not None:
            self._tool.cancel()  # a stroke in progress must not end on another image
        self.locked, self._lock_shown = reason, bool(reason) and shown
        self.refresh_tool()

    def refresh_tool(self) -> None:
        self.overlay.set_preview(self._tool.preview if self._tool is not None else Preview())
        self._repaint()

    def _update_tolerance(self) -> None:
        if self._tool is not None:
            self._tool.ctx.pixel_tolerance = TOLERANCE_PX / self.view.zoom

    # --- view -------------------------------------------------------------------------------------
    def refresh_view(self, user: bool = True) -> None:
        """Repaint and announce a changed view; ``user`` changes stop the refit on resize."""
        if user:
            self._auto_fit = False
        self._update_tolerance()
        self._repaint()
        self.view_changed.emit()

    @property
    def zoom(self) -> float:
        return self.view.zoom

    def fit(self) -> None:
        self.view.fit()
        self.refresh_view(user=False)
        self._auto_fit = True

    def zoom_by(self, factor: float) -> None:
        self.view.zoom_at(factor)
        self.refresh_view()

    def rotate90(self, clockwise: bool = True) -> None:
        self.view.rotate90(clockwise)
        if self._auto_fit:
            self.view.fit()
        self.refresh_view(user=False)

    def flip(self, horizontal: bool = True) -> None:
        self.view.flip(horizontal)
        self.refresh_view(user=False)

    def reset_view(self) -> None:
        self.view.reset()
        self._auto_fit = True
        self.refresh_view(user=False)

    def centre_on(self, x: float, y: float) -> None:
        """Scroll so image point (x, y) is at the widget centre (zoom unchanged)."""
        target = self.view.to_widget(x, y)
        w, h = self.view.widget_size
        self.view.pan(w / 2.0 - target.x(), h / 2.0 - target.y())
        self.refresh_view()

    # --- comment pins -------------------------------------------------------------------------------
    def set_pins(self, pins: Sequence[Pin]) -> None:
        self.pins = list(pins)
        self._repaint()

    # --- an extra image layer (review overlays) -------------------------------------------------------
    def set_overlay_image(self, rgba: np.ndarray | None, origin: tuple[int, int] = (0, 0)) -> None:
        """Premultiplied RGBA (rows, cols, 4) uint8 drawn over the label layer with its top-left
        pixel at image (x, y) = ``origin``; None removes it. Drawn with QPainter by both backends."""
        if rgba is None:
            self.overlay_image = None
        else:
            data = np.ascontiguousarray(rgba, dtype=np.uint8)
            if data.ndim != 3 or data.shape[2] != 4:
                raise ValidationError(f"an overlay image is (H, W, 4) uint8, got {data.shape}")
            rows, cols = data.shape[:2]
            image = QImage(data.data, cols, rows, cols * 4, QImage.Format.Format_RGBA8888_Premultiplied)
            self.overlay_image = (QPointF(*origin), image.copy())  # the copy owns its pixels
        self._repaint()

    def widget_to_image(self, pos: QPointF) -> tuple[float, float]:
        return self.view.to_image(QPointF(pos))

    def image_to_widget(self, x: float, y: float) -> QPointF:
        return self.view.to_widget(x, y)

    # --- drawing ----------------------------------------------------------------------------------
    def render_layers(self) -> npt.NDArray[np.uint8]:
        """RGBA (H, W, 4) of the image + label layers at 1:1, as this backend draws them."""
        if self.layers.frame is None:
            raise ValidationError("the canvas has no image")
        if self._surface is not None:
            return self._surface.render_layers()
        return self._raster.render_layers()

    def paint_overlays(self, painter: QPainter) -> None:
        if self.layers.frame is not None:
            h, w = self.layers.shape
            if self.overlay_image is not None:
                painter.save()
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # exact pixels
                painter.setTransform(self.view.transform())
                painter.drawImage(*self.overlay_image)
                painter.restore()
            self.overlay.paint(
                painter, self.view.transform(), self.view.zoom, self.view.visible_image_rect(), (w, h)
            )
            paint_pins(painter, self.view.transform(), self.pins)
            if self._lock_shown:
                self._paint_lock_notice(painter)

    def _paint_lock_notice(self, painter: QPainter) -> None:
        """Why the frame is empty and drawing is off, in a box at the centre of the canvas."""
        painter.save()
        painter.resetTransform()
        font = QFont(painter.font())
        font.setPointSizeF(max(font.pointSizeF(), 9.0) * 1.15)
        painter.setFont(font)
        flags = int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap)
        width = min(self.width() - 40, 640)
        area = self.rect().adjusted((self.width() - width) // 2, 0, -(self.width() - width) // 2, 0)
        box = painter.boundingRect(area, flags, self.locked).adjusted(-14, -10, 14, 10)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(LOCK_BOX)
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(LOCK_TEXT)
        painter.drawText(area, flags, self.locked)
        painter.restore()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.view.set_widget_size(self.width(), self.height())
        if self._surface is not None:
            self._surface.setGeometry(self.rect())
        if self._auto_fit:
            self.view.fit()
        self._update_tolerance()
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._surface is not None:
            return  # the GL child covers the canvas
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self.layers.frame is not None:
            self._raster.paint(painter, self.view.transform(), self.view.visible_image_rect(), self.view.zoom)
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
