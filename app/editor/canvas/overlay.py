"""Vector overlays drawn with QPainter on top of the image layers; shared by both backends.

Geometry is given in image coordinates and drawn through the view transform with cosmetic pens
(1 screen px whatever the zoom); handles and the brush circle are sized in screen pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPolygonF, QTransform

from app.core.annotations import HUMAN, Annotation, Kind
from app.core.commands import Patch
from app.core.tools.base import Preview

GRID_ZOOM = 8.0  # pixel borders become visible from this zoom on
HANDLE = 7.0  # vertex handle size in screen pixels
MASK_ALPHA = 110
# machine-made pre-labels: fainter fill, dashed outline with a dark casing (readable on any image)
PRELABEL_MASK_ALPHA = 50
PRELABEL_FILL_ALPHA = 15
PRELABEL_DASH = (4.0, 3.0)
INTERPOLATED_DASH = (1.5, 2.5)  # a track's interpolated frame: dotted, told apart from keyframes
PREVIEW_ALPHA = 140


def tint_image(bits: np.ndarray, rgb: tuple[int, int, int], alpha: int) -> QImage:
    """A premultiplied ARGB image: ``rgb`` at ``alpha`` where ``bits`` is set, transparent elsewhere."""
    h, w = bits.shape
    data = np.zeros((h, w, 4), dtype=np.uint8)
    # Format_RGBA8888_Premultiplied stores bytes in R, G, B, A order on every platform.
    data[bits] = (rgb[0] * alpha // 255, rgb[1] * alpha // 255, rgb[2] * alpha // 255, alpha)
    return QImage(data.data, w, h, w * 4, QImage.Format.Format_RGBA8888_Premultiplied).copy()


def prelabel_tint(bits: np.ndarray, rgb: tuple[int, int, int]) -> QImage:
    """A machine-made mask: a faint fill and an opaque one-pixel rim (its edge pixels), so it
    reads as "proposed" next to the labeler's own solid masks."""
    inner = bits.copy()
    inner[1:, :] &= bits[:-1, :]
    inner[:-1, :] &= bits[1:, :]
    inner[:, 1:] &= bits[:, :-1]
    inner[:, :-1] &= bits[:, 1:]
    edge = bits & ~inner
    h, w = bits.shape
    data = np.zeros((h, w, 4), dtype=np.uint8)
    a = PRELABEL_MASK_ALPHA
    data[inner] = (rgb[0] * a // 255, rgb[1] * a // 255, rgb[2] * a // 255, a)
    data[edge] = (*rgb, 255)
    return QImage(data.data, w, h, w * 4, QImage.Format.Format_RGBA8888_Premultiplied).copy()


def _dashed(color: QColor, width: float, pattern: tuple[float, float] = PRELABEL_DASH) -> QPen:
    pen = _cosmetic(color, width)
    pen.setDashPattern(list(pattern))
    return pen


def _cosmetic(color: QColor, width: float = 1.5) -> QPen:
    pen = QPen(color, width)
    pen.setCosmetic(True)
    return pen


class OverlayPainter:
    """Holds the overlay items and small image caches; ``paint`` draws them for one frame."""

    def __init__(self) -> None:
        self.items: list[tuple[Annotation, QColor, bool]] = []
        self.preview = Preview()
        self.class_colors: Mapping[int, tuple[int, int, int]] = {}
        self._mask_cache: dict[int, QImage] = {}
        self._patch_cache: dict[tuple[int, int], QImage] = {}
        self.interpolated: set[int] = set()  # id() of the items that are a track's interpolated frame

    def set_items(
        self, items: Sequence[tuple[Annotation, str, bool]], interpolated: Sequence[Annotation] = ()
    ) -> None:
        self.items = [(a, QColor(c), bool(s)) for a, c, s in items]
        self.interpolated = {id(a) for a in interpolated}
        keep = {id(a) for a, _, _ in self.items}
        self._mask_cache = {k: v for k, v in self._mask_cache.items() if k in keep}

    def set_preview(self, preview: Preview) -> None:
        if not preview.patches:
            self._patch_cache.clear()
        self.preview = preview

    # --- drawing ---------------------------------------------------------------------------------
    def paint(
        self, p: QPainter, view: QTransform, zoom: float, visible: QRectF, size: tuple[int, int]
    ) -> None:
        p.save()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        if zoom >= GRID_ZOOM:
            self._grid(p, view, visible, size)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for annotation, color, selected in self.items:
            self._annotation(p, view, annotation, color, selected)
        self._preview(p, view)
        p.restore()

    def _grid(self, p: QPainter, view: QTransform, visible: QRectF, size: tuple[int, int]) -> None:
        w, h = size
        x0, x1 = max(0, math.floor(visible.left())), min(w, math.ceil(visible.right()))
        y0, y1 = max(0, math.floor(visible.top())), min(h, math.ceil(visible.bottom()))
        if x1 <= x0 or y1 <= y0:
            return
        p.setTransform(view)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setPen(_cosmetic(QColor(90, 150, 255, 120), 1.0))  # visible on black, grey and white
        lines = [QLineF(x, y0, x, y1) for x in range(x0, x1 + 1)]
        lines += [QLineF(x0, y, x1, y) for y in range(y0, y1 + 1)]
        p.drawLines(lines)

    def _handles(
        self, p: QPainter, view: QTransform, points: Sequence[tuple[float, float]], color: QColor
    ) -> None:
        p.setTransform(QTransform())
        p.setPen(_cosmetic(QColor(0, 0, 0), 1.0))
        p.setBrush(QBrush(color.lighter(130)))
        for px, py in points:
            c = view.map(QPointF(px, py))
            p.drawRect(QRectF(c.x() - HANDLE / 2, c.y() - HANDLE / 2, HANDLE, HANDLE))

    def _annotation(
        self, p: QPainter, view: QTransform, a: Annotation, color: QColor, selected: bool
    ) -> None:
        p.setTransform(view)
        ghost = id(a) in self.interpolated  # interpolated, not stored: dotted outline
        machine = a.source != HUMAN or ghost  # a pre-label or in-between frame: drawn as a proposal
        dash = INTERPOLATED_DASH if ghost else PRELABEL_DASH
        width = 2.5 if selected else 1.5
        p.setPen(_dashed(color, width, dash) if machine else _cosmetic(color, width))
        fill = QColor(color)
        fill.setAlpha((40 if selected else PRELABEL_FILL_ALPHA) if machine else (60 if selected else 35))
        handles: list[tuple[float, float]] = []
        if a.kind is Kind.MASK and a.mask is not None:
            image = self._mask_cache.get(id(a))
            if image is None:
                rgb = (color.red(), color.green(), color.blue())
                if machine:
                    image = prelabel_tint(a.mask.bits, rgb)
                else:
                    image = tint_image(a.mask.bits, rgb, MASK_ALPHA)
                self._mask_cache[id(a)] = image
            p.drawImage(QPointF(a.mask.x0, a.mask.y0), image)
        elif a.kind is Kind.BOX and a.box is not None:
            x0, y0, x1, y1 = a.box
            if machine:
                self._casing(p, width)
                p.drawRect(QRectF(x0, y0, x1 - x0, y1 - y0))
                p.setPen(_dashed(color, width, dash))
            p.setBrush(QBrush(fill))
            p.drawRect(QRectF(x0, y0, x1 - x0, y1 - y0))
            handles = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        elif a.kind is Kind.POINT and a.points is not None:
            handles = [(float(a.points[0][0]), float(a.points[0][1]))]
            selected = True  # a point is only visible as its handle
        elif a.points is not None:
            poly = QPolygonF([QPointF(float(x), float(y)) for x, y in a.points])
            if machine:
                self._casing(p, width)
                if a.kind is Kind.POLYGON:
                    p.drawPolygon(poly)
                else:
                    p.drawPolyline(poly)
                p.setPen(_dashed(color, width, dash))
            if a.kind is Kind.POLYGON:
                p.setBrush(QBrush(fill))
                p.drawPolygon(poly)
            else:
                p.drawPolyline(poly)
            handles = [(float(x), float(y)) for x, y in a.points]
        if selected and handles:
            self._handles(p, view, handles, color)

    @staticmethod
    def _casing(p: QPainter, width: float) -> None:
        """A solid dark line under a pre-label's dashes: the gaps stay visible on bright images."""
        p.setPen(_cosmetic(QColor(0, 0, 0, 200), width + 1.0))
        p.setBrush(Qt.BrushStyle.NoBrush)

    def _patch_image(self, patch: Patch, rgb: tuple[int, int, int]) -> QImage:
        key = (id(patch[2]), hash(rgb))
        image = self._patch_cache.get(key)
        if image is None:
            image = tint_image(patch[2], rgb, PREVIEW_ALPHA)
            self._patch_cache[key] = image
        return image

    def _preview(self, p: QPainter, view: QTransform) -> None:
        pv = self.preview
        rgb = self.class_colors.get(pv.value, (255, 255, 255)) if pv.value else (0, 0, 0)
        color = QColor(*rgb) if pv.value else QColor(255, 255, 255)
        p.setTransform(view)
        for patch in pv.patches:
            y0, x0, bits = patch
            if bits.size:
                p.drawImage(QPointF(x0, y0), self._patch_image(patch, rgb))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(_cosmetic(QColor(255, 220, 0), 1.5))
        if pv.points is not None and len(pv.points):
            pts = [QPointF(float(x), float(y)) for x, y in pv.points]
            if pv.closed:
                p.drawPolygon(QPolygonF(pts))
            else:
                p.drawPolyline(QPolygonF(pts))
            if pv.rubber_band is not None:
                dash = _cosmetic(QColor(255, 220, 0), 1.0)
                dash.setStyle(Qt.PenStyle.DashLine)
                p.setPen(dash)
                p.drawLine(pts[-1], QPointF(*pv.rubber_band))
            self._handles(p, view, [(float(x), float(y)) for x, y in pv.points], QColor(255, 220, 0))
            p.setTransform(view)
        if pv.box is not None:
            bx0, by0, bx1, by1 = pv.box
            p.setPen(_cosmetic(QColor(255, 220, 0), 1.5))
            p.drawRect(QRectF(bx0, by0, bx1 - bx0, by1 - by0))
        if pv.cursor is not None:
            x, y, r = pv.cursor
            p.setPen(_cosmetic(color, 1.5))
            p.drawEllipse(QPointF(x, y), r, r)
