"""A raster view of one frame with its annotations: zoom, pan, slice wheel, pixel readout.

This is the shell's viewer; the GPU canvas with the drawing tools replaces it (editor issue).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QPolygonF,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

from app.core.annotations import Annotation, Kind


def to_qimage(rgb_or_grey: npt.NDArray[np.uint8]) -> QImage:
    """Wrap a uint8 grey (H, W) or RGB(A) (H, W, C) array as a QImage (copied, so it owns its bytes)."""
    array = np.ascontiguousarray(rgb_or_grey)
    h, w = array.shape[:2]
    if array.ndim == 2:
        fmt, stride = QImage.Format.Format_Grayscale8, w
    elif array.shape[2] == 3:
        fmt, stride = QImage.Format.Format_RGB888, w * 3
    else:
        fmt, stride = QImage.Format.Format_RGBA8888, w * 4
    return QImage(array.data, w, h, stride, fmt).copy()


class FrameView(QGraphicsView):
    """Shows a display-ready frame plus vector overlays. Wheel scrolls frames; Ctrl+wheel zooms."""

    frame_step = Signal(int)  # +1 / -1 from the wheel
    cursor_moved = Signal(float, float)  # image coordinates

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QBrush(QColor("#0b0b0d")))
        self.setRenderHints(QPainter.RenderHint.Antialiasing)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setMouseTracking(True)
        self._pixmap = QGraphicsPixmapItem()
        self._pixmap.setTransformationMode(Qt.TransformationMode.FastTransformation)  # show real pixels
        self.scene().addItem(self._pixmap)
        self._overlays: list[object] = []
        self._fit_pending = True

    def show_frame(self, display: npt.NDArray[np.uint8], *, refit: bool) -> None:
        self._pixmap.setPixmap(QPixmap.fromImage(to_qimage(display)))
        self.scene().setSceneRect(QRectF(0, 0, display.shape[1], display.shape[0]))
        if refit:
            self.fit()

    def show_annotations(self, annotations: list[Annotation], colors: dict[str, str]) -> None:
        for item in self._overlays:
            self.scene().removeItem(item)  # type: ignore[arg-type]
        self._overlays.clear()
        for ann in annotations:
            color = QColor(colors.get(ann.label, "#ffcc00"))
            pen = QPen(color, 0)  # cosmetic: one screen pixel at any zoom
            fill = QColor(color)
            fill.setAlpha(70)
            item = self._overlay_for(ann, pen, QBrush(fill))
            if item is not None:
                self._overlays.append(item)

    def _overlay_for(self, ann: Annotation, pen: QPen, brush: QBrush) -> object | None:
        scene = self.scene()
        if ann.kind is Kind.POLYGON and ann.points is not None:
            return scene.addPolygon(QPolygonF([QPointF(x, y) for x, y in ann.points]), pen, brush)
        if ann.kind is Kind.POLYLINE and ann.points is not None:
            path = QPainterPath(QPointF(*ann.points[0]))
            for x, y in ann.points[1:]:
                path.lineTo(x, y)
            return scene.addPath(path, pen)
        if ann.kind is Kind.BOX and ann.box is not None:
            x0, y0, x1, y1 = ann.box
            return scene.addRect(QRectF(x0, y0, x1 - x0, y1 - y0), pen, brush)
        if ann.kind is Kind.POINT and ann.points is not None:
            x, y = ann.points[0]
            return scene.addEllipse(QRectF(x - 3, y - 3, 6, 6), pen, QBrush(pen.color()))
        if ann.kind is Kind.MASK and ann.mask is not None:
            patch = ann.mask
            rgba = np.zeros((*patch.bits.shape, 4), dtype=np.uint8)
            c = brush.color()
            rgba[patch.bits] = (c.red(), c.green(), c.blue(), 110)
            item = scene.addPixmap(QPixmap.fromImage(to_qimage(rgba)))
            item.setOffset(patch.x0, patch.y0)
            return item
        return None

    def fit(self) -> None:
        if not self.scene().sceneRect().isEmpty():
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def zoom(self, factor: float) -> None:
        scale = self.transform().m11() * factor
        if 0.02 <= scale <= 64.0:
            self.scale(factor, factor)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom(1.25**steps)
        elif steps:
            self.frame_step.emit(-1 if steps > 0 else 1)

    def mouseMoveEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        point = self.mapToScene(event.position().toPoint())
        self.cursor_moved.emit(point.x(), point.y())
        super().mouseMoveEvent(event)

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        super().resizeEvent(event)
        if self._fit_pending:
            self.fit()
