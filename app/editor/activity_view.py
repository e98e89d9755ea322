"""The activity view: every item with its status, labelers, time, agreement and review; the labelers'
throughput; an agreement histogram and submissions over time. Reviewers can put items back in
the queue. Data comes from the API (app.api ActivityMixin) on a worker thread.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.item_status import STATUSES, ItemStatus, counts_line
from app.core.permissions import Action
from app.editor.actions import Binding
from app.editor.charts import HistogramChart, LineChart
from app.editor.plain import plain_tip
from app.editor.workers import ProgressJob, submit
from app.workflow.activity import (
    ActivityFacets,
    AgreementHistogram,
    ItemActivity,
    ItemFilters,
    ItemPage,
    LabelerActivity,
    ThroughputSeries,
)

if TYPE_CHECKING:
    from app.api import Project

MAX_ROWS = 20_000  # loaded at once; the list says so when the filters match more
ALL = ""  # the combo entry that does not filter
Index = QModelIndex | QPersistentModelIndex
_STATUS_COLORS = {
    ItemStatus.LEASED.value: "#6ea8fe",
    ItemStatus.IN_PROGRESS.value: "#9fc5ff",
    ItemStatus.SUBMITTED.value: "#f2c14e",
    ItemStatus.REJECTED.value: "#ff8c69",
    ItemStatus.ACCEPTED.value: "#7bd389",
    ItemStatus.UNQUEUED.value: "#7a7a7a",
}


@dataclass(frozen=True)
class Column:
    title: str
    text: Callable[[Any], str]
    key: Callable[[Any], Any]  # in-memory sort key (None sorts last)
    server: str | None = None  # the item_rows sort key, for lists too long to sort here
    numeric: bool = False
    width: int = 90


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


ITEM_COLUMNS: tuple[Column, ...] = (
    Column("Asset", lambda r: str(r.asset_id), lambda r: r.asset_id, "asset", True, 60),
    Column("Name", lambda r: _name(r.path), lambda r: _name(r.path).lower(), "path", width=170),
    Column("Dataset", lambda r: r.dataset, lambda r: r.dataset, "dataset", width=80),
    Column("Status", lambda r: r.status, lambda r: r.status, "status", width=80),
    Column("Labelers", lambda r: ", ".join(r.labelers), lambda r: ", ".join(r.labelers) or None, width=110),
    Column("Time", lambda r: _duration(r.seconds), lambda r: r.seconds, "time", True, 64),
    Column(
        "Need",
        lambda r: "" if r.required is None else str(r.required),
        lambda r: r.required,
        "required",
        True,
        48,
    ),
    Column("Agreement", lambda r: _score(r.agreement), lambda r: r.agreement, "agreement", True, 78),
    Column("Review", lambda r: r.review or "", lambda r: r.review, "review", width=72),
    Column("Reviewer", lambda r: r.reviewer or "", lambda r: r.reviewer, "reviewer", width=72),
    Column("Issues", lambda r: str(r.open_threads or ""), lambda r: r.open_threads, "threads", True, 50),
    Column("Classes", lambda r: ", ".join(r.classes), lambda r: ", ".join(r.classes) or None, width=120),
    Column("Modality", lambda r: r.modality or "", lambda r: r.modality, "modality", width=68),
    Column("Body part", lambda r: r.body_part or "", lambda r: r.body_part, "body_part", width=76),
    Column("Study date", lambda r: r.study_date or "", lambda r: r.study_date, "study_date", width=84),
)

LABELER_COLUMNS: tuple[Column, ...] = (
    Column("Labeler", lambda r: r.name, lambda r: r.name, width=90),
    Column("Submitted", lambda r: str(r.submitted), lambda r: r.submitted, numeric=True, width=70),
    Column(
        "Per hour",
        lambda r: "" if r.per_hour is None else f"{r.per_hour:.1f}",
        lambda r: r.per_hour,
        numeric=True,
        width=64,
    ),
    Column(
        "Lease time", lambda r: _duration(r.lease_seconds), lambda r: r.lease_seconds, numeric=True, width=74
    ),
    Column(
        "Agreement", lambda r: _score(r.mean_agreement), lambda r: r.mean_agreement, numeric=True, width=74
    ),
    Column("Rejected", lambda r: str(r.rejected), lambda r: r.rejected, numeric=True, width=64),
    Column("Skipped", lambda r: str(r.skipped), lambda r: r.skipped, numeric=True, width=60),
)


class RecordTableModel(QAbstractTableModel):
    """Rows of frozen records shown through column specs; sorts in memory (10,000 rows sort in a
    few milliseconds, and the view only asks for the visible cells)."""

    server_sort = Signal(str, bool)  # (item_rows sort key, descending): the loaded rows are not all

    def __init__(self, columns: Sequence[Column], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.columns = tuple(columns)
        self.rows: list[Any] = []
        self.complete = True  # False: more rows match than were loaded

    def set_rows(self, rows: Sequence[Any], *, complete: bool = True) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.complete = complete
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section].title
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = self.rows[index.row()], self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(row)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            horizontal = Qt.AlignmentFlag.AlignRight if column.numeric else Qt.AlignmentFlag.AlignLeft
            return int(horizontal | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and column.title == "Status":
            color = _STATUS_COLORS.get(str(getattr(row, "status", "")))
            return QColor(color) if color else None
        if role == Qt.ItemDataRole.ToolTipRole and isinstance(row, ItemActivity):
            series = f"\n{row.series}" if row.series else ""
            return plain_tip(f"{row.path}{series}")  # paths and DICOM tags: never rendered as rich text
        if role == Qt.ItemDataRole.UserRole:
            return getattr(row, "asset_id", None)
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        spec = self.columns[column]
        descending = order == Qt.SortOrder.DescendingOrder
        if not self.complete and spec.server is not None:
            self.server_sort.emit(spec.server, descending)  # sorting a partial list would mislead
            return
        present = [r for r in self.rows if spec.key(r) is not None]
        missing = [r for r in self.rows if spec.key(r) is None]
        self.layoutAboutToBeChanged.emit()
        present.sort(key=spec.key, reverse=descending)
        self.rows = present + missing  # empty values last either way
        self.layoutChanged.emit()


@dataclass(frozen=True)
class ActivityData:
    """Everything one refresh loads (on a worker thread)."""

    page: ItemPage
    labelers: list[LabelerActivity]
    throughput: ThroughputSeries
    histogram: AgreementHistogram
    facets: ActivityFacets
    classes: list[str]
    counts: dict[str, int]  # items per status: the queue panel's numbers (queue_stats)


def _table(model: RecordTableModel, parent: QWidget) -> QTableView:
    table = QTableView(parent)
    table.setModel(model)
    table.setSortingEnabled(True)
    table.setAlternatingRowColors(True)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setWordWrap(False)
    table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    rows = table.verticalHeader()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # uniform heights: 10,000 rows scroll smoothly
    rows.setDefaultSectionSize(table.fontMetrics().height() + 6)
    rows.hide()
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    header.setSortIndicatorShown(True)
    for i, column in enumerate(model.columns):
        table.setColumnWidth(i, column.width)
    return table


class ActivityView(QWidget):
    """Filter bar, item table, labelers table and the two charts. ``asset_requested(asset_id)`` asks
    the window to open an item (double-click or Enter); ``loaded`` fires after every refresh."""

    asset_requested = Signal(int)
    loaded = Signal()
    failed = Signal(str)

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self._tokens = itertools.count()
        self._pending: object = None
        self._sort: tuple[str, bool] = ("asset", False)
        self.last: ActivityData | None = None
        self.can_requeue = project.can(Action.REVIEW)
        self._job: ProgressJob | None = None

        self.status = self._combo(
            "All statuses",
            STATUSES,
            "Item status: " + "; ".join(f"{x.value}: {x.meaning}" for x in ItemStatus),
        )
        self.labeler = self._combo("All labelers", (), "Items this labeler took part in")
        self.label = self._combo("All classes", (), "Items with a label of this class")
        self.modality = self._combo("All modalities", (), "DICOM modality")
        self.dataset = self._combo("All datasets", (), "Dataset")
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search path or series description")
        self.search.setClearButtonEnabled(True)
        self._debounce = QTimer(self, singleShot=True, interval=300)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setToolTip("Load the activity again (Ctrl+F5)")
        self.refresh_button.clicked.connect(self.refresh)
        self.requeue_button = QPushButton("Re-enqueue", self)
        self.requeue_button.setToolTip(
            "Put the selected items back in the queue: their leases and submissions are voided (Ctrl+Shift+Q)"
        )
        self.requeue_button.clicked.connect(lambda _checked=False: self.requeue_selected())
        self.requeue_button.setVisible(self.can_requeue)  # the API refuses labelers anyway
        self.summary = QLabel(self)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)  # error messages carry names and paths
        self.counts = QLabel(self)  # the whole project's items per status, whatever the filters
        self.counts.setStyleSheet("color: #a8a8a8;")

        self.items = RecordTableModel(ITEM_COLUMNS, self)
        self.items.server_sort.connect(self._sort_on_server)
        self.table = _table(self.items, self)
        self.table.activated.connect(self._activated)
        self.people = RecordTableModel(LABELER_COLUMNS, self)
        self.people_table = _table(self.people, self)
        self.histogram = HistogramChart(self)
        self.throughput = LineChart(self)
        self._layout()

    def _combo(self, everything: str, values: Sequence[str], tip: str) -> QComboBox:
        combo = QComboBox(self)
        combo.setToolTip(tip)
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._fill(combo, everything, values)
        combo.currentIndexChanged.connect(lambda _i: self.refresh())
        return combo

    @staticmethod
    def _fill(combo: QComboBox, everything: str, values: Sequence[str]) -> None:
        """Replace the choices, keeping the current one when it is still offered."""
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(everything, ALL)
        for value in values:
            combo.addItem(value, value)
        found = combo.findData(current)
        combo.setCurrentIndex(max(0, found))
        combo.blockSignals(False)

    def _layout(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for widget in (self.status, self.labeler, self.label, self.modality, self.dataset):
            bar.addWidget(widget)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.requeue_button)
        bottom = QSplitter(Qt.Orientation.Horizontal, self)
        bottom.addWidget(self.people_table)
        bottom.addWidget(self.histogram)
        bottom.addWidget(self.throughput)
        bottom.setSizes([420, 360, 420])
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.table)
        split.addWidget(bottom)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        summary = QHBoxLayout()
        summary.addWidget(self.summary, 1)
        summary.addWidget(self.counts)
        layout.addLayout(summary)
        layout.addWidget(split, 1)

    # --- loading ----------------------------------------------------------------------------
    def filters(self) -> ItemFilters:
        def chosen(combo: QComboBox) -> str | None:
            return combo.currentData() or None

        return ItemFilters(
            status=chosen(self.status),
            labeler=chosen(self.labeler),
            label=chosen(self.label),
            modality=chosen(self.modality),
            dataset=chosen(self.dataset),
            search=self.search.text().strip() or None,
        )

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.last is None and self._pending is None:
            self.refresh()  # loads only once someone looks: the dock starts hidden

    def refresh(self) -> None:
        """Load the list, the labelers and the charts again, off the UI thread."""
        token = next(self._tokens)
        self._pending = token
        filters, (sort, descending) = self.filters(), self._sort
        self.summary.setText("Loading activity...")
        submit(
            lambda: self._fetch(filters, sort, descending),
            partial(self._loaded, token),
            partial(self._failed, token),
        )

    def _fetch(self, filters: ItemFilters, sort: str, descending: bool) -> ActivityData:
        """Runs on a worker thread: API calls only, no widget."""
        p = self.project
        return ActivityData(
            page=p.activity(filters, sort=sort, descending=descending, limit=MAX_ROWS),
            labelers=p.labeler_activity(),
            throughput=p.throughput("day"),
            histogram=p.agreement_histogram(10),
            facets=p.activity_facets(),
            classes=[c.name for c in p.ontology.classes],
            counts=p.queue_stats(),
        )

    def _loaded(self, token: int, result: ActivityData) -> None:
        if token != self._pending:
            return  # a newer refresh superseded this one
        self._pending = None
        self.last = result
        page = result.page
        self.items.set_rows(page.rows, complete=len(page.rows) >= page.total)
        self.people.set_rows(result.labelers)
        self.histogram.set_data(result.histogram.edges, result.histogram.counts)
        self.throughput.set_data(result.throughput.starts, result.throughput.counts, result.throughput.bucket)
        self._fill(self.labeler, "All labelers", result.facets.labelers)
        self._fill(self.label, "All classes", result.classes)
        self._fill(self.modality, "All modalities", result.facets.modalities)
        self._fill(self.dataset, "All datasets", result.facets.datasets)
        shown = (
            f"{len(page.rows):,} of {page.total:,} items"
            if page.total > len(page.rows)
            else f"{page.total:,} items"
        )
        more = " (narrow the filters to see the rest)" if page.total > len(page.rows) else ""
        scope = "" if self.can_requeue or self.project.can(Action.SEE_ALL_LABELS) else " - your items only"
        self.summary.setText(f"{shown}{more}{scope}")
        self.counts.setText(f"Queue: {counts_line(result.counts)}")
        self.loaded.emit()

    def _failed(self, token: int, message: str) -> None:
        if token != self._pending:
            return
        self._pending = None
        self.summary.setText(f"Could not load the activity: {message}")
        self.failed.emit(message)

    def _sort_on_server(self, key: str, descending: bool) -> None:
        self._sort = (key, descending)
        self.refresh()

    # --- actions ----------------------------------------------------------------------------
    def bindings(self) -> list[Binding]:
        """The view's actions for the window's menus, shortcuts and help overlay."""
        rows = [
            Binding(
                "sitelabel.activity.toggle",
                "&View",
                "Activity view (show / hide)",
                "Ctrl+Shift+A",
                self.toggle_visible,
            ),
            Binding(
                "sitelabel.activity.refresh", "&View", "Refresh activity", "Ctrl+F5", self.refresh_if_shown
            ),
        ]
        if self.can_requeue:  # reviewers and above; the API refuses others anyway
            rows.append(
                Binding(
                    "sitelabel.activity.requeue",
                    "&View",
                    "Re-enqueue selected activity items",
                    "Ctrl+Shift+Q",
                    self.requeue_selected,
                )
            )
        return rows

    def _dock(self) -> QDockWidget | None:
        widget = self.parentWidget()
        while widget is not None and not isinstance(widget, QDockWidget):
            widget = widget.parentWidget()
        return widget

    def toggle_visible(self) -> None:
        dock = self._dock()
        if dock is None:
            return
        dock.setVisible(not dock.isVisible())
        if dock.isVisible():
            dock.raise_()
            self.table.setFocus()

    def refresh_if_shown(self) -> None:
        if self.isVisible():
            self.refresh()

    def _activated(self, index: QModelIndex) -> None:
        asset_id = self.items.data(index, Qt.ItemDataRole.UserRole)
        if asset_id is not None:
            self.asset_requested.emit(int(asset_id))

    def selected_asset_ids(self) -> list[int]:
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return sorted(self.items.rows[r].asset_id for r in rows)

    def requeue_selected(self, *, confirm: bool = True) -> None:
        """Put the selected items back in the queue (reviewers and above; the API checks)."""
        ids = self.selected_asset_ids()
        if not ids or not self.isVisible():
            self.summary.setText("Select the items to put back in the queue first")
            return
        if confirm:
            answer = QMessageBox.question(
                self,
                "Re-enqueue",
                f"Put {len(ids)} item(s) back in the labeling queue? Their running leases and "
                "submissions are voided, so they will be labeled again.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.summary.setText(f"Putting {len(ids)} item(s) back in the queue...")
        progress = QProgressDialog(
            f"Putting {len(ids)} item(s) back in the queue...", "Stop", 0, len(ids), self
        )
        progress.setWindowTitle("Re-enqueue")
        progress.setMinimumDuration(400)  # a handful of items finish before any dialog shows
        job = ProgressJob(lambda report: self.project.requeue(ids, progress=report))
        job.signals.progressed.connect(lambda done, _total: progress.setValue(done))
        progress.canceled.connect(lambda: setattr(job, "cancelled", True))  # stops after the current item
        job.signals.done.connect(lambda count: self._requeued(progress, count))
        job.signals.failed.connect(lambda message: self._requeue_failed(progress, message))
        self._job = job  # keeps the runnable's signals alive until it reports
        QThreadPool.globalInstance().start(job)

    def _requeued(self, progress: QProgressDialog, count: object) -> None:
        progress.reset()
        self._job = None
        self.refresh()
        self.summary.setText(f"{count} item(s) put back in the queue; reloading...")

    def _requeue_failed(self, progress: QProgressDialog, message: str) -> None:
        progress.reset()
        self._job = None
        self.summary.setText(f"Could not put the items back in the queue: {message}")
        self.failed.emit(message)
