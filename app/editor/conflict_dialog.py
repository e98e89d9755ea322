"""Someone else saved a newer version of what I edited: keep mine, take theirs, or look at both."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.annotations import Annotation
from app.editor.qimages import to_qimage


def describe(annotation: Annotation | None) -> str:
    if annotation is None:
        return "deleted"
    who = annotation.author or "someone"
    where = f"frame {annotation.frame + 1}, version {annotation.version}"
    return f"{annotation.kind.value} '{annotation.label}' on {where}, by {who}"


class ConflictDialog(QDialog):
    """``choice`` is 'mine' or 'theirs' after exec(); 'View both' shows both versions side by side."""

    def __init__(
        self,
        mine: Annotation | None,
        theirs: Annotation | None,
        *,
        mine_picture: np.ndarray | None = None,
        theirs_picture: np.ndarray | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Someone else changed this annotation")
        self.choice: str | None = None
        intro = QLabel(
            "While you were editing, another user saved a newer version. Nothing has been overwritten.\n\n"
            f"Yours:   {describe(mine)}\nTheirs:  {describe(theirs)}"
        )
        intro.setTextFormat(Qt.TextFormat.PlainText)  # labels and names come from users: never rich text
        intro.setWordWrap(True)
        self.both = QWidget(self)
        row = QHBoxLayout(self.both)
        for title, picture in (("Yours", mine_picture), ("Theirs", theirs_picture)):
            column = QVBoxLayout()
            caption = QLabel(title)
            caption.setTextFormat(Qt.TextFormat.PlainText)
            column.addWidget(caption)
            view = QLabel()
            if picture is not None:
                pixmap = QPixmap.fromImage(to_qimage(picture))
                view.setPixmap(pixmap.scaled(360, 360, Qt.AspectRatioMode.KeepAspectRatio))
            else:
                view.setText("(nothing to show)")
            column.addWidget(view)
            row.addLayout(column)
        self.both.hide()
        buttons = QDialogButtonBox(self)
        keep = QPushButton("Keep mine")
        take = QPushButton("Take theirs")
        view_both = QPushButton("View both")
        buttons.addButton(keep, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(take, QDialogButtonBox.ButtonRole.RejectRole)
        buttons.addButton(view_both, QDialogButtonBox.ButtonRole.ActionRole)
        keep.clicked.connect(lambda: self._choose("mine"))
        take.clicked.connect(lambda: self._choose("theirs"))
        view_both.clicked.connect(lambda: self.both.setVisible(not self.both.isVisible()))
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.both)
        layout.addWidget(buttons)

    def _choose(self, choice: str) -> None:
        self.choice = choice
        self.accept()

    def reject(self) -> None:  # Escape decides nothing: the conflict stays open and unsaved
        self.choice = None
        super().reject()

    @staticmethod
    def ask(
        mine: Annotation | None, theirs: Annotation | None, parent: QWidget | None = None, **pictures: Any
    ) -> str | None:
        dialog = ConflictDialog(mine, theirs, parent=parent, **pictures)
        dialog.exec()
        return dialog.choice
