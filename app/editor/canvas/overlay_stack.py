"""What QPainter draws over the image + label layers, the same on both backends.

Bottom to top: an extra image (review and pre-label overlays), the annotations with the tool's
preview (``OverlayPainter``), the comment pins, and the notice saying why drawing is locked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter

from app.core.annotations import Annotation
from app.core.errors import ValidationError
from app.core.tools.base import Preview
from app.editor.canvas.overlay import OverlayPainter
from app.editor.canvas.pin_painter import paint_pins
from app.editor.canvas.pins import Pin
from app.editor.canvas.view import ViewState

NOTICE_TEXT = QColor(235, 235, 235)  # the "image not loaded" notice: readable in a dark room
NOTICE_BOX = QColor(40, 40, 46, 220)


class OverlayStack:
    """The canvas's overlays (``canvas.overlays``); each setter schedules a repaint."""

    def __init__(self, repaint: Callable[[], None]) -> None:
        self.vectors = OverlayPainter()
        self.pins: list[Pin] = []  # comment pins of the frame on screen
        self.image: tuple[QPointF, QImage] | None = None  # review overlays, over the labels
        self.notice = ""  # written over the frame in a box ("" for none)
        self._repaint = repaint

    def set_annotations(
        self, items: Sequence[tuple[Annotation, str, bool]], interpolated: Sequence[Annotation] = ()
    ) -> None:
        """(annotation, colour, selected) to draw; ``interpolated`` ones (a track's frames between
        keyframes, not stored) are drawn dotted."""
        self.vectors.set_items(items, interpolated)
        self._repaint()

    def set_preview(self, preview: Preview) -> None:
        """What the active tool is about to make."""
        self.vectors.set_preview(preview)
        self._repaint()

    def set_pins(self, pins: Sequence[Pin]) -> None:
        self.pins = list(pins)
        self._repaint()

    def set_image(self, rgba: np.ndarray | None, origin: tuple[int, int] = (0, 0)) -> None:
        """Premultiplied RGBA (rows, cols, 4) uint8 drawn over the label layer with its top-left
        pixel at image (x, y) = ``origin``; None removes it."""
        if rgba is None:
            self.image = None
        else:
            data = np.ascontiguousarray(rgba, dtype=np.uint8)
            if data.ndim != 3 or data.shape[2] != 4:
                raise ValidationError(f"an overlay image is (H, W, 4) uint8, got {data.shape}")
            rows, cols = data.shape[:2]
            image = QImage(data.data, cols, rows, cols * 4, QImage.Format.Format_RGBA8888_Premultiplied)
            self.image = (QPointF(*origin), image.copy())  # the copy owns its pixels
        self._repaint()

    def paint(self, painter: QPainter, view: ViewState, image_size: tuple[int, int], area: QRect) -> None:
        """Everything over a frame of ``image_size`` (width, height), on a widget covering ``area``."""
        transform = view.transform()
        if self.image is not None:
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # exact pixels
            painter.setTransform(transform)
            painter.drawImage(*self.image)
            painter.restore()
        self.vectors.paint(painter, transform, view.zoom, view.visible_image_rect(), image_size)
        paint_pins(painter, transform, self.pins)
        if self.notice:
            self._paint_notice(painter, area)

    def _paint_notice(self, painter: QPainter, area: QRect) -> None:
        """Why the frame is empty and drawing is off, in a box at the centre of ``area``."""
        painter.save()
        painter.resetTransform()
        font = QFont(painter.font())
        font.setPointSizeF(max(font.pointSizeF(), 9.0) * 1.15)
        painter.setFont(font)
        flags = int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap)
        width = min(area.width() - 40, 640)
        text_area = area.adjusted((area.width() - width) // 2, 0, -(area.width() - width) // 2, 0)
        box = painter.boundingRect(text_area, flags, self.notice).adjusted(-14, -10, 14, 10)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(NOTICE_BOX)
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(NOTICE_TEXT)
        painter.drawText(text_area, flags, self.notice)
        painter.restore()
