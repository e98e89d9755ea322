"""File > Export: pick a format and a folder, and which labels leave; the dialog counts what the
export would hold (items, annotations per class, what is left out and why) in the background before
anything is written. The export runs in the background with progress and cancel, and the previous
export stays intact if it fails or is cancelled."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import Qt, QThreadPool, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QWidget,
)

from app.editor.export_counts import LABELS_HELP, STATUS_CHOICES, counts_text
from app.editor.plain import plain_label, plain_tip
from app.editor.workers import ProgressJob, submit

if TYPE_CHECKING:
    from app.api import Project
    from app.exchange.export_preview import ExportPreview

FORMATS = ("coco", "png-masks", "yolo", "voc", "nifti", "dicom-seg", "nnunet", "project-json", "csv")
# the training layouts' choices (app.exchange.layout_options); "" lets the export decide
YOLO_TASKS = (("from the ontology", ""), ("detect: boxes", "detect"), ("segment: polygons", "segment"))
NNUNET_KINDS = (
    ("the kind the selection holds", ""),
    ("3d: series as NIfTI", "3d"),
    ("2d: images, frames as PNG", "2d"),
)


def _show_progress(progress: QProgressDialog, done: int, total: int) -> None:
    progress.setMaximum(total)
    progress.setValue(done)


class ExportDialog(QDialog):
    def __init__(
        self, project: Project, parent: QWidget | None = None, default_dir: Path | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export labels")
        self.project = project
        self.format = QComboBox(self)
        self.format.addItems([f for f in FORMATS if project.config.format_allowed(f)])  # site policy
        self.folder = QLineEdit(str(default_dir or project.config.export_dir or Path.home()), self)
        browse = QPushButton("Browse...", self)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder)
        row.addWidget(browse)
        self.dataset = QComboBox(self)
        self.dataset.addItem("all datasets")
        self.dataset.addItems(project.dataset_names())
        form = QFormLayout(self)
        form.addRow("Format", self.format)
        form.addRow("Folder", row)
        form.addRow("Dataset", self.dataset)
        self.yolo_task = QComboBox(self)
        for text, value in YOLO_TASKS:
            self.yolo_task.addItem(text, value)
        self.nnunet_kind = QComboBox(self)
        for text, value in NNUNET_KINDS:
            self.nnunet_kind.addItem(text, value)
        form.addRow("YOLO task", self.yolo_task)
        form.addRow("nnU-Net data", self.nnunet_kind)
        self.format.currentTextChanged.connect(self._layout_rows)
        self._layout_rows(self.format.currentText())
        self._label_rows(form)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.start)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.job: ProgressJob | None = None
        self.result_text = ""
        self.preview: ExportPreview | None = None
        self._asked = 0  # the latest count asked for: an older answer is dropped
        self._recount = QTimer(self, singleShot=True, interval=250)  # one count per burst of edits
        self._recount.timeout.connect(self.count)
        for signal in (
            self.format.currentTextChanged,
            self.dataset.currentTextChanged,
            self.labels.currentTextChanged,
            self.status.currentIndexChanged,
            self.prelabels.toggled,
        ):
            signal.connect(lambda *_: self._recount.start())
        self.skip_unwritable.toggled.connect(lambda *_: self._show_counts())
        self.count()

    def _label_rows(self, form: QFormLayout) -> None:
        """Which labels leave (the export's labels, status and pre-label options) and the counts."""
        self.labels = QComboBox(self)
        self.labels.setEditable(True)  # any labeler:NAME or source:... may be typed
        self.labels.addItems(self.project.export_label_choices())
        self.labels.setToolTip(LABELS_HELP)
        self.status = QComboBox(self)
        for text, value in STATUS_CHOICES:
            self.status.addItem(text, value)
        self.prelabels = QCheckBox("Include untouched model pre-labels", self)
        self.skip_unwritable = QCheckBox("Skip what this format cannot write", self)
        self.skip_unwritable.setToolTip(
            "Without it, an item the format cannot hold stops the export and nothing is written; "
            "with it, the rest is written and the skipped items are listed by reason."
        )
        self.counts = plain_label("Counting...", self)  # class names and messages: plain text
        self.counts.setWordWrap(True)
        self.counts.setMinimumWidth(460)
        self.counts.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.counts.setMinimumHeight(self.counts.fontMetrics().lineSpacing() * 8)  # room for the usual counts
        form.addRow("Labels", self.labels)
        form.addRow("Status", self.status)
        form.addRow("", self.prelabels)
        form.addRow("", self.skip_unwritable)
        form.addRow("Would export", self.counts)

    def options(self) -> dict[str, Any]:
        """The export's keyword arguments the dialog sets (labels, status, pre-labels, dataset)."""
        return {
            "dataset": None if self.dataset.currentIndex() == 0 else self.dataset.currentText(),
            "labels": self.labels.currentText().strip() or None,
            "status": self.status.currentData(),
            "include_prelabels": self.prelabels.isChecked(),
        }

    def count(self) -> None:
        """Count what the export would hold, off the UI thread (it reads every selected item)."""
        self._asked += 1
        asked, fmt, options = self._asked, self.format.currentText(), self.options()
        self.counts.setText("Counting...")
        submit(
            lambda: self.project.export_preview(fmt, **options),
            partial(self._counted, asked),
            partial(self._not_counted, asked),
        )

    def _current(self, asked: int) -> bool:
        """Whether a count's answer is still wanted: the latest asked, and the dialog not deleted (a
        dialog dropped without done(), e.g. its parent closed, would raise on its widgets)."""
        return asked == self._asked and shiboken6.isValid(self.counts)

    def _counted(self, asked: int, preview: ExportPreview) -> None:
        if self._current(asked):
            self.preview = preview
            self._show_counts()

    def _not_counted(self, asked: int, message: str) -> None:
        if self._current(asked):
            self.preview = None
            self.counts.setText(f"Cannot count: {message}")

    def done(self, result: int) -> None:
        self._asked += 1  # a count still running is for a closed dialog: its answer is dropped
        super().done(result)

    def _show_counts(self) -> None:
        if self.preview is not None:
            self.counts.setText(counts_text(self.preview, skip_unwritable=self.skip_unwritable.isChecked()))
            if self.counts.heightForWidth(self.counts.width()) > self.counts.height():
                self.adjustSize()  # more reasons than the room kept for them

    def _layout_rows(self, fmt: str) -> None:
        """The YOLO and nnU-Net choices only for their format (both use the project's splits)."""
        self.yolo_task.setEnabled(fmt == "yolo")
        self.nnunet_kind.setEnabled(fmt == "nnunet")

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if chosen:
            self.folder.setText(chosen)

    def start(self) -> None:
        fmt, out = self.format.currentText(), Path(self.folder.text())
        options = {**self.options(), "skip_unwritable": self.skip_unwritable.isChecked()}
        progress = QProgressDialog(f"Exporting {fmt} to {out}...", "Cancel", 0, 0, self)
        progress.setWindowTitle("Export")
        progress.setMinimumDuration(300)
        task: str | None = self.yolo_task.currentData() or None
        kind: str | None = self.nnunet_kind.currentData() or None
        job = ProgressJob(
            lambda report: self.project.export(
                fmt, out, progress=report, yolo_task=task, nnunet_kind=kind, **options
            )
        )
        job.signals.progressed.connect(lambda done, total: _show_progress(progress, done, total))
        progress.canceled.connect(lambda: setattr(job, "cancelled", True))
        job.signals.done.connect(lambda report: self._finished(progress, report))
        job.signals.failed.connect(lambda message: self._failed(progress, message))
        self.job = job
        QThreadPool.globalInstance().start(job)

    def _finished(self, progress: QProgressDialog, report: object) -> None:
        progress.reset()
        written = getattr(report, "files_written", 0)
        unchanged = getattr(report, "files_unchanged", 0)
        self.result_text = (
            f"{written} files written, {unchanged} unchanged, in {getattr(report, 'out_dir', '')}"
        )
        QMessageBox.information(self, "Export finished", plain_tip(self.result_text))
        self.accept()

    def _failed(self, progress: QProgressDialog, message: str) -> None:
        progress.reset()
        self.result_text = message
        text = f"{message}\n\nThe previous export was left as it was."
        QMessageBox.warning(self, "Export not done", plain_tip(text))  # messages quote paths and names
