"""Attribute editors follow the ontology, nested answers included; user text stays plain."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel

from app.core.ontology import Ontology, check_attributes
from app.editor.attributes_panel import AttributesForm

ONTOLOGY = Ontology.from_dict(
    {
        "classes": [
            {
                "name": "<b>liver</b>",
                "kinds": ["polygon"],
                "attributes": [
                    {
                        "name": "confidence",
                        "type": "enum",
                        "options": ["sure", "unsure"],
                        "children": {"unsure": [{"name": "reason", "type": "text"}]},
                    },
                    {"name": "malignant", "type": "bool"},
                ],
            }
        ]
    }
)


def test_nested_attributes_appear_and_stale_answers_go(qtbot) -> None:  # type: ignore[no-untyped-def]
    form = AttributesForm()
    qtbot.addWidget(form)
    cls = ONTOLOGY.classes[0]
    form.edit(cls.name, cls.attributes, {})
    emitted: list[dict] = []
    form.changed.connect(emitted.append)
    assert form.title.textFormat() == Qt.TextFormat.PlainText and form.title.text() == "<b>liver</b>"
    combo = form.findChild(QComboBox)
    combo.setCurrentText("unsure")
    labels = [label.text().strip() for label in form.findChildren(QLabel)]
    assert "reason" in labels  # the nested question shows once its option is chosen
    form.values["confidence/unsure"]["reason"] = "motion artefact"
    form.findChild(QCheckBox).setChecked(True)
    assert emitted[-1] == {
        "confidence": "unsure",
        "confidence/unsure": {"reason": "motion artefact"},
        "malignant": True,
    }
    combo = form.findChild(QComboBox)
    combo.setCurrentText("sure")
    assert emitted[-1] == {"confidence": "sure", "malignant": True}
    assert check_attributes(cls.attributes, emitted[-1], cls.name) == []
