"""The "Comments" dock: the current asset's issue threads, their comments, replies, resolve/reopen,
jump-to, and new pins placed on the canvas with the Comment tool.

Everything a person typed is shown as plain text (see :mod:`app.editor.comments_widgets`); labels
carrying user text are forced to Qt.PlainText. Permissions are the API's: a refused resolve shows
the API's PermissionDenied message in the panel.

The threads, their numbers, the filter, the pins and the API calls are
:class:`app.editor.comments_logic.CommentsLogic`, with no Qt; this widget lays out the list, the
thread and the reply box, and wires them, the canvas pins and the window's actions.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.records import Asset, ThreadStatus
from app.editor.actions import Binding
from app.editor.canvas.pins import DRAFT, Pin
from app.editor.comments_logic import CommentsLogic
from app.editor.comments_widgets import PinDrafts, ReplyBox, ThreadTree, write_thread

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.canvas import Canvas

ERROR = "#ff8a80"


class CommentsPanel(QWidget):
    """Threads of the current asset; owns the canvas pins and the Comment tool's composer."""

    threads_changed = Signal(int)  # asset id whose threads were opened, resolved or reopened
    frame_requested = Signal(int)  # jump-to: the frame the window should show

    def __init__(self, project: Project, canvas: Canvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.canvas = project, canvas
        self.logic = CommentsLogic(project)

        self.only_mine = QCheckBox("Only mentioning me", self)
        self.only_mine.toggled.connect(lambda _on: self._rebuild())
        self.summary = QLabel(self)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.tree = ThreadTree(self)
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
        self.drafts = PinDrafts(self.logic, canvas, partial(self._say, error=True), self)
        self.drafts.posted.connect(self._posted)
        self.drafts.changed.connect(self._update_pins)
        self.composer = self.drafts.composer
        self._layout()
        canvas.pin_clicked.connect(self.select_thread)
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
        self.logic.set_asset(asset)
        self.drafts.cancel()
        self.canvas.overlays.set_pins([])  # the old frame stays on screen until the new one is decoded
        self.reload()

    def set_frame(self, index: int) -> None:
        draft = self.logic.draft
        if draft is not None and draft[0] != index:
            self.drafts.cancel()
        self.logic.show_frame(index)
        self._update_pins()

    def reload(self, select: int | None = None) -> None:
        """Read the asset's threads again; keeps (or moves to ``select``) the selected thread."""
        keep = select if select is not None else self.selected_id()
        refused = self.logic.reload()
        if refused is not None:
            self._say(refused, error=True)
        self._rebuild(keep)

    # --- the list ------------------------------------------------------------------------------
    def _rebuild(self, keep: int | None = None) -> None:
        keep = keep if keep is not None else self.selected_id()
        self.logic.only_mine = self.only_mine.isChecked()  # the box is the filter's only switch
        self.tree.fill(self.logic.visible(), self.logic.label)
        self.summary.setText(self.logic.summary())
        if keep is not None and self.tree.item_for(keep) is not None:
            self.select_thread(keep)
        else:
            self._selection_changed()

    def selected_id(self) -> int | None:
        return self.tree.selected_id()

    def select_thread(self, thread_id: int) -> None:
        """Select a thread (a pin click, a new post); a filter hiding it is switched off."""
        item = self.tree.item_for(thread_id)
        if item is None and self.only_mine.isChecked() and self.logic.thread(thread_id) is not None:
            self.only_mine.setChecked(False)  # rebuilds the list
            item = self.tree.item_for(thread_id)
        if item is None:
            return
        parent = item.parent()
        if parent is not None:
            parent.setExpanded(True)
        self.tree.setCurrentItem(item)
        self.tree.scrollToItem(item)
        self._selection_changed()

    def _selection_changed(self) -> None:
        thread = self.logic.thread(self.selected_id())
        for widget in (self.jump_button, self.resolve_button, self.reply_box, self.send_button):
            widget.setEnabled(thread is not None)
        if thread is None:
            self.view.clear()
            self.resolve_button.setText("Resolve")
        else:
            number = self.logic.numbers.get(thread.id, 0)
            write_thread(self.view.document(), thread, number, self.project.user_name)
            self.resolve_button.setText("Reopen" if thread.status is ThreadStatus.RESOLVED else "Resolve")
        self._update_pins()

    def next_open(self) -> None:
        """Select and show the next open thread after the selected one (wrapping)."""
        target = self.logic.next_open(self.selected_id())
        if target is None:
            self._say("No open threads on this asset.")
            return
        self.select_thread(target)
        self.jump()

    # --- actions ----------------------------------------------------------------------------------
    def jump(self) -> None:
        thread = self.logic.thread(self.selected_id())
        if thread is None:
            return
        if thread.frame != self.logic.frame:
            self.frame_requested.emit(thread.frame)
        if thread.x is not None and thread.y is not None:
            self.canvas.view.centre_on(thread.x, thread.y)

    def focus_reply(self) -> None:
        if self.logic.thread(self.selected_id()) is not None:
            self.reply_box.setFocus()

    def reply(self) -> None:
        thread = self.logic.thread(self.selected_id())
        if thread is None:
            return
        refused = self.logic.reply(thread.id, self.reply_box.toPlainText())
        if refused is not None:
            self._say(refused, error=True)
            return
        self.reply_box.clear()
        self._say("")
        self.reload(thread.id)

    def toggle_resolved(self) -> None:
        thread = self.logic.thread(self.selected_id())
        asset = self.logic.asset
        if thread is None or asset is None:
            return
        refused = self.logic.toggle_resolved(thread)  # only the author or a reviewer may
        if refused is not None:
            self._say(refused, error=True)
            return
        self._say("")
        self.reload(thread.id)
        self.threads_changed.emit(asset.id)

    def _posted(self, thread_id: int) -> None:
        """A new pin's thread was stored: list and select it."""
        self._say("")
        self.reload(thread_id)
        if self.logic.asset is not None:
            self.threads_changed.emit(self.logic.asset.id)
        self.canvas.setFocus()

    # --- pins -------------------------------------------------------------------------------------
    def _update_pins(self) -> None:
        """Draw the frame's pins (the listed threads with a point, and the draft) when it is shown."""
        logic = self.logic
        if logic.asset is None or not logic.on_screen:
            return
        pins = [Pin(*fields) for fields in logic.pins(self.selected_id())]
        draft = logic.draft_here()
        if draft is not None:
            pins.append(Pin(-1, DRAFT, *draft))
        self.canvas.overlays.set_pins(pins)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setStyleSheet(f"color: {ERROR};" if error else "color: #b8b8b8;")
        self.message.setText(text)
        self.message.setVisible(bool(text))
