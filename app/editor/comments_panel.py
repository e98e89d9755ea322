"""The "Comments" dock: the current asset's issue threads, their comments, replies, resolve/reopen,
jump-to, and new pins placed on the canvas with the Comment tool.

Everything a person typed is shown as plain text: item views draw plain strings, the thread view is
a document built with QTextCursor.insertText (never HTML), and labels carrying user text are forced
to Qt.PlainText. @mentions are emphasised with character formats, not markup. Permissions are the
API's: a refused resolve shows the API's PermissionDenied message in the panel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QKeyEvent, QTextCharFormat, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTextEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import SitelabelError
from app.core.records import Asset, Thread, ThreadStatus
from app.editor.actions import Binding
from app.editor.canvas.pins import DRAFT, CommentTool, Pin

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.canvas import Canvas

ACCENT = QColor("#f2c14e")  # mentions of the acting user, as the help overlay's key colour
MENTION = QColor("#6ea8fe")
DIM = QColor("#8a8a8a")
ERROR = "#ff8a80"
THREAD_ID = Qt.ItemDataRole.UserRole
COLUMNS = ("#", "Issue", "By", "Frame", "When")
_SEND_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


# --- plain helpers (no widgets) ---------------------------------------------------------------------
def mentions_me(thread: Thread, me: str) -> bool:
    mine = me.casefold()
    return any(mine == name.casefold() for c in thread.comments for name in c.mentions)


def split_mentions(body: str, names: Sequence[str]) -> list[tuple[str, str | None]]:
    """``body`` cut into (text, mentioned name or None) runs, for formatting @name without markup."""
    if not names:
        return [(body, None)] if body else []
    pattern = re.compile(
        r"(?<![\w@])@(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")"
        r"(?![A-Za-z0-9_\-])"
    )
    runs: list[tuple[str, str | None]] = []
    last = 0
    for match in pattern.finditer(body):
        if match.start() > last:
            runs.append((body[last : match.start()], None))
        runs.append((match.group(0), match.group(1)))
        last = match.end()
    if last < len(body):
        runs.append((body[last:], None))
    return runs


def when(moment: datetime | None, *, short: bool = False, now: datetime | None = None) -> str:
    """Local time of a stored moment (SQLite hands back naive UTC, PostgreSQL aware); ``short``
    gives the list's compact form: the time today, the day this year, else the date."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone()
    if not short:
        return local.strftime("%Y-%m-%d %H:%M")
    today = (now or datetime.now(UTC)).astimezone()
    if local.date() == today.date():
        return local.strftime("%H:%M")
    return local.strftime("%d %b" if local.year == today.year else "%Y-%m-%d")


def first_line(thread: Thread, limit: int = 90) -> str:
    text = thread.comments[0].body if thread.comments else ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


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


# --- the panel -------------------------------------------------------------------------------------
class CommentsPanel(QWidget):
    """Threads of the current asset; owns the canvas pins and the Comment tool's composer."""

    threads_changed = Signal(int)  # asset id whose threads were opened, resolved or reopened
    frame_requested = Signal(int)  # jump-to: the frame the window should show

    def __init__(self, project: Project, canvas: Canvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.canvas = project, canvas
        self.asset: Asset | None = None
        self.frame = 0
        self.threads: list[Thread] = []
        self.numbers: dict[int, int] = {}  # thread id -> its number on pins and in the list
        self._draft: tuple[int, float, float] | None = None  # (frame, x, y) of the pin being written
        self._on_screen = False  # the asset's frame is shown: its pins may be drawn

        self.only_mine = QCheckBox("Only mentioning me", self)
        self.only_mine.toggled.connect(lambda _on: self._rebuild())
        self.summary = QLabel(self)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.tree.currentItemChanged.connect(lambda *_: self._selection_changed())
        self.tree.itemDoubleClicked.connect(lambda *_: self.jump())
        self.view = QTextEdit(self)
        self.view.setReadOnly(True)
        self.view.setAcceptRichText(False)
        self.view.setPlaceholderText("Select a thread to read it; N then a click on the image opens one.")
        self.reply_box = ReplyBox(self)
        self.reply_box.setPlaceholderText("Reply (Ctrl+Return sends; @name mentions)")
        self.reply_box.setFixedHeight(64)
        self.reply_box.send.connect(self.reply)
        self.jump_button = QPushButton("Jump to", self)
        self.jump_button.setToolTip("Show the thread's frame and centre its point (Ctrl+J)")
        self.jump_button.clicked.connect(self.jump)
        self.resolve_button = QPushButton("Resolve", self)
        self.resolve_button.setToolTip("Resolve or reopen: the author or a reviewer (Ctrl+Shift+D)")
        self.resolve_button.clicked.connect(self.toggle_resolved)
        self.send_button = QPushButton("Send", self)
        self.send_button.setToolTip("Send the reply (Ctrl+Return)")
        self.send_button.clicked.connect(self.reply)
        self.message = QLabel(self)
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # error texts carry user names
        self.message.setWordWrap(True)
        self.message.hide()
        self.composer = PinComposer(canvas)
        self.composer.submitted.connect(self.post_draft)
        self.composer.cancelled.connect(self.cancel_draft)
        self._layout()
        canvas.pin_clicked.connect(self.select_thread)
        canvas.pointer_pressed.connect(self._pointer_pressed)
        self._selection_changed()

    def _layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.only_mine)
        top.addStretch(1)
        top.addWidget(self.summary)
        detail = QWidget(self)
        lower = QVBoxLayout(detail)
        lower.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        buttons.addWidget(self.jump_button)
        buttons.addWidget(self.resolve_button)
        buttons.addStretch(1)
        buttons.addWidget(self.send_button)
        lower.addWidget(self.view, 1)
        lower.addWidget(self.reply_box)
        lower.addLayout(buttons)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.tree)
        split.addWidget(detail)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self.message)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(1, header.ResizeMode.Stretch)
        for column in (0, 2, 3, 4):
            header.setSectionResizeMode(column, header.ResizeMode.ResizeToContents)

    def bindings(self) -> list[Binding]:
        """The panel's keyboard actions for the window's table (menus, shortcuts, help overlay)."""
        m = "Co&mments"
        return [
            Binding("sitelabel.comments.jump", m, "Jump to the selected thread", "Ctrl+J", self.jump),
            Binding("sitelabel.comments.next_open", m, "Next open thread", "Ctrl+Shift+J", self.next_open),
            Binding(
                "sitelabel.comments.resolve",
                m,
                "Resolve / reopen the selected thread",
                "Ctrl+Shift+D",
                self.toggle_resolved,
            ),
            Binding(
                "sitelabel.comments.reply",
                m,
                "Write a reply to the selected thread",
                "Ctrl+Shift+C",
                self.focus_reply,
            ),
        ]

    @staticmethod
    def help_entries() -> list[tuple[str, str]]:
        """Keys that work inside the panel's own widgets (not window actions)."""
        return [("Ctrl+Return", "Send the reply (in the reply box)")]

    # --- asset and frame -----------------------------------------------------------------------
    def set_asset(self, asset: Asset | None) -> None:
        self.asset, self.frame, self._on_screen = asset, 0, False
        self.cancel_draft()
        self.canvas.overlays.set_pins([])  # the old frame stays on screen until the new one is decoded
        self.reload()

    def set_frame(self, index: int) -> None:
        if self._draft is not None and self._draft[0] != index:
            self.cancel_draft()
        self.frame, self._on_screen = index, True
        self._update_pins()

    def reload(self, select: int | None = None) -> None:
        """Read the asset's threads again; keeps (or moves to ``select``) the selected thread."""
        keep = select if select is not None else self.selected_id()
        self.threads = []
        if self.asset is not None:
            try:
                self.threads = self.project.threads(self.asset.id)
            except SitelabelError as exc:
                self._say(str(exc), error=True)
        self.numbers = {t.id: i for i, t in enumerate(sorted(self.threads, key=lambda t: t.id), start=1)}
        self._rebuild(keep)

    # --- the list ------------------------------------------------------------------------------
    def visible_threads(self) -> list[Thread]:
        if not self.only_mine.isChecked():
            return list(self.threads)
        return [t for t in self.threads if mentions_me(t, self.project.user_name)]

    def _rebuild(self, keep: int | None = None) -> None:
        keep = keep if keep is not None else self.selected_id()
        self.tree.blockSignals(True)
        self.tree.clear()
        shown = self.visible_threads()
        open_ = [t for t in shown if t.status is ThreadStatus.OPEN]
        resolved = [t for t in shown if t.status is ThreadStatus.RESOLVED]
        for title, members, expanded in (("Open", open_, True), ("Resolved", resolved, False)):
            group = QTreeWidgetItem([f"{title} ({len(members)})"])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            self.tree.addTopLevelItem(group)
            group.setFirstColumnSpanned(True)
            for thread in members:
                group.addChild(self._item(thread))
            group.setExpanded(expanded)
        self.tree.blockSignals(False)
        total_open = sum(t.status is ThreadStatus.OPEN for t in self.threads)
        self.summary.setText(f"{total_open} open / {len(self.threads)}" if self.threads else "")
        if keep is not None and self._find(keep) is not None:
            self.select_thread(keep)
        else:
            self._selection_changed()

    def _item(self, thread: Thread) -> QTreeWidgetItem:
        me = mentions_me(thread, self.project.user_name)
        number = f"@{self.numbers.get(thread.id, 0)}" if me else str(self.numbers.get(thread.id, 0))
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

    def _find(self, thread_id: int) -> QTreeWidgetItem | None:
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            for c in range(group.childCount() if group is not None else 0):
                item = group.child(c) if group is not None else None
                if item is not None and item.data(0, THREAD_ID) == thread_id:
                    return item
        return None

    def selected_id(self) -> int | None:
        item = self.tree.currentItem()
        value = None if item is None else item.data(0, THREAD_ID)
        return int(value) if value is not None else None

    def selected_thread(self) -> Thread | None:
        wanted = self.selected_id()
        return next((t for t in self.threads if t.id == wanted), None)

    def select_thread(self, thread_id: int) -> None:
        """Select a thread (a pin click, a new post); a filter hiding it is switched off."""
        item = self._find(thread_id)
        if item is None and self.only_mine.isChecked() and any(t.id == thread_id for t in self.threads):
            self.only_mine.setChecked(False)  # rebuilds the list
            item = self._find(thread_id)
        if item is None:
            return
        parent = item.parent()
        if parent is not None:
            parent.setExpanded(True)
        self.tree.setCurrentItem(item)
        self.tree.scrollToItem(item)
        self._selection_changed()

    def _selection_changed(self) -> None:
        thread = self.selected_thread()
        for widget in (self.jump_button, self.resolve_button, self.reply_box, self.send_button):
            widget.setEnabled(thread is not None)
        if thread is None:
            self.view.clear()
            self.resolve_button.setText("Resolve")
        else:
            write_thread(self.view.document(), thread, self.numbers.get(thread.id, 0), self.project.user_name)
            self.resolve_button.setText("Reopen" if thread.status is ThreadStatus.RESOLVED else "Resolve")
        self._update_pins()

    def next_open(self) -> None:
        """Select and show the next open thread after the selected one (wrapping)."""
        ordered = [t for t in self.visible_threads() if t.status is ThreadStatus.OPEN]
        if not ordered:
            self._say("No open threads on this asset.")
            return
        current = self.selected_id()
        ids = [t.id for t in ordered]
        after = ids.index(current) + 1 if current in ids else 0
        self.select_thread(ids[after % len(ids)])
        self.jump()

    # --- actions ----------------------------------------------------------------------------------
    def jump(self) -> None:
        thread = self.selected_thread()
        if thread is None:
            return
        if thread.frame != self.frame:
            self.frame_requested.emit(thread.frame)
        if thread.x is not None and thread.y is not None:
            self.canvas.view.centre_on(thread.x, thread.y)

    def focus_reply(self) -> None:
        if self.selected_thread() is not None:
            self.reply_box.setFocus()

    def reply(self) -> None:
        thread = self.selected_thread()
        if thread is None:
            return
        try:
            self.project.reply(thread.id, self.reply_box.toPlainText())
        except SitelabelError as exc:
            self._say(f"Reply not sent: {exc}", error=True)
            return
        self.reply_box.clear()
        self._say("")
        self.reload(thread.id)

    def toggle_resolved(self) -> None:
        thread = self.selected_thread()
        if thread is None or self.asset is None:
            return
        reopen = thread.status is ThreadStatus.RESOLVED
        try:
            self.project.resolve(thread.id, reopen=reopen)
        except SitelabelError as exc:  # PermissionDenied: neither the author nor a reviewer
            verb = "reopened" if reopen else "resolved"
            self._say(f"Not {verb}: {exc}", error=True)
            return
        self._say("")
        self.reload(thread.id)
        self.threads_changed.emit(self.asset.id)

    # --- new pins (the Comment tool) --------------------------------------------------------------
    def _pointer_pressed(self, _x: float, _y: float) -> None:
        tool = self.canvas.tool_slot.active
        if not isinstance(tool, CommentTool) or self.asset is None:
            return
        point = tool.take()
        if point is None:
            return
        self._draft = (self.frame, point[0], point[1])
        self._update_pins()
        self.composer.open_at(self.canvas.view.to_widget(*point))

    def post_draft(self, text: str) -> None:
        draft, asset = self._draft, self.asset
        if draft is None or asset is None:
            return
        frame, x, y = draft
        try:
            thread = self.project.comment(asset.id, text, frame=frame, x=x, y=y)
        except SitelabelError as exc:
            self._say(f"Not posted: {exc}", error=True)
            return  # the composer stays open with the text
        self._draft = None
        self.composer.close_composer()
        self._say("")
        self.reload(thread.id)
        self.threads_changed.emit(asset.id)
        self.canvas.setFocus()

    def cancel_draft(self) -> None:
        had = self._draft is not None or self.composer.isVisible()
        self._draft = None
        self.composer.close_composer()
        if had:
            self._update_pins()
            self.canvas.setFocus()

    # --- pins -------------------------------------------------------------------------------------
    def pins(self) -> list[Pin]:
        """The pins of the frame on screen: the listed threads with a point, and the draft."""
        selected = self.selected_id()
        pins = [
            Pin(t.id, self.numbers.get(t.id, 0), t.x, t.y, t.status is ThreadStatus.OPEN, t.id == selected)
            for t in sorted(self.visible_threads(), key=lambda t: (t.id == selected, t.id))
            if t.frame == self.frame and t.x is not None and t.y is not None
        ]
        if self._draft is not None and self._draft[0] == self.frame:
            pins.append(Pin(-1, DRAFT, self._draft[1], self._draft[2]))
        return pins

    def _update_pins(self) -> None:
        if self.asset is not None and self._on_screen:
            self.canvas.overlays.set_pins(self.pins())

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setStyleSheet(f"color: {ERROR};" if error else "color: #b8b8b8;")
        self.message.setText(text)
        self.message.setVisible(bool(text))
