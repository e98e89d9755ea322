"""Queue mode: Submit on an item the labeler did not edit while the PostgreSQL server is down (this
module's own throwaway cluster, really stopped and started again).

With nothing to save, no save proves the database reachable, so the item must stay on screen until
the submit is answered: while offline it stays, with the offline message, and is not marked "not
submitted"; once the server is back the same Submit goes through and the next item opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QThreadPool

from app import api, sample_data
from app.core.records import ProjectSettings
from app.editor.queue_controller import ItemState
from app.workflow.editing import SaveState

ONTOLOGY = {"classes": [{"name": "liver", "color": "#c0504d"}, {"name": "lesion", "color": "#4f81bd"}]}
IMAGES = ["camera.png", "coins.png", "moon.png"]
WAIT = 30_000
SUBMIT = "sitelabel.queue.submit"

pytestmark = pytest.mark.postgres


@pytest.fixture
def url(pg_up: Any) -> str:
    """A fresh database on this module's own cluster (tests/conftest.py), which is started again should
    the test fail while it is down."""
    return str(pg_up.database("gui_submit"))


def test_submit_with_nothing_to_save_while_offline_keeps_the_item_on_screen(
    qtbot, open_window, pg_up: Any, url: str, screenshot_dir: Path
) -> None:
    project = api.create_project(
        url, "offline", ontology=ONTOLOGY, settings=ProjectSettings(batch_size=2), user="ann"
    )
    project.import_data([sample_data.skimage_images() / name for name in IMAGES])
    window = open_window(project, size=(1400, 900))
    try:
        c = window.queue.controller
        notices: list[str] = []
        c.notice.connect(notices.append)
        window.actions_by_id["sitelabel.queue.start"].trigger()
        qtbot.waitUntil(lambda: c.current == 0 and not c.opening and c.idle, timeout=WAIT)
        item, nxt = c.items[0], c.items[1]
        session = window.editing.session
        assert session is not None and session.asset.id == item.asset.id
        assert session.pending_count == 0 and session.status is SaveState.SAVED  # nothing to save
        assert c.prepared is not None and c.prepared.asset.id == nxt.asset.id  # the next is decoded

        pg_up.stop()
        for attempt in (1, 2):  # pressing it again while offline changes nothing
            window.actions_by_id[SUBMIT].trigger()
            qtbot.waitUntil(
                lambda n=attempt: len([m for m in notices if m.startswith("Offline")]) == n, timeout=WAIT
            )
            qtbot.waitUntil(lambda: c.idle, timeout=WAIT)
            assert c.current == 0 and item.state is ItemState.CURRENT  # not "not submitted", not gone
            assert window.editing.session is session and window.current is not None
            assert window.current.asset.id == item.asset.id  # still on screen
            assert nxt.state is ItemState.WAITING and c.renew_timer.isActive()  # leases kept
        message = notices[-1]
        assert message == (
            "Offline: the database is unreachable; Submit will be possible when the database is back. "
            "This item stays open."
        )
        assert window.queue.notice.text() == message and window.queue.notice.isVisible()
        assert not any(m.startswith("Could not submit") for m in notices)
        qtbot.waitUntil(lambda: not window.queue.notice.visibleRegion().isEmpty())  # laid out, shown
        window.grab().save(str(screenshot_dir / "offline_submit.png"))

        pg_up.start()
        window.actions_by_id[SUBMIT].trigger()
        qtbot.waitUntil(lambda: item.state is ItemState.SUBMITTED and c.current == 1, timeout=WAIT)
        qtbot.waitUntil(lambda: window.editing.session is not None, timeout=WAIT)
        assert window.editing.session.asset.id == nxt.asset.id  # the next item opened
        assert nxt.state is ItemState.CURRENT
        assert project.queue_stats()["submitted"] == 1
    finally:
        window.close()
        assert QThreadPool.globalInstance().waitForDone(WAIT)
        project.close()
