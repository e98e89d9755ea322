"""The comments panel's widgets: the thread list, the thread as formatted plain text, the reply box,
and the Comment tool's new pin (the composer popup and its draft).

Everything a person typed is shown as plain text: item views draw plain strings, the thread view is
a document built with QTextCursor.insertText (never HTML), and @mentions are emphasised with
character formats, not markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QKeyEvent, QTextCharFormat, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import SitelabelError
from app.core.records import Thread, ThreadStatus
from app.editor.canvas.pins import CommentTool
from app.editor.comments_logic import CommentsLogic, first_line, split_mentions, when

if TYPE_CHECKING:
    from app.editor.canvas import Canvas

ACCENT = QColor("#f2c14e")  # mentions of the acting user, as the help overlay's key colour
MENTION = QColor("#6ea8fe")
DIM = QColor("#8a8a8a")
THREAD_ID = Qt.ItemDataRole.UserRole
COLUMNS = ("#", "Issue", "By", "Frame", "When")
_SEND_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


def write_thread(doc: QTextDocument, thread: Thread, number: int, me: str) -> None:
    """Fill ``doc`` with the thread as formatted plain text (insertText never parses markup)."""
    doc.clear()
    cursor = QTextCursor(doc)
    bold, dim, body = QTextCharFormat(), QTextCharFormat(), QTextCharFormat()
    bold.setFontWeight(QFont.Weight.Bold)
    dim.setForeground(QBrush(DIM))
    place = f"  x {thread.x:.1f}, y {thread.y:.1f}" if thread.x is not None and thread.y is not None else ""
    cursor.insertText(f"#{number}  {thread.status.value}  \u00b7  frame {thread.frame + 1}{place}", dim)
    for comment in thread.comments:
        cursor.insertBlock()
        cursor.insertBlock()
        cursor.insertText(comment.author or "(unknown)", bold)
        cursor.insertText(f"   {when(comment.created_at)}", dim)
        cursor.insertBlock()
        for text, name in split_mentions(comment.body, comment.mentions):
            if name is None:
                cursor.insertText(text, body)
                continue
            fmt = QTextCharFormat()
            fmt.setFontWeight(QFont.Weight.Bold)
            fmt.setForeground(QBrush(ACCENT if name.casefold() == me.casefold() else MENTION))
            cursor.insertText(text, fmt)


# --- small widgets ---------------------------------------------------------------------------------
class ThreadTree(QTreeWidget):
    """The asset's threads in an Open and a Resolved group, one row each, by thread id."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(list(COLUMNS))
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(True)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(1, header.ResizeMode.Stretch)
        for column in (0, 2, 3, 4):
            header.setSectionResizeMode(column, header.ResizeMode.ResizeToContents)

    def fill(self, shown: list[Thread], label: Callable[[Thread], tuple[str, bool]]) -> None:
        """List ``shown`` (signals blocked: the caller restores the selection); ``label`` gives a
        thread's number text and whether it mentions the acting user."""
        self.blockSignals(True)
        self.clear()
        open_ = [t for t in shown if t.status is ThreadStatus.OPEN]
        resolved = [t for t in shown if t.status is ThreadStatus.RESOLVED]
        for title, members, expanded in (("Open", open_, True), ("Resolved", resolved, False)):
            group = QTreeWidgetItem([f"{title} ({len(members)})"])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            self.addTopLevelItem(group)
            group.setFirstColumnSpanned(True)
            for thread in members:
                group.addChild(self._item(thread, *label(thread)))
            group.setExpanded(expanded)
        self.blockSignals(False)

    @staticmethod
    def _item(thread: Thread, number: str, me: bool) -> QTreeWidgetItem:
        item = QTreeWidgetItem(
            [
                number,
                first_line(thread),
                thread.author or "",
                str(thread.frame + 1),
                when(thread.created_at, short=True),
            ]
        )
        item.setData(0, THREAD_ID, thread.id)
        item.setToolTip(4, when(thread.created_at))  # a timestamp, never user text (tooltips parse HTML)
        item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if thread.status is ThreadStatus.RESOLVED:
            for column in range(len(COLUMNS)):
                item.setForeground(column, QBrush(DIM))
        if me:  # mentions of the acting user stand out in the list
            for column in range(len(COLUMNS)):
                font = item.font(column)
                font.setBold(True)
                item.setFont(column, font)
            item.setForeground(0, QBrush(ACCENT))
        return item

    def item_for(self, thread_id: int) -> QTreeWidgetItem | None:
        for g in range(self.topLevelItemCount()):
            group = self.topLevelItem(g)
            for c in range(group.childCount() if group is not None else 0):
                item = group.child(c) if group is not None else None
                if item is not None and item.data(0, THREAD_ID) == thread_id:
                    return item
        return None

    def selected_id(self) -> int | None:
        item = self.currentItem()
        value = None if item is None else item.data(0, THREAD_ID)
        return int(value) if value is not None else None


class ReplyBox(QPlainTextEdit):
    """Multi-line reply; Ctrl+Return sends. The box claims that key while it has focus, so a
    window-wide Ctrl+Return (the queue's Submit) does not fire while someone is typing here."""

    send = Signal()

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.ShortcutOverride and isinstance(e, QKeyEvent) and self._is_send(e):
            e.accept()
            return True
        return super().event(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if self._is_send(e):
            self.send.emit()
            return
        super().keyPressEvent(e)

    @staticmethod
    def _is_send(e: QKeyEvent) -> bool:
        return e.key() in _SEND_KEYS and bool(e.modifiers() & Qt.KeyboardModifier.ControlModifier)


class PinComposer(QFrame):
    """The small popup over the canvas where a new pin's first comment is typed: Enter posts,
    Escape cancels."""

    submitted = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("pin-composer")
        self.setStyleSheet(
            "#pin-composer { background: #26272b; border: 1px solid #6ea8fe; border-radius: 4px; }"
        )
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("New issue; @name mentions someone")
        self.edit.setMinimumWidth(280)
        hint = QLabel("Enter posts \u00b7 Esc cancels", self)
        hint.setStyleSheet("color: #8a8a8a;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 4)
        layout.setSpacing(2)
        layout.addWidget(self.edit)
        layout.addWidget(hint)
        self.edit.returnPressed.connect(lambda: self.submitted.emit(self.edit.text()))
        self.edit.installEventFilter(self)
        self.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.edit
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
        ):
            self.cancelled.emit()
            return True
        return super().eventFilter(watched, event)

    def open_at(self, anchor: QPointF) -> None:
        """Show just below-right of ``anchor`` (widget px of the parent), kept inside the parent."""
        self.adjustSize()
        parent = self.parentWidget()
        x, y = int(anchor.x()) + 12, int(anchor.y()) + 12
        if parent is not None:
            x = max(4, min(x, parent.width() - self.width() - 4))
            y = max(4, min(y, parent.height() - self.height() - 4))
        self.move(x, y)
        self.show()
        self.raise_()
        self.edit.setFocus()

    def close_composer(self) -> None:
        self.edit.clear()
        self.hide()


class PinDrafts(QObject):
    """The Comment tool's new pin: a click on the image places it and opens the composer, Enter posts
    the thread through the API, Escape (or another frame or asset) drops it."""

    posted = Signal(int)  # the new thread's id
    changed = Signal()  # the draft pin appeared or went: the pins are drawn again

    def __init__(
        self, logic: CommentsLogic, canvas: Canvas, refused: Callable[[str], None], parent: QObject
    ) -> None:
        super().__init__(parent)
        self.logic, self.canvas, self.refused = logic, canvas, refused
        self.composer = PinComposer(canvas)
        self.composer.submitted.connect(self.post)
        self.composer.cancelled.connect(self.cancel)
        canvas.pointer_pressed.connect(self._pointer_pressed)

    def _pointer_pressed(self, _x: float, _y: float) -> None:
        tool = self.canvas.tool_slot.active
        if not isinstance(tool, CommentTool) or self.logic.asset is None:
            return
        point = tool.take()
        if point is None:
            return
        self.logic.place_draft(*point)
        self.changed.emit()
        self.composer.open_at(self.canvas.view.to_widget(*point))

    def post(self, text: str) -> None:
        try:
            thread = self.logic.post_draft(text)
        except SitelabelError as exc:
            self.refused(f"Not posted: {exc}")
            return  # the composer stays open with the text
        if thread is not None:
            self.composer.close_composer()
            self.posted.emit(thread.id)

    def cancel(self) -> None:
        dropped = self.logic.drop_draft()
        had = dropped or self.composer.isVisible()
        self.composer.close_composer()
        if had:
            self.changed.emit()
            self.canvas.setFocus()
