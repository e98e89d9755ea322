"""The queue panel on an item that came back to the labeler who skipped it (real SQLite project,
real images, offscreen): the batch list and a banner say so, with the reason."""

from __future__ import annotations

from pathlib import Path

from app import api, sample_data
from app.core.records import ProjectSettings
from app.workflow.queue_batch import skipped_line

ONTOLOGY = {"classes": [{"name": "liver", "color": "#c0504d"}]}
WAIT = 20_000


def test_a_skipped_item_comes_back_last_and_the_panel_says_why(qtbot, open_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = str(tmp_path / "labels.db")
    settings = ProjectSettings(batch_size=4)
    project = api.create_project(db, "queue", ontology=ONTOLOGY, settings=settings, user="ann")
    skipped_id, other_id = project.import_data(
        [sample_data.skimage_images() / name for name in ("camera.png", "coins.png")]
    )
    (lease,) = project.claim(batch=1)  # nobody else labels here: the item comes back to her, last
    assert lease.asset_id == skipped_id
    project.skip(lease, "too dark to see the edge")

    window = open_window(project)
    window.actions_by_id["sitelabel.queue.start"].trigger()
    c = window.queue.controller
    qtbot.waitUntil(lambda: len(c.items) == 2 and c.current == 0 and not c.opening, timeout=WAIT)
    assert [i.asset.id for i in c.items] == [other_id, skipped_id]
    assert not window.queue.skipped.isVisible()
    assert window.queue.batch.item(1).text().endswith("(you skipped it earlier)")
    window.actions_by_id["sitelabel.queue.submit"].trigger()
    qtbot.waitUntil(lambda: c.current == 1 and not c.opening, timeout=WAIT)
    assert window.queue.skipped.isVisible()
    assert window.queue.skipped.text() == skipped_line("too dark to see the edge")
    assert window.queue.skipped.text().startswith("You skipped this earlier: too dark to see the edge.")
