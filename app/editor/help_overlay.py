"""F1 / ? shows every action and its keys over the canvas (keyboard-driven labeling)."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QKeyEvent, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QWidget


class HelpOverlay(QWidget):
    """A translucent sheet listing (keys, action) pairs in columns; any key or click closes it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.entries: list[tuple[str, str]] = []
        self.hide()

    def set_entries(self, entries: Iterable[tuple[str, str]]) -> None:
        self.entries = sorted(entries, key=lambda e: e[1].lower())

    def toggle(self) -> None:
        if self.isVisible():
            self.hide()
            return
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect())
        self.show()
        self.raise_()
        self.setFocus()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(10, 10, 12, 215))
        font = QFont(self.font())
        font.setPointSizeF(max(9.0, font.pointSizeF()))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        line = metrics.height() + 4
        margin = 32
        painter.setPen(QColor("#e8e8e8"))
        painter.drawText(
            QRectF(margin, 12, self.width() - 2 * margin, line), "Keyboard shortcuts (any key closes)"
        )
        rows_per_column = max(1, (self.height() - 2 * margin - line) // line)
        column_width = 340
        for i, (keys, action) in enumerate(self.entries):
            col, row = divmod(i, rows_per_column)
            x = margin + col * column_width
            y = margin + line + row * line
            painter.setPen(QColor("#f2c14e"))
            painter.drawText(QRectF(x, y, 110, line), Qt.AlignmentFlag.AlignLeft, keys)
            painter.setPen(QColor("#d8d8d8"))
            painter.drawText(QRectF(x + 115, y, column_width - 125, line), Qt.AlignmentFlag.AlignLeft, action)
        painter.end()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        self.hide()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.hide()
