"""Many worker processes on one queue (real PostgreSQL and SQLite, real leases, real SIGKILL)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _queue_worker import drain, make_project, make_queue
from sqlalchemy import func, select

from app.core.records import AssignmentStatus
from app.storage import Database
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
