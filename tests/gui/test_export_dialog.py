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
    dialog.skip_unwritable.setChecked(True)  # the demo's landmark is a point: COCO has no form for it
    messages: list[str] = []
    _close_message_boxes(messages)
    dialog.start()
    qtbot.waitUntil(lambda: bool(messages), timeout=30_000)
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert manifest["format"] == "coco" and "files written" in messages[0]
    coco = json.loads((tmp_path / "export" / "annotations.json").read_text())
    # the final labels: the three objects people drew (the bone mask is an untouched pre-label)
    assert len(coco["annotations"]) == 3 and {c["name"] for c in coco["categories"]} >= {"object", "bone"}


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


def _counted(dialog: ExportDialog) -> bool:
    return dialog.preview is not None and dialog.counts.text() != "Counting..."


def test_export_dialog_counts_before_it_writes_and_passes_the_label_options(  # type: ignore[no-untyped-def]
    qtbot, themed_qapp, tmp_path: Path
) -> None:
    """The demo's final labels (nobody claimed an item: the labels people drew) are 4 on 2 items; its
    bone mask is a model pre-label and its landmark a point COCO cannot hold."""
    from app.demo import build_demo

    db, _ = build_demo(tmp_path / "demo")
    project = api.open_project(db, create=False)
    dialog = ExportDialog(project, default_dir=tmp_path / "export")
    qtbot.addWidget(dialog)
    dialog.format.setCurrentText("coco")
    qtbot.waitUntil(lambda: _counted(dialog), timeout=30_000)
    assert dialog.preview is not None
    assert (dialog.preview.items, dialog.preview.annotations) == (2, 4)
    assert dialog.preview.per_class == {"landmark": 1, "object": 3}
    text = dialog.counts.text()
    assert text.startswith("2 items, 4 annotations (landmark 1, object 3) — labels: final"), text
    assert "1 × point annotations have no coco form" in text and "will stop on these" in text
    assert dialog.labels.currentText() == "final" and dialog.labels.findText("source:model") >= 0

    # an export without skipping stops on the point and writes nothing; the dialog says why
    messages: list[str] = []
    _close_message_boxes(messages)
    dialog.start()
    qtbot.waitUntil(lambda: bool(messages), timeout=30_000)
    assert "cannot write 1 item" in messages[0] and not (tmp_path / "export" / "manifest.json").exists()

    # with the pre-labels the count changes before anything is written, then the export matches it
    dialog.prelabels.setChecked(True)
    dialog.skip_unwritable.setChecked(True)
    qtbot.waitUntil(lambda: _counted(dialog) and dialog.preview.annotations == 5, timeout=30_000)  # type: ignore[union-attr]
    assert "4 annotations will be written" in dialog.counts.text()
    messages.clear()
    _close_message_boxes(messages)
    dialog.start()
    qtbot.waitUntil(lambda: bool(messages), timeout=30_000)
    assert "files written" in messages[0], messages
    coco = json.loads((tmp_path / "export" / "annotations.json").read_text())
    assert len(coco["annotations"]) == 4  # 3 objects and the bone pre-label; the point is listed
    provenance = json.loads((tmp_path / "export" / "provenance.json").read_text())
    assert provenance["options"]["include_prelabels"] is True
    assert provenance["counts"]["sources"] == {"human": 4, "model": 1}


def test_a_count_that_comes_back_after_the_dialog_is_gone_is_dropped(
    qtbot, themed_qapp, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A dialog deleted without done() (its window closed under it) while a count runs: the late
    answer must not touch its deleted widgets (it raised RuntimeError into whichever test ran next)."""
    import shiboken6
    from PySide6.QtCore import QThreadPool

    from app.demo import build_demo

    db, _ = build_demo(tmp_path / "demo")
    project = api.open_project(db, create=False)
    dialog = ExportDialog(project, default_dir=tmp_path / "export")
    dialog.count()  # one more count in flight beside the one the dialog started itself
    shiboken6.delete(dialog)
    assert QThreadPool.globalInstance().waitForDone(30_000)
    qtbot.wait(300)  # the posted answers are delivered now, to a dialog that no longer exists
