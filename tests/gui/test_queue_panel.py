"""Queue mode in the real main window: a real SQLite project with real images, offscreen.

Start claims a batch, Submit saves, submits and shows the next item (decoded ahead), Skip asks a
reason, a lost lease is reported without losing annotations, a save conflict stops the submit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog
from support.windows import focus

from app import api, sample_data
from app.core.annotations import Annotation, Kind
from app.core.commands import AddAnnotation, ReplaceAnnotation
from app.core.records import ProjectSettings
from app.editor.main_window import MainWindow
from app.editor.queue_controller import NOTHING_LEFT, ItemState

IMAGES = ["camera.png", "coins.png", "astronaut.png", "chelsea.png", "moon.png", "retina.jpg"]
ONTOLOGY = {"classes": [{"name": "liver", "color": "#c0504d"}, {"name": "lesion", "color": "#4f81bd"}]}
SQUARE = np.array([[20.0, 20.0], [90.0, 20.0], [90.0, 80.0], [20.0, 80.0]])
WAIT = 20_000


def _project(tmp_path: Path, **settings: int) -> tuple[str, api.Project]:
    """Ann's project: the real images queued, batches of 4 unless told otherwise."""
    db = str(tmp_path / "labels.db")
    chosen = ProjectSettings(batch_size=settings.pop("batch_size", 4), **settings)
    project = api.create_project(db, "queue", ontology=ONTOLOGY, settings=chosen, user="ann")
    project.import_data([sample_data.skimage_images() / name for name in IMAGES])
    project.set_member("bob", "labeler")
    return db, project


def _wait_past(qtbot, moment: datetime) -> None:  # type: ignore[no-untyped-def]
    """Wait until the wall clock is past ``moment`` (a lease's end), however loaded the machine."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    qtbot.waitUntil(lambda: datetime.now(UTC) > moment, timeout=WAIT)


def _start(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.actions_by_id["sitelabel.queue.start"].trigger()
    _wait_shown(qtbot, window, 0)


def _wait_shown(qtbot, window: MainWindow, index: int) -> None:  # type: ignore[no-untyped-def]
    """Wait until batch item ``index`` is current and its frame is on the canvas."""
    c = window.queue.controller

    def shown() -> bool:
        return (
            c.current == index
            and not c.opening
            and window.current is not None
            and window.current.asset.id == c.items[index].asset.id
            and window.editing.session is not None
            and window.editing.session.asset.id == c.items[index].asset.id
        )

    qtbot.waitUntil(shown, timeout=WAIT)


def _wait_prefetched(qtbot, window: MainWindow, index: int) -> None:  # type: ignore[no-untyped-def]
    c = window.queue.controller
    qtbot.waitUntil(lambda: c.prepared is not None and c.prepared.key == c.items[index].key, timeout=WAIT)


def _draw_square(window: MainWindow, label: str = "liver") -> int:
    session = window.editing.session
    assert session is not None
    command = AddAnnotation(Annotation(kind=Kind.POLYGON, label=label, frame=0, points=SQUARE))
    session.stack.push(command)
    assert command.aid is not None
    return command.aid


def _submit(window: MainWindow) -> None:
    window.actions_by_id["sitelabel.queue.submit"].trigger()


def test_start_shows_item_one_and_submit_saves_submits_and_shows_item_two(
    qtbot, open_window, tmp_path: Path
) -> None:
    db, project = _project(tmp_path)
    window = open_window(project)
    _start(qtbot, window)
    c = window.queue.controller
    assert len(c.items) == 4 and c.items[0].state is ItemState.CURRENT
    assert window.queue.name.text() == c.items[0].name
    assert window.queue.position.text() == "1 of 4 in your batch"
    first = c.items[0]
    _draw_square(window)
    _wait_prefetched(qtbot, window, 1)
    _submit(window)
    _wait_shown(qtbot, window, 1)
    qtbot.waitUntil(lambda: first.state is ItemState.SUBMITTED, timeout=WAIT)
    # 2 left after item 2: the batch was topped up in the background
    qtbot.waitUntil(lambda: len(c.items) == 6, timeout=WAIT)
    assert window.queue.position.text() == "2 of 6 in your batch"
    assert project.queue_stats()["submitted"] == 1
    # the annotation drawn before Submit is in the database
    (stored,) = project.annotation_objects(first.asset.id)
    assert stored.kind is Kind.POLYGON and np.array_equal(stored.points, SQUARE)
    # another labeler never gets the submitted item
    bob = api.open_project(db, "queue", user="bob")
    assert first.asset.id not in {lease.asset_id for lease in bob.claim(batch=10)}
    bob.close()
    qtbot.waitUntil(lambda: "1 submitted" in window.queue.stats.text(), timeout=WAIT)


def test_keyboard_only_shortcuts_are_in_the_help_overlay(qtbot, open_window, tmp_path: Path) -> None:
    _db, project = _project(tmp_path)
    window = open_window(project)
    entries = dict((text, keys) for keys, text in window.help.entries)
    assert entries["Start labeling (claim a batch)"] == "Ctrl+Shift+L"
    assert entries["Submit item and open the next"] == "Ctrl+Return"
    assert entries["Skip item (optional reason)"] == "Ctrl+Shift+K"
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
    focus(qtbot, window.canvas)  # window-wide shortcuts need the active window (a real X server too)
    qtbot.keyClick(window.canvas, Qt.Key.Key_L, ctrl | shift)
    _wait_shown(qtbot, window, 0)
    _wait_prefetched(qtbot, window, 1)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, ctrl)
    _wait_shown(qtbot, window, 1)
    c = window.queue.controller
    qtbot.waitUntil(lambda: c.items[0].state is ItemState.SUBMITTED, timeout=WAIT)
    qtbot.keyClick(window.canvas, Qt.Key.Key_K, ctrl | shift)
    assert window.queue.skip_dialog is not None


def test_without_prefetch_items_decode_on_demand(qtbot, open_window, tmp_path: Path) -> None:
    _db, project = _project(tmp_path)
    window = open_window(project)
    c = window.queue.controller
    c.prefetch = False  # the benchmark's peer: the editor's plain open_asset path
    _start(qtbot, window)
    _draw_square(window)
    _submit(window)
    _wait_shown(qtbot, window, 1)
    assert c.prepared is None
    qtbot.waitUntil(lambda: c.items[0].state is ItemState.SUBMITTED, timeout=WAIT)
    (stored,) = project.annotation_objects(c.items[0].asset.id)
    assert np.array_equal(stored.points, SQUARE)


def test_start_brings_back_the_queue_item_after_browsing(qtbot, open_window, tmp_path: Path) -> None:
    _db, project = _project(tmp_path)
    window = open_window(project)
    _start(qtbot, window)
    c = window.queue.controller
    _wait_prefetched(qtbot, window, 1)
    other = next(a for a in project.assets() if a.id not in {i.asset.id for i in c.items})
    window.open_asset(other)  # the user looks at another asset from the list
    qtbot.waitUntil(lambda: window.current is not None and window.current.asset.id == other.id, timeout=WAIT)
    window.queue.start()
    _wait_shown(qtbot, window, 0)


def test_the_next_item_is_decoded_ahead_and_shown_from_the_prefetch_cache(
    qtbot, open_window, tmp_path: Path
) -> None:
    _db, project = _project(tmp_path)
    window = open_window(project)
    _start(qtbot, window)
    c = window.queue.controller
    _wait_prefetched(qtbot, window, 1)
    prepared = c.prepared
    assert prepared is not None and prepared.asset.id == c.items[1].asset.id
    with api.open_source(project.asset_path(c.items[1].asset)) as source:
        assert np.array_equal(prepared.raw, source.frame(0))  # item k+1's decoded first frame
    assert prepared.session.asset.id == c.items[1].asset.id  # its annotations loaded too
    _submit(window)
    _wait_shown(qtbot, window, 1)
    assert window.current is not None and window.current.raw is prepared.raw  # no second decode
    assert window.editing.session is prepared.session
    _wait_prefetched(qtbot, window, 2)  # and the one after is on its way


def test_skip_with_a_reason_is_audited_and_the_item_goes_back_to_the_pool(
    qtbot, open_window, tmp_path: Path
) -> None:
    db, project = _project(tmp_path, batch_size=6)  # ann holds every item
    window = open_window(project)
    _start(qtbot, window)
    c = window.queue.controller
    skipped = c.items[0]
    window.actions_by_id["sitelabel.queue.skip"].trigger()
    dialog = window.queue.skip_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT)
    qtbot.keyClicks(dialog.reason, "too blurry to outline")
    qtbot.keyClick(dialog.reason, Qt.Key.Key_Return)  # keyboard only: Enter skips
    _wait_shown(qtbot, window, 1)
    assert skipped.state is ItemState.SKIPPED

    def skip_rows() -> list:  # type: ignore[type-arg]
        with project.db.unit_of_work(readonly=True) as uow:
            rows = uow.audit.list(entity="asset", entity_id=skipped.asset.id)
        return [row for row in rows if row.action == "queue.skip"]

    qtbot.waitUntil(lambda: bool(skip_rows()), timeout=WAIT)
    (row,) = skip_rows()
    assert row.details == {"task_id": skipped.lease.task_id, "reason": "too blurry to outline"}
    assert row.user_id == project.user.id
    bob = api.open_project(db, "queue", user="bob")
    assert skipped.asset.id in {lease.asset_id for lease in bob.claim(batch=1)}  # back in the pool
    bob.close()


def test_escape_cancels_the_skip(qtbot, open_window, tmp_path: Path) -> None:
    _db, project = _project(tmp_path)
    window = open_window(project)
    _start(qtbot, window)
    window.queue.skip()
    dialog = window.queue.skip_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT)
    qtbot.keyClick(dialog.reason, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.queue.skip_dialog is None, timeout=WAIT)
    c = window.queue.controller
    assert c.current == 0 and c.items[0].state is ItemState.CURRENT


def test_an_expired_lease_is_reported_keeps_the_annotations_and_moves_on(
    qtbot, open_window, tmp_path: Path
) -> None:
    _db, project = _project(tmp_path, lease_seconds=1)
    window = open_window(project)
    _start(qtbot, window)
    c = window.queue.controller
    c.renew_timer.timeout.disconnect(c.renew)  # as if the laptop slept: nothing renews the lease
    first = c.items[0]
    _draw_square(window)
    _wait_past(qtbot, first.lease.expires_at)  # the one-second lease ran out
    _submit(window)
    _wait_shown(qtbot, window, 1)
    qtbot.waitUntil(lambda: first.state is ItemState.EXPIRED, timeout=WAIT)
    text = window.queue.notice.text()
    assert window.queue.notice.isVisible()
    assert f"your lease on {first.name} expired" in text.lower()
    assert "annotations are kept" in text and "went back to the queue" in text
    assert "expired" in window.statusBar().currentMessage()
    (stored,) = project.annotation_objects(first.asset.id)
    assert np.array_equal(stored.points, SQUARE)
    assert project.queue_stats()["submitted"] == 0


def test_a_renewal_that_finds_the_lease_gone_moves_on(qtbot, open_window, tmp_path: Path) -> None:
    _db, project = _project(tmp_path, lease_seconds=1)
    window = open_window(project)
    _start(qtbot, window)
    c = window.queue.controller
    c.renew_timer.timeout.disconnect(c.renew)
    first = c.items[0]
    _draw_square(window)
    _wait_past(qtbot, first.lease.expires_at)
    c.renew()  # the timer's next tick, late
    qtbot.waitUntil(lambda: first.state is ItemState.EXPIRED, timeout=WAIT)
    qtbot.waitUntil(lambda: c.current is not None and c.current > 0 and not c.opening, timeout=WAIT)
    notice = window.queue.notice.text()  # one message for all the leases that ran out together
    assert notice.startswith(f"Your leases on {first.name}, ") and "annotations are kept" in notice
    (stored,) = project.annotation_objects(first.asset.id)  # saved as the editor left the item
    assert np.array_equal(stored.points, SQUARE)


def test_a_save_conflict_stops_the_submit(qtbot, open_window, tmp_path: Path) -> None:
    db, project = _project(tmp_path)
    window = open_window(project)
    _start(qtbot, window)
    c = window.queue.controller
    first = c.items[0]
    aid = _draw_square(window)
    session = window.editing.session
    assert session is not None
    session.flush()
    # the same labeler on another workstation moves the polygon meanwhile
    other = api.open_project(db, "queue", user="ann")
    (theirs,) = other.annotation_objects(first.asset.id)
    other.save_annotation(theirs.evolve(points=SQUARE + 5.0))
    other.close()
    before = session.doc.annotation(aid)
    session.stack.push(ReplaceAnnotation(aid, before, before.evolve(points=SQUARE + 9.0)))
    seen: list[str] = []

    def close_conflict_dialog() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QDialog):
            seen.append(dialog.windowTitle())
            dialog.reject()  # decide nothing: the conflict stays open
        else:
            QTimer.singleShot(50, close_conflict_dialog)

    QTimer.singleShot(50, close_conflict_dialog)
    _submit(window)
    qtbot.waitUntil(lambda: bool(seen) and not c.busy, timeout=WAIT)
    assert seen == ["Someone else changed this annotation"]
    assert c.current == 0 and first.state is ItemState.CURRENT  # not submitted, still open
    assert "conflict" in window.queue.notice.text()
    assert project.queue_stats()["submitted"] == 0


def test_the_batch_is_topped_up_in_the_background_until_the_queue_is_empty(
    qtbot, open_window, tmp_path: Path
) -> None:
    _db, project = _project(tmp_path, batch_size=3)
    window = open_window(project)
    _start(qtbot, window)
    c = window.queue.controller
    # 2 left after the first of 3: a claim in the background brings one more
    qtbot.waitUntil(lambda: len(c.items) == 4, timeout=WAIT)
    shown = []
    for k in range(len(IMAGES)):
        _wait_shown(qtbot, window, k)
        shown.append(c.items[k].asset.id)
        _submit(window)
    qtbot.waitUntil(lambda: c.item is None and c.exhausted, timeout=WAIT)
    assert len(set(shown)) == len(IMAGES) == len(c.items)
    qtbot.waitUntil(lambda: all(i.state is ItemState.SUBMITTED for i in c.items), timeout=WAIT)
    assert project.queue_stats()["submitted"] == len(IMAGES)
    assert window.queue.name.text() == "No item open"
    assert window.queue.notice.text() == NOTHING_LEFT


def test_renewal_keeps_a_short_lease_alive(qtbot, open_window, tmp_path: Path) -> None:
    _db, project = _project(tmp_path, lease_seconds=3)
    window = open_window(project)
    _start(qtbot, window)
    c = window.queue.controller
    first = c.items[0]
    before = first.lease.expires_at
    qtbot.waitUntil(lambda: first.lease.expires_at > before, timeout=WAIT)  # renewed every second
    _wait_past(qtbot, before)  # longer than the lease itself: only the renewals kept it
    _submit(window)
    _wait_shown(qtbot, window, 1)
    qtbot.waitUntil(lambda: first.state is ItemState.SUBMITTED, timeout=WAIT)


def test_work_sent_back_by_review_comes_next_with_the_reason_in_a_banner(
    qtbot, open_window, tmp_path: Path
) -> None:
    db, project = _project(tmp_path, batch_size=2)
    project.set_member("rita", "reviewer")
    window = open_window(project)
    _start(qtbot, window)
    c = window.queue.controller
    first = c.items[0]
    _draw_square(window)
    _submit(window)
    _wait_shown(qtbot, window, 1)
    qtbot.waitUntil(lambda: first.state is ItemState.SUBMITTED and c.idle, timeout=WAIT)
    rita = api.open_project(db, "queue", user="rita")
    rita.reject(first.asset.id, "ann", "the outline misses the lower edge")
    rita.close()
    _submit(window)  # the top-up claim after this one brings the rejected item back
    qtbot.waitUntil(lambda: any(i.note for i in c.items), timeout=WAIT)
    back = next(i for i in c.items if i.note)
    assert back.asset.id == first.asset.id and back.key != first.key
    assert c.items.index(back) == c.current + 1  # next, before the other waiting items
    qtbot.waitUntil(lambda: c.idle, timeout=WAIT)
    _submit(window)
    qtbot.waitUntil(lambda: c.item is back and not c.opening, timeout=WAIT)
    assert window.queue.rejection.isVisible()
    assert window.queue.rejection.text() == "Returned by review: the outline misses the lower edge"
    session = window.editing.session
    assert session is not None and session.asset.id == first.asset.id
    assert [a.kind for a in session.doc.annotations(0).values()] == [Kind.POLYGON]  # the work is back


def test_an_item_whose_file_is_gone_says_so_and_can_be_skipped(qtbot, open_window, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "data"
    folder.mkdir()
    for name in IMAGES[:3]:
        shutil.copy(sample_data.skimage_images() / name, folder / name)
    project = api.create_project(str(tmp_path / "labels.db"), "queue", ontology=ONTOLOGY, user="ann")
    ids = project.import_data(sorted(folder.iterdir()))
    (folder / project.asset(sorted(ids)[1]).rel_path.rsplit("/", 1)[-1]).unlink()  # moved away since
    window = open_window(project)
    _start(qtbot, window)
    c = window.queue.controller
    gone = c.items[1]  # the queue hands out equal-priority items in the order they were queued
    assert gone.asset.id == sorted(ids)[1]
    qtbot.waitUntil(lambda: c.idle, timeout=WAIT)
    assert c.prepared is None  # decoding it ahead failed
    _submit(window)
    qtbot.waitUntil(
        lambda: c.item is gone and "Could not open" in window.statusBar().currentMessage(), timeout=WAIT
    )
    window.queue.skip()
    dialog = window.queue.skip_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT)
    qtbot.keyClicks(dialog.reason, "file missing")
    qtbot.keyClick(dialog.reason, Qt.Key.Key_Return)
    _wait_shown(qtbot, window, 2)
    assert gone.state is ItemState.SKIPPED


def test_queue_mode_screenshot(qtbot, open_window, tmp_path: Path, screenshot_dir: Path) -> None:
    """A consensus item with an open issue, sent back by review: every marker of the panel shows."""
    db, project = _project(tmp_path, batch_size=3, consensus_share=1.0, consensus_count=2)
    project.set_member("rita", "reviewer")
    for asset in project.assets():
        project.comment(asset.id, "is this the right series?")
    bob = api.open_project(db, "queue", user="bob")
    for lease in bob.claim(batch=len(IMAGES)):
        bob.submit(lease)
    bob.close()
    window = open_window(project)
    _start(qtbot, window)
    c = window.queue.controller
    first = c.items[0]
    _draw_square(window)
    _submit(window)
    _wait_shown(qtbot, window, 1)
    qtbot.waitUntil(lambda: first.state is ItemState.SUBMITTED and c.idle, timeout=WAIT)
    rita = api.open_project(db, "queue", user="rita")
    rita.reject(first.asset.id, "ann", "the outline misses the lower edge of the coin")
    rita.close()
    _submit(window)
    qtbot.waitUntil(lambda: any(i.note for i in c.items) and c.idle, timeout=WAIT)
    _submit(window)
    qtbot.waitUntil(lambda: c.item is not None and bool(c.item.note) and c.idle, timeout=WAIT)
    qtbot.waitUntil(lambda: c.items[2].state is ItemState.SUBMITTED, timeout=WAIT)
    window.queue.show_notice(
        "Your lease on example.png expired; your saved annotations are kept; the item went back to the queue."
    )
    window.canvas.backend.repaint_now()
    window.grab().save(str(screenshot_dir / "queue_panel.png"))
    assert window.queue.rejection.isVisible()
    assert "Consensus item: 2 labelers" in window.queue.badges.text()
    assert "1 open issue" in window.queue.badges.text()
