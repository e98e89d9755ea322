"""The Qt binding must not leak or drop references: PySide6 6.12.0 took one reference away from
``None`` on every call returning nothing, and CPython 3.11 aborts when that count reaches zero."""

from __future__ import annotations

import sys

from PySide6.QtGui import QImage, QPainter, QTransform
from PySide6.QtWidgets import QWidget


def test_void_calls_keep_the_none_refcount(qapp) -> None:  # type: ignore[no-untyped-def]
    widget = QWidget()
    image = QImage(8, 8, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    before = sys.getrefcount(None)
    for _ in range(20_000):
        widget.update()
        painter.setTransform(QTransform())
    drift = sys.getrefcount(None) - before
    painter.end()
    assert abs(drift) < 100, f"None lost {-drift} references in 40,000 Qt calls"
