"""Small QPainter charts for the activity view: a histogram and lines over time with a legend.

QtCharts is not part of PySide6-Essentials, and two small charts do not justify another
dependency. Colours are chosen for the dark theme: light text, dim grid, saturated series.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import datetime

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

#: series colours, distinct on a dark background and for the common colour-vision deficiencies first
SERIES_COLORS = ("#6ea8fe", "#f2c14e", "#7bd389", "#ff8c69", "#c39bd3", "#4fd1c5", "#f78fb3", "#c8d0d8")
TEXT = QColor("#d8d8d8")
DIM_TEXT = QColor("#9a9da3")
AXIS = QColor("#6b6e75")
GRID = QColor("#2e3035")
BACKGROUND = QColor("#16171a")
BAR = QColor("#6ea8fe")


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round axis ticks from 0 to at least ``top`` (steps of 1, 2 or 5 times a power of ten; whole
    numbers only, since the charts count items)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(1.0, step)
    ticks = [0.0]
    while ticks[-1] < top:
        ticks.append(ticks[-1] + step)
    return ticks


def _label(value: float) -> str:
    return f"{value:g}"


class _Chart(QWidget):
    """Title, axes with ticks and axis titles; subclasses draw the data inside ``plot``."""

    def __init__(self, title: str, x_title: str, y_title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title, self.x_title, self.y_title = title, x_title, y_title
        self.empty_text = "No data yet"
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def minimumSizeHint(self) -> QSize:
        return QSize(280, 190)

    def sizeHint(self) -> QSize:
        return QSize(420, 240)

    def has_data(self) -> bool:
        raise NotImplementedError

    def y_top(self) -> float:
        raise NotImplementedError

    def x_labels(self) -> list[tuple[float, str]]:
        """(position 0..1 along the x axis, text) pairs."""
        raise NotImplementedError

    def draw_data(self, painter: QPainter, plot: QRectF, y_max: float) -> None:
        raise NotImplementedError

    def legend(self) -> list[tuple[str, QColor]]:
        """Series names and colours, shown right-aligned in the title row (outside the data)."""
        return []

    def _draw_legend(self, painter: QPainter, metrics: QFontMetrics, left: float, top: float) -> None:
        entries = self.legend()
        widths = [22 + metrics.horizontalAdvance(name) + 12 for name, _ in entries]
        x = max(left, self.width() - 8 - sum(widths))
        for (name, color), width in zip(entries, widths, strict=True):
            middle = top + metrics.height() / 2
            painter.fillRect(QRectF(x, middle - 2, 16, 4), color)
            painter.setPen(TEXT)
            painter.drawText(QPointF(x + 22, top + metrics.ascent()), name)
            x += width

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), BACKGROUND)
        font = QFont(self.font())
        metrics = QFontMetrics(font)
        line = metrics.height()
        bold = QFont(font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(TEXT)
        painter.drawText(QRectF(8, 4, self.width() - 16, line + 2), Qt.AlignmentFlag.AlignLeft, self.title)
        painter.setFont(font)
        self._draw_legend(painter, metrics, 8 + metrics.horizontalAdvance(self.title) + 24, 4)
        if not self.has_data():
            painter.setPen(DIM_TEXT)
            painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, self.empty_text)
            return
        ticks = nice_ticks(self.y_top())
        y_max = ticks[-1]
        left = 14 + line + max(metrics.horizontalAdvance(_label(t)) for t in ticks)
        plot = QRectF(left, 10 + 2 * line, self.width() - left - 14, self.height() - 3 * line - 24 - 2 * line)
        if plot.width() < 40 or plot.height() < 30:
            return
        self._draw_axes(painter, plot, ticks, metrics)
        self.draw_data(painter, plot, y_max)

    def _draw_axes(
        self, painter: QPainter, plot: QRectF, ticks: Sequence[float], metrics: QFontMetrics
    ) -> None:
        line = metrics.height()
        y_max = ticks[-1]
        for tick in ticks:
            y = plot.bottom() - plot.height() * tick / y_max
            painter.setPen(QPen(GRID, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(DIM_TEXT)
            text = _label(tick)
            width = metrics.horizontalAdvance(text)
            painter.drawText(QPointF(plot.left() - 6 - width, y + metrics.ascent() / 2 - 1), text)
        painter.setPen(QPen(AXIS, 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.bottomLeft(), plot.topLeft())
        painter.setPen(DIM_TEXT)
        last_end = -1e9
        for position, text in self.x_labels():
            x = plot.left() + plot.width() * position
            width = metrics.horizontalAdvance(text)
            start = min(max(x - width / 2, plot.left() - 4), plot.right() - width + 4)
            if start < last_end + 6:  # skip labels that would overlap the previous one
                continue
            painter.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 3))
            painter.drawText(QPointF(start, plot.bottom() + 4 + metrics.ascent()), text)
            last_end = start + width
        painter.setPen(TEXT)
        below = QRectF(plot.left(), plot.bottom() + line + 6, plot.width(), line + 2)
        painter.drawText(below, Qt.AlignmentFlag.AlignHCenter, self.x_title)
        painter.save()  # the y title reads bottom to top, centred on the axis
        painter.translate(4, plot.center().y())
        painter.rotate(-90)
        painter.drawText(
            QRectF(-plot.height() / 2, 0, plot.height(), line + 2),
            Qt.AlignmentFlag.AlignHCenter,
            self.y_title,
        )
        painter.restore()


class HistogramChart(_Chart):
    """Counts per bin over [edges[0], edges[-1]] (the agreement histogram)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Agreement on consensus items", "agreement score", "items", parent)
        self.empty_text = "No agreement scores yet (consensus items get one when all labelers submitted)"
        self.edges: list[float] = []
        self.counts: list[int] = []

    def set_data(self, edges: Sequence[float], counts: Sequence[int]) -> None:
        self.edges, self.counts = list(edges), list(counts)
        self.update()

    def has_data(self) -> bool:
        return sum(self.counts) > 0

    def y_top(self) -> float:
        return float(max(self.counts))

    def x_labels(self) -> list[tuple[float, str]]:
        if len(self.edges) < 2:
            return []
        lo, hi = self.edges[0], self.edges[-1]
        return [((e - lo) / (hi - lo), f"{e:.1f}") for e in self.edges]

    def draw_data(self, painter: QPainter, plot: QRectF, y_max: float) -> None:
        n = len(self.counts)
        width = plot.width() / n
        painter.setPen(QPen(BACKGROUND, 1))
        for i, count in enumerate(self.counts):
            if count <= 0:
                continue
            height = plot.height() * count / y_max
            bar = QRectF(plot.left() + i * width + 1, plot.bottom() - height, width - 2, height)
            painter.fillRect(bar, BAR)
            painter.setPen(TEXT)
            painter.drawText(
                QRectF(bar.left(), bar.top() - 16, bar.width(), 14), Qt.AlignmentFlag.AlignHCenter, str(count)
            )


class LineChart(_Chart):
    """One line per series over time buckets, with a legend (submitted items per day per labeler)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Throughput", "day", "items submitted", parent)
        self.empty_text = "No submissions yet"
        self.starts: list[datetime] = []
        self.series: dict[str, list[int]] = {}
        self.bucket = "day"

    def set_data(self, starts: Sequence[datetime], series: dict[str, list[int]], bucket: str = "day") -> None:
        self.starts, self.series, self.bucket = list(starts), dict(series), bucket
        self.x_title = bucket
        self.update()

    def color_of(self, name: str) -> QColor:
        names = sorted(self.series)
        return QColor(SERIES_COLORS[names.index(name) % len(SERIES_COLORS)])

    def has_data(self) -> bool:
        return any(sum(v) for v in self.series.values())

    def y_top(self) -> float:
        return float(max(max(v) for v in self.series.values()))

    def _x(self, index: int) -> float:
        return 0.5 if len(self.starts) < 2 else index / (len(self.starts) - 1)

    def x_labels(self) -> list[tuple[float, str]]:
        pattern = "%H:%M" if self.bucket == "hour" else "%b %d"
        return [(self._x(i), start.strftime(pattern)) for i, start in enumerate(self.starts)]

    def draw_data(self, painter: QPainter, plot: QRectF, y_max: float) -> None:
        for name, values in sorted(self.series.items()):
            color = self.color_of(name)
            points = [
                QPointF(plot.left() + plot.width() * self._x(i), plot.bottom() - plot.height() * v / y_max)
                for i, v in enumerate(values)
            ]
            painter.setPen(QPen(color, 2))
            for a, b in itertools.pairwise(points):
                painter.drawLine(a, b)
            painter.setBrush(color)
            for point in points:
                painter.drawEllipse(point, 3, 3)

    def legend(self) -> list[tuple[str, QColor]]:
        return [(name, self.color_of(name)) for name in sorted(self.series)]
