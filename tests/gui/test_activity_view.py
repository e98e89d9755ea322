"""The activity view on the real demo project after four days of (clock-controlled) team work:
filters, sorting, charts, re-enqueue, a labeler's own view, and the main window's dock."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from support.windows import focus

from app import api
from app.core.item_status import counts_line
from app.editor.activity_view import ITEM_COLUMNS, MAX_ROWS, ActivityView, RecordTableModel
from app.workflow import queue
from app.workflow.activity import ItemActivity

LONG = 3600


def _square(offset: int) -> list[dict[str, object]]:
    x = 20 + offset
    points = [[x, 20], [x + 40, 20], [x + 40, 60], [x, 60]]
    return [{"kind": "polygon", "label": "object", "frame": 0, "points": points}]


def _work(
    db: api.Project, who: api.Project, day: datetime, batch: int, submit: int, offset: int
) -> list[int]:
    """``who`` claims ``batch`` items at 09:00 on ``day``, labels them, submits the first ``submit``."""
    start = day.replace(hour=9, minute=0)
    leases = queue.claim(db.db, db.id, who.user.id, batch=batch, lease_seconds=LONG, now=lambda: start)
    for n, lease in enumerate(leases):
        who.upload_annotations(lease.asset_id, _square(offset + 3 * n))
        if n < submit:
            queue.submit(db.db, lease, now=lambda n=n: start + timedelta(minutes=4 + 6 * n))
    return [lease.asset_id for lease in leases]


@pytest.fixture
def busy_demo(demo_db: Path, tmp_path: Path) -> Path:
    """A copy of the demo project where lee and max labeled for four days; the first six items
    need two labelers (their agreement is scored on the second submit); rita reviewed two."""
    for file in demo_db.parent.glob(f"{demo_db.name}*"):
        shutil.copy(file, tmp_path / file.name)
    path = tmp_path / demo_db.name
    admin = api.open_project(path, create=False)
    for name, role in (("lee", "labeler"), ("max", "labeler"), ("rita", "reviewer")):
        admin.set_member(name, role)
    ids = sorted(a.id for a in admin.assets())
    queue.set_required(admin.db, admin.id, ids[:6], 2)
    lee, max_, rita = (api.open_project(admin.db, user=n) for n in ("lee", "max", "rita"))
    today = datetime.now(UTC).replace(hour=12)
    day = [today - timedelta(days=d) for d in (4, 3, 2, 1)]
    _work(admin, lee, day[0], batch=3, submit=3, offset=0)
    _work(admin, max_, day[0], batch=2, submit=2, offset=4)
    _work(admin, lee, day[1], batch=3, submit=3, offset=0)
    _work(admin, max_, day[1], batch=2, submit=2, offset=12)
    _work(admin, lee, day[2], batch=1, submit=1, offset=0)
    _work(admin, max_, day[3], batch=3, submit=3, offset=24)
    assert len(lee.claim(1)) == 1  # lee is on it right now (a normal lease)
    rita.accept(ids[0])
    rita.reject(ids[1], "lee", "the outline misses the left edge")
    rita.comment(ids[-1], "is the clip complete?")
    return path


def _view(qtbot, project: api.Project) -> ActivityView:  # type: ignore[no-untyped-def]
    view = ActivityView(project)
    qtbot.addWidget(view)
    view.resize(1500, 880)
    with qtbot.waitSignal(view.loaded, timeout=30_000):
        view.show()  # the first show loads
    return view


def _shown(view: ActivityView) -> list[int]:
    return [row.asset_id for row in view.items.rows]


def _choose(qtbot, view: ActivityView, combo, value: str) -> None:  # type: ignore[no-untyped-def]
    index = combo.findData(value)
    assert index >= 0, f"{value!r} is not offered"
    with qtbot.waitSignal(view.loaded, timeout=30_000):
        combo.setCurrentIndex(index)


def test_activity_view_filters_sorts_and_charts(qtbot, themed_qapp, busy_demo: Path, screenshot_dir) -> None:
    project = api.open_project(busy_demo, create=False)
    view = _view(qtbot, project)
    ids = sorted(a.id for a in project.assets())
    assert _shown(view) == ids and view.summary.text() == "10 items"
    assert view.requeue_button.isVisible()  # the demo's creator administers it
    expected = {r.asset_id: r for r in project.activity().rows}
    assert view.items.rows == [expected[i] for i in ids]
    # the queue numbers: the panel's (queue_stats), and the same as the rows' status words
    counts = project.queue_stats()
    assert view.counts.text() == f"Queue: {counts_line(counts)}"
    assert Counter(r.status for r in view.items.rows) == {
        k: n for k, n in counts.items() if n and k != "total"
    }
    assert {r.name for r in view.people.rows} == {"lee", "max"}
    assert view.histogram.has_data() and sum(view.histogram.counts) == sum(
        project.agreement_histogram().counts
    )
    assert set(view.throughput.series) == {"lee", "max"} and len(view.throughput.starts) == 4

    # the combos offer what the project holds; each choice reloads from the database
    assert view.modality.findData("CT") > 0 and view.label.findData("object") > 0
    _choose(qtbot, view, view.status, "leased")
    assert [r.status for r in view.items.rows] == ["leased"] and view.items.rows[0].labelers == ("lee",)
    _choose(qtbot, view, view.status, "")
    _choose(qtbot, view, view.modality, "CT")
    assert {r.modality for r in view.items.rows} == {"CT"} and len(view.items.rows) == 2
    _choose(qtbot, view, view.modality, "")
    _choose(qtbot, view, view.labeler, "max")
    assert all("max" in r.labelers for r in view.items.rows) and len(view.items.rows) == 7
    _choose(qtbot, view, view.labeler, "")
    with qtbot.waitSignal(view.loaded, timeout=30_000):
        view.search.setText("coins")
    assert [r.path.rsplit("/", 1)[-1] for r in view.items.rows] == ["coins.png"]
    with qtbot.waitSignal(view.loaded, timeout=30_000):
        view.search.clear()

    time_column = next(i for i, c in enumerate(ITEM_COLUMNS) if c.title == "Time")
    view.table.sortByColumn(time_column, Qt.SortOrder.DescendingOrder)
    times = [r.seconds for r in view.items.rows]
    known = [t for t in times if t is not None]
    assert known == sorted(known, reverse=True) and times[: len(known)] == known  # empty ones last
    view.table.selectRow(0)
    focus(qtbot, view.table)  # the screenshot shows the focused table
    view.grab().save(str(screenshot_dir / "activity_view.png"))

    # double-click (or Enter) asks the window to open the item
    rect = view.table.visualRect(view.items.index(1, 1))
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    with qtbot.waitSignal(view.asset_requested, timeout=5_000) as opened:
        qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened.args == [view.items.rows[1].asset_id]
    view.table.selectRow(2)
    with qtbot.waitSignal(view.asset_requested, timeout=5_000) as opened:
        qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert opened.args == [view.items.rows[2].asset_id]


def test_reviewer_requeues_selected_items_and_labeler_sees_own_rows(
    qtbot, themed_qapp, busy_demo: Path
) -> None:
    admin = api.open_project(busy_demo, create=False)
    ids = sorted(a.id for a in admin.assets())
    rita = _view(qtbot, api.open_project(busy_demo, create=False, user="rita"))
    _choose(qtbot, rita, rita.status, "rejected")
    assert _shown(rita) == [ids[1]]
    rita.table.selectRow(0)
    with qtbot.waitSignal(rita.loaded, timeout=30_000):
        rita.requeue_selected(confirm=False)
    assert _shown(rita) == []  # nothing is rejected any more
    item = next(r for r in admin.activity().rows if r.asset_id == ids[1])
    assert (item.status, item.labelers) == ("new", ())

    lee_project = api.open_project(busy_demo, create=False, user="lee")
    lee = _view(qtbot, lee_project)
    assert not lee.requeue_button.isVisible()
    assert all(r.labelers == ("lee",) for r in lee.items.rows) and lee.items.rows
    assert [lee.labeler.itemData(i) for i in range(lee.labeler.count())] == ["", "lee"]
    assert [r.name for r in lee.people.rows] == ["lee"]
    assert lee.summary.text().endswith("your items only")
    lee.table.selectRow(0)
    with qtbot.waitSignal(lee.failed, timeout=30_000) as refused:
        lee.requeue_selected(confirm=False)  # hidden for labelers, and refused by the API anyway
    assert "reviewer" in refused.args[0]


def test_ten_thousand_rows_sort_in_memory_with_uniform_rows(qtbot, themed_qapp) -> None:
    rows = [
        ItemActivity(
            i, f"r:img/{i:05d}.png", "d", "image", "new", (), float(i % 97), 1, None, None, None, 0,
            (), None, None, None, None,
        )
        for i in range(10_000)
    ]  # fmt: skip
    model = RecordTableModel(ITEM_COLUMNS)
    model.set_rows(rows)
    from app.editor.activity_view import _table

    table = _table(model, None)  # type: ignore[arg-type]
    qtbot.addWidget(table)
    table.resize(900, 400)
    table.show()
    assert table.verticalHeader().sectionResizeMode(0).name == "Fixed"
    table.sortByColumn(5, Qt.SortOrder.DescendingOrder)
    assert model.rows[0].seconds == 96.0 and model.rows[-1].seconds == 0.0
    table.scrollToBottom()
    assert table.rowAt(table.viewport().height() - 2) >= 9_990
    # a list cut at MAX_ROWS asks the database to sort instead of sorting what it has
    model.set_rows(rows, complete=False)
    with qtbot.waitSignal(model.server_sort, timeout=1_000) as asked:
        model.sort(5, Qt.SortOrder.AscendingOrder)
    assert asked.args == ["time", False] and MAX_ROWS >= 10_000


def test_main_window_activity_dock(qtbot, open_window, busy_demo: Path, screenshot_dir) -> None:
    from PySide6.QtWidgets import QDockWidget

    window = open_window(api.open_project(busy_demo, create=False))
    dock = window.findChild(QDockWidget, "dock-activity")
    assert dock is not None and not dock.isVisible()  # hidden until asked for
    keys = [k for b in window.bindings for k in b.keys.split(" or ") if b.keys]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    assert ("Ctrl+Shift+A", "Activity view (show / hide)") in window.help.entries
    with qtbot.waitSignal(window.activity.loaded, timeout=30_000):
        window.actions_by_id["sitelabel.activity.toggle"].trigger()
    assert dock.isVisible() and window.activity.items.rowCount() == 10
    window.grab().save(str(screenshot_dir / "activity_dock.png"))
    wanted = window.activity.items.rows[-1].asset_id
    assert window.current.asset.id != wanted
    window.activity.asset_requested.emit(wanted)
    qtbot.waitUntil(lambda: window.current is not None and window.current.asset.id == wanted, timeout=20_000)
    window.actions_by_id["sitelabel.activity.toggle"].trigger()
    assert not dock.isVisible()
    window.close()
