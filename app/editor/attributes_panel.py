"""Attribute editors built from the ontology: enum, bool, number, text, and nested classifications.

Answers to nested attributes are stored under ``"parent/value"`` keys, as app.core.ontology checks
them. The panel edits one mapping at a time and emits the whole new mapping on every change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.ontology import AttributeSpec, AttributeType

UNSET = "(not set)"


class AttributesForm(QWidget):
    """One form for ``specs``; nested children appear under their parent when its value selects them."""

    changed = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel(self)
        self._layout.addWidget(self.title)
        self._form_host = QWidget(self)
        self._layout.addWidget(self._form_host)
        self._specs: tuple[AttributeSpec, ...] = ()
        self.values: dict[str, Any] = {}
        self._building = False

    def edit(self, title: str, specs: Sequence[AttributeSpec], values: Mapping[str, Any]) -> None:
        self.title.setText(title)
        self.title.setTextFormat(Qt.TextFormat.PlainText)  # names come from users: never rich text
        self._specs, self.values = tuple(specs), dict(values)
        self._rebuild()

    def _rebuild(self) -> None:
        self._building = True
        old = self._form_host
        self._form_host = QWidget(self)
        form = QFormLayout(self._form_host)
        self._add_fields(form, self._specs, self.values, prefix="")
        self._layout.replaceWidget(old, self._form_host)
        old.deleteLater()
        self._building = False

    def _add_fields(
        self, form: QFormLayout, specs: Sequence[AttributeSpec], values: dict[str, Any], prefix: str
    ) -> None:
        for spec in specs:
            label = QLabel(prefix + spec.name + (" *" if spec.required else ""))
            label.setTextFormat(Qt.TextFormat.PlainText)
            form.addRow(label, self._field(spec, values))
            value = values.get(spec.name)
            nested = spec.children.get(str(value).lower() if isinstance(value, bool) else str(value))
            if nested:
                key = f"{spec.name}/{value}"
                child_values = values.setdefault(key, {})
                if isinstance(child_values, dict):
                    self._add_fields(form, nested, child_values, prefix + "    ")

    def _field(self, spec: AttributeSpec, values: dict[str, Any]) -> QWidget:
        current = values.get(spec.name)
        if spec.type is AttributeType.ENUM:
            combo = QComboBox()
            combo.addItems([UNSET, *spec.options])
            combo.setCurrentIndex(spec.options.index(current) + 1 if current in spec.options else 0)
            combo.currentTextChanged.connect(
                lambda text, v=values, s=spec: self._set(v, s, None if text == UNSET else text)
            )
            return combo
        if spec.type is AttributeType.BOOL:
            box = QCheckBox()
            box.setChecked(bool(current))
            box.toggled.connect(lambda on, v=values, s=spec: self._set(v, s, bool(on)))
            return box
        if spec.type is AttributeType.NUMBER:
            spin = QDoubleSpinBox()
            spin.setDecimals(3)
            spin.setRange(
                spec.minimum if spec.minimum is not None else -1e9,
                spec.maximum if spec.maximum is not None else 1e9,
            )
            spin.setValue(float(current) if isinstance(current, int | float) else spin.minimum())
            spin.valueChanged.connect(lambda number, v=values, s=spec: self._set(v, s, float(number)))
            return spin
        line = QLineEdit(str(current) if current is not None else "")
        line.editingFinished.connect(lambda w=line, v=values, s=spec: self._set(v, s, w.text() or None))
        return line

    def _set(self, values: dict[str, Any], spec: AttributeSpec, value: Any) -> None:
        if self._building:
            return
        if value is None:
            values.pop(spec.name, None)
        else:
            values[spec.name] = value
        # answers under options no longer chosen are dropped, so stale nested answers never linger
        for key in [k for k in values if k.startswith(f"{spec.name}/") and k != f"{spec.name}/{value}"]:
            del values[key]
        if spec.children:
            self._rebuild()
        self.changed.emit(dict(self.values))
