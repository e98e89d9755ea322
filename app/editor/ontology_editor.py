"""Edit a labeling interface: classes (name, colour, hotkey, allowed kinds) and nested attributes.

Used on the set-up wizard's third page and from the main window (Project > Edit ontology...). The
editor works on plain drafts (the JSON form of :mod:`app.core.ontology`), so a half-typed value
never has to be a valid ``Ontology``; the core's ``from_dict`` stays the judge of what is valid,
and its message is shown next to the field it concerns. Import/Export JSON is exactly
``Ontology.to_dict()``.

The parts: :mod:`app.editor.ontology_model` holds the ontology being edited and its checks (no
widgets), :mod:`app.editor.ontology_fields` the class form, :mod:`app.editor.ontology_attributes`
the attribute tree; this module lays them out and keeps them in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import SitelabelError
from app.core.ontology import Ontology
from app.editor.class_panel import swatch
from app.editor.ontology_attributes import AttributeEditor
from app.editor.ontology_fields import ERROR_STYLE, ClassForm, button, shortcut
from app.editor.ontology_model import (
    OntologyDraft,
    read_ontology_json,
    reserved_keys,
    write_ontology_json,
)
from app.editor.plain import plain_tip

if TYPE_CHECKING:
    from app.api import Project

__all__ = ["OntologyDialog", "OntologyEditor", "edit_project_ontology", "reserved_keys"]


class OntologyEditor(QWidget):
    """Classes on the left, the selected class's fields and attribute tree on the right.

    ``valid_changed(bool)`` follows whether the whole ontology passes ``Ontology.from_dict``
    (and the editor's own checks: a name, a kind, free hotkeys); dialogs disable OK while false.
    Keys: Ctrl+N new class, Del removes the focused class or attribute, Alt+Up/Down move,
    Ctrl+Shift+N new attribute.
    """

    valid_changed = Signal(bool)
    changed = Signal()

    def __init__(
        self,
        ontology: Ontology | Mapping[str, Any] | None = None,
        parent: QWidget | None = None,
        *,
        reserved: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = OntologyDraft(reserved if reserved is not None else reserved_keys())
        self._valid = False
        self.modified = False
        self.problems: list[dict[str, str]] = []  # per class, from the last check
        self.summary_text = ""
        self._build()
        self.set_ontology(ontology if ontology is not None else Ontology(classes=()))

    # --- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.class_list = QListWidget(self)
        self.class_list.setMinimumWidth(190)
        self.add_button = button(self, "Add class", "New class (Ctrl+N)", self.add_class)
        self.remove_button = button(self, "Remove", "Remove the selected class (Del)", self.remove_class)
        self.up_button = button(self, "Up", "Move up (Alt+Up)", lambda: self.move_class(-1))
        self.down_button = button(self, "Down", "Move down (Alt+Down)", lambda: self.move_class(1))
        left = QVBoxLayout()
        left.addWidget(QLabel("Classes", self))
        left.addWidget(self.class_list, 1)
        buttons = QGridLayout()
        buttons.addWidget(self.add_button, 0, 0)
        buttons.addWidget(self.remove_button, 0, 1)
        buttons.addWidget(self.up_button, 1, 0)
        buttons.addWidget(self.down_button, 1, 1)
        left.addLayout(buttons)
        left_box = QWidget(self)
        left_box.setLayout(left)

        self.form = ClassForm(self)
        self.attributes = AttributeEditor(self)
        attributes_box = QGroupBox("Attributes (questions asked for each label of this class)", self)
        QVBoxLayout(attributes_box).addWidget(self.attributes)
        right = QVBoxLayout()
        right.addWidget(self.form)
        right.addWidget(attributes_box, 1)
        right_box = QWidget(self)
        right_box.setLayout(right)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(left_box)
        splitter.addWidget(right_box)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([230, 620])

        self.import_button = button(self, "Import JSON...", "Load an ontology file", self._import_clicked)
        self.export_button = button(
            self, "Export JSON...", "Save as Ontology.to_dict() JSON", self._export_clicked
        )
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        keys = QLabel("Ctrl+N new class · Ctrl+Shift+N new attribute · Del remove · Alt+Up/Down move", self)
        keys.setStyleSheet("color: #9a9a9a;")
        bottom = QHBoxLayout()
        bottom.addWidget(self.import_button)
        bottom.addWidget(self.export_button)
        bottom.addSpacing(12)
        bottom.addWidget(self.summary, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter, 1)
        layout.addLayout(bottom)
        layout.addWidget(keys)

        self.class_list.currentRowChanged.connect(self._select)
        self.form.edited.connect(self._form_edited)
        self.attributes.edited.connect(self._revalidate)
        shortcut("Ctrl+N", self.add_class, self)
        shortcut("Ctrl+Shift+N", self.attributes.add_attribute, self)
        shortcut("Del", self.remove_class, self.class_list)
        shortcut("Alt+Up", lambda: self.move_class(-1), self.class_list)
        shortcut("Alt+Down", lambda: self.move_class(1), self.class_list)

    # --- content ----------------------------------------------------------------------------------
    def set_ontology(self, ontology: Ontology | Mapping[str, Any]) -> None:
        self.model.load(ontology)
        self.modified = False
        self._refresh_list(0 if self.model.classes else -1)
        self._revalidate(mark_modified=False)

    def to_dict(self) -> dict[str, Any]:
        """The ontology as ``Ontology.to_dict()`` would write it (raises ValidationError if invalid)."""
        return self.ontology().to_dict()

    def ontology(self) -> Ontology:
        return self.model.ontology()

    def is_valid(self) -> bool:
        return self._valid

    @property
    def current_row(self) -> int:
        return self.class_list.currentRow()

    def select_class(self, name: str) -> None:
        self.class_list.setCurrentRow(self.model.row_of(name))

    def add_class(self) -> None:
        self._refresh_list(self.model.add_class())
        self._revalidate()
        self.form.name.setFocus()
        self.form.name.selectAll()

    def remove_class(self) -> None:
        select = self.model.remove_class(self.current_row)
        if select is not None:  # None: no class was selected
            self._refresh_list(select)
            self._revalidate()

    def move_class(self, step: int) -> None:
        select = self.model.move_class(self.current_row, step)
        if select is not None:  # None: it cannot move that way
            self._refresh_list(select)
            self._revalidate()

    # --- JSON files -------------------------------------------------------------------------------
    def import_json(self, path: str | Path) -> Ontology:
        """Load an ontology file (validated by the core first); raises SitelabelError on a bad file."""
        ontology = read_ontology_json(path)
        self.set_ontology(ontology)
        self.modified = True
        self.changed.emit()
        return ontology

    def export_json(self, path: str | Path) -> None:
        """Write exactly ``Ontology.to_dict()`` (raises ValidationError while the ontology is invalid)."""
        write_ontology_json(path, self.ontology())

    def _import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import ontology", "", "Ontology JSON (*.json)")
        if path:
            try:
                self.import_json(path)
            except SitelabelError as exc:
                QMessageBox.warning(self, "Ontology not imported", plain_tip(str(exc)))

    def _export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export ontology", "ontology.json", "Ontology JSON (*.json)"
        )
        if path:
            try:
                self.export_json(path)
            except SitelabelError as exc:
                QMessageBox.warning(self, "Ontology not exported", plain_tip(str(exc)))

    # --- display ----------------------------------------------------------------------------------
    def _refresh_list(self, select: int) -> None:
        self.class_list.blockSignals(True)
        self.class_list.clear()
        for _ in self.model.classes:
            self.class_list.addItem(QListWidgetItem(""))
        self.class_list.blockSignals(False)
        self._paint_rows()
        self.class_list.setCurrentRow(select)
        self._select(select)

    def _paint_rows(self) -> None:
        for row, draft in enumerate(self.model.classes):
            item = self.class_list.item(row)
            if item is None:
                continue
            key = f"[{draft['hotkey'].strip()}]  " if draft["hotkey"].strip() else ""
            problems = self.problems[row] if row < len(self.problems) else {}
            item.setText(f"{key}{draft['name'].strip() or '(no name)'}" + ("  ⚠" if problems else ""))
            color = draft["color"].strip()
            item.setIcon(swatch(color if QColor.isValidColorName(color) else "#000000"))
            item.setForeground(QColor("#ff8a80" if problems else "#d8d8d8"))
            item.setToolTip(plain_tip("\n".join(problems.values())))

    def _select(self, row: int) -> None:
        classes = self.model.classes
        draft = classes[row] if 0 <= row < len(classes) else None
        self.form.load(draft)
        self.attributes.load(draft["attributes"] if draft else None, self.model.where(row))
        self.form.show_problems(self.problems[row] if draft and row < len(self.problems) else {})
        for each in (self.remove_button, self.up_button, self.down_button):
            each.setEnabled(draft is not None)

    def _form_edited(self, field: str) -> None:
        if field == "name":
            self.attributes.where = self.model.where(self.current_row)
        self._revalidate()

    def _revalidate(self, *, mark_modified: bool = True) -> None:
        check = self.model.check()
        self.problems = check.problems
        self.summary_text = check.summary
        self.summary.setText(check.summary)
        self.summary.setStyleSheet(ERROR_STYLE if not check.valid else "color: #9bd49b;")
        self._paint_rows()
        row = self.current_row
        self.form.show_problems(self.problems[row] if 0 <= row < len(self.problems) else {})
        self.attributes.refresh_problems()
        valid = check.valid
        self.export_button.setEnabled(valid)
        if mark_modified:
            self.modified = True
            self.changed.emit()
        if valid != self._valid:
            self._valid = valid
            self.valid_changed.emit(valid)


class OntologyDialog(QDialog):
    """The editor with OK/Cancel; OK stays disabled while the ontology is invalid."""

    def __init__(
        self, ontology: Ontology, parent: QWidget | None = None, *, reserved: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit ontology")
        self.resize(980, 680)
        self.editor = OntologyEditor(ontology, self, reserved=reserved)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Save new version")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.buttons)
        self.editor.valid_changed.connect(self._valid)
        self._valid(self.editor.is_valid())

    def _valid(self, ok: bool) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)


def edit_project_ontology(project: Project, parent: QWidget | None = None) -> Ontology | None:
    """Project > Edit ontology...: edit, then store a new version (project admins; the API enforces it)."""
    from app.core.permissions import Action

    if not project.can(Action.EDIT_ONTOLOGY):
        QMessageBox.information(
            parent,
            "Edit ontology",
            plain_tip(f"Only project admins can change the ontology of {project.name!r}."),
        )
        return None
    dialog = OntologyDialog(project.ontology, parent, reserved=reserved_keys(getattr(parent, "bindings", ())))
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    try:
        return project.set_ontology(dialog.editor.ontology())
    except SitelabelError as exc:
        QMessageBox.warning(parent, "Ontology not saved", plain_tip(str(exc)))
        return None
