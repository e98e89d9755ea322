"""Project > Project settings...: project admins change the workflow settings with messages for bad
values as they type; everyone else sees them read-only with the reason (issue #16, item 8)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app import api, sample_data
from app.core.records import ProjectSettings
from app.editor.project_settings_dialog import ProjectSettingsDialog


def _project(tmp_path: Path) -> api.Project:
    project = api.create_project(tmp_path / "labels.db", "knee", user="ada")
    project.import_data([sample_data.skimage_images() / n for n in ("coins.png", "camera.png")])
    project.set_member("lee", "labeler")
    return project


def _answer_modal(act) -> None:  # type: ignore[no-untyped-def]
    """Run ``act(widget)`` on the first modal dialog that shows up."""
    widget = QApplication.activeModalWidget()
    if widget is not None:
        act(widget)
        return
    QTimer.singleShot(50, lambda: _answer_modal(act))


def test_an_admin_changes_settings_from_the_project_menu(
    open_window, qtbot, tmp_path: Path, screenshot_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    project = _project(tmp_path)
    window = open_window(project)
    action = window.actions_by_id["sitelabel.project.settings"]
    assert action.text() == "Project settings..." and action.parent() is window
    seen: dict[str, object] = {}

    def edit_and_save(dialog) -> None:  # type: ignore[no-untyped-def]
        assert isinstance(dialog, ProjectSettingsDialog) and dialog.editable
        fields, errors = dialog.fields, dialog.errors
        assert {k: f.text() for k, f in fields.items()} == {
            "consensus_share": "0", "consensus_count": "2", "batch_size": "10", "lease_time": "30m",
        }  # fmt: skip
        assert not dialog.save_button.isEnabled()  # nothing changed yet
        # bad values: a message under the field, Save stays off
        fields["consensus_share"].setText("1.5")
        fields["lease_time"].setText("ten minutes")
        assert not errors["consensus_share"].isHidden() and "within 0..1" in errors["consensus_share"].text()
        assert "30m, 90s, 1h or 1h30m" in errors["lease_time"].text()
        assert errors["batch_size"].isHidden() and not dialog.save_button.isEnabled()
        dialog.resize(dialog.sizeHint())
        dialog.grab().save(str(screenshot_dir / "project_settings_invalid.png"))
        # good values: the messages go, Save comes on
        fields["consensus_share"].setText("20%")
        fields["lease_time"].setText("45m")
        fields["batch_size"].setText("5")
        assert all(e.isHidden() for e in errors.values()) and dialog.save_button.isEnabled()
        dialog.grab().save(str(screenshot_dir / "project_settings_admin.png"))
        dialog.save_button.click()
        seen["done"] = True

    QTimer.singleShot(0, lambda: _answer_modal(edit_and_save))
    action.trigger()
    assert seen == {"done": True}
    assert project.settings == ProjectSettings(consensus_share=0.2, batch_size=5, lease_seconds=2700)
    assert [(e.user, e.key, e.old, e.new) for e in project.settings_history()] == [
        ("ada", "batch_size", 10, 5),
        ("ada", "consensus_share", 0.0, 0.2),
        ("ada", "lease_time", 1800, 2700),
    ]
    message = window.statusBar().currentMessage()
    assert message.startswith("Project settings saved: ") and "lease time 30 min -> 45 min" in message


def test_a_labeler_sees_the_settings_read_only_and_why(
    qtbot, themed_qapp, tmp_path: Path, screenshot_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    admin = _project(tmp_path)
    admin.update_settings(consensus_share=0.1, consensus_count=3)
    lee = api.open_project(admin.db, "knee", user="lee")
    dialog = ProjectSettingsDialog(lee)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.editable
    assert (
        "only project admins can change these settings; you are a labeler in 'knee'" in dialog.reason.text()
    )
    assert all(f.isReadOnly() for f in dialog.fields.values())
    assert dialog.fields["consensus_share"].text() == "0.1" and dialog.fields["consensus_count"].text() == "3"
    assert dialog.save_button.isHidden()
    dialog.resize(dialog.sizeHint())
    dialog.grab().save(str(screenshot_dir / "project_settings_read_only.png"))
    dialog.save()  # even a call past the hidden button changes nothing
    assert lee.settings == ProjectSettings(consensus_share=0.1, consensus_count=3)


def test_an_open_editor_renews_by_the_lease_time_its_leases_were_claimed_with(
    open_window, qtbot, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    admin = _project(tmp_path)
    admin.update_settings(batch_size=2, lease_time="10m")
    lee = api.open_project(admin.db, "knee", user="lee")
    window = open_window(lee)
    c = window.queue.controller
    assert c.renew_timer.interval() == 200_000  # a third of 10 minutes
    admin.set_setting("lease_time", "90s")  # shortened while lee's editor is open
    window.actions_by_id["sitelabel.queue.start"].trigger()
    qtbot.waitUntil(lambda: len(c.items) == 2 and c.renew_timer.isActive(), timeout=20_000)
    assert [item.lease.lease_seconds for item in c.items] == [90, 90]
    assert c.renew_timer.interval() == 30_000  # renewed before the 90 s leases run out
