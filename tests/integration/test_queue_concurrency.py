"""Many worker processes on one queue (real PostgreSQL and SQLite, real leases, real SIGKILL)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _queue_worker import Event, SkipRule, drain, drain_skipping, make_project, make_queue, set_start
from sqlalchemy import func, select

from app.core.records import AssignmentStatus
from app.storage import Database
from app.storage.repo_tasks import aware
from app.storage.tables import AssignmentRow
from app.workflow import queue
from app.workflow.queue import Lease, LeaseExpired

WORKER = Path(__file__).with_name("_queue_worker.py")


def _assignment_counts(db: Database, project_id: int) -> tuple[int, int, int]:
    """(tasks claimed more than once, assignments, submitted assignments) of the project."""
    with db.unit_of_work(readonly=True) as uow:
        per_task = (
            select(AssignmentRow.task_id, func.count().label("n")).group_by(AssignmentRow.task_id).subquery()
        )
        dupes = uow.session.execute(select(func.count()).where(per_task.c.n > 1)).scalar_one()
        total = uow.session.execute(select(func.count()).select_from(AssignmentRow)).scalar_one()
        submitted = uow.session.execute(
            select(func.count()).where(AssignmentRow.status == AssignmentStatus.SUBMITTED.value)
        ).scalar_one()
    return int(dupes), int(total), int(submitted)


@pytest.mark.parametrize(
    ("backend", "workers", "items"),
    [("sqlite", 4, 1000), pytest.param("postgresql", 16, 10_000, marks=pytest.mark.postgres)],
)
def test_workers_claim_every_item_exactly_once(
    backend: str, workers: int, items: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = str(tmp_path / "labels.db") if backend == "sqlite" else str(request.getfixturevalue("pg_url"))
    db = Database.open(url)
    try:
        project, _ = make_project(db)
        make_queue(db, project, items)
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers) as pool:
            results = pool.starmap(drain, [(url, project, f"w{i}", 10) for i in range(workers)])
        errors = [e for _, _, errs in results for e in errs]
        assert errors == []
        done = [t for ids, _, _ in results for t in ids]
        assert len(done) == items and len(set(done)) == items  # each submitted once, by one worker
        assert sum(1 for ids, _, _ in results if ids) > 1  # the work was really shared
        assert _assignment_counts(db, project) == (0, items, items)  # no task claimed twice
        stats = queue.queue_stats(db, project)
        assert (stats["submitted"], stats["new"], stats["leased"]) == (items, 0, 0)
    finally:
        db.dispose()


Row = tuple[int, int, int, str, datetime, datetime | None]  # id, task, user, status, leased, finished
MARGIN = timedelta(seconds=1)  # a transaction's clock reading and its statements are ms apart


def _held_around(rows: list[Row], user: int, moment: datetime) -> bool:
    """Whether another user held (or was taking) the task around ``moment``."""
    return any(
        u != user and leased <= moment + MARGIN and (finished is None or finished >= moment - MARGIN)
        for _, _, u, _, leased, finished in rows
    )


def _check_skips(rows: list[Row], results: list[tuple[int, list[Event], list[str]]], rule: SkipRule) -> int:
    """The skip rule in the assignments (see the test); returns how many items came back."""
    index = {user: i for i, (user, _, _) in enumerate(results)}
    per_task: dict[int, list[Row]] = defaultdict(list)
    for row in sorted(rows):
        per_task[row[1]].append(row)
    notes = {a: note for _, events, _ in results for kind, _, a, note in events if kind == "claim"}
    came_back: list[Row] = []
    for task, theirs in per_task.items():
        by_user: dict[int, list[Row]] = defaultdict(list)
        for row in theirs:
            by_user[row[2]].append(row)
        assert all(notes[x[0][0]] is None for x in by_user.values())  # a first claim says nothing
        if task % rule.everyone:  # someone does not skip it: nobody may get it twice
            assert all(len(x) == 1 for x in by_user.values()), f"task {task} came back: {theirs}"
            continue
        # everyone skips it: it comes back to one worker only after every worker skipped it
        assert sorted(by_user) == sorted(index), f"task {task} came back before all skipped it: {theirs}"
        assert all(x[0][3] == "skipped" for x in by_user.values())
        (again,) = [x[1] for x in by_user.values() if len(x) == 2]
        assert again[3] == "submitted" and all(len(x) <= 2 for x in by_user.values())
        assert again[0] > max(x[0][0] for x in by_user.values())
        assert notes[again[0]] == f"w{index[again[2]]} passes on {task}"  # the lease said so, and why
        came_back.append(again)
    for again in came_back:  # and after the rest of that worker's queue: nothing else was free then
        user, moment = again[2], again[4]
        later = [r for r in rows if r[2] == user and r[0] > again[0] and r[1] % rule.everyone]
        free = [r for r in later if not _held_around(per_task[r[1]], user, moment)]
        assert free == [], f"w{index[user]} got a skipped item back while {free} was free"
    return len(came_back)


@pytest.mark.parametrize(
    ("backend", "workers", "items", "rule"),
    [
        ("sqlite", 4, 160, SkipRule(everyone=20, mine=6)),
        pytest.param("postgresql", 16, 320, SkipRule(everyone=40, mine=8), marks=pytest.mark.postgres),
    ],
)
def test_a_skipped_item_goes_to_the_other_workers_first(
    backend: str, workers: int, items: int, rule: SkipRule, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Each worker skips some items; every worker skips every ``rule.everyone``-th. A skipped item
    must not come back to its skipper while another worker could take it or the skipper has other
    items left: an item some worker does not skip is never claimed twice by anyone, and one that
    everyone skips comes back (to one worker, with their reason) only after every worker skipped it,
    when nothing else was free for that worker."""
    url = str(tmp_path / "labels.db") if backend == "sqlite" else str(request.getfixturevalue("pg_url"))
    db = Database.open(url)
    try:
        project, _ = make_project(db, batch=4, lease_seconds=600)  # outlasts the workers' start-up
        make_queue(db, project, items)
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=set_start, initargs=(context.Barrier(workers),)) as pool:
            results = pool.starmap(drain_skipping, [(url, project, i, 4, rule) for i in range(workers)])
        assert [e for _, _, errs in results for e in errs] == []
        stats = queue.queue_stats(db, project)
        assert (stats["submitted"], stats["new"], stats["leased"], stats["in_progress"]) == (items, 0, 0, 0)
        with db.unit_of_work(readonly=True) as uow:
            found = uow.session.execute(
                select(
                    AssignmentRow.id,
                    AssignmentRow.task_id,
                    AssignmentRow.user_id,
                    AssignmentRow.status,
                    AssignmentRow.leased_at,
                    AssignmentRow.finished_at,
                )
            ).all()
        rows = [
            (int(a), int(t), int(u), str(s), aware(le), None if f is None else aware(f))
            for a, t, u, s, le, f in found
        ]
        assert _check_skips(rows, results, rule) == items // rule.everyone
        assert (
            sum(1 for r in rows if r[3] == "skipped") > items // rule.everyone * workers
        )  # some of their own
    finally:
        db.dispose()


def _start_hanging_worker(
    url: str, project: int, user: str, batch: int, seconds: int
) -> tuple[subprocess.Popen[str], list[Lease]]:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), url, str(project), user, str(batch), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    leases: list[Lease] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        parts = line.split()
        if parts[:1] == ["ready"]:
            return proc, leases
        if parts[:1] == ["lease"]:
            a, t, s, u = (int(p) for p in parts[1:5])
            leases.append(Lease(a, t, s, u, datetime.fromisoformat(parts[5])))
    raise AssertionError(f"worker exited early with {proc.wait()}")


def test_killed_worker_loses_its_lease(db_url: str) -> None:
    db = Database.open(db_url)
    proc: subprocess.Popen[str] | None = None
    try:
        project, (bob, cid) = make_project(db, users=2)
        make_queue(db, project, 30)
        proc, dead = _start_hanging_worker(db_url, project, "crashed", 5, 2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert len(dead) == 5
        dead_tasks = {lease.task_id for lease in dead}
        # while the leases run, nobody else gets those items
        bobs = queue.claim(db, project, bob, batch=100)
        assert len(bobs) == 25 and dead_tasks.isdisjoint(lease.task_id for lease in bobs)
        time.sleep(
            max(0.0, (max(lease.expires_at for lease in dead) - datetime.now(UTC)).total_seconds()) + 0.2
        )
        taken = queue.claim(db, project, cid, batch=100)
        assert {lease.task_id for lease in taken} == dead_tasks
        with pytest.raises(LeaseExpired, match=r"expired .* took it over"):
            queue.submit(db, dead[0])  # the crashed app comes back with its old lease: rejected
        for lease in taken:
            queue.submit(db, lease)
        assert _assignment_counts(db, project)[2] == 5
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        db.dispose()
