"""The Review dock for reviewers and above: the queue, per-labeler overlays, agreement, decisions.

The main window builds it only when the acting user may review (the API enforces it anyway). The
pane draws on the main window's canvas: selecting a queue item asks the window to show the asset
(``asset_requested``); the window reports each frame it shows (``frame_shown``) and the pane
rasterises every labeler's annotations of that frame and the disagreement map on the thread pool,
then composes the overlay (:mod:`app.editor.review_overlay`) and hands it to the canvas.

Cut as 3D Slicer cuts a module: the state and the rules (open item, mode, which decision is sent)
are :class:`app.editor.review_logic.ReviewLogic`, with no Qt; the decision buttons, dialogs and
confirm bar are :class:`app.editor.review_decisions.DecisionFlow`; this widget lays them out, reads
the queue and the item, and wires the window's actions.

Decisions go through the review API (``project.accept`` etc.) on the thread pool. When another
reviewer decided the item first, the API's ConflictError text is shown and the refreshed queue
moves on; no exception leaves the pane.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.editor.actions import Binding
from app.editor.review_decisions import DecisionFlow
from app.editor.review_logic import (
    QUEUE_LIMIT,
    QueueEntry,
    ReviewLogic,
    ReviewSource,
    item_title,
)
from app.editor.review_overlay import MAX_TOGGLE_KEYS, Jobs, OverlayControls
from app.editor.review_widgets import INFO_STYLE, AgreementBox, DecisionBox, QueueBox
from app.workflow.agreement import MASK_KINDS
from app.workflow.review import ReviewItem

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.canvas import Canvas
    from app.editor.editing_controller import EditingController

ERROR_STYLE = "background: #5a1f1f; color: #ffdede; padding: 4px; border-radius: 3px;"


# --- the pane ------------------------------------------------------------------------------------------
class ReviewPane(QWidget):
    asset_requested = Signal(object)  # the Asset of the item opened: show it on the canvas
    decided = Signal(int, str)  # (asset id, API method) after a decision was stored

    def __init__(
        self,
        project: Project,
        canvas: Canvas,
        editing: EditingController | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.project, self.canvas, self.editing = project, canvas, editing
        self.source = ReviewSource(project)
        self.ontology = project.ontology
        self.logic = ReviewLogic(self.ontology)
        self.jobs = Jobs(self)
        self._loaded_once = False
        self._build()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._loaded_once:  # lazily: a hidden pane costs no queries
            self._loaded_once = True
            self.refresh_queue()

    @property
    def idle(self) -> bool:
        """No background job of the pane is running (tests wait for this)."""
        return self.jobs.idle

    @property
    def item(self) -> ReviewItem | None:
        """The item open in the pane (the logic's)."""
        return self.logic.item

    # --- layout ------------------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget(self)
        column = QVBoxLayout(body)
        column.setContentsMargins(6, 6, 6, 6)
        self.queue_box = QueueBox(body)
        self.queue_box.chosen.connect(self._row_changed)
        self.queue_box.refresh_requested.connect(self.refresh_queue)
        column.addWidget(self.queue_box)
        self.title = QLabel("No item open", body)
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.title.setWordWrap(True)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        column.addWidget(self.title)
        self.message = QLabel(body)
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # API messages carry user-typed names
        self.message.setWordWrap(True)
        self.message.hide()
        column.addWidget(self.message)
        regions = [c.name for c in self.ontology.classes if set(c.kinds) & MASK_KINDS]
        self.overlays = OverlayControls(self.canvas, self.jobs, regions, self.show_error, body)
        column.addWidget(self.overlays)
        self.agreement_box = AgreementBox(body)
        column.addWidget(self.agreement_box)
        self.decision = DecisionBox(self)  # the pane's body re-parents it
        column.addWidget(self.decision)
        column.addStretch(1)
        scroll = self.scroller = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the pane fits its width
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.setMinimumWidth(370)
        self.flow = DecisionFlow(
            self.logic,
            self.source,
            self.decision,
            jobs=self.jobs,
            overlays=self.overlays,
            canvas=self.canvas,
            editing=self.editing,
            say=self.show_message,
            scroller=scroll,
            parent=self,
        )
        self.flow.decided.connect(self.decided)
        self.flow.stale.connect(self.refresh_queue)
        self.flow.enable()

    def bindings(self) -> list[Binding]:
        """The pane's actions for the window's menus, shortcuts and help overlay."""
        m, o, f, r = "&Review", self.overlays, self.flow, "sitelabel.review."
        rows = [
            Binding(r + "toggle_pane", m, "Review pane (show / hide)", "F6", self.toggle_visible),
            Binding(r + "next", m, "Next review item", "Alt+Down", lambda: self.step(1)),
            Binding(r + "previous", m, "Previous review item", "Alt+Up", lambda: self.step(-1)),
            Binding(r + "refresh", m, "Refresh review queue", "F5", self.refresh_queue),
            Binding(r + "disagreement", m, "Disagreement map", "Alt+D", lambda: o.set_heat(not o.heat)),
            Binding(
                r + "outline_only",
                m,
                "Review overlays: outline only",
                "Alt+O",
                lambda: o.set_outline(not o.outline),
            ),
            Binding(r + "all_labelers", m, "Show / hide all labelers", "Shift+0", o.toggle_all),
            Binding(r + "accept", m, "Accept the item", "Ctrl+Alt+A", f.accept),
            Binding(r + "reject", m, "Reject to a labeler...", "Ctrl+Alt+J", f.open_reject),
            Binding(r + "fix", m, "Fix and accept...", "Ctrl+Alt+X", f.start_fix),
            Binding(r + "choose", m, "Consensus from a labeler...", "Ctrl+Alt+U", f.open_choose),
            Binding(r + "preview_merge", m, "Preview merged consensus", "Ctrl+Alt+M", f.preview_merge),
            Binding(r + "confirm", m, "Confirm fix / merge", "Ctrl+Alt+Return", f.confirm),
            Binding(r + "cancel", m, "Cancel fix / merge", "Ctrl+Alt+N", f.cancel),
        ]
        rows += [
            Binding(
                f"{r}labeler_{k}",
                m,
                f"Show / hide labeler {k}",
                f"Shift+{k}",
                partial(o.toggle_labeler, k - 1),
            )
            for k in range(1, MAX_TOGGLE_KEYS + 1)
        ]
        return rows

    # --- messages ----------------------------------------------------------------------------------
    def show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(ERROR_STYLE if error else INFO_STYLE)
        self.message.setVisible(bool(text))

    def show_error(self, text: str) -> None:
        self.show_message(text, error=True)

    # --- the queue ---------------------------------------------------------------------------------
    def refresh_queue(self) -> None:
        self.jobs.run("queue", lambda: self.source.queue(QUEUE_LIMIT), self._queue_loaded, self.show_error)

    @property
    def entries(self) -> list[QueueEntry]:
        return self.queue_box.entries

    def _queue_loaded(self, entries: list[QueueEntry]) -> None:
        keep = self.item.asset.id if self.item is not None else None
        opened = self.queue_box.set_entries(entries, keep)
        if opened is not None:
            self._row_changed(opened)
        elif not entries:
            self._close_item()
            self.title.setText("Nothing waits for review")
        self.flow.enable()

    def step(self, delta: int) -> None:
        self.queue_box.step(delta)

    def _row_changed(self, asset_id: int) -> None:
        if not self.logic.is_open(asset_id):
            self.open_item(asset_id)

    # --- the item ----------------------------------------------------------------------------------
    def open_item(self, asset_id: int) -> None:
        self.flow.leave_mode()
        self._close_item()
        self.title.setText(f"Opening asset {asset_id}...")
        self.jobs.run("item", lambda: self.source.item(asset_id), self._item_loaded, self.show_error)

    def _close_item(self) -> None:
        self.logic.close()
        self.jobs.cancel("item", "merge")
        self.overlays.set_item(None, {}, (1, 1))
        self.agreement_box.show_agreement(None, item_open=False)
        self.flow.enable()

    def _item_loaded(self, item: ReviewItem) -> None:
        self.logic.open(item)
        self.title.setText(item_title(item))
        self.overlays.set_item(item.asset.id, item.annotations, item.shape)
        self.flow.view_only()
        self.agreement_box.show_agreement(item.agreement, item_open=True)
        self.decision.copy_combo.clear()
        self.decision.copy_combo.addItems(list(item.labelers))
        self.flow.enable()
        self.asset_requested.emit(item.asset)

    def frame_shown(self, asset_id: int, frame: int) -> None:
        """The window shows ``frame`` of ``asset_id`` now (it calls this after each load)."""
        self.overlays.frame_shown(asset_id, frame)
        self.flow.view_only()

    def toggle_visible(self) -> None:
        dock = self.parentWidget()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        if dock is not None:
            dock.setVisible(not dock.isVisible())
            if dock.isVisible():
                dock.raise_()
