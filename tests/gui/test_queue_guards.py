"""Queue mode guards in the real main window (offscreen), with real files and real databases.

- Submit on an item whose image never loaded (a PNG corrupted on disk after it was registered, or
  its data folder gone) is refused with a clear message: nobody has seen the item. Once its image
  loads, Submit works.
- Skip while the PostgreSQL server is down (this module's own throwaway cluster, really stopped and
  started again) keeps the item current and on screen with an offline message; once the server is
  back, Skip goes through and the next item opens.

Screenshots: build/screenshots/queue_guard_unopened.png, queue_guard_skip_offline.png.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget

from app import api, sample_data
from app.core.annotations import Annotation, Kind
from app.core.commands import AddAnnotation
from app.core.records import ProjectSettings
from app.editor.main_window import MainWindow
from app.editor.queue_controller import ItemState

ONTOLOGY = {"classes": [{"name": "liver", "color": "#c0504d"}, {"name": "lesion", "color": "#4f81bd"}]}
IMAGES = ["camera.png", "coins.png", "moon.png"]  # queued in this order
SQUARE = np.array([[20.0, 20.0], [90.0, 20.0], [90.0, 80.0], [20.0, 80.0]])
WAIT = 30_000
START, SUBMIT, SKIP = "sitelabel.queue.start", "sitelabel.queue.submit", "sitelabel.queue.skip"
REFUSED = (
    "coins.png could not be opened, so it cannot be submitted: press Down to retry, or Skip it with a "
    "reason (Ctrl+Shift+K)"
)


def _on_screen(window: MainWindow, asset_id: int) -> bool:
    return window.current is not None and window.current.asset.id == asset_id


def _truncate(folder: Path, share: Path) -> Callable[[], None]:
    """Corrupt coins.png on disk (after it was registered); returns how to repair it."""
    path = share / "coins.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return lambda: path.write_bytes(data)


def _unmount(folder: Path, share: Path) -> Callable[[], None]:
    """The data folder holding coins.png goes away (a share unmounted); returns how to bring it back."""
    away = folder / "share-away"
    share.rename(away)
    return lambda: away.rename(share)


@pytest.mark.parametrize("damage", [_truncate, _unmount], ids=["corrupt-png", "folder-gone"])
def test_submit_is_refused_for_an_item_whose_image_never_loaded(
    qtbot,
    open_window,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    screenshot_dir: Path,
    damage: Callable[[Path, Path], Callable[[], None]],
) -> None:
    local, share = tmp_path / "local", tmp_path / "share"
    local.mkdir()
    share.mkdir()
    shutil.copy(sample_data.skimage_images() / "camera.png", local / "camera.png")
    for name in ("coins.png", "moon.png"):
        shutil.copy(sample_data.skimage_images() / name, share / name)
    config = tmp_path / "site.toml"
    config.write_text(f'[data_roots]\nscans = "{local}"\nshare = "{share}"\n')
    monkeypatch.setenv("SITELABEL_CONFIG", str(config))
    project = api.create_project(
        str(tmp_path / "labels.db"), "guards", ontology=ONTOLOGY, settings=ProjectSettings(batch_size=3)
    )
    project.import_data([local / "camera.png"])
    project.import_data([share / "coins.png"])
    project.import_data([share / "moon.png"])
    repair = damage(tmp_path, share)  # after registration: the database still lists it as fine
    window = open_window(project, size=(1400, 900))
    c = window.queue.controller
    notices: list[str] = []
    c.notice.connect(notices.append)

    window.actions_by_id[START].trigger()
    qtbot.waitUntil(lambda: c.current == 0 and not c.opening and c.idle, timeout=WAIT)
    camera, coins, moon = c.items
    assert [i.name for i in c.items] == IMAGES and _on_screen(window, camera.asset.id)
    window.actions_by_id[SUBMIT].trigger()  # camera.png was seen: it goes, coins.png fails to open
    qtbot.waitUntil(
        lambda: c.current == 1 and window.canvas.tool_slot.locked.startswith("Drawing is off") and c.idle,
        timeout=WAIT,
    )
    qtbot.waitUntil(lambda: camera.state is ItemState.SUBMITTED, timeout=WAIT)
    assert window.current is None and window.open_failure(coins.asset.id) is not None

    for attempt in (1, 2):  # refused every time, with the same message; nothing is submitted
        window.actions_by_id[SUBMIT].trigger()
        qtbot.waitUntil(lambda n=attempt: notices.count(REFUSED) == n, timeout=WAIT)
        assert c.current == 1 and coins.state is ItemState.CURRENT and moon.state is ItemState.WAITING
        assert window.queue.notice.isVisible() and window.queue.notice.text() == REFUSED
        assert window.statusBar().currentMessage() == REFUSED
        assert c.idle and project.queue_stats()["submitted"] == 1
    queue_dock = window.findChild(QDockWidget, "dock-queue")
    assert queue_dock is not None
    queue_dock.raise_()
    qtbot.waitUntil(lambda: not window.queue.visibleRegion().isEmpty(), timeout=WAIT)  # in front, laid out
    if damage is _truncate:
        window.grab().save(str(screenshot_dir / "queue_guard_unopened.png"))

    # looking at another asset from the list does not make the item seen
    window.open_asset(camera.asset)
    qtbot.waitUntil(lambda: _on_screen(window, camera.asset.id), timeout=WAIT)
    window.actions_by_id[SUBMIT].trigger()
    qtbot.waitUntil(lambda: notices.count(REFUSED) == 3, timeout=WAIT)
    assert coins.state is ItemState.CURRENT and project.queue_stats()["submitted"] == 1

    # repaired: Start brings the item back, its image loads, and Submit takes it
    repair()
    window.actions_by_id[START].trigger()
    qtbot.waitUntil(
        lambda: _on_screen(window, coins.asset.id) and window.canvas.tool_slot.locked == "", timeout=WAIT
    )
    assert window.open_failure(coins.asset.id) is None
    window.actions_by_id[SUBMIT].trigger()
    qtbot.waitUntil(lambda: coins.state is ItemState.SUBMITTED and c.current == 2, timeout=WAIT)
    qtbot.waitUntil(lambda: _on_screen(window, moon.asset.id) and c.idle, timeout=WAIT)
    assert project.queue_stats()["submitted"] == 2
    assert notices.count(REFUSED) == 3


def test_submit_is_refused_while_the_item_is_still_opening(qtbot, open_window, tmp_path: Path) -> None:
    """Decoding on demand (no prefetch): a Submit before the item's image arrives does nothing to it."""
    for name in IMAGES:
        shutil.copy(sample_data.skimage_images() / name, tmp_path / name)
    project = api.create_project(
        str(tmp_path / "labels.db"), "guards", ontology=ONTOLOGY, settings=ProjectSettings(batch_size=3)
    )
    project.import_data([tmp_path / name for name in IMAGES])
    window = open_window(project, size=(1400, 900))
    c = window.queue.controller
    c.prefetch = False
    notices: list[str] = []
    c.notice.connect(notices.append)
    window.actions_by_id[START].trigger()
    qtbot.waitUntil(lambda: c.current == 0 and _on_screen(window, c.items[0].asset.id), timeout=WAIT)
    first, second = c.items[0], c.items[1]
    qtbot.waitUntil(lambda: c.idle, timeout=WAIT)
    seen: list[tuple[bool, bool]] = []

    def press_again() -> None:
        """A quick second Submit, the moment the second item became current: its image is read on
        a worker and the answer comes through the event loop, so it is still opening now."""
        if c.current == 1 and not seen:
            seen.append((window.is_opening(second.asset.id), _on_screen(window, second.asset.id)))
            window.actions_by_id[SUBMIT].trigger()

    c.changed.connect(press_again)
    window.actions_by_id[SUBMIT].trigger()  # the first was seen: it goes; the second starts opening
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT)
    c.changed.disconnect(press_again)
    assert seen == [(True, False)]
    assert notices[-1] == (
        f"{second.name} is still opening, so it cannot be submitted yet: Submit once its image shows."
    )
    assert second.state is ItemState.CURRENT
    qtbot.waitUntil(lambda: _on_screen(window, second.asset.id) and c.idle, timeout=WAIT)
    qtbot.waitUntil(lambda: first.state is ItemState.SUBMITTED, timeout=WAIT)
    window.actions_by_id[SUBMIT].trigger()
    qtbot.waitUntil(lambda: second.state is ItemState.SUBMITTED and c.current == 2, timeout=WAIT)
    assert project.queue_stats()["submitted"] == 2


# --- Skip while the database is unreachable (PostgreSQL) -----------------------------------------------
@pytest.fixture
def up(pg_up: Any) -> Any:
    """This module's own cluster (tests/conftest.py), started again should a test fail while it is down."""
    return pg_up


def _skip_with(qtbot, window: MainWindow, reason: str) -> None:  # type: ignore[no-untyped-def]
    """Skip through the real dialog: the shortcut's action, a typed reason, Enter."""
    window.actions_by_id[SKIP].trigger()
    dialog = window.queue.skip_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT)
    qtbot.keyClicks(dialog.reason, reason)
    qtbot.keyClick(dialog.reason, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.queue.skip_dialog is None, timeout=WAIT)


@pytest.mark.postgres
def test_skip_while_the_database_is_unreachable_keeps_the_item_and_works_after_restart(
    qtbot, up: Any, open_window, screenshot_dir: Path
) -> None:
    url = up.database("gui_skip")
    project = api.create_project(
        url, "offline", ontology=ONTOLOGY, settings=ProjectSettings(batch_size=2), user="ann"
    )
    project.import_data([sample_data.skimage_images() / name for name in IMAGES])
    window = open_window(project, size=(1400, 900))
    c = window.queue.controller
    notices: list[str] = []
    c.notice.connect(notices.append)
    window.actions_by_id[START].trigger()
    qtbot.waitUntil(lambda: c.current == 0 and not c.opening and c.idle, timeout=WAIT)
    item, nxt = c.items[0], c.items[1]
    session = window.editing.session
    assert session is not None and session.asset.id == item.asset.id and _on_screen(window, item.asset.id)

    up.stop()
    for attempt in (1, 2):  # pressing it again while offline changes nothing
        _skip_with(qtbot, window, "too blurry to outline")
        qtbot.waitUntil(
            lambda n=attempt: len([m for m in notices if m.startswith("Offline")]) == n, timeout=WAIT
        )
        qtbot.waitUntil(lambda: c.idle, timeout=WAIT)
        assert c.current == 0 and item.state is ItemState.CURRENT  # not skipped, not gone
        assert window.editing.session is session and _on_screen(window, item.asset.id)  # still on screen
        assert nxt.state is ItemState.WAITING and c.renew_timer.isActive()  # leases kept
        assert window.queue.skip_button.isEnabled() and window.queue.submit_button.isEnabled()
    message = notices[-1]
    assert message == (
        "Offline: the database is unreachable; Skip will be possible when the database is back. "
        "This item stays open."
    )
    assert window.queue.notice.text() == message and window.queue.notice.isVisible()
    assert not any(m.startswith("Could not skip") for m in notices)
    # an edit made while offline is kept with the item (journaled), and said so by the next Skip
    session.stack.push(AddAnnotation(Annotation(kind=Kind.POLYGON, label="liver", frame=0, points=SQUARE)))
    _skip_with(qtbot, window, "too blurry to outline")
    qtbot.waitUntil(lambda: len([m for m in notices if m.startswith("Offline")]) == 3, timeout=WAIT)
    assert notices[-1] == (
        "Offline: 1 edit waiting; Skip will be possible when the database is back. "
        "Your edits are kept on this computer."
    )
    assert c.current == 0 and item.state is ItemState.CURRENT and session.pending_count == 1
    qtbot.waitUntil(lambda: c.idle, timeout=WAIT)
    queue_dock = window.findChild(QDockWidget, "dock-queue")
    assert queue_dock is not None
    queue_dock.raise_()
    qtbot.waitUntil(lambda: not window.queue.visibleRegion().isEmpty(), timeout=WAIT)  # in front, laid out
    window.grab().save(str(screenshot_dir / "queue_guard_skip_offline.png"))

    up.start()
    _skip_with(qtbot, window, "too blurry to outline")
    qtbot.waitUntil(lambda: item.state is ItemState.SKIPPED and c.current == 1, timeout=WAIT)
    qtbot.waitUntil(lambda: _on_screen(window, nxt.asset.id) and c.idle, timeout=WAIT)
    assert nxt.state is ItemState.CURRENT
    with project.db.unit_of_work(readonly=True) as uow:
        rows = [
            r for r in uow.audit.list(entity="asset", entity_id=item.asset.id) if r.action == "queue.skip"
        ]
    assert [r.details for r in rows] == [{"task_id": item.lease.task_id, "reason": "too blurry to outline"}]
    # the edit made offline reached the database as the editor left the item
    qtbot.waitUntil(lambda: len(project.annotation_objects(item.asset.id)) == 1, timeout=WAIT)
    assert project.queue_stats()["submitted"] == 0
