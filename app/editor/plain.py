"""Text from files and people (class names, comments, DICOM tags, file names, error messages) is
shown as plain text. QLabel, QToolTip and QMessageBox guess the format (``Qt::mightBeRichText``), so
``<b>x</b>`` in a class name or ``<img src=...>`` in a DICOM tag would be rendered as HTML: labels
get ``Qt.PlainText``; tooltips and message texts are converted to escaped rich text.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as QtGui
from PySide6.QtWidgets import QLabel, QWidget


def plain_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A QLabel that never interprets its text as HTML."""
    label = QLabel(text, parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def plain_tip(text: str) -> str:
    """``text`` for setToolTip/ToolTipRole/QMessageBox: shown literally (escaped, line breaks kept)."""
    return QtGui.convertFromPlainText(text, Qt.WhiteSpaceMode.WhiteSpaceNormal) if text else ""
