"""Whole-asset classifications and the attributes of the selected annotation.

Everything is an edit of the document through its undo stack: ticking a classification adds a
classification annotation, unticking removes it, changing an answer replaces the annotation.
"""

from __future__ import annotations

import itertools
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from app.core.annotations import HUMAN, Annotation, Kind
from app.core.commands import (
    AddAnnotation,
    Command,
    LabelDocument,
    RemoveAnnotation,
    ReplaceAnnotation,
    UndoStack,
)
from app.core.ontology import Ontology
from app.editor.attributes_panel import AttributesForm
from app.editor.class_panel import swatch

_gestures = itertools.count(1)


class AnnotationPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ontology = Ontology(classes=())
        self.doc: LabelDocument | None = None
        self.stack: UndoStack | None = None
        self.classes = QListWidget(self)
        self.classes.itemChanged.connect(self._ticked)
        self.classes.currentItemChanged.connect(lambda *_: self._edit_current_classification())
        self.form = AttributesForm(self)
        self.form.changed.connect(self._answers_changed)
        heading = QLabel("Whole asset")
        # who proposed the selected annotation: a model's name and confidence for a pre-label
        self.prelabel_info = QLabel(self)
        self.prelabel_info.setTextFormat(Qt.TextFormat.PlainText)  # model and class names: plain
        self.prelabel_info.setObjectName("prelabel-info")
        self.prelabel_info.setWordWrap(True)
        self.prelabel_info.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(heading)
        layout.addWidget(self.classes)
        layout.addWidget(self.prelabel_info)
        layout.addWidget(self.form)
        layout.addStretch(1)
        self._editing: int | None = None  # local id whose attributes the form edits
        self._gesture = 0
        self._filling = False

    def bind(self, ontology: Ontology, doc: LabelDocument, stack: UndoStack) -> None:
        """Show one asset's classifications (frame 0) from its document."""
        self.ontology, self.doc, self.stack = ontology, doc, stack
        self.refresh()

    def refresh(self) -> None:
        """Tick what the document holds; items are updated in place so selection and focus stay."""
        self._filling = True
        present = {a.label for a in self._classifications().values()}
        names = [c.name for c in self.ontology.classes if Kind.CLASSIFICATION in c.kinds]
        if [self.classes.item(i).text() for i in range(self.classes.count())] != names:
            self.classes.clear()
            for cls in self.ontology.classes:
                if cls.name in names:
                    item = QListWidgetItem(swatch(cls.color), cls.name)
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    self.classes.addItem(item)
        for i in range(self.classes.count()):
            item = self.classes.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in present else Qt.CheckState.Unchecked)
        self._filling = False
        if self._editing is None or self.doc is None or not self._exists(self._editing):
            self._editing = None
            self.form.edit("", (), {})

    def show_attributes_of(self, aid: int | None) -> None:
        """Edit the attributes of the annotation the select tool picked (None clears the form)."""
        if aid is None or self.doc is None or not self._exists(aid):
            self._editing = None
            self.form.edit("", (), {})
            self.prelabel_info.hide()
            return
        annotation = self.doc.annotation(aid)
        self._show_origin(annotation)
        self._start_editing(aid, annotation)

    def _show_origin(self, annotation: Annotation) -> None:
        if annotation.source == HUMAN:
            self.prelabel_info.hide()
            return
        model = annotation.source.removeprefix("model:")
        sure = "" if annotation.confidence is None else f", confidence {annotation.confidence:.2f}"
        self.prelabel_info.setText(
            f"Pre-label by {model}{sure}.\nA accepts it as yours, Delete rejects, editing makes it yours."
        )
        self.prelabel_info.show()

    # --- internals ------------------------------------------------------------------------
    def _classifications(self) -> dict[int, Annotation]:
        if self.doc is None:
            return {}
        return {aid: a for aid, a in self.doc.annotations(0).items() if a.kind is Kind.CLASSIFICATION}

    def _exists(self, aid: int) -> bool:
        try:
            assert self.doc is not None
            self.doc.annotation(aid)
        except (KeyError, LookupError, AssertionError):
            return False
        return True

    def _start_editing(self, aid: int, annotation: Annotation) -> None:
        self._editing, self._gesture = aid, next(_gestures)
        try:
            specs = self.ontology.get(annotation.label).attributes
        except Exception:  # a label the ontology no longer has: nothing to ask
            specs = ()
        self.form.edit(f"{annotation.label} ({annotation.kind.value})", specs, dict(annotation.attributes))

    def _ticked(self, item: QListWidgetItem) -> None:
        if self._filling or self.doc is None or self.stack is None:
            return
        label = item.text()
        existing = [aid for aid, a in self._classifications().items() if a.label == label]
        if item.checkState() == Qt.CheckState.Checked and not existing:
            self._push(
                AddAnnotation(
                    Annotation(kind=Kind.CLASSIFICATION, label=label, frame=0), text=f"Classify as {label}"
                )
            )
        elif item.checkState() != Qt.CheckState.Checked:
            for aid in existing:
                self._push(RemoveAnnotation(aid, text=f"Remove {label}"))
        self._edit_current_classification()

    def _edit_current_classification(self) -> None:
        item = self.classes.currentItem()
        if item is None:
            return
        for aid, annotation in self._classifications().items():
            if annotation.label == item.text():
                self._start_editing(aid, annotation)
                return

    def _answers_changed(self, values: dict[str, Any]) -> None:
        if self._editing is None or self.doc is None or not self._exists(self._editing):
            return
        before = self.doc.annotation(self._editing)
        after = before.evolve(attributes=values)
        # one undo step per editing session of one annotation's answers
        self._push(
            ReplaceAnnotation(self._editing, before, after, gesture=self._gesture, text="Edit attributes")
        )

    def _push(self, command: Command) -> None:
        if self.stack is not None:
            self.stack.push(command)
