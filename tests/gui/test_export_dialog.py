"""File > Export runs in the background with progress and leaves a manifest; failures are shown."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app import api
from app.editor.export_dialog import ExportDialog


def _close_message_boxes(found: list[str]) -> None:
    """Answer the first message box the dialog shows, then stop looking."""
    box = QApplication.activeModalWidget()
    if isinstance(box, QMessageBox):
        found.append(box.text())
        box.accept()
        return
    QTimer.singleShot(50, lambda: _close_message_boxes(found))


def test_export_dialog_writes_coco_in_the_background(qtbot, themed_qapp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.demo import build_demo

    db, _ = build_demo(tmp_path / "demo")
    project = api.open_project(db, create=False)
    dialog = ExportDialog(project, default_dir=tmp_path / "export")
    qtbot.addWidget(dialog)
    dialog.format.setCurrentText("coco")
    messages: list[str] = []
    _close_message_boxes(messages)
    dialog.start()
    qtbot.waitUntil(lambda: bool(messages), timeout=30_000)
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert manifest["format"] == "coco" and "files written" in messages[0]
    coco = json.loads((tmp_path / "export" / "annotations.json").read_text())
    assert len(coco["annotations"]) >= 4 and {c["name"] for c in coco["categories"]} >= {"object", "bone"}


def test_export_dialog_reports_an_unwritable_target(qtbot, themed_qapp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.demo import build_demo

    db, _ = build_demo(tmp_path / "demo")
    project = api.open_project(db, create=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    dialog = ExportDialog(project, default_dir=blocker / "export")
    qtbot.addWidget(dialog)
    messages: list[str] = []
    _close_message_boxes(messages)
    dialog.start()
    qtbot.waitUntil(lambda: bool(messages), timeout=30_000)
    assert "previous export was left as it was" in messages[0]


def test_export_dialog_writes_a_yolo_layout_with_the_chosen_task(qtbot, themed_qapp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from app.demo import build_demo

    db, _ = build_demo(tmp_path / "demo")
    project = api.open_project(db, create=False)
    for asset in project.assets():  # leave only what YOLO holds (the dialog does not skip)
        for ann in project.annotation_objects(asset.id):
            if ann.kind.value not in ("box", "polygon", "mask"):
                project.delete_annotation(ann)
    dialog = ExportDialog(project, default_dir=tmp_path / "yolo")
    qtbot.addWidget(dialog)
    assert not dialog.yolo_task.isEnabled() or dialog.format.currentText() == "yolo"
    dialog.format.setCurrentText("yolo")
    assert dialog.yolo_task.isEnabled() and not dialog.nnunet_kind.isEnabled()
    dialog.yolo_task.setCurrentIndex(dialog.yolo_task.findData("detect"))
    messages: list[str] = []
    _close_message_boxes(messages)
    dialog.start()
    qtbot.waitUntil(lambda: bool(messages), timeout=60_000)
    assert "files written" in messages[0], messages
    data = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    assert data["task"] == "detect" and data["train"] == "images/train"
    assert (tmp_path / "yolo" / "labels" / "train").is_dir()
