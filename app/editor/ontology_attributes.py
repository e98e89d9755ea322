"""The ontology editor's attribute tree: a class's attributes, nested under enum/bool answers,
and the selected attribute's fields."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.ontology import AttributeType
from app.editor.ontology_drafts import Draft, attribute_draft, attribute_problems, row_texts
from app.editor.ontology_fields import button, error_label, line_edit, shortcut
from app.editor.plain import plain_tip


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
        self.add_button = button(self, "Add attribute", "New attribute (Ctrl+Shift+N)", self.add_attribute)
        self.nest_button = button(
            self, "Add nested under", "Ask this only after that answer", self.add_nested
        )
        self.under = QComboBox(self)
        self.under.setMinimumWidth(110)
        self.remove_button = button(self, "Remove", "Remove the selected attribute (Del)", self.remove)
        self.name = QLineEdit(self)
        self.type = QComboBox(self)
        self.type.addItems([t.value for t in AttributeType])
        self.type.setMaximumWidth(160)
        self.options = line_edit(self, "comma-separated answers, e.g. sure, unsure")
        self.required = QCheckBox("required", self)
        self.minimum, self.maximum = line_edit(self, "min", 90), line_edit(self, "max", 90)
        self.error = error_label(self)
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
        shortcut("Del", self.remove, self.tree)
        shortcut("Alt+Up", lambda: self.move_attribute(-1), self.tree)
        shortcut("Alt+Down", lambda: self.move_attribute(1), self.tree)

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
