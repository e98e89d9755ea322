"""A new project in three steps: name and database, the data to register, the labeling interface.

Everything that touches the disk or the network (testing the connection, the dry scan, creating
the project and registering the data) runs on the thread pool with progress and cancel; the
pages only collect choices. ``SetupWizard.project`` holds the created project after Finish.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from app.core.errors import SitelabelError
from app.core.ontology import Ontology
from app.core.records import ProjectSettings
from app.editor.ontology_editor import OntologyEditor
from app.editor.plain import plain_tip
from app.editor.workers import ProgressJob, submit

if TYPE_CHECKING:
    from app.api import DatabaseCheck, Project
    from app.sources import ScanResult

ROLE = Qt.ItemDataRole.UserRole
OK_STYLE, ERROR_STYLE, HINT_STYLE = "color: #9bd49b;", "color: #ff8a80;", "color: #9a9a9a;"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp);;DICOM (*.dcm *.dicom *);;All files (*)"
ARCHIVE_FILTER = "Archives (*.zip *.tar *.tar.gz *.tgz);;All files (*)"
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm);;All files (*)"
# kind of entry -> (button text, list label)
DATA_KINDS = {
    "folder": ("Folder...", "folder"),
    "files": ("Files...", "file"),
    "archive": ("Archive...", "archive"),
    "dicom": ("DICOM folder...", "DICOM folder"),
    "video": ("Video...", "video"),
    "watch": ("Watch folder...", "watch folder"),
}


def _run(
    parent: QWidget,
    text: str,
    fn: Callable[[Callable[[int, int], bool]], Any],
    on_done: Callable[[object], None],
    on_failed: Callable[[str], None],
    *,
    before_start: Callable[[ProgressJob], None] | None = None,
) -> tuple[ProgressJob, QProgressDialog]:
    """Run ``fn(progress)`` on the pool with a progress dialog whose Cancel stops it.

    Everything is connected before the job starts: a quick job must not finish unheard.
    """
    job = ProgressJob(fn)
    dialog = QProgressDialog(text, "Cancel", 0, 0, parent)
    dialog.setWindowTitle("Sitelabel")
    dialog.setMinimumDuration(300)  # quick work finishes without a flashing dialog
    dialog.setAutoReset(False)
    dialog.setAutoClose(False)

    def show(done: int, total: int) -> None:
        dialog.setMaximum(max(total, 1))
        dialog.setValue(min(done, max(total, 1)))

    job.signals.progressed.connect(show)
    job.signals.done.connect(on_done)
    job.signals.failed.connect(on_failed)
    dialog.canceled.connect(lambda: setattr(job, "cancelled", True))
    if before_start is not None:
        before_start(job)
    QThreadPool.globalInstance().start(job)
    return job, dialog


def scan_summary(result: ScanResult) -> str:
    """What a dry scan would register, in one line."""
    kinds = Counter(ref.kind for ref in result.items)
    slices = sum(ref.frame_count for ref in result.items if ref.kind == "dicom")
    parts = [f"{kinds.get('image', 0)} images", f"{kinds.get('dicom', 0)} DICOM series ({slices} slices)"]
    parts.append(f"{kinds.get('video', 0)} videos")
    text = f"would register {len(result.items)} assets: " + ", ".join(parts)
    if result.skipped:
        text += f"; {len(result.skipped)} file{'s' if len(result.skipped) > 1 else ''} not recognised"
    if result.errors:
        text += f"; {len(result.errors)} unreadable"
    return text + (" (scan cancelled: partial count)" if result.cancelled else "")


@dataclass
class Created:
    """What Finish produced: the project, the new asset ids, skipped files, and a late failure."""

    project: Project
    ids: list[int]
    problems: list[tuple[str, str]]
    error: str = ""


class NamePage(QWizardPage):
    """Step 1: project name, database (SQLite file or PostgreSQL URL) and workflow settings."""

    def __init__(self, database: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from app.config import DEFAULT_DB_NAME, user_data_dir

        self.setTitle("1 of 3 · Name and database")
        self.setSubTitle("Name the project and choose where its labels are stored.")
        self.name = QLineEdit(self)
        self.name.setPlaceholderText("e.g. chest CT organs 2024")
        self.sqlite = QRadioButton("Embedded file (SQLite): one workstation, or a few on a local disk", self)
        self.postgres = QRadioButton("PostgreSQL server: teams labeling at the same time", self)
        group = QButtonGroup(self)
        group.addButton(self.sqlite)
        group.addButton(self.postgres)
        given = database or ""
        is_url = "://" in given and not given.startswith("sqlite")
        self.path = QLineEdit(given if given and not is_url else str(user_data_dir() / DEFAULT_DB_NAME), self)
        self.browse = QPushButton("Browse...", self)
        self.url = QLineEdit(given if is_url else "", self)
        self.url.setPlaceholderText("postgresql://user@host:5432/labels")
        (self.postgres if is_url else self.sqlite).setChecked(True)
        self.test_button = QPushButton("Test connection", self)
        self.test_result = QLabel(self)
        self.test_result.setTextFormat(Qt.TextFormat.PlainText)  # paths, names, driver messages
        self.test_result.setWordWrap(True)
        self.share = QDoubleSpinBox(self)
        self.share.setRange(0.0, 100.0)
        self.share.setSingleStep(5.0)
        self.share.setDecimals(1)
        self.share.setSuffix(" %")
        self.count = QSpinBox(self)
        self.count.setRange(1, 20)
        self.count.setValue(ProjectSettings().consensus_count)
        self.batch = QSpinBox(self)
        self.batch.setRange(1, 1000)
        self.batch.setValue(ProjectSettings().batch_size)
        self.lease = QSpinBox(self)
        self.lease.setRange(1, 24 * 60)
        self.lease.setSuffix(" min")
        self.lease.setValue(ProjectSettings().lease_seconds // 60)
        self.advanced_button = QPushButton("Show advanced settings", self)
        self.advanced_button.setCheckable(True)

        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(self.browse)
        db_box = QGroupBox("Database", self)
        db_grid = QGridLayout(db_box)
        db_grid.addWidget(self.sqlite, 0, 0, 1, 2)
        db_grid.addLayout(path_row, 1, 1)
        db_grid.addWidget(self.postgres, 2, 0, 1, 2)
        db_grid.addWidget(self.url, 3, 1)
        db_grid.setColumnMinimumWidth(0, 18)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_result, 1)
        db_grid.addLayout(test_row, 4, 0, 1, 2)
        self.advanced = QGroupBox("Workflow (advanced)", self)
        adv = QFormLayout(self.advanced)
        adv.addRow("Consensus share (items labeled by several people)", self.share)
        adv.addRow("Labelers per consensus item", self.count)
        adv.addRow("Items handed out per claim (batch size)", self.batch)
        adv.addRow("Lease: a claimed item stays reserved for", self.lease)
        self.advanced.hide()
        form = QFormLayout()
        form.addRow("Project name", self.name)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(db_box)
        advanced_row = QHBoxLayout()
        advanced_row.addWidget(self.advanced_button)
        advanced_row.addStretch(1)
        layout.addLayout(advanced_row)
        layout.addWidget(self.advanced)
        layout.addStretch(1)

        self._test_token: object = None
        self.name.textChanged.connect(lambda _t: self.completeChanged.emit())
        self.path.textChanged.connect(lambda _t: self._target_changed())
        self.url.textChanged.connect(lambda _t: self._target_changed())
        self.sqlite.toggled.connect(lambda _on: self._target_changed())
        self.browse.clicked.connect(self._browse)
        self.test_button.clicked.connect(self.test_connection)
        self.advanced_button.toggled.connect(self.show_advanced)
        self._target_changed()

    def database(self) -> str:
        return (self.path if self.sqlite.isChecked() else self.url).text().strip()

    def settings(self) -> ProjectSettings:
        return ProjectSettings(
            consensus_share=round(self.share.value() / 100.0, 4),
            consensus_count=self.count.value(),
            batch_size=self.batch.value(),
            lease_seconds=self.lease.value() * 60,
        )

    def isComplete(self) -> bool:
        return bool(self.name.text().strip() and self.database())

    def show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_button.setText("Hide advanced settings" if shown else "Show advanced settings")

    def test_connection(self) -> None:
        """Runs on the pool: a PostgreSQL server can take seconds to answer or time out."""
        from app import api

        target = self.database()
        self._test_token = token = object()
        self.test_result.setStyleSheet(HINT_STYLE)
        self.test_result.setText("testing...")
        submit(
            lambda: api.check_database(target),
            partial(self._tested, token),
            partial(self._test_failed, token),
        )

    def _tested(self, token: object, result: DatabaseCheck) -> None:
        if token is self._test_token:
            summary, warnings = result.summary(), list(result.warnings)
            self.test_result.setStyleSheet(OK_STYLE if not warnings else ERROR_STYLE)
            self.test_result.setText("; ".join([summary, *warnings]))

    def _test_failed(self, token: object, message: str) -> None:
        if token is self._test_token:
            self.test_result.setStyleSheet(ERROR_STYLE)
            self.test_result.setText(message.splitlines()[0] if message else "failed")

    def _target_changed(self) -> None:
        self.path.setEnabled(self.sqlite.isChecked())
        self.browse.setEnabled(self.sqlite.isChecked())
        self.url.setEnabled(self.postgres.isChecked())
        self._test_token = None  # an answer about the previous target is no longer shown
        self.test_result.setText("")
        self.completeChanged.emit()

    def _browse(self) -> None:
        chosen, _ = QFileDialog.getSaveFileName(
            self, "Database file", self.path.text(), "Sitelabel database (*.db);;All files (*)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )  # fmt: skip
        if chosen:
            self.path.setText(chosen)


class DataPage(QWizardPage):
    """Step 2: what to register (in place, never copied) and which folders to watch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("2 of 3 · Data")
        self.setSubTitle(
            "Files are registered where they are, never copied. Watch folders: what is there now is "
            "registered at Finish, and `sitelabel watch` registers what arrives later."
        )
        self.entries = QTreeWidget(self)
        self.entries.setHeaderLabels(["What", "Where"])
        self.entries.setRootIsDecorated(False)
        self.entries.setColumnWidth(0, 130)
        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        for index, (kind, (text, _label)) in enumerate(DATA_KINDS.items()):
            button = QPushButton(text, self)
            button.clicked.connect(lambda _c=False, kind=kind: self._browse(kind))
            self.buttons[kind] = button
            grid.addWidget(button, index // 3, index % 3)
        self.remove_button = QPushButton("Remove (Del)", self)
        self.scan_button = QPushButton("Scan (dry run)", self)
        self.scan_button.setToolTip("Count what would be registered; nothing is stored")
        self.scan_result = QLabel("Nothing added yet: a project may start empty.", self)
        self.scan_result.setTextFormat(Qt.TextFormat.PlainText)  # file names and reader errors
        self.scan_result.setWordWrap(True)
        self.scan_result.setStyleSheet(HINT_STYLE)
        side = QHBoxLayout()
        side.addWidget(self.remove_button)
        side.addStretch(1)
        side.addWidget(self.scan_button)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.entries, 1)
        layout.addLayout(side)
        layout.addWidget(self.scan_result)
        self.remove_button.clicked.connect(self.remove_selected)
        self.scan_button.clicked.connect(self.scan)
        shortcut = QShortcut(QKeySequence("Del"), self.entries)
        shortcut.activated.connect(self.remove_selected)
        self.last_scan: ScanResult | None = None
        self.scan_job: ProgressJob | None = None
        self.scan_dialog: QProgressDialog | None = None

    def add_paths(self, kind: str, paths: list[str | Path]) -> None:
        label = DATA_KINDS[kind][1]
        known = {(k, str(p)) for k, p in self.items()}
        for path in paths:
            if (kind, str(path)) not in known:
                item = QTreeWidgetItem(self.entries, [label, str(path)])
                item.setData(0, ROLE, kind)
                item.setToolTip(1, plain_tip(str(path)))
        self.last_scan = None
        self._show_counts()

    def items(self) -> list[tuple[str, str]]:
        found = [self.entries.topLevelItem(row) for row in range(self.entries.topLevelItemCount())]
        return [(str(i.data(0, ROLE)), i.text(1)) for i in found if i is not None]

    def data_paths(self) -> list[str]:
        return [path for kind, path in self.items() if kind != "watch"]

    def watch_folders(self) -> list[str]:
        return [path for kind, path in self.items() if kind == "watch"]

    def remove_selected(self) -> None:
        item = self.entries.currentItem()
        if item is not None:
            self.entries.takeTopLevelItem(self.entries.indexOfTopLevelItem(item))
            self.last_scan = None
            self._show_counts()

    def scan(self) -> None:
        from app import api

        paths = [*self.data_paths(), *self.watch_folders()]
        if not paths:
            return
        self.scan_button.setEnabled(False)
        self.scan_result.setStyleSheet(HINT_STYLE)
        self.scan_result.setText("scanning...")
        job, dialog = _run(
            self,
            "Scanning (nothing is stored)...",
            lambda progress: api.scan_data(paths, progress=progress),
            self._scanned,
            self._scan_failed,
        )
        self.scan_job, self.scan_dialog = job, dialog

    def _scanned(self, result: object) -> None:
        self._close_scan()
        self.last_scan = result  # type: ignore[assignment]
        if self.last_scan is not None:
            self.scan_result.setStyleSheet(OK_STYLE if not self.last_scan.errors else ERROR_STYLE)
            lines = [scan_summary(self.last_scan)]
            lines += [f"{path}: {why}" for path, why in self.last_scan.errors[:3]]  # why omits the path
            self.scan_result.setText("\n".join(lines))

    def _scan_failed(self, message: str) -> None:
        self._close_scan()
        self.scan_result.setStyleSheet(ERROR_STYLE)
        self.scan_result.setText(message)

    def _close_scan(self) -> None:
        if self.scan_dialog is not None:
            self.scan_dialog.reset()
            self.scan_dialog.deleteLater()
            self.scan_dialog = None
        self.scan_button.setEnabled(True)

    def _show_counts(self) -> None:
        data, watch = len(self.data_paths()), len(self.watch_folders())
        self.scan_result.setStyleSheet(HINT_STYLE)
        if data or watch:
            self.scan_result.setText(
                f"{data} data location(s), {watch} watch folder(s); Scan counts what is in them."
            )
        else:
            self.scan_result.setText("Nothing added yet: a project may start empty.")

    def _browse(self, kind: str) -> None:
        chosen: list[str] = []
        if kind in ("folder", "dicom", "watch"):
            title = {"folder": "Data folder", "dicom": "DICOM folder", "watch": "Watch folder"}[kind]
            folder = QFileDialog.getExistingDirectory(self, title)
            chosen = [folder] if folder else []
        else:
            filters = {"files": IMAGE_FILTER, "archive": ARCHIVE_FILTER, "video": VIDEO_FILTER}[kind]
            chosen, _ = QFileDialog.getOpenFileNames(self, "Add data", "", filters)
        if chosen:
            self.add_paths(kind, list(chosen))


class OntologyPage(QWizardPage):
    """Step 3: the labeling interface, from a shipped template or blank."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from app.resources import ontology_templates, template_title

        self.setTitle("3 of 3 · Labeling interface")
        self.setSubTitle("Classes, their colours and hotkeys, what may be drawn, and the questions asked.")
        self.templates = ontology_templates()
        self.template = QComboBox(self)
        self.template.addItem("Blank", "")
        for name in self.templates:
            self.template.addItem(template_title(name), name)
        self.editor = OntologyEditor(Ontology(classes=()), self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Start from", self))
        row.addWidget(self.template)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.editor, 1)
        self._applied = 0
        self.template.currentIndexChanged.connect(self._template_chosen)
        self.editor.valid_changed.connect(lambda _ok: self.completeChanged.emit())

    def choose_template(self, name: str) -> None:
        """Start from template ``name`` (a file stem under resources/ontologies) or "" for blank."""
        index = self.template.findData(name)
        if index < 0:
            raise KeyError(f"no ontology template {name!r}; known: {list(self.templates)}")
        self.template.setCurrentIndex(index)

    def isComplete(self) -> bool:
        return self.editor.is_valid()

    def _template_chosen(self, index: int) -> None:
        if self.editor.modified:
            answer = QMessageBox.question(
                self,
                "Replace the classes?",
                "Starting from another template replaces the classes edited here.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                self.template.blockSignals(True)
                self.template.setCurrentIndex(self._applied)
                self.template.blockSignals(False)
                return
        name = self.template.itemData(index)
        data = json.loads(self.templates[name].read_text(encoding="utf-8")) if name else {"classes": []}
        self.editor.set_ontology(data)
        self._applied = index


class SetupWizard(QWizard):
    """Finish creates the project (``api.create_project``), remembers the watch folders and registers
    the data with a cancellable progress dialog; ``project`` is then the open project."""

    created = Signal(object)  # the Project
    starting = Signal(object)  # the ProgressJob of Finish, before it runs (to follow its progress)

    def __init__(
        self, database: str | None = None, *, user: str | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("New Sitelabel project")
        self.resize(1000, 760)
        self.user = user
        self.name_page = NamePage(database, self)
        self.data_page = DataPage(self)
        self.ontology_page = OntologyPage(self)
        for page in (self.name_page, self.data_page, self.ontology_page):
            self.addPage(page)
        self.project: Project | None = None
        self.registered: list[int] = []
        self.problems: list[tuple[str, str]] = []
        self.result_text = ""
        self.error_text = ""
        self.cancelled = False
        self.job: ProgressJob | None = None
        self.progress: QProgressDialog | None = None

    def accept(self) -> None:
        """Finish: create and fill the project in the background; close once it is done."""
        if self.project is not None:
            super().accept()
            return
        if self.job is None:
            self.start_creation()

    def start_creation(self) -> None:
        from app import api

        db, name, user = self.name_page.database(), self.name_page.name.text().strip(), self.user
        settings = self.name_page.settings()
        ontology = self.ontology_page.editor.ontology()
        data, watch = self.data_page.data_paths(), self.data_page.watch_folders()

        def create(report: Callable[[int, int], bool]) -> Created:
            project = api.create_project(db, name, ontology, settings=settings, user=user)
            try:  # the project exists from here on: a later failure is reported, not retried
                if watch:
                    project.set_watch_folders(watch)
                # what is in a watch folder now is registered too: the watcher only sees new files
                ids = project.import_data([*data, *watch], progress=report) if data or watch else []
                return Created(project, ids, list(getattr(project, "last_import_errors", [])))
            except (SitelabelError, OSError) as exc:
                return Created(project, [], [], str(exc))

        self.error_text = ""
        self.button(QWizard.WizardButton.FinishButton).setEnabled(False)
        self.button(QWizard.WizardButton.BackButton).setEnabled(False)
        self.job, self.progress = _run(
            self,
            f"Creating {name!r} and registering data...",
            create,
            self._created,
            self._failed,
            before_start=self.starting.emit,
        )

    def _created(self, result: object) -> None:
        if not isinstance(result, Created):
            return
        self.cancelled = self.job is not None and self.job.cancelled
        self._close_progress()
        self.project, self.registered, self.problems = result.project, result.ids, result.problems
        text = f"Project {result.project.name!r} created; {len(result.ids)} assets registered"
        if result.problems:
            text += f", {len(result.problems)} problems (first: {': '.join(result.problems[0])})"
        if self.cancelled:
            text += " (registering was cancelled: run `sitelabel import` for the rest)"
        if result.error:
            text += f"; registering stopped: {result.error}"
        self.result_text = text
        self.created.emit(result.project)
        super().accept()

    def _failed(self, message: str) -> None:
        """Nothing was created: say why and stay on the page so the choice can be corrected."""
        self._close_progress()
        self.job = None
        self.error_text = message
        self.button(QWizard.WizardButton.FinishButton).setEnabled(True)
        self.button(QWizard.WizardButton.BackButton).setEnabled(True)
        QMessageBox.warning(self, "Project not created", plain_tip(message))

    def _close_progress(self) -> None:
        if self.progress is not None:
            self.progress.reset()
            self.progress.deleteLater()
            self.progress = None
