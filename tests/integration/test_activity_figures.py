"""Activity figures with a controlled clock (exact lease times and throughput), the agreement
histogram, DICOM tag filters, and the statement count that must not grow with the items."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _queue_worker import make_project, make_queue
from sqlalchemy import event, update

from app import api, sample_data
from app.storage import Database
from app.storage.repo_activity import HAS_AGREEMENT
from app.storage.tables import TaskRow
from app.workflow import queue
from app.workflow.activity import ItemFilters, agreement_histogram, item_rows, labeler_rows, throughput_series

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday morning
T1 = T0 + timedelta(days=1)


def at(moment: datetime) -> queue.Clock:
    return lambda: moment


@pytest.fixture
def worked(db: Database) -> tuple[Database, int, list[int]]:
    """Six queued images. Day 1: lee claims a1-a3 at 09:00 and submits them at 09:10, 09:20, 09:30;
    max claims a4 at 09:05 and skips it at 09:08. Day 2: lee claims a4 and a5 at 09:00 (10-minute
    leases), submits a4 at 09:05 and lets a5 run out."""
    project_id, (lee, max_) = make_project(db, "figures", users=2, batch=3)
    ids = make_queue(db, project_id, 6)
    day1 = queue.claim(db, project_id, lee, lease_seconds=3600, now=at(T0))
    assert [lease.asset_id for lease in day1] == ids[:3]
    for minutes, lease in zip((10, 20, 30), day1, strict=True):
        queue.submit(db, lease, now=at(T0 + timedelta(minutes=minutes)))
    (skipped,) = queue.claim(
        db, project_id, max_, batch=1, lease_seconds=3600, now=at(T0 + timedelta(minutes=5))
    )
    assert skipped.asset_id == ids[3]
    queue.skip(db, skipped, now=at(T0 + timedelta(minutes=8)))
    day2 = queue.claim(db, project_id, lee, batch=2, lease_seconds=600, now=at(T1))
    assert [lease.asset_id for lease in day2] == ids[3:5]
    queue.submit(db, day2[0], now=at(T1 + timedelta(minutes=5)))
    return db, project_id, ids


def test_time_spent_is_lease_time_per_item(worked: tuple[Database, int, list[int]]) -> None:
    db, project_id, ids = worked
    page = item_rows(db, project_id, now=at(T1 + timedelta(hours=1)))
    rows = {row.asset_id: row for row in page.rows}
    # a batch is claimed at once: later items of the batch include the time spent on earlier ones
    assert [rows[a].seconds for a in ids] == pytest.approx([600, 1200, 1800, 300, None, None], nan_ok=True)
    assert [rows[a].status for a in ids] == ["submitted"] * 4 + ["new", "new"]  # a5's lease ran out
    assert rows[ids[4]].labelers == ()
    while_leased = item_rows(db, project_id, ItemFilters(status="leased"), now=at(T1 + timedelta(minutes=1)))
    assert [row.asset_id for row in while_leased.rows] == [ids[4]]
    assert while_leased.rows[0].labelers == ("u0",)
    slowest = item_rows(
        db, project_id, sort="time", descending=True, limit=2, now=at(T1 + timedelta(hours=1))
    )
    assert [row.asset_id for row in slowest.rows] == [ids[2], ids[1]] and slowest.total == 6


def test_throughput_counts_overlapping_leases_once(worked: tuple[Database, int, list[int]]) -> None:
    db, project_id, _ = worked
    later = at(T1 + timedelta(hours=1))
    rows = {r.name: r for r in labeler_rows(db, project_id, now=later)}
    lee, max_ = rows["u0"], rows["u1"]
    # lee held leases 09:00-09:30 on day 1 (three overlapping) and 09:00-09:10 on day 2: 40 minutes
    assert (lee.submitted, lee.skipped, lee.rejected) == (4, 0, 0)
    assert lee.lease_seconds == pytest.approx(2400)
    assert lee.per_hour == pytest.approx(6.0)
    assert (lee.mean_agreement, lee.consensus_items) == (None, 0)
    assert (max_.submitted, max_.skipped, max_.lease_seconds, max_.per_hour) == (
        0,
        1,
        pytest.approx(180),
        0.0,
    )

    day2 = {r.name: r for r in labeler_rows(db, project_id, since=T1, now=later)}
    assert set(day2) == {"u0"}
    assert (day2["u0"].submitted, day2["u0"].lease_seconds, day2["u0"].per_hour) == (
        1,
        pytest.approx(600),
        pytest.approx(6.0),
    )
    day1 = {
        r.name: r for r in labeler_rows(db, project_id, since=T0, until=T0 + timedelta(minutes=15), now=later)
    }
    assert (day1["u0"].submitted, day1["u0"].lease_seconds) == (1, pytest.approx(900))
    assert (day1["u1"].skipped, day1["u1"].lease_seconds) == (1, pytest.approx(180))

    series = throughput_series(db, project_id, "day", tz=UTC)
    assert series.starts == [datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 5, tzinfo=UTC)]
    assert series.counts == {"u0": [3, 1]}
    hourly = throughput_series(db, project_id, "hour", tz=UTC)
    assert len(hourly.starts) == 25 and hourly.counts["u0"][0] == 3 and hourly.counts["u0"][-1] == 1
    weekly = throughput_series(db, project_id, "week", tz=UTC)
    assert weekly.starts == [datetime(2024, 3, 4, tzinfo=UTC)] and weekly.counts == {"u0": [4]}


@pytest.mark.skipif(not HAS_AGREEMENT, reason="tasks.agreement arrives with the review migration")
def test_agreement_histogram_bins(worked: tuple[Database, int, list[int]]) -> None:
    db, project_id, ids = worked
    scores = {ids[0]: 0.05, ids[1]: 0.55, ids[2]: 0.95, ids[3]: 1.0}
    with db.unit_of_work() as uow:
        for asset_id, score in scores.items():
            uow.session.execute(update(TaskRow).where(TaskRow.asset_id == asset_id).values(agreement=score))
    histogram = agreement_histogram(db, project_id, bins=10)
    assert histogram.counts == [1, 0, 0, 0, 0, 1, 0, 0, 0, 2] and histogram.total == 4
    assert agreement_histogram(db, project_id, bins=2).counts == [1, 3]
    by_score = item_rows(db, project_id, sort="agreement", limit=3)
    assert [row.agreement for row in by_score.rows] == pytest.approx([0.05, 0.55, 0.95])


def test_dicom_tag_filters_on_real_files(db_url: str) -> None:
    project = api.create_project(db_url, "dicom", user="ada")
    names = ("CT_small.dcm", "693_UNCI.dcm", "emri_small.dcm", "MR_small.dcm")
    project.import_data([sample_data.dicom_file(n) for n in names])
    ids = {a.rel_path.rsplit("/", 1)[-1]: a.id for a in project.assets()}  # scans do not keep arg order
    assert set(ids) == set(names)

    def found(**filters: Any) -> set[str]:
        return {
            name for name, i in ids.items() if i in {r.asset_id for r in project.activity(**filters).rows}
        }

    assert found(modality="CT") == {"CT_small.dcm", "693_UNCI.dcm"}
    assert found(modality="MR", body_part="head") == {"emri_small.dcm"}
    assert found(search="5MM PLAIN") == {"693_UNCI.dcm"}  # the series description
    assert found(study_from="2000-01-01", study_to="2000-12-31") == {"emri_small.dcm"}
    facets = project.activity_facets()
    assert (facets.modalities, facets.body_parts) == (["CT", "MR"], ["HEAD"])
    rows = {r.asset_id: r for r in project.activity(sort="study_date").rows}
    assert rows[ids["693_UNCI.dcm"]].series == "5/5mm Plain"
    assert rows[ids["693_UNCI.dcm"]].study_date is None


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _busy_project(db: Database, name: str, items: int) -> int:
    """``items`` queued images, each claimed, labeled and submitted by one of two labelers."""
    project_id, users = make_project(db, name, users=2, batch=items)
    ids = make_queue(db, project_id, items)
    from app.core.annotations import Annotation

    for n, user in enumerate(users):
        for lease in queue.claim(db, project_id, user, batch=(items + 1) // 2):
            box = Annotation.from_dict({"kind": "box", "label": f"c{n}", "frame": 0, "box": [1, 1, 9, 9]})
            with db.unit_of_work() as uow:
                uow.annotations.add(lease.asset_id, box, user)
            queue.submit(db, lease)
    assert len(ids) == items
    return project_id


def test_statement_count_does_not_grow_with_items(db: Database) -> None:
    counts = []
    for name, items in (("small", 4), ("large", 60)):
        project_id = _busy_project(db, name, items)
        with statements(db) as seen:
            page = item_rows(db, project_id, sort="time", limit=10)
            everything = item_rows(db, project_id, ItemFilters(label="c0"))
            labeler_rows(db, project_id)
        assert page.total == items and len(page.rows) == min(10, items)
        assert everything.total == items // 2 and all(r.labelers == ("u0",) for r in everything.rows)
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
