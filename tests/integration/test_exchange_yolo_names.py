"""YOLO class names come from data.yaml as YAML says them: a list or a mapping of class id to name.

The ontology lists coin, shadow, tag; each data.yaml below orders the classes differently, so a
label whose class id silently fell back to the ontology's order would be stored as the wrong class.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app import api, sample_data
from app.core.errors import ValidationError

ONTOLOGY = {
    "classes": [
        {"name": "coin", "color": "#c0504d"},
        {"name": "shadow", "color": "#4f81bd"},
        {"name": "tag", "color": "#9bbb59", "kinds": ["classification", "point"]},
    ]
}
BOX = "0.5 0.5 0.25 0.25"  # centre and size, normalised


def _project(tmp_path: Path) -> tuple[api.Project, int]:
    project = api.create_project(str(tmp_path / "labels.db"), "yolo", ontology=ONTOLOGY, user="ann")
    (asset_id,) = project.import_data([sample_data.skimage_images() / "coins.png"])
    return project, asset_id


def _yolo(tmp_path: Path, data_yaml: str, lines: list[str]) -> Path:
    folder = tmp_path / "yolo"
    (folder / "labels").mkdir(parents=True)
    (folder / "labels" / "coins.txt").write_text("".join(f"{line}\n" for line in lines))
    (folder / "data.yaml").write_text(data_yaml)
    return folder


def _labels(project: api.Project, asset_id: int) -> list[str]:
    return sorted(a.label for a in project.annotation_objects(asset_id))


@pytest.mark.parametrize(
    ("data_yaml", "lines", "expected"),
    [
        ("names: {0: shadow, 1: coin}\n", [f"0 {BOX}"], ["shadow"]),  # the flow mapping
        ("names: {'0': shadow, '1': coin}\n", [f"1 {BOX}"], ["coin"]),  # ids written as strings
        ("nc: 2\nnames: {3: shadow, 7: coin}\n", [f"3 {BOX}", f"7 {BOX}"], ["coin", "shadow"]),  # gaps
        ("names:\n  3: shadow\n  7: coin\n", [f"7 {BOX}"], ["coin"]),  # a block mapping with gaps
    ],
    ids=["flow", "string-ids", "flow-gaps", "block-gaps"],
)
def test_the_mapping_form_keeps_its_class_ids(
    tmp_path: Path, data_yaml: str, lines: list[str], expected: list[str]
) -> None:
    project, asset_id = _project(tmp_path)
    report = project.import_labels("yolo", _yolo(tmp_path, data_yaml, lines))
    assert not report.skipped, report.skipped
    assert _labels(project, asset_id) == expected
    project.close()


@pytest.mark.parametrize(
    "data_yaml",
    [
        "names: [shadow, coin]  # what the model learnt\n",  # a comment after the list
        "names: [shadow,\n        coin]\n",  # a flow list over two lines
        "names:\n  - shadow  # first\n  - coin\n",  # a block list with a comment
    ],
    ids=["comment", "two-lines", "block"],
)
def test_the_list_form_numbers_classes_from_zero(tmp_path: Path, data_yaml: str) -> None:
    project, asset_id = _project(tmp_path)
    report = project.import_labels("yolo", _yolo(tmp_path, data_yaml, [f"0 {BOX}", f"1 {BOX}"]))
    assert not report.skipped, report.skipped
    assert _labels(project, asset_id) == ["coin", "shadow"]
    project.close()


@pytest.mark.parametrize(
    ("data_yaml", "why"),
    [
        ("names: [shadow, coin\n", "is not valid YAML"),  # unclosed list
        ("names: {0: shadow, 1: coin\n", "is not valid YAML"),
        ("names:\n  0: shadow\n   1: coin\n", "is not valid YAML"),  # bad indentation
        ("names: {}\n", "has no usable names"),
        ("nc: 2\n", "has no usable names"),
        ("names: shadow\n", "has no usable names"),
        ("names: {x: shadow}\n", "is not a class id and a class name"),
        ("names: [shadow, null]\n", "is not a class id and a class name"),
    ],
    ids=["unclosed-list", "unclosed-map", "indent", "empty", "no-names", "scalar", "bad-id", "null-name"],
)
def test_a_data_yaml_without_usable_names_is_refused_in_one_line(
    tmp_path: Path, data_yaml: str, why: str
) -> None:
    project, asset_id = _project(tmp_path)
    folder = _yolo(tmp_path, data_yaml, [f"0 {BOX}"])
    with pytest.raises(ValidationError) as refused:
        project.import_labels("yolo", folder)
    message = str(refused.value)
    assert why in message and str(folder / "data.yaml") in message
    assert "\n" not in message
    assert not project.annotation_objects(asset_id)  # nothing stored under a guessed class
    project.close()
