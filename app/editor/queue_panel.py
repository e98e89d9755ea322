"""The Queue dock: start labeling, the current item, Submit / Skip, queue counts, the batch.

The logic lives in :mod:`app.editor.queue_controller`; this widget only shows its state and
forwards the user's actions. Every text that comes from files or people (asset names, a
reviewer's reason) is shown as plain text, never as rich text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.item_status import QUEUE_COUNTS, counts_line
from app.editor.plain import plain_tip
from app.editor.queue_controller import ItemState, QueueController, QueueHost, QueueItem
from app.workflow.queue_batch import skipped_line

if TYPE_CHECKING:
    from app.api import Project

START_KEYS, SUBMIT_KEYS, SKIP_KEYS = "Ctrl+Shift+L", "Ctrl+Return", "Ctrl+Shift+K"
COMMON_SKIP_REASONS = [
    "image quality too poor",
    "wrong body part or modality",
    "outside my expertise",
    "unsure: needs discussion",
]
_MARKS = {
    ItemState.WAITING: "  ",
    ItemState.CURRENT: "▶",
    ItemState.SUBMITTING: "…",
    ItemState.SUBMITTED: "✓",
    ItemState.SKIPPED: "↷",
    ItemState.EXPIRED: "⌛",
    ItemState.FAILED: "!",
}
_BANNER = "QLabel {{ background: {bg}; color: {fg}; border-radius: 3px; padding: 6px; }}"


def _label(parent: QWidget, *, wrap: bool = True) -> QLabel:
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)  # names and reasons come from files and people
    label.setWordWrap(wrap)
    return label


class SkipDialog(QDialog):
    """Ask an optional reason for skipping; Enter skips, Escape cancels (keyboard only)."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Skip this item")
        question = _label(self)
        question.setText(f"Skip {name} and give it back to the queue?\nReason (optional):")
        self.reason = QLineEdit(self)
        self.reason.setPlaceholderText("e.g. " + COMMON_SKIP_REASONS[0])
        completer = QCompleter(COMMON_SKIP_REASONS, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.reason.setCompleter(completer)
        buttons = QDialogButtonBox(self)
        skip = buttons.addButton("Skip", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        skip.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(question)
        layout.addWidget(self.reason)
        layout.addWidget(buttons)
        self.reason.setFocus()


class QueuePanel(QWidget):
    """See the module doc; ``controller`` is public for the window's actions and for tests."""

    def __init__(self, project: Project, host: QueueHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = QueueController(project, host, parent=self)
        self.skip_dialog: SkipDialog | None = None
        self.start_button = QPushButton(f"Start labeling  ({START_KEYS})", self)
        self.start_button.clicked.connect(self.start)
        self.name = _label(self)
        bold = QFont(self.name.font())
        bold.setBold(True)
        bold.setPointSizeF(bold.pointSizeF() * 1.15)
        self.name.setFont(bold)
        self.position = _label(self)
        self.badges = _label(self)
        self.badges.setStyleSheet("color: #f2c14e;")
        self.rejection = _label(self)
        self.rejection.setStyleSheet(_BANNER.format(bg="#5c1f24", fg="#ffd9d9"))
        self.skipped = _label(self)  # the item came back to the labeler who skipped it
        self.skipped.setStyleSheet(_BANNER.format(bg="#23384f", fg="#d6e8ff"))
        self.skipped.hide()
        self.notice = _label(self)
        self.notice.setStyleSheet(_BANNER.format(bg="#4a3b12", fg="#ffe7a8"))
        self.notice.hide()
        self.submit_button = QPushButton(f"Submit  ({SUBMIT_KEYS})", self)
        self.submit_button.clicked.connect(self.submit)
        self.skip_button = QPushButton(f"Skip…  ({SKIP_KEYS})", self)
        self.skip_button.clicked.connect(self.skip)
        self.stats = _label(self)
        self.stats.setStyleSheet("color: #a8a8a8;")
        self.batch = QListWidget(self)
        self.batch.setUniformItemSizes(True)
        self.batch.itemActivated.connect(lambda item: self.controller.open_item(self.batch.row(item)))
        self._layout()
        self.controller.changed.connect(self.refresh)
        self.controller.notice.connect(self.show_notice)
        self.refresh()

    def _layout(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.submit_button, 2)
        buttons.addWidget(self.skip_button, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.start_button)
        layout.addSpacing(4)
        for widget in (self.name, self.position, self.badges, self.rejection, self.skipped, self.notice):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        layout.addWidget(self.stats)
        caption = _label(self)
        caption.setText("Your batch (Enter opens a waiting item)")
        caption.setStyleSheet("color: #a8a8a8;")
        layout.addWidget(caption)
        layout.addWidget(self.batch, 1)

    # --- actions (the window's shortcuts call these too) -----------------------------------------
    def start(self) -> None:
        self.notice.hide()
        dock = self.parentWidget()
        if dock is not None:
            dock.show()
            dock.raise_()  # the Queue tab comes to the front (it shares the area with the asset list)
        self.controller.start()

    def submit(self) -> None:
        self.notice.hide()
        self.controller.submit()

    def skip(self) -> None:
        """Ask an optional reason in a small dialog, then skip; the window stays usable meanwhile."""
        item = self.controller.item
        if item is None or self.controller.busy or self.skip_dialog is not None:
            return
        dialog = SkipDialog(item.name, self)
        self.skip_dialog = dialog
        key = item.key

        def finished(result: int) -> None:
            self.skip_dialog = None
            current = self.controller.item
            if result == QDialog.DialogCode.Accepted and current is not None and current.key == key:
                self.notice.hide()
                self.controller.skip(dialog.reason.text())
            dialog.deleteLater()

        dialog.finished.connect(finished)
        dialog.open()

    def show_notice(self, message: str) -> None:
        self.notice.setText(message)
        self.notice.show()

    # --- showing the state ------------------------------------------------------------------------
    def refresh(self) -> None:
        c = self.controller
        batch = c.batch
        item = c.item
        self.start_button.setVisible(item is None)
        self.submit_button.setEnabled(item is not None and not c.busy)
        self.skip_button.setEnabled(item is not None and not c.busy)
        if item is None:
            self.name.setText("No item open")
            self.position.setText(
                "Start labeling claims a batch of items for you." if not batch.started else "Batch finished."
            )
            self.badges.hide()
            self.rejection.hide()
            self.skipped.hide()
        else:
            self.name.setText(item.name)
            pos, total = (c.current or 0) + 1, len(c.items)
            saving = "  (waiting for the database…)" if batch.waiting else "  (opening…)" if c.busy else ""
            self.position.setText(f"{pos} of {total} in your batch{saving}")
            self._show_badges(item)
        s = batch.stats
        self.stats.setText(f"Queue: {counts_line(s)}" if s else "Queue: not loaded yet")
        self.stats.setToolTip("; ".join(f"{x.label}: {x.meaning}" for x in QUEUE_COUNTS))
        self._fill_batch()

    def _show_badges(self, item: QueueItem) -> None:
        badges = []
        if item.required > 1:
            badges.append(f"Consensus item: {item.required} labelers label it independently")
        if item.issues:
            badges.append(f"{item.issues} open issue{'s' if item.issues > 1 else ''}")
        self.badges.setText("\n".join(badges))
        self.badges.setVisible(bool(badges))
        self.rejection.setText(f"Returned by review: {item.note}" if item.note else "")
        self.rejection.setVisible(bool(item.note))
        self.skipped.setText("" if item.skipped is None else skipped_line(item.skipped))
        self.skipped.setVisible(item.skipped is not None)

    def _fill_batch(self) -> None:
        rows = self.controller.items
        if self.batch.count() != len(rows):
            self.batch.clear()
            for _ in rows:
                self.batch.addItem(QListWidgetItem())
        for row, item in enumerate(rows):
            entry = self.batch.item(row)
            state = "" if item.state in (ItemState.WAITING, ItemState.CURRENT) else f"  ({item.state.value})"
            if item.note and not state:
                state = "  (returned by review)"
            elif item.skipped is not None and not state:
                state = "  (you skipped it earlier)"
            entry.setText(f"{_MARKS[item.state]}  {item.name}{state}")
            entry.setToolTip(plain_tip(f"{item.asset.root}:{item.asset.rel_path}"))  # file names
            font = entry.font()
            font.setBold(item.state is ItemState.CURRENT)
            entry.setFont(font)
        if self.controller.current is not None:
            self.batch.setCurrentRow(self.controller.current)
