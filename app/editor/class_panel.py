"""The ontology's classes with colour swatches and hotkeys; picking one sets the active label."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from app.core.annotations import Kind
from app.core.ontology import LabelClass, Ontology
from app.editor.plain import plain_tip


def swatch(color: str, size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class ClassPanel(QWidget):
    """Emits ``class_chosen(name, index)``; index is the ontology's 1-based class index, the value
    painted into label maps."""

    class_chosen = Signal(str, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget(self)
        self.list.currentRowChanged.connect(self._row_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        self._classes: tuple[LabelClass, ...] = ()
        self._ontology = Ontology(classes=())

    def set_ontology(self, ontology: Ontology) -> None:
        # classes that only classify the whole asset are answered in the Annotation panel, not drawn
        self._classes = tuple(c for c in ontology.classes if set(c.kinds) - {Kind.CLASSIFICATION})
        self._ontology = ontology
        self.list.clear()
        for cls in self._classes:
            kinds = ", ".join(k.value for k in cls.kinds)
            key = f"[{cls.hotkey}]  " if cls.hotkey else ""
            item = QListWidgetItem(swatch(cls.color), f"{key}{cls.name}")
            tip = f"{cls.name}: {kinds}" + (f"\n{cls.description}" if cls.description else "")
            item.setToolTip(plain_tip(tip))  # names and descriptions come from people
            item.setData(Qt.ItemDataRole.UserRole, cls.name)
            self.list.addItem(item)
        if self._classes:
            self.list.setCurrentRow(0)

    @property
    def current(self) -> LabelClass | None:
        row = self.list.currentRow()
        return self._classes[row] if 0 <= row < len(self._classes) else None

    def choose(self, name: str) -> None:
        for row, cls in enumerate(self._classes):
            if cls.name == name:
                self.list.setCurrentRow(row)
                return

    def _row_changed(self, row: int) -> None:
        if 0 <= row < len(self._classes):
            name = self._classes[row].name
            self.class_chosen.emit(name, self._ontology.index_of(name))
