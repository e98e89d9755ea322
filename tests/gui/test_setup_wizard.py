"""The set-up wizard driven page by page on real data: skimage photos written as PNG, a synthetic
CT series built from a real slice, and a watch folder; the project lands in a real SQLite file or
a real PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton, QWizard
from support.windows import focus

from app import api
from app.core.records import ProjectSettings, Role
from app.editor.app import _needs_setup
from app.editor.setup_wizard import SetupWizard
from app.sources.synthetic import build_ct_series

CT_SLICES = 8


def _write_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _sample_folders(root: Path) -> tuple[Path, Path, Path]:
    """photos/ (3 real skimage images), ct/ (a DICOM series), incoming/ (a watch folder with 1 image)."""
    from skimage import data

    photos, ct, incoming = root / "photos", root / "ct", root / "incoming"
    _write_png(photos / "camera.png", data.camera())
    _write_png(photos / "coins.png", data.coins())
    _write_png(photos / "astronaut.png", data.astronaut())
    (photos / "README.txt").write_text("not an image")
    build_ct_series(ct, n=CT_SLICES)
    _write_png(incoming / "moon.png", data.moon())
    return photos, ct, incoming


def _click(qtbot, wizard: SetupWizard, which: QWizard.WizardButton) -> None:  # type: ignore[no-untyped-def]
    qtbot.mouseClick(wizard.button(which), Qt.MouseButton.LeftButton)


def _answer_message_boxes(found: list[str]) -> None:
    box = QApplication.activeModalWidget()
    if isinstance(box, QMessageBox):
        found.append(box.text())
        box.accept()
        return
    QTimer.singleShot(50, lambda: _answer_message_boxes(found))


def _open_wizard(qtbot, db_url: str) -> SetupWizard:  # type: ignore[no-untyped-def]
    wizard = SetupWizard(None, user="ana")
    qtbot.addWidget(wizard)
    wizard.show()
    page = wizard.name_page
    if "://" in db_url:
        page.postgres.setChecked(True)
        page.url.setText(db_url)
    else:
        page.path.setText(db_url)
    return wizard


def test_wizard_creates_the_project_with_its_data_and_ontology(
    qtbot, themed_qapp, db_url: str, tmp_path: Path, screenshot_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    photos, ct, incoming = _sample_folders(tmp_path / "data")
    backend = "postgresql" if "://" in db_url else "sqlite"
    wizard = _open_wizard(qtbot, db_url)

    # page 1: name, database (tested off the UI thread), advanced workflow settings
    page = wizard.name_page
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()  # no name yet
    qtbot.keyClicks(page.name, "chest CT")
    assert wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.test_result.text() not in ("", "testing..."), timeout=30_000)
    assert "a new Sitelabel database will be set up there" in page.test_result.text()
    qtbot.mouseClick(page.advanced_button, Qt.MouseButton.LeftButton)
    page.share.setValue(20.0)
    page.count.setValue(3)
    page.batch.setValue(5)
    page.lease.setValue(45)
    wizard.grab().save(str(screenshot_dir / f"setup_wizard_1_name_{backend}.png"))
    _click(qtbot, wizard, QWizard.WizardButton.NextButton)

    # page 2: data locations and a watch folder; the dry scan counts without storing
    data_page = wizard.data_page
    assert wizard.currentPage() is data_page
    data_page.add_paths("folder", [photos])
    data_page.add_paths("dicom", [ct])
    data_page.add_paths("watch", [incoming])
    data_page.add_paths("files", [photos / "coins.png"])
    data_page.entries.setCurrentItem(data_page.entries.topLevelItem(3))
    focus(qtbot, data_page.entries)  # Del is a window shortcut: the wizard must be active (Xvfb)
    qtbot.keyClick(data_page.entries, Qt.Key.Key_Delete)  # the single file is inside photos/ anyway
    assert [kind for kind, _ in data_page.items()] == ["folder", "dicom", "watch"]
    qtbot.mouseClick(data_page.scan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: data_page.last_scan is not None, timeout=60_000)
    summary = data_page.scan_result.text()
    assert "would register 5 assets: 4 images" in summary
    assert f"1 DICOM series ({CT_SLICES} slices)" in summary and "1 file not recognised" in summary
    assert not api.check_database(db_url).projects  # a dry run: nothing stored
    wizard.grab().save(str(screenshot_dir / f"setup_wizard_2_data_{backend}.png"))
    _click(qtbot, wizard, QWizard.WizardButton.NextButton)

    # page 3: a template, then an edit through the keyboard
    onto_page = wizard.ontology_page
    assert wizard.currentPage() is onto_page
    assert not wizard.button(QWizard.WizardButton.FinishButton).isEnabled()  # blank: no class yet
    onto_page.choose_template("lesion_boxes")
    editor = onto_page.editor
    assert editor.is_valid() and wizard.button(QWizard.WizardButton.FinishButton).isEnabled()
    editor.select_class("lymph node")
    editor.form.hotkey.selectAll()
    qtbot.keyClicks(editor.form.hotkey, "9")
    wanted = editor.ontology()
    assert wanted.get("lymph node").hotkey == "9"
    wizard.grab().save(str(screenshot_dir / f"setup_wizard_3_ontology_{backend}.png"))

    with qtbot.waitSignal(wizard.created, timeout=120_000):
        _click(qtbot, wizard, QWizard.WizardButton.FinishButton)
    assert wizard.project is not None and "5 assets registered" in wizard.result_text
    wizard.project.close()

    # what is in the database, read back by a fresh connection
    project = api.open_project(db_url, "chest CT", user="ana", create=False)
    try:
        assets = project.assets()
        assert sorted(a.kind.value for a in assets) == ["dicom-series"] + ["image"] * 4
        series = next(a for a in assets if a.kind.value == "dicom-series")
        assert series.frame_count == CT_SLICES and (series.width, series.height) == (512, 512)
        names = sorted(Path(a.rel_path).name for a in assets)
        assert names == ["astronaut.png", "camera.png", "coins.png", "ct", "moon.png"]
        assert project.ontology.to_dict()["classes"] == wanted.to_dict()["classes"]
        assert project.settings == ProjectSettings(
            consensus_share=0.2, consensus_count=3, batch_size=5, lease_seconds=45 * 60
        )
        assert project.watch_folders == [incoming.resolve()]
        assert project.role is Role.ADMIN  # who makes the first project of a database administers it
        with project.db.unit_of_work() as uow:
            actions = {e.action for e in uow.audit.list(50)}
        assert {"project.create", "project.watch_folders", "data.import"} <= actions
    finally:
        project.close()


def test_cancel_while_registering_keeps_the_project_and_says_so(qtbot, themed_qapp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    photos, ct, _incoming = _sample_folders(tmp_path / "data")
    db = str(tmp_path / "labels.db")
    wizard = _open_wizard(qtbot, db)
    wizard.name_page.name.setText("cancelled")
    wizard.next()
    wizard.data_page.add_paths("folder", [photos])
    wizard.data_page.add_paths("dicom", [ct])
    wizard.next()
    wizard.ontology_page.choose_template("chest_ct_organs")

    def press_cancel(_done: int, _total: int) -> None:
        assert wizard.progress is not None
        wizard.progress.findChild(QPushButton).click()  # the dialog's Cancel button

    def press_cancel_on_first_report(job) -> None:  # type: ignore[no-untyped-def]
        # blocking: the worker waits until Cancel was pressed, so its next step sees it
        job.signals.progressed.connect(press_cancel, Qt.ConnectionType.BlockingQueuedConnection)

    wizard.starting.connect(press_cancel_on_first_report)
    with qtbot.waitSignal(wizard.created, timeout=120_000):
        _click(qtbot, wizard, QWizard.WizardButton.FinishButton)
    assert wizard.cancelled and "registering was cancelled" in wizard.result_text
    assert wizard.project is not None
    assert len(wizard.project.assets()) < 4  # stopped at the first file: not all 3 photos + series
    wizard.project.close()


def test_invalid_ontology_disables_finish_and_an_existing_name_is_refused(
    qtbot, themed_qapp, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    db = str(tmp_path / "labels.db")
    api.create_project(db, "taken", {"classes": [{"name": "x", "kinds": ["box"]}]}, user="ana").close()
    wizard = _open_wizard(qtbot, db)
    wizard.name_page.name.setText("taken")
    wizard.next()
    wizard.next()
    finish = wizard.button(QWizard.WizardButton.FinishButton)
    editor = wizard.ontology_page.editor
    wizard.ontology_page.choose_template("video_objects")
    assert finish.isEnabled()
    editor.select_class("vehicle")
    editor.form.hotkey.selectAll()
    qtbot.keyClicks(editor.form.hotkey, "1")  # person has 1
    assert not finish.isEnabled()
    assert "also used by class person" in editor.form.errors["hotkey"].text()
    assert editor.form.errors["hotkey"].isVisibleTo(editor)
    wizard.grab().save(str(tmp_path / "invalid.png"))
    editor.form.hotkey.selectAll()
    qtbot.keyClicks(editor.form.hotkey, "8")
    assert finish.isEnabled()

    messages: list[str] = []
    _answer_message_boxes(messages)
    _click(qtbot, wizard, QWizard.WizardButton.FinishButton)
    qtbot.waitUntil(lambda: bool(messages), timeout=30_000)
    assert "a project named 'taken' already exists" in messages[0]
    assert wizard.project is None and wizard.isVisible() and finish.isEnabled()


def test_an_unreachable_server_is_one_line_and_run_opens_the_wizard_only_when_needed(
    qtbot, themed_qapp, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    wizard = _open_wizard(qtbot, "postgresql://nobody@127.0.0.1:1/labels")
    page = wizard.name_page
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.test_result.text() not in ("", "testing..."), timeout=30_000)
    assert "cannot connect" in page.test_result.text() and "\n" not in page.test_result.text()
    db = tmp_path / "labels.db"
    assert _needs_setup(None) and _needs_setup(str(db))
    api.open_database(db).dispose()
    assert _needs_setup(str(db))  # a database without projects
    api.create_project(str(db), "p", user="ana").close()
    assert not _needs_setup(str(db))
