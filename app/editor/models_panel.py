"""The "Models" dock: the site's models, pre-label passes, on-site micro-model training, quality.

Everything that reads files or runs a model happens on the thread pool: the model list (each file's
hash is checked) and the quality table through ``submit``, pre-label passes and training through a
``ProgressJob`` with a progress bar and Cancel. The API decides who may do what (reviewers run
passes, project admins train); a refusal is shown here as its one-line message.

What is listed and what a button starts is :class:`app.editor.models_logic.ModelsLogic`, with no
Qt; this widget lays out the tables and buttons and runs the work with a progress bar and Cancel.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from app.core.annotations import Kind
from app.editor.actions import Binding
from app.editor.models_logic import ModelRun, ModelsLogic, RunKind
from app.editor.plain import plain_tip
from app.editor.workers import Job, ProgressJob, submit

if TYPE_CHECKING:
    from app.api import ModelInfo, Project
    from app.workflow.model_quality import QualityRow

RUN_ITEM_KEYS = "Ctrl+Shift+R"
MODEL_COLUMNS = ("Name", "Version", "Task", "Classes", "File")
QUALITY_COLUMNS = (
    "Model",
    "Version",
    "Class",
    "Groups",
    "Reviewed",
    "Accepted",
    "Accept rate",
    "Dice",
    "IoU",
)
ERROR_STYLE = "color: #ff8a80"


def _table(columns: Sequence[str], parent: QWidget, stretch: int) -> QTableWidget:
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)  # a text column takes the rest
    return table


def _fill(table: QTableWidget, rows: Sequence[Sequence[str]], numeric_from: int | None = None) -> None:
    table.setRowCount(len(rows))
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if numeric_from is not None and c >= numeric_from:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(r, c, item)


class ModelsPanel(QWidget):
    prelabels_changed = Signal()  # a pass stored pre-labels: the item on screen should reload
    models_changed = Signal()  # a model was trained (registered)
    notice = Signal(str)

    def __init__(
        self,
        project: Project,
        current_asset: Callable[[], int | None],
        before_run: Callable[[], None] = lambda: None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.project = project
        self.current_asset = current_asset  # id of the item on screen, or None
        self.before_run = before_run  # save the open item first: a pass replaces untouched pre-labels
        self.logic = ModelsLogic(project)
        self.job: ProgressJob | None = None
        self._finished_job: ProgressJob | None = None
        # the last jobs, so their signal objects die here on the UI thread, never on the pool's
        self._jobs: deque[Job] = deque(maxlen=16)

        self.models_table = _table(MODEL_COLUMNS, self, stretch=4)
        self.models_table.setToolTip("Select the models to run (none selected: every usable model, chained)")
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.clicked.connect(self.refresh)
        self.run_item_button = QPushButton(f"Pre-label this item ({RUN_ITEM_KEYS})", self)
        self.run_item_button.clicked.connect(self.run_on_item)
        self.run_all_button = QPushButton("Pre-label all items", self)
        self.run_all_button.clicked.connect(self.run_on_all)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_item_button)
        run_row.addWidget(self.run_all_button)
        run_row.addWidget(self.refresh_button)
        self.train_class = QComboBox(self)
        for cls in project.ontology.classes:
            if Kind.MASK in cls.kinds or Kind.POLYGON in cls.kinds:
                self.train_class.addItem(cls.name)
        self.train_button = QPushButton("Train micro-model", self)
        self.train_button.setToolTip("From the human labels of the class so far (project admins)")
        self.train_button.clicked.connect(self.train)
        train_row = QHBoxLayout()
        train_row.addWidget(QLabel("Class", self))
        train_row.addWidget(self.train_class, 1)
        train_row.addWidget(self.train_button)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        self.progress.hide()
        self.cancel_button.hide()
        self.message = QLabel(self)
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # API messages name models, classes and people
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        models_box = QGroupBox("Site models", self)
        models_layout = QVBoxLayout(models_box)
        models_layout.addWidget(self.models_table, 1)
        models_layout.addLayout(run_row)
        models_layout.addLayout(train_row)
        models_layout.addLayout(progress_row)
        models_layout.addWidget(self.message)
        self.quality_table = _table(QUALITY_COLUMNS, self, stretch=2)
        quality_box = QGroupBox("Pre-label quality (how much labelers changed them)", self)
        quality_layout = QVBoxLayout(quality_box)
        quality_layout.addWidget(self.quality_table)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(models_box, 3)
        layout.addWidget(quality_box, 2)

    def bindings(self) -> list[Binding]:
        m = "Pre-&labels"
        return [
            Binding(
                "sitelabel.models.run_on_item",
                m,
                "Pre-label this item with the chosen models",
                RUN_ITEM_KEYS,
                self.run_on_item,
            ),
            Binding(
                "sitelabel.models.toggle_panel",
                m,
                "Models panel: show (and refresh) / hide",
                "F8",
                self.toggle_visible,
            ),
        ]

    def visibility_changed(self, shown: bool) -> None:
        if shown:
            self.refresh()

    def toggle_visible(self) -> None:
        dock = self.parentWidget()
        if dock is None:
            return
        if dock.isVisible() and not dock.visibleRegion().isEmpty():
            dock.hide()
        else:
            dock.show()
            dock.raise_()  # tabbed behind the pre-labels: bring it to the front
            self.refresh()

    # --- reading --------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the model list (hashes checked) and the quality table on the pool."""
        project = self.project
        self._jobs.append(
            submit(
                lambda: project.models(check=True), self._models_loaded, partial(self._read_failed, "models")
            )
        )
        self._jobs.append(
            submit(project.model_quality, self._quality_loaded, partial(self._read_failed, "quality"))
        )

    def _models_loaded(self, result: list[ModelInfo]) -> None:
        if not isValid(self):  # the panel was closed while the job ran
            return
        _fill(self.models_table, self.logic.set_models(result))
        for r, info in enumerate(self.logic.infos):
            item = self.models_table.item(r, 4)
            if item is not None:
                item.setToolTip(plain_tip(info.problem or info.sha256))
                if info.problem:
                    item.setForeground(Qt.GlobalColor.red)

    def _quality_loaded(self, result: list[QualityRow]) -> None:
        if not isValid(self):  # the panel was closed while the job ran
            return
        _fill(self.quality_table, self.logic.set_quality(result), numeric_from=3)

    def _read_failed(self, what: str, message: str) -> None:
        if not isValid(self):  # the panel was closed while the job ran
            return
        self._say(f"Could not read the {what}: {message}", error=True)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setStyleSheet(ERROR_STYLE if error else "")
        self.message.setText(text)
        self.notice.emit(text)

    # --- running --------------------------------------------------------------------------------
    def chosen_models(self) -> list[str] | None:
        """The usable models selected in the table; None when none is selected (then the pass
        runs every usable registered model)."""
        return self.logic.chosen(index.row() for index in self.models_table.selectionModel().selectedRows())

    def run_on_item(self) -> None:
        asset_id = self.current_asset()
        if asset_id is None:
            self._say("Open an item first.", error=True)
            return
        self._start(self.logic.prelabel([asset_id], "this item", self.chosen_models()))

    def run_on_all(self) -> None:
        self._start(self.logic.prelabel(None, "all items", self.chosen_models()))

    def train(self) -> None:
        self._start(self.logic.train(self.train_class.currentText()))

    def _start(self, run: ModelRun | str) -> None:
        if isinstance(run, str):
            self._say(run, error=True)
            return
        if run.save_first:
            self.before_run()
        if self.job is not None:
            self._say("Another model job is running: wait for it or cancel it.", error=True)
            return
        job = ProgressJob(run.work)
        job.signals.progressed.connect(self._progressed)
        job.signals.done.connect(lambda result: self._finish(result, run))
        job.signals.failed.connect(self._failed)
        self.job = job
        self.progress.setRange(0, 0)  # busy until the first report
        self.progress.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        for button in (self.run_item_button, self.run_all_button, self.train_button):
            button.setEnabled(False)
        self._say(run.text)
        QThreadPool.globalInstance().start(job)

    def _progressed(self, done: int, total: int) -> None:
        if not isValid(self):  # the panel was closed while the job ran
            return
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancelled = True
            self.cancel_button.setEnabled(False)
            self._say("Cancelling…")

    def _stop(self) -> None:
        # called from the job's own signal: keep it (and its signal object) alive past this slot
        self._finished_job, self.job = self.job, None
        self.progress.hide()
        self.cancel_button.hide()
        for button in (self.run_item_button, self.run_all_button, self.train_button):
            button.setEnabled(True)

    def _finish(self, result: object, run: ModelRun) -> None:
        if not isValid(self):  # the panel was closed while the job ran
            return
        self._stop()
        self._say(self.logic.finished(run, result))
        (self.prelabels_changed if run.kind is RunKind.PRELABEL else self.models_changed).emit()
        self.refresh()

    def _failed(self, message: str) -> None:
        if not isValid(self):  # the panel was closed while the job ran
            return
        self._stop()
        self.logic.failed(message)
        self._say(message, error=True)
