"""File > Export: pick a format and a folder; the export runs in the background with progress and
cancel, and the previous export stays intact if it fails or is cancelled."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import (
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

from app.editor.plain import plain_tip
from app.editor.workers import ProgressJob

if TYPE_CHECKING:
    from app.api import Project

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
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.start)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.job: ProgressJob | None = None
        self.result_text = ""

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
        dataset = None if self.dataset.currentIndex() == 0 else self.dataset.currentText()
        progress = QProgressDialog(f"Exporting {fmt} to {out}...", "Cancel", 0, 0, self)
        progress.setWindowTitle("Export")
        progress.setMinimumDuration(300)
        task: str | None = self.yolo_task.currentData() or None
        kind: str | None = self.nnunet_kind.currentData() or None
        job = ProgressJob(
            lambda report: self.project.export(
                fmt, out, dataset=dataset, progress=report, yolo_task=task, nnunet_kind=kind
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
