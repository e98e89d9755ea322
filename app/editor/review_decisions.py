"""The review pane's decisions on screen: the decision buttons, the labeler dialogs, and the confirm
bar of a fix or a merge preview. What may happen and what is sent is :class:`ReviewLogic`'s; this
part shows it, runs the API calls on the thread pool and keeps the canvas in step.

Fix and accept edits through the reviewer's own EditSession (the one the editing controller opened
for the asset): the reviewer corrects with the usual tools, optionally starting from a copy of one
labeler's labels (one undo step), then confirms; the session is saved before the verdict.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QScrollArea, QWidget

from app.core.conversions import MacroCommand
from app.editor.review_logic import (
    Decision,
    Mode,
    Refusal,
    ReviewLogic,
    ReviewSource,
    Step,
    asset_name,
)
from app.editor.review_widgets import DecisionBox, LabelerDialog
from app.workflow.consensus import Consensus, Method, build_consensus

if TYPE_CHECKING:
    from app.editor.canvas import Canvas
    from app.editor.editing_controller import EditingController
    from app.editor.review_overlay import Jobs, OverlayControls


class Say(Protocol):
    def __call__(self, text: str, *, error: bool = False) -> None: ...


class DecisionFlow(QObject):
    """Accept, reject, consensus from a labeler, merge preview, fix; one decision at a time."""

    decided = Signal(int, str)  # (asset id, API method) after a decision was stored
    stale = Signal()  # a decision was stored or refused: the queue should be read again

    def __init__(
        self,
        logic: ReviewLogic,
        source: ReviewSource,
        box: DecisionBox,
        *,
        jobs: Jobs,
        overlays: OverlayControls,
        canvas: Canvas,
        editing: EditingController | None,
        say: Say,
        scroller: QScrollArea,
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.logic, self.source, self.box, self.jobs = logic, source, box, jobs
        self.overlays, self.canvas, self.editing = overlays, canvas, editing
        self.say, self.scroller, self.host = say, scroller, parent
        self.dialog: LabelerDialog | None = None
        box.accept_button.clicked.connect(self.accept)
        box.reject_button.clicked.connect(self.open_reject)
        box.fix_button.clicked.connect(self.start_fix)
        box.choose_button.clicked.connect(self.open_choose)
        box.merge_button.clicked.connect(partial(self.preview_merge, None))  # not clicked's bool
        box.copy_button.clicked.connect(lambda: self.copy_labels(box.copy_combo.currentText()))
        box.confirm_button.clicked.connect(self.confirm)
        box.cancel_button.clicked.connect(self.cancel)

    def enable(self) -> None:
        """Buttons follow the logic: decisions while reviewing, Confirm unless one is being stored."""
        logic, box = self.logic, self.box
        ready = logic.ready
        several = ready and logic.can_choose
        for button in (box.accept_button, box.reject_button, box.fix_button):
            button.setEnabled(ready)
        for widget in (box.choose_button, box.merge_button, box.method):
            widget.setEnabled(several)
        box.confirm_button.setEnabled(not logic.deciding)

    def view_only(self) -> None:
        """No tool on the item while only looking (until Fix, or a tool the reviewer picks)."""
        if self.logic.looking_only(self.overlays.shown):
            self.canvas.tool_slot.set_active(None)

    # --- storing a decision ------------------------------------------------------------------------
    def _run(self, step: Step) -> None:
        if step is None:
            return
        if isinstance(step, Refusal):
            self.say(step.text, error=True)
            return
        self.say(f"{step.name}: saving the decision...")
        self.enable()
        source = self.source
        self.jobs.run(
            "decide",
            lambda: source.decide(step.verb, step.asset_id, **step.kwargs),
            lambda _review: self._decided(step),
            self._failed,
        )

    def _decided(self, decision: Decision) -> None:
        self.logic.settled()
        self.leave_mode()
        self.box.note.clear()
        self.say(decision.done_text)
        self.decided.emit(decision.asset_id, decision.verb)
        self.stale.emit()  # the item leaves the queue; the next one opens

    def _failed(self, message: str) -> None:
        self.logic.settled()
        self.enable()
        self.say(message, error=True)
        self.stale.emit()  # someone else may have decided it meanwhile: move on

    def accept(self) -> None:
        self._run(self.logic.accept(self.box.note.text()))

    # --- the labeler dialogs -----------------------------------------------------------------------
    def open_reject(self) -> None:
        item = self.logic.item
        if item is None or not self.logic.reviewing:
            return
        dialog = self.dialog = LabelerDialog(
            "Reject to a labeler",
            f"Send {asset_name(item.asset)} back to one labeler with the reason they will see.",
            item.labelers,
            ask_reason=True,
            parent=self.host,
        )
        dialog.accepted.connect(
            lambda: self._run(self.logic.reject(dialog.labeler.currentText(), dialog.reason_text()))
        )
        self._open_dialog(dialog)

    def open_choose(self) -> None:
        item = self.logic.item
        if item is None or not self.logic.can_choose:
            return
        dialog = self.dialog = LabelerDialog(
            "Consensus from one labeler",
            "Use one labeler's annotations as the item's consensus labels and accept it.",
            item.labelers,
            ask_reason=False,
            parent=self.host,
        )
        dialog.accepted.connect(lambda: self._run(self.logic.choose(dialog.labeler.currentText())))
        self._open_dialog(dialog)

    def _open_dialog(self, dialog: LabelerDialog) -> None:
        """Window-modal, not blocking: the pane keeps drawing while the reviewer types."""
        dialog.finished.connect(lambda _result: self._dialog_closed(dialog))
        dialog.open()

    def _dialog_closed(self, dialog: LabelerDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()

    # --- merge preview and fix ---------------------------------------------------------------------
    def preview_merge(self, method: Method | None = None) -> None:
        item = self.logic.item
        if item is None or not self.logic.can_preview:
            return
        chosen: Method = method or self.box.method.currentData()
        self.box.method.setCurrentIndex(max(0, self.box.method.findData(chosen)))
        ontology = item.ontology
        self.say(f"Computing the {chosen} consensus...")
        self.jobs.run(
            "merge",
            lambda: build_consensus(item.annotations, ontology, item.shape, method=chosen),
            partial(self._merge_ready, chosen),
            partial(self.say, error=True),
        )

    def _merge_ready(self, method: Method, consensus: Consensus) -> None:
        self._show_bar(self.logic.show_preview(method, consensus), copy=False)
        self.say("")
        self.overlays.set_outline(True)  # the labelers as borders around the consensus area
        self.overlays.set_preview(consensus.annotations)

    def start_fix(self) -> None:
        editing = self.editing
        session = editing.session if editing is not None else None
        started = self.logic.start_fix(session.asset.id if session is not None else None)
        if started is None:
            return
        if isinstance(started, Refusal):
            self.say(started.text, error=True)
            return
        self._show_bar(started, copy=True)
        self.overlays.set_outline(True)  # the labelers' borders stay visible around the edits
        if editing is not None:
            editing.tools.set_tool(editing.tools.tool_name)  # the tool picked last, back on
        self.canvas.setFocus()

    def copy_labels(self, labeler: str) -> None:
        """Copy ``labeler``'s annotations into the reviewer's document as one undo step."""
        session = self.editing.session if self.editing is not None else None
        commands = self.logic.copy_commands(labeler, session.asset.id if session is not None else None)
        if commands is None or session is None:
            return
        if commands:
            session.stack.push(MacroCommand(commands, f"Copy {labeler}'s labels"))
        self.say(f"Copied {len(commands)} label(s) of {labeler}; Ctrl+Z takes them back.")

    # --- confirm bar -------------------------------------------------------------------------------
    def _show_bar(self, text: str, *, copy: bool) -> None:
        box = self.box
        box.confirm_text.setText(text)
        box.copy_row.setVisible(copy)
        box.confirm_bar.show()
        self.enable()
        # Confirm / Cancel must be in sight; after the layout placed the bar just shown
        QTimer.singleShot(0, lambda: self.scroller.ensureWidgetVisible(box.confirm_bar))

    def confirm(self) -> None:
        editing = self.editing
        if self.logic.mode is Mode.FIX:
            if editing is None or editing.session is None:
                return
            editing.saves.save_now()  # what the reviewer fixed must be stored before the verdict
        session = editing.session if editing is not None else None
        self._run(self.logic.confirm(self.box.note.text(), session))

    def cancel(self) -> None:
        if self.logic.mode is Mode.FIX:
            self.say("Fix cancelled; your edits stay as your own labels (Ctrl+Z undoes them).")
        self.leave_mode()

    def leave_mode(self) -> None:
        self.jobs.cancel("merge")
        was_merge = self.logic.leave_mode()
        self.box.confirm_bar.hide()
        self.enable()
        self.view_only()
        if was_merge:
            self.overlays.set_preview(None)
