"""Draws comment pins with QPainter in screen space; both canvas backends call it after the overlays.

Open pins are bright amber, resolved ones a dim grey, the selected one gets a white ring; each
has a dark outline so it reads on black air, grey tissue and white bone alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen, QTransform

from app.editor.canvas.pins import BUBBLE_RADIUS, DRAFT, Pin, PinSpot, place

OPEN_FILL = QColor(255, 176, 0)
OPEN_TEXT = QColor(20, 20, 20)
RESOLVED_FILL = QColor(96, 98, 104, 190)
RESOLVED_TEXT = QColor(200, 200, 200, 210)
DRAFT_FILL = QColor(110, 168, 254)
OUTLINE = QColor(0, 0, 0, 220)
SELECTED_RING = QColor(255, 255, 255)


def spots(pins: Sequence[Pin], view: QTransform) -> list[PinSpot]:
    def to_screen(x: float, y: float) -> tuple[float, float]:
        p = view.map(QPointF(x, y))
        return p.x(), p.y()

    return place(pins, to_screen)


def paint_pins(p: QPainter, view: QTransform, pins: Sequence[Pin]) -> None:
    if not pins:
        return
    p.save()
    p.setTransform(QTransform())  # screen space: constant size at any zoom
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    font = QFont(p.font())
    font.setBold(True)
    font.setPixelSize(11)
    p.setFont(font)
    for spot in spots(pins, view):
        _pin(p, spot)
    p.restore()


def _pin(p: QPainter, spot: PinSpot) -> None:
    pin = spot.pin
    (ax, ay), (cx, cy) = spot.anchor, spot.centre
    if pin.number == DRAFT:
        fill, text = DRAFT_FILL, OPEN_TEXT
    else:
        fill, text = (OPEN_FILL, OPEN_TEXT) if pin.open else (RESOLVED_FILL, RESOLVED_TEXT)
    r = BUBBLE_RADIUS
    # bubble and tail as one outline, the tail's tip exactly on the anchor
    shape = QPainterPath()
    shape.addEllipse(QPointF(cx, cy), r, r)
    tail = QPainterPath()
    tail.moveTo(cx - r * 0.55, cy + r * 0.7)
    tail.lineTo(ax, ay)
    tail.lineTo(cx + r * 0.55, cy + r * 0.7)
    tail.closeSubpath()
    shape = shape.united(tail)
    outline = QPen(OUTLINE, 1.5)
    p.setPen(outline)
    p.setBrush(QBrush(fill))
    p.drawPath(shape)
    if pin.selected:
        ring = QPen(SELECTED_RING, 2.0)
        p.setPen(ring)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(QPointF(cx, cy), r + 2.5, r + 2.5)
    p.setPen(QPen(text))
    label = "+" if pin.number == DRAFT else str(pin.number)
    p.drawText(QRectF(cx - r, cy - r, 2 * r, 2 * r), Qt.AlignmentFlag.AlignCenter, label)
