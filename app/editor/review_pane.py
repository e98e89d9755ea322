"""The Review dock for reviewers and above: the queue, per-labeler overlays, agreement, decisions.

The main window builds it only when the acting user may review (the API enforces it anyway). The
pane draws on the main window's canvas: selecting a queue item asks the window to show the asset
(``asset_requested``); the window reports each frame it shows (``frame_shown``) and the pane
rasterises every labeler's annotations of that frame and the disagreement map on the thread pool,
then composes the overlay (:mod:`app.editor.review_overlay`) and hands it to the canvas.

Decisions go through the review API (``project.accept`` etc.) on the thread pool. When another
reviewer decided the item first, the API's ConflictError text is shown and the refreshed queue
moves on; no exception leaves the pane.

Fix and accept edits through the reviewer's own EditSession (the one the editing controller opened
for the asset): the reviewer corrects with the usual tools, optionally starting from a copy of one
labeler's labels (one undo step), then confirms; the session is saved before the verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core.annotations import HUMAN, Annotation, Kind
from app.core.commands import AddAnnotation, Command, PaintCommand
from app.core.conversions import MacroCommand
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.core.records import Asset, Review
from app.editor.actions import Binding
from app.editor.review_overlay import MAX_TOGGLE_KEYS, Jobs, OverlayControls
from app.editor.review_widgets import (
    INFO_STYLE,
    AgreementBox,
    DecisionBox,
    LabelerDialog,
    QueueBox,
    QueueEntry,
    asset_name,
)
from app.workflow.agreement import MASK_KINDS
from app.workflow.consensus import Consensus, Method, build_consensus
from app.workflow.review import ReviewItem

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.canvas import Canvas
    from app.editor.editing_controller import EditingController

QUEUE_LIMIT = 200
ERROR_STYLE = "background: #5a1f1f; color: #ffdede; padding: 4px; border-radius: 3px;"


# --- the data the pane shows ---------------------------------------------------------------------------
def status_text(item: ReviewItem) -> str:
    """One line about where the item stands: its status and the latest decision, if any."""
    text = item.task.status.value
    review = item.latest_review
    if review is not None:
        who = review.reviewer or "a removed user"
        text += f"; last review: {review.verdict.value} by {who}"
        if review.note:
            text += f" ({review.note})"
    return text


class ReviewSource:
    """The pane's door to the review API; called on worker threads, touches no widget."""

    DECISIONS = frozenset({"accept", "reject", "fix_and_accept", "choose_consensus", "merge_consensus"})

    def __init__(self, project: Project) -> None:
        self.project = project

    def queue(self, limit: int = QUEUE_LIMIT) -> list[QueueEntry]:
        """Items waiting for review, lowest agreement first (the API's order)."""
        p = self.project
        return [
            QueueEntry(e.asset_id, asset_name(p.asset(e.asset_id)), e.labelers, e.agreement, e.open_threads)
            for e in p.review_queue(limit=limit)
        ]

    def item(self, asset_id: int) -> ReviewItem:
        return self.project.review_item(asset_id)

    def decide(self, verb: str, asset_id: int, **kwargs: Any) -> Review:
        if verb not in self.DECISIONS:
            raise ValidationError(f"{verb!r} is not a review decision")
        decision: Callable[..., Review] = getattr(self.project, verb)
        return decision(asset_id, **kwargs)


def fix_commands(annotations: Sequence[Annotation], ontology: Ontology, asset: Asset) -> list[Command]:
    """Commands copying a labeler's annotations into the reviewer's document (Fix from labeler).

    Plain human masks go into the label layer (so brush and eraser can correct them); everything
    else becomes a new vector annotation of the reviewer's.
    """
    shape = (asset.height, asset.width)
    names = {c.name for c in ontology.classes}
    commands: list[Command] = []
    for ann in annotations:
        if not 0 <= ann.frame < max(asset.frame_count, 1):
            continue
        m = ann.mask
        if (
            ann.kind is Kind.MASK
            and m is not None
            and not ann.attributes
            and ann.label in names
            and m.frame_shape == shape
        ):
            patch = (m.y0, m.x0, m.bits)
            commands.append(PaintCommand(ann.frame, [patch], ontology.index_of(ann.label), "Copy mask"))
        else:
            copy = ann.evolve(id=None, version=0, author=None, source=HUMAN, asset_id=asset.id)
            commands.append(AddAnnotation(copy))
    return commands


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
        self.jobs = Jobs(self)
        self.item: ReviewItem | None = None
        self.mode = "review"  # "fix": the reviewer edits; "merge": a consensus preview is shown
        self.preview: Consensus | None = None
        self.dialog: LabelerDialog | None = None
        self.deciding = False  # a decision is being stored: further ones wait for it
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
        self.decision = self._wire_decisions()
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
        self._enable_actions()

    def _wire_decisions(self) -> DecisionBox:
        box = DecisionBox(self)  # the pane's body re-parents it
        box.accept_button.clicked.connect(self.accept)
        box.reject_button.clicked.connect(self.open_reject)
        box.fix_button.clicked.connect(self.start_fix)
        box.choose_button.clicked.connect(self.open_choose)
        box.merge_button.clicked.connect(partial(self.preview_merge, None))  # not clicked's bool
        box.copy_button.clicked.connect(lambda: self.copy_labels(box.copy_combo.currentText()))
        box.confirm_button.clicked.connect(self.confirm)
        box.cancel_button.clicked.connect(self.cancel)
        return box

    def bindings(self) -> list[Binding]:
        """The pane's actions for the window's menus, shortcuts and help overlay."""
        m, o, r = "&Review", self.overlays, "sitelabel.review."
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
            Binding(r + "accept", m, "Accept the item", "Ctrl+Alt+A", self.accept),
            Binding(r + "reject", m, "Reject to a labeler...", "Ctrl+Alt+J", self.open_reject),
            Binding(r + "fix", m, "Fix and accept...", "Ctrl+Alt+X", self.start_fix),
            Binding(r + "choose", m, "Consensus from a labeler...", "Ctrl+Alt+U", self.open_choose),
            Binding(r + "preview_merge", m, "Preview merged consensus", "Ctrl+Alt+M", self.preview_merge),
            Binding(r + "confirm", m, "Confirm fix / merge", "Ctrl+Alt+Return", self.confirm),
            Binding(r + "cancel", m, "Cancel fix / merge", "Ctrl+Alt+N", self.cancel),
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
        self._enable_actions()

    def step(self, delta: int) -> None:
        self.queue_box.step(delta)

    def _row_changed(self, asset_id: int) -> None:
        if self.item is None or self.item.asset.id != asset_id:
            self.open_item(asset_id)

    # --- the item ----------------------------------------------------------------------------------
    def open_item(self, asset_id: int) -> None:
        self._leave_mode()
        self._close_item()
        self.title.setText(f"Opening asset {asset_id}...")
        self.jobs.run("item", lambda: self.source.item(asset_id), self._item_loaded, self.show_error)

    def _close_item(self) -> None:
        self.item = None
        self.jobs.cancel("item", "merge")
        self.overlays.set_item(None, {}, (1, 1))
        self.agreement_box.show_agreement(None, item_open=False)
        self._enable_actions()

    def _item_loaded(self, item: ReviewItem) -> None:
        self.item = item
        n = len(item.labelers)
        name = asset_name(item.asset)
        self.title.setText(f"{name}  -  {n} labeler{'s' if n != 1 else ''}  -  {status_text(item)}")
        self.overlays.set_item(item.asset.id, item.annotations, item.shape)
        self._view_only()
        self.agreement_box.show_agreement(item.agreement, item_open=True)
        self.decision.copy_combo.clear()
        self.decision.copy_combo.addItems(list(item.labelers))
        self._enable_actions()
        self.asset_requested.emit(item.asset)

    def frame_shown(self, asset_id: int, frame: int) -> None:
        """The window shows ``frame`` of ``asset_id`` now (it calls this after each load)."""
        self.overlays.frame_shown(asset_id, frame)
        self._view_only()

    def _view_only(self) -> None:
        """Reviewing is looking: no tool on the item (a stray click must not draw) until Fix, or
        until the reviewer picks a tool themselves."""
        shown = self.overlays.shown
        if (
            self.mode != "fix"
            and self.item is not None
            and shown is not None
            and shown[0] == self.item.asset.id
        ):
            self.canvas.tool_slot.set_active(None)

    def _enable_actions(self) -> None:
        deciding = self.deciding
        ready = self.item is not None and self.mode == "review" and not deciding
        several = ready and self.item is not None and len(self.item.labelers) >= 2
        for button in (self.decision.accept_button, self.decision.reject_button, self.decision.fix_button):
            button.setEnabled(ready)
        for widget in (self.decision.choose_button, self.decision.merge_button, self.decision.method):
            widget.setEnabled(several)
        self.decision.confirm_button.setEnabled(not deciding)

    # --- decisions ---------------------------------------------------------------------------------
    def _decide(self, verb: str, done_text: str, **kwargs: Any) -> None:
        item = self.item
        if self.deciding:
            return
        if item is None:
            self.show_error("Open an item of the review queue first.")
            return
        asset_id, name = item.asset.id, asset_name(item.asset)
        self.show_message(f"{name}: saving the decision...")
        self.deciding = True
        self._enable_actions()
        self.jobs.run(
            "decide",
            lambda: self.source.decide(verb, asset_id, **kwargs),
            lambda _review: self._decided(asset_id, verb, f"{name}: {done_text}."),
            self._decision_failed,
        )

    def _decided(self, asset_id: int, verb: str, text: str) -> None:
        self.deciding = False
        self._leave_mode()
        self.decision.note.clear()
        self.show_message(text)
        self.decided.emit(asset_id, verb)
        self.refresh_queue()  # the item leaves the queue; the next one opens

    def _decision_failed(self, message: str) -> None:
        self.deciding = False
        self._enable_actions()
        self.show_error(message)
        self.refresh_queue()  # someone else may have decided it meanwhile: move on

    def accept(self) -> None:
        if self.mode == "review":
            self._decide("accept", "accepted", note=self.decision.note.text().strip())

    def open_reject(self) -> None:
        if self.item is None or self.mode != "review":
            return
        dialog = self.dialog = LabelerDialog(
            "Reject to a labeler",
            f"Send {asset_name(self.item.asset)} back to one labeler with the reason they will see.",
            self.item.labelers,
            ask_reason=True,
            parent=self,
        )
        dialog.accepted.connect(lambda: self.reject(dialog.labeler.currentText(), dialog.reason_text()))
        self._open_dialog(dialog)

    def reject(self, labeler: str, reason: str) -> None:
        if not reason.strip():
            self.show_error("A rejection needs a reason for the labeler.")
            return
        self._decide("reject", f"sent back to {labeler}", labeler=labeler, reason=reason.strip())

    def open_choose(self) -> None:
        if self.item is None or self.mode != "review" or len(self.item.labelers) < 2:
            return
        dialog = self.dialog = LabelerDialog(
            "Consensus from one labeler",
            "Use one labeler's annotations as the item's consensus labels and accept it.",
            self.item.labelers,
            ask_reason=False,
            parent=self,
        )
        dialog.accepted.connect(lambda: self.choose(dialog.labeler.currentText()))
        self._open_dialog(dialog)

    def _open_dialog(self, dialog: LabelerDialog) -> None:
        """Window-modal, not blocking: the pane keeps drawing while the reviewer types."""
        dialog.finished.connect(lambda _result: self._dialog_closed(dialog))
        dialog.open()

    def _dialog_closed(self, dialog: LabelerDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()

    def choose(self, labeler: str) -> None:
        self._decide("choose_consensus", f"consensus taken from {labeler}", labeler=labeler)

    # --- merge preview -----------------------------------------------------------------------------
    def preview_merge(self, method: Method | None = None) -> None:
        item = self.item
        if item is None or self.mode == "fix" or len(item.labelers) < 2:
            return
        chosen: Method = method or self.decision.method.currentData()
        self.decision.method.setCurrentIndex(max(0, self.decision.method.findData(chosen)))
        ontology = item.ontology
        self.show_message(f"Computing the {chosen} consensus...")
        self.jobs.run(
            "merge",
            lambda: build_consensus(item.annotations, ontology, item.shape, method=chosen),
            partial(self._merge_ready, chosen),
            self.show_error,
        )

    def _merge_ready(self, method: Method, consensus: Consensus) -> None:
        self.mode, self.preview = "merge", consensus
        ties = ", ".join(f"{label} (frame {frame + 1})" for label, frame in consensus.ties)
        text = f"Merge preview ({method}): white is the consensus. Confirm stores it and accepts."
        if ties:
            text += f" Tied classifications left out: {ties}."
        self._show_bar(text, copy=False)
        self.show_message("")
        self.overlays.set_outline(True)  # the labelers as borders around the consensus area
        self.overlays.set_preview(consensus.annotations)

    # --- fix and accept ----------------------------------------------------------------------------
    def start_fix(self) -> None:
        item = self.item
        if item is None or self.mode != "review":
            return
        session = self.editing.session if self.editing is not None else None
        if session is None or session.asset.id != item.asset.id:
            self.show_error("The item is still opening on the canvas; try again in a moment.")
            return
        self.mode = "fix"
        self._show_bar(
            "Fixing: correct the labels with the tools (they are saved as your labels; a labeler's "
            "can be copied as a start), then confirm to save and accept.",
            copy=True,
        )
        self.overlays.set_outline(True)  # the labelers' borders stay visible around the edits
        if self.editing is not None:
            self.editing.tools.set_tool(self.editing.tools.tool_name)  # the tool picked last, back on
        self.canvas.setFocus()

    def copy_labels(self, labeler: str) -> None:
        """Copy ``labeler``'s annotations into the reviewer's document as one undo step."""
        item = self.item
        session = self.editing.session if self.editing is not None else None
        if item is None or session is None or session.asset.id != item.asset.id:
            return
        if labeler not in item.annotations:
            return
        commands = fix_commands(item.annotations[labeler], self.ontology, item.asset)
        if commands:
            session.stack.push(MacroCommand(commands, f"Copy {labeler}'s labels"))
        self.show_message(f"Copied {len(commands)} label(s) of {labeler}; Ctrl+Z takes them back.")

    def _confirm_fix(self) -> None:
        editing = self.editing
        if editing is None or editing.session is None:
            return
        editing.saves.save_now()  # what the reviewer fixed must be stored before the verdict
        session = editing.session
        if session is not None and (session.conflicts or session.pending_count):
            self.show_error(
                "Your fix is not saved yet (see the save status); resolve that, then confirm again."
            )
            return
        self._decide("fix_and_accept", "fixed and accepted", note=self.decision.note.text().strip())

    # --- confirm bar -------------------------------------------------------------------------------
    def _show_bar(self, text: str, *, copy: bool) -> None:
        self.decision.confirm_text.setText(text)
        self.decision.copy_row.setVisible(copy)
        self.decision.confirm_bar.show()
        self._enable_actions()
        # Confirm / Cancel must be in sight; after the layout placed the bar just shown
        QTimer.singleShot(0, lambda: self.scroller.ensureWidgetVisible(self.decision.confirm_bar))

    def confirm(self) -> None:
        if self.mode == "fix":
            self._confirm_fix()
        elif self.mode == "merge" and self.preview is not None:
            method = self.preview.method
            self._decide("merge_consensus", f"merged by {method} and accepted", method=method)

    def cancel(self) -> None:
        if self.mode == "fix":
            self.show_message("Fix cancelled; your edits stay as your own labels (Ctrl+Z undoes them).")
        self._leave_mode()

    def _leave_mode(self) -> None:
        was_merge = self.mode == "merge"
        self.jobs.cancel("merge")
        self.mode, self.preview = "review", None
        self.decision.confirm_bar.hide()
        self._enable_actions()
        self._view_only()
        if was_merge:
            self.overlays.set_preview(None)

    def toggle_visible(self) -> None:
        dock = self.parentWidget()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        if dock is not None:
            dock.setVisible(not dock.isVisible())
            if dock.isVisible():
                dock.raise_()
