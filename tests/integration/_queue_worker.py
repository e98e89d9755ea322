"""Set-up helpers for the queue tests and bench, and worker processes (importable by spawned children).

``make_queue`` registers many assets with one executemany (the asset repository adds one at a time,
too slow for 10,000) and queues them. The workers open their own Database, like a workstation.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from app.core.records import AssetKind
from app.storage import Database
from app.storage.tables import AssetRow, table_of, utcnow
from app.workflow import queue


def make_project(
    db: Database, name: str = "queue", *, users: int = 0, batch: int = 10, lease_seconds: int = 60
) -> tuple[int, list[int]]:
    """A project and ``users`` labelers called u0, u1, ..."""
    from app.core.records import ProjectSettings

    with db.unit_of_work() as uow:
        project = uow.projects.create(name, ProjectSettings(batch_size=batch, lease_seconds=lease_seconds))
        user_ids = [uow.users.ensure(f"u{i}").id for i in range(users)]
    return project.id, user_ids


def add_assets(db: Database, project_id: int, count: int) -> list[int]:
    """Register ``count`` image assets in one statement; returns their ids in order."""
    with db.unit_of_work() as uow:
        dataset = uow.datasets.ensure(project_id, "d")
        root_id = uow.data_roots.ensure("r")
        start = len(uow.assets.list(project_id))
        now = utcnow()
        rows: list[dict[str, Any]] = [
            {
                "project_id": project_id,
                "dataset_id": dataset.id,
                "kind": AssetKind.IMAGE.value,
                "root_id": root_id,
                "rel_path": f"img/{start + i:06d}.png",
                "member": "",
                "size": 1,
                "mtime_ns": 1,
                "content_hash": "h",
                "frame_count": 1,
                "width": 64,
                "height": 64,
                "meta": {},
                "created_at": now,
            }
            for i in range(count)
        ]
        uow.session.execute(insert(table_of(AssetRow)), rows)
        query = select(AssetRow.id).where(AssetRow.project_id == project_id).order_by(AssetRow.id)
        return [int(i) for i in uow.session.execute(query).scalars()][start:]


def make_queue(db: Database, project_id: int, count: int, **kw: Any) -> list[int]:
    asset_ids = add_assets(db, project_id, count)
    assert queue.enqueue(db, project_id, asset_ids, **kw) == count
    return asset_ids


# --- worker processes ------------------------------------------------------------------------------
def drain(url: str, project_id: int, user_name: str, batch: int) -> tuple[list[int], list[float], list[str]]:
    """Claim a batch, submit each item, until nothing is left. Returns (task ids submitted, claim
    latencies in seconds, errors)."""
    db = Database.open(url)
    done: list[int] = []
    latencies: list[float] = []
    errors: list[str] = []
    try:
        with db.unit_of_work() as uow:
            user_id = uow.users.ensure(user_name).id
        while True:
            start = time.perf_counter()
            leases = queue.claim(db, project_id, user_id, batch=batch)
            latencies.append(time.perf_counter() - start)
            if not leases:
                break
            for lease in leases:
                try:
                    queue.submit(db, lease)
                    done.append(lease.task_id)
                except Exception as exc:  # every failure goes back to the parent
                    errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        db.dispose()
    return done, latencies, errors


_START: dict[str, Any] = {}  # "barrier": the multiprocessing.Barrier the skipping workers start on


def set_start(barrier: Any) -> None:
    """Pool initializer: every worker starts claiming at once (so all count as active labelers)."""
    _START["barrier"] = barrier


@dataclass(frozen=True)
class SkipRule:
    """Which items a worker skips: every worker those with ``task_id % everyone == 0`` (e.g. an
    unreadable image), worker ``index`` also those with ``(task_id * 7 + index) % mine == 0``."""

    everyone: int
    mine: int

    def skips(self, task_id: int, index: int) -> bool:
        return task_id % self.everyone == 0 or (task_id * 7 + index) % self.mine == 0


Event = tuple[str, int, int, str | None]  # (claim | skip | submit, task id, assignment id, lease.skipped)


def drain_skipping(
    url: str, project_id: int, index: int, batch: int, rule: SkipRule
) -> tuple[int, list[Event], list[str]]:
    """Worker ``w{index}``: claim a batch (then wait until every worker has one), skip the items
    ``rule`` says (with a reason) unless the item came back after they skipped it, submit the rest,
    claim again; when a claim is empty, wait while the project still has open items (they may be
    waiting for others). Returns (user id, events in order, errors)."""
    db = Database.open(url)
    events: list[Event] = []
    errors: list[str] = []
    try:
        with db.unit_of_work() as uow:
            user_id = uow.users.ensure(f"w{index}").id
        leases = queue.claim(db, project_id, user_id, batch=batch)
        _START["barrier"].wait(timeout=300)  # everyone holds a batch: all are active labelers now
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if not leases:
                stats = queue.queue_stats(db, project_id)
                if stats["new"] + stats["leased"] + stats["in_progress"] == 0:
                    break
                time.sleep(0.05)  # only items others may take are left
            for lease in leases:
                events.append(("claim", lease.task_id, lease.assignment_id, lease.skipped))
                try:
                    if lease.skipped is None and rule.skips(lease.task_id, index):
                        queue.skip(db, lease, reason=f"w{index} passes on {lease.task_id}")
                        events.append(("skip", lease.task_id, lease.assignment_id, None))
                    else:
                        queue.submit(db, lease)
                        events.append(("submit", lease.task_id, lease.assignment_id, None))
                except Exception as exc:  # every failure goes back to the parent
                    errors.append(f"{type(exc).__name__}: {exc}")
            leases = queue.claim(db, project_id, user_id, batch=batch)
        else:
            errors.append(f"w{index} still had work after 300 s")
    finally:
        db.dispose()
    return user_id, events, errors


def claim_and_hang(url: str, project_id: int, user_name: str, batch: int, lease_seconds: int) -> None:
    """Claim a batch, print the leases as lines ``lease A T S U EXPIRES`` and ``ready``, then wait to be
    killed (a labeler's workstation that crashed mid-batch)."""
    db = Database.open(url)
    with db.unit_of_work() as uow:
        user_id = uow.users.ensure(user_name).id
    for lease in queue.claim(db, project_id, user_id, batch=batch, lease_seconds=lease_seconds):
        print(
            "lease",
            lease.assignment_id,
            lease.task_id,
            lease.asset_id,
            lease.user_id,
            lease.expires_at.isoformat(),
            flush=True,
        )
    print("ready", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":  # python _queue_worker.py URL PROJECT USER BATCH LEASE_SECONDS
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    url, project, user, size, seconds = sys.argv[1:6]
    claim_and_hang(url, int(project), user, int(size), int(seconds))
