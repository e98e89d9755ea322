"""Project > Project settings...: the workflow settings (consensus share and count, batch size,
lease time), editable by project admins and read-only for everyone else, saying why.

Each field is checked as it is typed (app.workflow.project_settings.read_draft, no Qt); Save stores
the changed ones through the API, which checks the role again and audits the change. The page says
what a change does to the items already in the queue, in the words of the API and the CLI help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import SitelabelError
from app.core.permissions import Action
from app.editor.plain import plain_label, plain_tip
from app.workflow.project_settings import ON_CHANGE, SETTINGS, Draft, SettingsChange, read_draft

if TYPE_CHECKING:
    from app.api import Project

ERROR_STYLE = "color: #c0392b;"
HINT_STYLE = "color: palette(mid);"


def _wrapped(text: str, parent: QWidget, style: str = "") -> QLabel:
    label = plain_label(text, parent)
    label.setWordWrap(True)
    if style:
        label.setStyleSheet(style)
    return label


class ProjectSettingsDialog(QDialog):
    """See the module doc. ``fields`` and ``errors`` hold each setting's edit and message by key."""

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.settings = project.settings
        self.editable = project.can(Action.CHANGE_SETTINGS)
        self.change: SettingsChange | None = None  # what the last Save did
        self.setWindowTitle(f"Project settings: {project.name}")
        self.setMinimumWidth(640)
        layout = QVBoxLayout(self)
        role = project.role
        why = (
            "You are a project admin: changes are saved for everyone and recorded in the audit log."
            if self.editable
            else f"Read-only: only project admins can change these settings; you are "
            f"{'a ' + role.value.replace('_', ' ') if role else 'not a member'} in {project.name!r}."
        )
        self.reason = _wrapped(why, self, "" if self.editable else "font-weight: bold;")
        layout.addWidget(self.reason)
        grid = QGridLayout()
        grid.setColumnStretch(2, 1)
        self.fields: dict[str, QLineEdit] = {}
        self.errors: dict[str, QLabel] = {}
        for row, spec in enumerate(SETTINGS):
            tip = plain_tip(f"{spec.meaning}.\nValues: {spec.allowed}.\nOn a change: {spec.on_change}.")
            title = plain_label(spec.title, self)
            title.setToolTip(tip)
            edit = QLineEdit(spec.edit(getattr(self.settings, spec.field)), self)
            edit.setObjectName(f"setting-{spec.key}")
            edit.setToolTip(tip)
            edit.setReadOnly(not self.editable)  # not disabled: the values stay readable
            edit.setFrame(self.editable)
            edit.setMaximumWidth(120)
            edit.textChanged.connect(self._check)
            meaning = spec.meaning[:1].upper() + spec.meaning[1:]
            hint = _wrapped(f"{meaning}.\nValues: {spec.allowed}.", self, HINT_STYLE)
            error = _wrapped("", self, ERROR_STYLE)
            error.hide()
            grid.addWidget(title, 2 * row, 0)
            grid.addWidget(edit, 2 * row, 1)
            grid.addWidget(hint, 2 * row, 2)
            grid.addWidget(error, 2 * row + 1, 1, 1, 2)
            self.fields[spec.key], self.errors[spec.key] = edit, error
        grid.setVerticalSpacing(4)
        layout.addLayout(grid)
        layout.addSpacing(8)
        layout.addWidget(
            _wrapped("What a change does to items already in the queue", self, "font-weight: bold;")
        )
        layout.addWidget(_wrapped(ON_CHANGE, self, HINT_STYLE))
        self.status = _wrapped("", self)
        layout.addWidget(self.status)
        layout.addStretch(1)  # extra height goes below the text, not between its lines
        buttons = QDialogButtonBox(self)
        self.save_button = buttons.addButton("Save", QDialogButtonBox.ButtonRole.AcceptRole)
        self.save_button.setVisible(self.editable)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._check()

    def draft(self) -> Draft:
        """The form as typed, checked."""
        return read_draft(self.settings, {key: edit.text() for key, edit in self.fields.items()})

    def _check(self) -> None:
        draft = self.draft()
        for key, label in self.errors.items():
            label.setText(draft.errors.get(key, ""))
            label.setVisible(key in draft.errors)
        self.status.setText(draft.errors.get("*", ""))
        self.status.setStyleSheet(ERROR_STYLE if "*" in draft.errors else "")
        self.save_button.setEnabled(self.editable and draft.savable)

    def save(self) -> None:
        """Store the changed settings (the API checks the role and audits), then close."""
        draft = self.draft()
        if not draft.savable:
            return
        try:
            self.change = self.project.update_settings(**draft.changes)
        except SitelabelError as exc:
            QMessageBox.warning(self, "Settings not saved", plain_tip(str(exc)))
            return
        self.accept()

    def summary(self) -> str:
        """One line on what the last Save changed, for the status bar."""
        if self.change is None or not self.change.changed:
            return "Project settings unchanged."
        shown = {s.field: s for s in SETTINGS}
        parts = [
            f"{shown[f].title.lower()} {shown[f].show(old)} -> {shown[f].show(new)}"
            for f, (old, new) in self.change.changed.items()
        ]
        replanned = (
            f"; {self.change.replanned} unclaimed item(s) planned again" if self.change.replanned else ""
        )
        return f"Project settings saved: {', '.join(parts)}{replanned}."


def edit_project_settings(project: Project, parent: QWidget | None = None) -> SettingsChange | None:
    """Project > Project settings...: show the page; returns what was saved (None: closed without
    saving). The main window's status bar shows what changed."""
    dialog = ProjectSettingsDialog(project, parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    if isinstance(parent, QMainWindow):
        parent.statusBar().showMessage(dialog.summary(), 10000)
    return dialog.change
