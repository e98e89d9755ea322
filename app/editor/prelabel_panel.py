"""Keyboard-first review of model pre-labels on the item on screen.

J / Shift+J select the next / previous pre-label of the frame (least confident first) and centre
it; A accepts the selected one as the labeler's own annotation; Delete (the select tool) rejects
it; Shift+A accepts every pre-label of the item at or above the confidence in the panel (its
default: the highest score threshold in the manifests of the models that made them). Every change
goes through the EditSession, so it is one undo step and saved like any edit.

H shows where the model was unsure about the selected pre-label (Shift+H: about all pre-labels of
the frame) as a heat overlay; the maps come from ``project.low_confidence_map`` on the thread pool.

The state and rules (review order, accept-all default, which maps the heat needs) are
:class:`app.editor.prelabel_logic.PrelabelLogic`, with no Qt; the heat's switches and overlay are
:class:`app.editor.prelabel_heat.HeatView`; this widget lays them out and wires the window's actions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from app.editor.actions import Binding
from app.editor.prelabel_heat import HEAT_ALL_KEYS, HEAT_KEYS, HeatView
from app.editor.prelabel_logic import DEFAULT_THRESHOLD, PrelabelLogic, centre_of
from app.editor.workers import Job, ignore, submit

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.canvas import Canvas
    from app.editor.editing_controller import EditingController
    from app.workflow.editing import EditSession

ACCEPT_KEYS, ACCEPT_ALL_KEYS = "A", "Shift+A"
NEXT_KEYS, PREVIOUS_KEYS = "J", "Shift+J"
SELECT_FIRST = f"Select a pre-label first ({NEXT_KEYS} jumps to the next one)."


class PrelabelPanel(QWidget):
    """The "Pre-labels" dock: the frame's pending pre-labels, accept / reject, accept all, heat."""

    notice = Signal(str)  # a one-line message for the status bar

    def __init__(
        self,
        project: Project,
        editing: EditingController,
        canvas: Canvas,
        select_tool: Callable[[], object],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.project, self.editing, self.canvas = project, editing, canvas
        self.select_tool = select_tool  # switches the window to the select tool (and its button)
        self.logic = PrelabelLogic(project)
        self._filling = False
        self._rows: list[int] = []  # local ids in table order
        # the last jobs, so their signal objects die here on the UI thread, never on the pool's
        self._jobs: deque[Job] = deque(maxlen=16)

        self.summary = QLabel("No item open", self)
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels(["Class", "Model", "Conf."])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._row_chosen)
        self.accept_button = QPushButton(f"Accept ({ACCEPT_KEYS})", self)
        self.accept_button.clicked.connect(self.accept_selected)
        self.reject_button = QPushButton("Reject (Delete)", self)
        self.reject_button.clicked.connect(self.reject_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.accept_button)
        buttons.addWidget(self.reject_button)
        self.threshold = QDoubleSpinBox(self)
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setValue(DEFAULT_THRESHOLD)
        self.threshold.setToolTip("Accept all: every pre-label of this item with at least this confidence")
        self.accept_all_button = QPushButton(f"Accept all ≥ ({ACCEPT_ALL_KEYS})", self)
        self.accept_all_button.clicked.connect(self.accept_above)
        above = QHBoxLayout()
        above.addWidget(self.accept_all_button, 1)
        above.addWidget(self.threshold)
        self.heat = HeatView(self.logic, canvas, lambda: editing.tools.selected_id, self._say, self)
        self.message = QLabel(self)
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # API messages name models, classes and people
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addLayout(above)
        layout.addWidget(self.heat.check)
        layout.addWidget(self.heat.all_check)
        layout.addWidget(self.heat.legend)
        layout.addWidget(self.message)

    # --- window wiring ----------------------------------------------------------------------------
    def bindings(self) -> list[Binding]:
        m, p, h = "Pre-&labels", "sitelabel.prelabels.", self.heat
        return [
            Binding(p + "toggle_panel", m, "Pre-labels panel: show / hide", "F7", self.toggle_visible),
            Binding(p + "accept", m, "Accept the selected pre-label", ACCEPT_KEYS, self.accept_selected),
            Binding(p + "reject", m, "Reject the selected pre-label", "", self.reject_selected),
            Binding(p + "next", m, "Next pre-label (least confident first)", NEXT_KEYS, lambda: self.step(1)),
            Binding(p + "previous", m, "Previous pre-label", PREVIOUS_KEYS, lambda: self.step(-1)),
            Binding(
                p + "accept_all",
                m,
                "Accept all pre-labels at or above the confidence",
                ACCEPT_ALL_KEYS,
                self.accept_above,
            ),
            Binding(
                p + "heat",
                m,
                "Low-confidence heat (show / hide)",
                HEAT_KEYS,
                lambda: h.set_heat(not h.on),
            ),
            Binding(
                p + "heat_all",
                m,
                "Low-confidence heat for all pre-labels of the frame",
                HEAT_ALL_KEYS,
                lambda: h.set_heat_all(not h.all_check.isChecked()),
            ),
        ]

    def toggle_visible(self) -> None:
        dock = self.parentWidget()
        if dock is None:
            return
        if dock.isVisible() and not dock.visibleRegion().isEmpty():
            dock.hide()
        else:
            dock.show()
            dock.raise_()  # tabbed behind the item's details: bring it to the front

    @staticmethod
    def help_entries() -> list[tuple[str, str]]:
        """Keys handled by the select tool on the canvas (not window actions)."""
        return [("Delete", "Reject the selected pre-label (select tool)")]

    def load_thresholds(self) -> None:
        """Read the models' score thresholds (on the pool); the accept-all default follows."""
        self.logic.thresholds_asked = True
        job = submit(self.project.score_thresholds, self._thresholds_loaded, ignore)
        self._jobs.append(job)

    def _thresholds_loaded(self, result: dict[str, float]) -> None:
        if not isValid(self):  # the window was closed while the job ran
            return
        self.logic.set_thresholds(result)
        self._default_threshold()

    def session_opened(self, session: EditSession) -> None:
        first = self.logic.open(session)
        session.stack.changed.append(self.refresh)
        if first:
            self.load_thresholds()  # the first item with pre-labels: read the models' manifests
        self._default_threshold()
        self.refresh()

    def frame_shown(self, _asset_id: int, index: int) -> None:
        self.logic.frame = index
        self.refresh()

    def selection_changed(self, aid: object) -> None:
        self._select_row(aid if isinstance(aid, int) else None)
        self.heat.refresh()

    # --- the table ----------------------------------------------------------------------------------
    def _default_threshold(self) -> None:
        level = self.logic.default_threshold()
        if level is not None:
            self.threshold.setValue(level)

    def refresh(self) -> None:
        """Refill the table (after an edit, a frame change or a new item); the selection stays."""
        pending = self.logic.pending()
        self._filling = True
        self._rows = list(pending)
        self.table.setRowCount(len(pending))
        for row, ann in enumerate(pending.values()):
            confidence = "" if ann.confidence is None else f"{ann.confidence:.2f}"
            cells = (ann.label, ann.source.removeprefix("model:"), confidence)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self._filling = False
        self._select_row(self.editing.tools.selected_id)
        total = self.logic.total
        if self.logic.session is None:
            self.summary.setText("No item open")
        else:
            self.summary.setText(f"{len(pending)} pre-label(s) to review on this frame, {total} on this item")
        for button in (self.accept_button, self.reject_button):
            button.setEnabled(bool(pending))
        self.accept_all_button.setEnabled(total > 0)
        self.heat.refresh()

    def _select_row(self, aid: int | None) -> None:
        self._filling = True
        self.table.clearSelection()
        if aid in self._rows:
            row = self._rows.index(aid)
            self.table.selectRow(row)
            self.table.scrollTo(self.table.model().index(row, 0))
        self._filling = False

    def _row_chosen(self) -> None:
        if self._filling:
            return
        rows = self.table.selectionModel().selectedRows()
        if rows and rows[0].row() < len(self._rows):
            self._go_to(self._rows[rows[0].row()])

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.notice.emit(text)

    # --- actions ------------------------------------------------------------------------------------
    def step(self, delta: int) -> None:
        """Select and centre the next (``delta`` 1) or previous (-1) pre-label of the frame."""
        target = self.logic.target(self.editing.tools.selected_id, delta)
        if target is None:
            self._say("No pre-labels left to review on this frame.")
            return
        self._go_to(target)

    def _go_to(self, aid: int) -> None:
        if self.editing.tools.tool_name != "select":
            self.select_tool()
        self.editing.tools.select(aid)
        ann = self.logic.pending().get(aid)
        where = centre_of(ann) if ann is not None else None
        if where is not None:
            self.canvas.view.centre_on(*where)
        self.canvas.setFocus()  # Delete goes to the select tool: reject

    def accept_selected(self) -> None:
        aid = self.editing.tools.selected_id
        if aid is None or not self.logic.is_prelabel(aid):
            self._say(SELECT_FIRST)
            return
        self.logic.accept(aid)
        self.editing.tools.select(aid)  # still selected, now the labeler's own
        self._say("Pre-label accepted as your annotation (Ctrl+Z undoes).")

    def reject_selected(self) -> None:
        aid = self.editing.tools.selected_id
        if aid is None or not self.logic.is_prelabel(aid):
            self._say(SELECT_FIRST)
            return
        self.logic.reject(aid)
        self.editing.tools.select(None)
        self._say("Pre-label rejected (Ctrl+Z undoes).")

    def accept_above(self) -> None:
        level = round(self.threshold.value(), 2)
        count = self.logic.accept_above(level)
        if count is None:
            return
        self._say(
            f"Accepted {count} pre-label(s) with confidence ≥ {level:.2f} on this item (one undo step)."
        )
