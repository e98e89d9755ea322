"""The ontology editor's small widget parts: buttons, shortcuts, fields with an error line under
them, and the selected class's form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from app.editor.ontology_drafts import KIND_ORDER, Draft

ERROR_STYLE = "color: #ff8a80;"


def button(parent: QWidget, text: str, tip: str, slot: Callable[[], object]) -> QPushButton:
    made = QPushButton(text, parent)
    made.setToolTip(tip)
    made.clicked.connect(lambda _checked=False: slot())
    return made


def shortcut(keys: str, slot: Callable[[], object], scope: QWidget) -> None:
    made = QShortcut(QKeySequence(keys), scope)
    made.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    made.activated.connect(slot)


def line_edit(parent: QWidget, placeholder: str, width: int = 0) -> QLineEdit:
    edit = QLineEdit(parent)
    edit.setPlaceholderText(placeholder)
    if width:
        edit.setMaximumWidth(width)
    return edit


def error_label(parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)  # problems quote class names people typed
    label.setStyleSheet(ERROR_STYLE)
    label.setWordWrap(True)
    label.hide()
    return label


class ClassForm(QWidget):
    """The selected class's fields, each with its error line under it."""

    edited = Signal(str)  # the field that changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.draft: Draft | None = None
        self._loading = False
        self.name = line_edit(self, "e.g. liver")
        self.color = line_edit(self, "#rrggbb", 110)
        self.pick = button(self, "Pick...", "Choose the class colour", self.choose_color)
        self.swatch = QLabel(self)
        self.swatch.setFixedSize(22, 22)
        self.hotkey = line_edit(self, "e.g. 1", 110)
        self.kinds = {kind: QCheckBox(kind, self) for kind in KIND_ORDER}
        self.description = line_edit(self, "shown as a tooltip to labelers")
        self.errors = {f: error_label(self) for f in ("name", "color", "hotkey", "kinds")}

        color_row = QHBoxLayout()
        color_row.addWidget(self.swatch)
        color_row.addWidget(self.color)
        color_row.addWidget(self.pick)
        color_row.addStretch(1)
        kinds_grid = QGridLayout()
        for index, box in enumerate(self.kinds.values()):
            kinds_grid.addWidget(box, index // 3, index % 3)
        kinds_grid.setColumnStretch(3, 1)  # keep the boxes together on the left
        kinds_grid.setColumnMinimumWidth(0, 120)
        kinds_grid.setColumnMinimumWidth(1, 120)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        rows: list[tuple[str, QWidget | QHBoxLayout | QGridLayout]] = [
            ("Name", self.name), ("Colour", color_row), ("Hotkey", self.hotkey), ("Kinds", kinds_grid)
        ]  # fmt: skip
        for (title, field), error in zip(rows, self.errors.values(), strict=True):
            form.addRow(title, field)
            form.addRow("", error)  # the field's problem, right under it
        form.addRow("Description", self.description)
        for key in ("name", "color", "hotkey", "description"):
            getattr(self, key).textEdited.connect(lambda text, key=key: self.set_field(key, text))
        for kind, box in self.kinds.items():
            box.toggled.connect(lambda on, kind=kind: self._toggle_kind(kind, on))

    def load(self, draft: Draft | None) -> None:
        self.draft = draft
        self._loading = True
        try:
            self.setEnabled(draft is not None)
            values = draft or {"name": "", "color": "", "hotkey": "", "description": "", "kinds": []}
            self.name.setText(values["name"])
            self.color.setText(values["color"])
            self.hotkey.setText(values["hotkey"])
            self.description.setText(values["description"])
            for kind, box in self.kinds.items():
                box.setChecked(kind in values["kinds"])
            self._show_swatch()
        finally:
            self._loading = False

    def show_problems(self, problems: Mapping[str, str]) -> None:
        for field, label in self.errors.items():
            label.setText(problems.get(field, ""))
            label.setVisible(field in problems)

    def choose_color(self) -> None:
        if self.draft is None:
            return
        start = QColor(self.draft["color"]) if QColor.isValidColorName(self.draft["color"]) else QColor()
        chosen = QColorDialog.getColor(start, self, "Class colour")
        if chosen.isValid():
            self.set_color(chosen.name())

    def set_color(self, color: str) -> None:
        self.color.setText(color)
        self.set_field("color", color)

    def set_field(self, field: str, value: str) -> None:
        """Store a typed value in the class draft (what typing in the field does)."""
        if self._loading or self.draft is None:
            return
        self.draft[field] = value
        if field == "color":
            self._show_swatch()
        self.edited.emit(field)

    def _toggle_kind(self, kind: str, on: bool) -> None:
        if self._loading or self.draft is None:
            return
        kinds: list[str] = self.draft["kinds"]
        if on and kind not in kinds:
            kinds.append(kind)  # appended, not re-sorted: an imported order survives a round trip
        elif not on and kind in kinds:
            kinds.remove(kind)
        self.edited.emit("kinds")

    def _show_swatch(self) -> None:
        color = self.draft["color"].strip() if self.draft else ""
        fill = color if QColor.isValidColorName(color) else "transparent"
        self.swatch.setStyleSheet(f"background: {fill}; border: 1px solid #5a5c63;")
