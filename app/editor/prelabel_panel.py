"""Keyboard-first review of model pre-labels on the item on screen.

J / Shift+J select the next / previous pre-label of the frame (least confident first) and centre
it; A accepts the selected one as the labeler's own annotation; Delete (the select tool) rejects
it; Shift+A accepts every pre-label of the item at or above the confidence in the panel (its
default: the highest score threshold in the manifests of the models that made them). Every change
goes through the EditSession, so it is one undo step and saved like any edit.

H shows where the model was unsure about the selected pre-label (Shift+H: about all pre-labels of
the frame) as a heat overlay; the maps come from ``project.low_confidence_map`` on the thread pool.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
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

from app.core.annotations import Annotation, Kind
from app.core.commands import RemoveAnnotation
from app.editor.actions import Binding
from app.editor.prelabel_overlay import combine, heat_rgba, legend_html
from app.editor.workers import Job, ignore, submit

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.canvas import Canvas
    from app.editor.editing_controller import EditingController
    from app.workflow.editing import EditSession

ACCEPT_KEYS, ACCEPT_ALL_KEYS = "A", "Shift+A"
NEXT_KEYS, PREVIOUS_KEYS = "J", "Shift+J"
HEAT_KEYS, HEAT_ALL_KEYS = "H", "Shift+H"
DEFAULT_THRESHOLD = 0.8  # when no manifest of the item's models says otherwise
HEAT_MARGIN = 24  # pixels around the selected pre-label whose uncertainty is shown


def bounds_of(annotation: Annotation) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) around an annotation in image coordinates (None: a classification)."""
    if annotation.kind is Kind.BOX and annotation.box is not None:
        return annotation.box
    if annotation.kind is Kind.MASK and annotation.mask is not None:
        ys, xs = np.nonzero(annotation.mask.bits)
        if xs.size == 0:
            return None
        x0, y0 = annotation.mask.x0, annotation.mask.y0
        return x0 + float(xs.min()), y0 + float(ys.min()), x0 + float(xs.max()) + 1, y0 + float(ys.max()) + 1
    if annotation.points is not None and len(annotation.points):
        pts = np.asarray(annotation.points, dtype=np.float64)
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)
    return None


def centre_of(annotation: Annotation) -> tuple[float, float] | None:
    """Where to centre the view on an annotation (None: a classification has no place)."""
    b = bounds_of(annotation)
    return None if b is None else ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)


def _near(
    uncertainty: npt.NDArray[np.float32], bounds: tuple[float, float, float, float] | None
) -> npt.NDArray[np.float32]:
    """A segmentation model's map covers the whole frame: keep the part around one pre-label."""
    if bounds is None:
        return uncertainty
    h, w = uncertainty.shape
    x0, y0 = max(0, int(bounds[0]) - HEAT_MARGIN), max(0, int(bounds[1]) - HEAT_MARGIN)
    x1, y1 = min(w, int(np.ceil(bounds[2])) + HEAT_MARGIN), min(h, int(np.ceil(bounds[3])) + HEAT_MARGIN)
    out = np.zeros_like(uncertainty)
    out[y0:y1, x0:x1] = uncertainty[y0:y1, x0:x1]
    return out


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
        self.session: EditSession | None = None
        self.frame = 0
        self.thresholds: dict[str, float] = {}
        self._maps: dict[int, npt.NDArray[np.float32]] = {}  # low-confidence maps by database id
        self._tokens = itertools.count()
        self._heat_token: object = None
        self._overlay_shown = False
        self._filling = False
        self._rows: list[int] = []  # local ids in table order
        # the last jobs, so their signal objects die here on the UI thread, never on the pool's
        self._jobs: deque[Job] = deque(maxlen=16)
        self._thresholds_asked = False

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
        self.heat_check = QCheckBox(f"Low-confidence heat ({HEAT_KEYS})", self)
        self.heat_check.toggled.connect(self.set_heat)
        self.heat_all_check = QCheckBox(f"For all pre-labels of the frame ({HEAT_ALL_KEYS})", self)
        self.heat_all_check.toggled.connect(self.set_heat_all)
        self.legend = QLabel(legend_html(), self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)  # built from constants only
        self.legend.hide()
        self.message = QLabel(self)
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # API messages name models, classes and people
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addLayout(above)
        layout.addWidget(self.heat_check)
        layout.addWidget(self.heat_all_check)
        layout.addWidget(self.legend)
        layout.addWidget(self.message)

    # --- window wiring ----------------------------------------------------------------------------
    def bindings(self) -> list[Binding]:
        m, p = "Pre-&labels", "sitelabel.prelabels."
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
                lambda: self.set_heat(not self.heat),
            ),
            Binding(
                p + "heat_all",
                m,
                "Low-confidence heat for all pre-labels of the frame",
                HEAT_ALL_KEYS,
                lambda: self.set_heat_all(not self.heat_all_check.isChecked()),
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
        self._thresholds_asked = True
        job = submit(self.project.score_thresholds, self._thresholds_loaded, ignore)
        self._jobs.append(job)

    def _thresholds_loaded(self, result: dict[str, float]) -> None:
        if not isValid(self):  # the window was closed while the job ran
            return
        self.thresholds = result
        self._default_threshold()

    def session_opened(self, session: EditSession) -> None:
        self.session, self.frame = session, 0
        self._maps.clear()
        session.stack.changed.append(self.refresh)
        if not self._thresholds_asked and session.prelabels():
            self.load_thresholds()  # the first item with pre-labels: read the models' manifests
        self._default_threshold()
        self.refresh()

    def frame_shown(self, _asset_id: int, index: int) -> None:
        self.frame = index
        self.refresh()

    def selection_changed(self, aid: object) -> None:
        self._select_row(aid if isinstance(aid, int) else None)
        self._update_heat()

    # --- state --------------------------------------------------------------------------------------
    @property
    def heat(self) -> bool:
        return self.heat_check.isChecked()

    def pending(self) -> dict[int, Annotation]:
        """This frame's undecided pre-labels by local id, least confident first."""
        if self.session is None:
            return {}
        found = self.session.prelabels(self.frame)
        order = sorted(found, key=lambda aid: (found[aid].confidence or 0.0, aid))
        return {aid: found[aid] for aid in order}

    def _default_threshold(self) -> None:
        if self.session is None:
            return
        sources = {a.source for a in self.session.prelabels().values()}
        known = [self.thresholds[s] for s in sources if s in self.thresholds]
        if known:
            self.threshold.setValue(max(known))

    def refresh(self) -> None:
        """Refill the table (after an edit, a frame change or a new item); the selection stays."""
        pending = self.pending()
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
        total = len(self.session.prelabels()) if self.session is not None else 0
        if self.session is None:
            self.summary.setText("No item open")
        else:
            self.summary.setText(f"{len(pending)} pre-label(s) to review on this frame, {total} on this item")
        for button in (self.accept_button, self.reject_button):
            button.setEnabled(bool(pending))
        self.accept_all_button.setEnabled(total > 0)
        self._update_heat()

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
        rows = list(self.pending())
        if not rows:
            self._say("No pre-labels left to review on this frame.")
            return
        current = self.editing.tools.selected_id
        if current in rows:
            target = rows[(rows.index(current) + delta) % len(rows)]
        else:
            target = rows[0] if delta > 0 else rows[-1]
        self._go_to(target)

    def _go_to(self, aid: int) -> None:
        if self.editing.tools.tool_name != "select":
            self.select_tool()
        self.editing.tools.select(aid)
        ann = self.pending().get(aid)
        where = centre_of(ann) if ann is not None else None
        if where is not None:
            self.canvas.view.centre_on(*where)
        self.canvas.setFocus()  # Delete goes to the select tool: reject

    def accept_selected(self) -> None:
        aid = self.editing.tools.selected_id
        if self.session is None or aid is None or aid not in self.session.prelabels():
            self._say(f"Select a pre-label first ({NEXT_KEYS} jumps to the next one).")
            return
        self.session.accept_prelabels([aid])
        self.editing.tools.select(aid)  # still selected, now the labeler's own
        self._say("Pre-label accepted as your annotation (Ctrl+Z undoes).")

    def reject_selected(self) -> None:
        aid = self.editing.tools.selected_id
        if self.session is None or aid is None or aid not in self.session.prelabels():
            self._say(f"Select a pre-label first ({NEXT_KEYS} jumps to the next one).")
            return
        self.session.stack.push(RemoveAnnotation(aid, text="Reject pre-label"))
        self.editing.tools.select(None)
        self._say("Pre-label rejected (Ctrl+Z undoes).")

    def accept_above(self) -> None:
        if self.session is None:
            return
        level = round(self.threshold.value(), 2)
        count = self.session.accept_prelabels(None, min_confidence=level)
        self._say(
            f"Accepted {count} pre-label(s) with confidence ≥ {level:.2f} on this item (one undo step)."
        )

    # --- low-confidence heat ------------------------------------------------------------------------
    def set_heat(self, on: bool) -> None:
        if self.heat_check.isChecked() != on:
            self.heat_check.setChecked(on)  # re-enters through toggled
            return
        self.legend.setVisible(on)
        self._update_heat()

    def set_heat_all(self, on: bool) -> None:
        if self.heat_all_check.isChecked() != on:
            self.heat_all_check.setChecked(on)
            return
        if on and not self.heat:
            self.set_heat(True)
            return
        self._update_heat()

    def _heat_targets(self) -> list[tuple[int, tuple[float, float, float, float] | None]]:
        """(database id, region or None for all of it) of the pre-labels whose maps are shown: the
        selected one's neighbourhood, or every pre-label of the frame. The maps of one segmentation
        model for one class on one frame are the same whole-frame map: one of them is fetched."""
        pending = self.pending()
        if not self.heat_all_check.isChecked():
            aid = self.editing.tools.selected_id
            ann = pending.get(aid) if aid is not None else None
            return [(ann.id, bounds_of(ann))] if ann is not None and ann.id is not None else []
        seen: set[tuple[str, str]] = set()
        targets: list[tuple[int, tuple[float, float, float, float] | None]] = []
        for ann in pending.values():
            if ann.id is None:
                continue
            if ann.kind in (Kind.POLYGON, Kind.MASK):
                if (ann.source, ann.label) in seen:
                    continue
                seen.add((ann.source, ann.label))
            targets.append((ann.id, None))
        return targets

    def _update_heat(self) -> None:
        targets = self._heat_targets() if self.heat else []
        if not targets:
            self._heat_token = None
            self._clear_overlay()
            return
        token = self._heat_token = (next(self._tokens), tuple(targets))
        known = {i: self._maps[i] for i, _ in targets if i in self._maps}
        missing = [i for i, _ in targets if i not in self._maps]
        project = self.project

        def work() -> tuple[dict[int, npt.NDArray[np.float32]], npt.NDArray[np.uint8] | None]:
            fresh = {i: project.low_confidence_map(i) for i in missing}
            maps = {**known, **fresh}
            merged = combine(_near(maps[i], region) for i, region in targets)
            return fresh, None if merged is None else heat_rgba(merged)

        if missing:
            self._say("Computing where the model was unsure…")
        self._jobs.append(submit(work, partial(self._heat_ready, token), partial(self._heat_failed, token)))

    def _heat_ready(
        self, token: object, result: tuple[dict[int, npt.NDArray[np.float32]], npt.NDArray[np.uint8] | None]
    ) -> None:
        if not isValid(self):  # the window was closed while the job ran
            return
        fresh, rgba = result
        self._maps.update(fresh)
        if token is not self._heat_token or not self.heat:
            return
        self.canvas.overlays.set_image(rgba)
        self._overlay_shown = rgba is not None
        if fresh:
            self._say("Low-confidence regions shown: look closely where the heat is.")

    def _heat_failed(self, token: object, message: str) -> None:
        if not isValid(self):  # the window was closed while the job ran
            return
        if token is self._heat_token:
            self._say(f"No low-confidence map: {message}")

    def _clear_overlay(self) -> None:
        if self._overlay_shown:  # never remove an overlay someone else (the review pane) put there
            self.canvas.overlays.set_image(None)
            self._overlay_shown = False
