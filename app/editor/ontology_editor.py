"""Edit a labeling interface: classes (name, colour, hotkey, allowed kinds) and nested attributes.

Used on the set-up wizard's third page and from the main window (Project > Edit ontology...). The
editor works on plain drafts (the JSON form of :mod:`app.core.ontology`), so a half-typed value
never has to be a valid ``Ontology``; the core's ``from_dict`` stays the judge of what is valid,
and its message is shown next to the field it concerns. Import/Export JSON is exactly
``Ontology.to_dict()``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import SitelabelError, ValidationError
from app.core.ontology import DEFAULT_COLORS, AttributeType, Ontology
from app.editor.class_panel import swatch
from app.editor.ontology_drafts import (
    KIND_ORDER,
    Draft,
    attribute_draft,
    attribute_problems,
    class_draft,
    class_out,
    class_problems,
    normal_key,
    row_texts,
)
from app.editor.plain import plain_tip

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.actions import Binding

ERROR_STYLE = "color: #ff8a80;"


def reserved_keys(bindings: Iterable[Binding] = ()) -> dict[str, str]:
    """Keys the editor already uses (tool keys, view keys, the window's bindings): key -> action."""
    from app.editor.tool_registry import TOOLS

    keys = {spec.shortcut: f"tool {spec.name}" for spec in TOOLS}
    keys.update({"F": "fit to window", "K": "play video", ".": "next frame", ",": "previous frame"})
    keys.update({"+": "zoom in", "=": "zoom in", "-": "zoom out", "?": "help", "[": "size", "]": "size"})
    for binding in bindings:
        if not binding.text.startswith("Class: "):  # class hotkeys are what is being edited
            keys.update({k: binding.text for k in binding.keys.split(" or ") if k})
    return {normal_key(k): what for k, what in keys.items()}


def _button(parent: QWidget, text: str, tip: str, slot: Callable[[], object]) -> QPushButton:
    button = QPushButton(text, parent)
    button.setToolTip(tip)
    button.clicked.connect(lambda _checked=False: slot())
    return button


def _shortcut(keys: str, slot: Callable[[], object], scope: QWidget) -> None:
    shortcut = QShortcut(QKeySequence(keys), scope)
    shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    shortcut.activated.connect(slot)


def _line(parent: QWidget, placeholder: str, width: int = 0) -> QLineEdit:
    edit = QLineEdit(parent)
    edit.setPlaceholderText(placeholder)
    if width:
        edit.setMaximumWidth(width)
    return edit


def _error_label(parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)  # problems quote class names people typed
    label.setStyleSheet(ERROR_STYLE)
    label.setWordWrap(True)
    label.hide()
    return label


class AttributeEditor(QWidget):
    """A class's attribute tree (nested under enum/bool answers) and the selected attribute's fields."""

    edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.drafts: list[Draft] | None = None
        self.where = ""
        self.problems: dict[int, str] = {}
        self._refs: dict[int, tuple[list[Draft], Draft | None, Draft | None, str]] = {}
        self._loading = False
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Attribute", "Type", "Options / range", "Required"])
        self.tree.setColumnWidth(0, 220)
        self.tree.setColumnWidth(1, 70)
        self.tree.setColumnWidth(2, 220)
        self.add_button = _button(self, "Add attribute", "New attribute (Ctrl+Shift+N)", self.add_attribute)
        self.nest_button = _button(
            self, "Add nested under", "Ask this only after that answer", self.add_nested
        )
        self.under = QComboBox(self)
        self.under.setMinimumWidth(110)
        self.remove_button = _button(self, "Remove", "Remove the selected attribute (Del)", self.remove)
        self.name = QLineEdit(self)
        self.type = QComboBox(self)
        self.type.addItems([t.value for t in AttributeType])
        self.type.setMaximumWidth(160)
        self.options = _line(self, "comma-separated answers, e.g. sure, unsure")
        self.required = QCheckBox("required", self)
        self.minimum, self.maximum = _line(self, "min", 90), _line(self, "max", 90)
        self.error = _error_label(self)
        buttons = QHBoxLayout()
        for widget in (self.add_button, self.nest_button, self.under, self.remove_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        range_row = QHBoxLayout()
        for part in (self.minimum, QLabel("to", self), self.maximum, self.required):
            range_row.addWidget(part)
        range_row.addStretch(1)
        self.fields = QWidget(self)
        form = QFormLayout(self.fields)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Name", self.name)
        form.addRow("Type", self.type)
        form.addRow("Options", self.options)
        form.addRow("Range", range_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.fields)
        layout.addWidget(self.error)

        self.tree.currentItemChanged.connect(lambda *_: self._show_selected())
        self.name.textEdited.connect(lambda text: self._set("name", text))
        self.type.currentTextChanged.connect(lambda text: self._set("type", text))
        self.options.textEdited.connect(
            lambda text: self._set("options", [o.strip() for o in text.split(",") if o.strip()])
        )
        self.required.toggled.connect(lambda on: self._set("required", on))
        self.minimum.textEdited.connect(lambda text: self._set("min", text))
        self.maximum.textEdited.connect(lambda text: self._set("max", text))
        _shortcut("Del", self.remove, self.tree)
        _shortcut("Alt+Up", lambda: self.move_attribute(-1), self.tree)
        _shortcut("Alt+Down", lambda: self.move_attribute(1), self.tree)

    def load(self, drafts: list[Draft] | None, where: str) -> None:
        self.drafts, self.where = drafts, where
        self.setEnabled(drafts is not None)
        self._rebuild(None)

    def selected(self) -> tuple[list[Draft], Draft | None, Draft | None, str] | None:
        item = self.tree.currentItem()
        return None if item is None else self._refs.get(int(item.data(0, Qt.ItemDataRole.UserRole)))

    def select(self, draft: Draft) -> None:
        for item in self._items():
            ref = self._refs[int(item.data(0, Qt.ItemDataRole.UserRole))]
            if ref[1] is draft:
                self.tree.setCurrentItem(item)
                return

    def add_attribute(self) -> None:
        if self.drafts is None:
            return
        ref = self.selected()
        siblings = ref[0] if ref is not None else self.drafts
        new = self._new(siblings)
        at = siblings.index(ref[1]) + 1 if ref is not None and ref[1] is not None else len(siblings)
        siblings.insert(at, new)
        self._changed(new)
        self.name.setFocus()
        self.name.selectAll()

    def add_nested(self) -> None:
        ref = self.selected()
        if ref is None or ref[1] is None or not self.under.currentText():
            return
        kids = ref[1]["children"].setdefault(self.under.currentText(), [])
        new = self._new(kids)
        kids.append(new)
        self._changed(new)

    def remove(self) -> None:
        ref = self.selected()
        if ref is None:
            return
        siblings, draft, parent, value = ref
        if draft is None and parent is not None:  # a whole "if x = value" branch
            parent["children"].pop(value, None)
        elif draft is not None:
            siblings.remove(draft)
            if parent is not None and not siblings:
                parent["children"].pop(value, None)  # no empty branch is left behind
        self._changed(parent)

    def move_attribute(self, step: int) -> None:
        ref = self.selected()
        if ref is None or ref[1] is None:
            return
        siblings, draft = ref[0], ref[1]
        row = siblings.index(draft)
        if 0 <= row + step < len(siblings):
            siblings[row], siblings[row + step] = siblings[row + step], siblings[row]
            self._changed(draft)

    def refresh_problems(self) -> None:
        self.problems = attribute_problems(self.drafts or [], self.where)
        for item in self._items():
            draft = self._refs[int(item.data(0, Qt.ItemDataRole.UserRole))][1]
            problem = self.problems.get(id(draft), "") if draft is not None else ""
            for column in range(4):
                item.setForeground(column, QColor("#ff8a80" if problem else "#d8d8d8"))
            item.setToolTip(0, plain_tip(problem))
        ref = self.selected()
        text = self.problems.get(id(ref[1]), "") if ref is not None and ref[1] is not None else ""
        self.error.setText(text)
        self.error.setVisible(bool(text))

    @staticmethod
    def _new(siblings: list[Draft]) -> Draft:
        names = {d["name"].strip() for d in siblings}
        name = next(f"attribute {n}" for n in range(1, 200) if f"attribute {n}" not in names)
        return attribute_draft({"name": name, "type": "text"})

    def _items(self) -> list[QTreeWidgetItem]:
        out: list[QTreeWidgetItem] = []
        stack = [self.tree.invisibleRootItem()]
        while stack:
            item = stack.pop()
            children = [item.child(i) for i in range(item.childCount())]
            stack += [c for c in children if c is not None]
            out += [c for c in children if c is not None]
        return out

    def _changed(self, keep: Draft | None) -> None:
        self._rebuild(keep)
        self.edited.emit()

    def _rebuild(self, keep: Draft | None) -> None:
        self.tree.blockSignals(True)
        self.tree.clear()
        self._refs.clear()
        self._fill(self.tree.invisibleRootItem(), self.drafts or [], None, "")
        self.tree.expandAll()
        self.tree.blockSignals(False)
        if keep is not None:
            self.select(keep)
        elif (first := self.tree.topLevelItem(0)) is not None:
            self.tree.setCurrentItem(first)
        self._show_selected()

    def _fill(
        self, parent_item: QTreeWidgetItem, drafts: list[Draft], parent: Draft | None, value: str
    ) -> None:
        for draft in drafts:
            item = self._item(parent_item, row_texts(draft), (drafts, draft, parent, value))
            for answer, kids in draft["children"].items():
                branch = self._item(item, [f"if {draft['name']} = {answer}"], (kids, None, draft, answer))
                branch.setForeground(0, QColor("#9a9a9a"))
                self._fill(branch, kids, draft, answer)

    def _item(self, parent: QTreeWidgetItem, texts: list[str], ref: Any) -> QTreeWidgetItem:
        item = QTreeWidgetItem(parent, texts)
        key = len(self._refs)
        self._refs[key] = ref
        item.setData(0, Qt.ItemDataRole.UserRole, key)
        return item

    def _show_selected(self) -> None:
        ref = self.selected()
        draft = ref[1] if ref is not None else None
        self._loading = True
        try:
            self.fields.setEnabled(draft is not None)
            self.remove_button.setEnabled(ref is not None)
            values = draft or attribute_draft({})
            self.name.setText(values["name"] if draft else "")
            self.type.setCurrentText(values["type"])
            self.options.setText(", ".join(values["options"]))
            self.options.setEnabled(values["type"] == "enum")
            self.required.setChecked(values["required"])
            self.minimum.setText(values["min"])
            self.maximum.setText(values["max"])
            for edit in (self.minimum, self.maximum):
                edit.setEnabled(values["type"] == "number")
            self.under.clear()
            answers = {"enum": values["options"], "bool": ["true", "false"]}.get(values["type"], [])
            self.under.addItems(answers if draft else [])
            self.nest_button.setEnabled(bool(draft and answers))
            self.under.setEnabled(bool(draft and answers))
        finally:
            self._loading = False
        self.refresh_problems()

    def _set(self, field: str, value: Any) -> None:
        ref = self.selected()
        if self._loading or ref is None or ref[1] is None:
            return
        draft = ref[1]
        draft[field] = value
        if field == "type":  # answers and ranges belong to one type; stale ones would be exported
            if value != "enum":
                draft["options"] = []
            if value != "number":
                draft["min"] = draft["max"] = ""
            self._changed(draft)
            return
        # typing updates the row in place: a rebuild would move the cursor of the field being typed in
        item = self.tree.currentItem()
        for column, text in enumerate(row_texts(draft)):
            if item is not None:
                item.setText(column, text)
        if field == "options":
            self.under.clear()
            self.under.addItems(draft["options"])
            self.nest_button.setEnabled(bool(draft["options"]))
            self.under.setEnabled(bool(draft["options"]))
        self.edited.emit()


class _ClassForm(QWidget):
    """The selected class's fields, each with its error line under it."""

    edited = Signal(str)  # the field that changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.draft: Draft | None = None
        self._loading = False
        self.name = _line(self, "e.g. liver")
        self.color = _line(self, "#rrggbb", 110)
        self.pick = _button(self, "Pick...", "Choose the class colour", self.choose_color)
        self.swatch = QLabel(self)
        self.swatch.setFixedSize(22, 22)
        self.hotkey = _line(self, "e.g. 1", 110)
        self.kinds = {kind: QCheckBox(kind, self) for kind in KIND_ORDER}
        self.description = _line(self, "shown as a tooltip to labelers")
        self.errors = {f: _error_label(self) for f in ("name", "color", "hotkey", "kinds")}

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
            getattr(self, key).textEdited.connect(lambda text, key=key: self._set(key, text))
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
        self._set("color", color)

    def _set(self, field: str, value: str) -> None:
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
        self.reserved = dict(reserved) if reserved is not None else reserved_keys()
        self._drafts: list[Draft] = []
        self._version = 1
        self._valid = False
        self.modified = False
        self.problems: list[dict[str, str]] = []
        self.summary_text = ""
        self._build()
        self.set_ontology(ontology if ontology is not None else Ontology(classes=()))

    # --- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.class_list = QListWidget(self)
        self.class_list.setMinimumWidth(190)
        self.add_button = _button(self, "Add class", "New class (Ctrl+N)", self.add_class)
        self.remove_button = _button(self, "Remove", "Remove the selected class (Del)", self.remove_class)
        self.up_button = _button(self, "Up", "Move up (Alt+Up)", lambda: self.move_class(-1))
        self.down_button = _button(self, "Down", "Move down (Alt+Down)", lambda: self.move_class(1))
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

        self.form = _ClassForm(self)
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

        self.import_button = _button(self, "Import JSON...", "Load an ontology file", self._import_clicked)
        self.export_button = _button(
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
        _shortcut("Ctrl+N", self.add_class, self)
        _shortcut("Ctrl+Shift+N", self.attributes.add_attribute, self)
        _shortcut("Del", self.remove_class, self.class_list)
        _shortcut("Alt+Up", lambda: self.move_class(-1), self.class_list)
        _shortcut("Alt+Down", lambda: self.move_class(1), self.class_list)

    # --- content ----------------------------------------------------------------------------------
    def set_ontology(self, ontology: Ontology | Mapping[str, Any]) -> None:
        data = ontology.to_dict() if isinstance(ontology, Ontology) else dict(ontology)
        self._version = max(1, int(data.get("version", 1)))
        self._drafts = [class_draft(c) for c in data.get("classes", ())]
        self.modified = False
        self._refresh_list(0 if self._drafts else -1)
        self._revalidate(mark_modified=False)

    def to_dict(self) -> dict[str, Any]:
        """The ontology as ``Ontology.to_dict()`` would write it (raises ValidationError if invalid)."""
        return self.ontology().to_dict()

    def ontology(self) -> Ontology:
        return Ontology.from_dict(self._plain(), version=self._version)

    def is_valid(self) -> bool:
        return self._valid

    def _plain(self) -> dict[str, Any]:
        return {"version": self._version, "classes": [class_out(d) for d in self._drafts]}

    @property
    def current_row(self) -> int:
        return self.class_list.currentRow()

    def select_class(self, name: str) -> None:
        for row, draft in enumerate(self._drafts):
            if draft["name"].strip() == name:
                self.class_list.setCurrentRow(row)
                return
        raise ValidationError(f"no class {name!r} in the editor")

    def add_class(self) -> None:
        used_colors = {d["color"].lower() for d in self._drafts}
        color = next((c for c in DEFAULT_COLORS if c not in used_colors), DEFAULT_COLORS[0])
        used_keys = {normal_key(d["hotkey"]) for d in self._drafts if d["hotkey"].strip()}
        key = next((str(n) for n in range(1, 10) if str(n) not in used_keys), "")
        names = {d["name"].strip() for d in self._drafts}
        name = next(f"class {n}" for n in range(len(self._drafts) + 1, len(self._drafts) + 100)
                    if f"class {n}" not in names)  # fmt: skip
        kinds = ["polygon", "mask"]
        self._drafts.append(class_draft({"name": name, "color": color, "hotkey": key, "kinds": kinds}))
        self._refresh_list(len(self._drafts) - 1)
        self._revalidate()
        self.form.name.setFocus()
        self.form.name.selectAll()

    def remove_class(self) -> None:
        row = self.current_row
        if not 0 <= row < len(self._drafts):
            return
        del self._drafts[row]
        self._refresh_list(min(row, len(self._drafts) - 1))
        self._revalidate()

    def move_class(self, step: int) -> None:
        row, target = self.current_row, self.current_row + step
        if not (0 <= row < len(self._drafts) and 0 <= target < len(self._drafts)):
            return
        self._drafts[row], self._drafts[target] = self._drafts[target], self._drafts[row]
        self._refresh_list(target)
        self._revalidate()

    # --- JSON files -------------------------------------------------------------------------------
    def import_json(self, path: str | Path) -> Ontology:
        """Load an ontology file (validated by the core first); raises SitelabelError on a bad file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValidationError(f"cannot read {path}: {exc}") from None
        ontology = Ontology.from_dict(data)
        self.set_ontology(ontology)
        self.modified = True
        self.changed.emit()
        return ontology

    def export_json(self, path: str | Path) -> None:
        """Write exactly ``Ontology.to_dict()`` (raises ValidationError while the ontology is invalid)."""
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
        try:
            Path(path).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise ValidationError(f"cannot write {path}: {exc.strerror or exc}") from None

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
        for _ in self._drafts:
            self.class_list.addItem(QListWidgetItem(""))
        self.class_list.blockSignals(False)
        self._paint_rows()
        self.class_list.setCurrentRow(select)
        self._select(select)

    def _paint_rows(self) -> None:
        for row, draft in enumerate(self._drafts):
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
        draft = self._drafts[row] if 0 <= row < len(self._drafts) else None
        self.form.load(draft)
        name = draft["name"].strip() if draft else ""
        self.attributes.load(draft["attributes"] if draft else None, f"class {name or f'#{row + 1}'!r}")
        self.form.show_problems(self.problems[row] if draft and row < len(self.problems) else {})
        for button in (self.remove_button, self.up_button, self.down_button):
            button.setEnabled(draft is not None)

    def _form_edited(self, field: str) -> None:
        if field == "name":
            row = self.current_row
            self.attributes.where = f"class {self._drafts[row]['name'].strip() or f'#{row + 1}'!r}"
        self._revalidate()

    def _revalidate(self, *, mark_modified: bool = True) -> None:
        self.problems = class_problems(self._drafts, self.reserved)
        whole = ""
        if not any(self.problems):
            try:
                Ontology.from_dict(self._plain())  # the core has the last word
            except (ValidationError, ValueError) as exc:
                whole = str(exc)
        count = sum(len(p) for p in self.problems)
        if not self._drafts:
            whole = "add at least one class (Ctrl+N)"
        if whole:
            text = whole
        elif count:
            first = next(msg for p in self.problems for msg in p.values())
            text = f"{count} problem{'s' if count > 1 else ''} to fix: {first}"
        else:
            text = f"{len(self._drafts)} classes, valid"
        self.summary_text = text
        self.summary.setText(text)
        self.summary.setStyleSheet(ERROR_STYLE if whole or count else "color: #9bd49b;")
        self._paint_rows()
        row = self.current_row
        self.form.show_problems(self.problems[row] if 0 <= row < len(self.problems) else {})
        self.attributes.refresh_problems()
        valid = not whole and not count
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
