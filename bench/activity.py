"""Activity benchmark: the item list of the activity view on 10,000 items with assignments.

Workload: 10,000 queued image assets; 90% claimed and submitted (a tenth of them by two labelers),
one annotation per submission, a review on every 20th item, an open issue on every 50th. Timed:

* ``page``: one page of 50 items (status filter "submitted", sorted by time spent, descending,
  offset 500) plus the total count -- what the view and the CLI ask for;
* ``all_rows``: every item (what the Qt view loads, then sorts in memory);
* ``labelers``: the per-labeler throughput rows.

Peer, in the same run on the same database: the naive per-item ORM loop (load every asset, then
per item query its task, assignments, labelers' names, annotations, latest review and open
threads; filter, sort and page in Python). ``ratio`` = peer time / ours (above 1: we are faster).
The page both produce is compared (``same_page``). Figures are medians of RUNS runs.

Prints ONE JSON object. PostgreSQL: $SITELABEL_TEST_PG_URL if set, else a throwaway cluster from
tests/pgcluster.py (skipped when PostgreSQL is not installed).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
# bench/queue.py would shadow the stdlib ``queue`` (psycopg needs it): keep bench/ off the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, func, insert, select  # noqa: E402

from app.core.records import AssetKind, ProjectSettings  # noqa: E402
from app.storage import Database  # noqa: E402
from app.storage.tables import (  # noqa: E402
    AnnotationRow,
    AssetRow,
    AssignmentRow,
    ReviewRow,
    TaskRow,
    ThreadRow,
    UserRow,
    table_of,
)
from app.workflow import activity, queue  # noqa: E402

ITEMS = 10_000
LABELERS = 8
RUNS = 5
PEER_RUNS = 3
PAGE, OFFSET = 50, 500
T0 = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)


def _load(name: str) -> Any:
    """A sibling bench module by file (registered under its name: storage.py imports timing)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


median_seconds = _load("timing").median_seconds


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- set-up ------------------------------------------------------------------------------------------
def build(db: Database) -> int:
    """The workload above, written with a few executemany statements (not through the queue, which
    would take minutes for 10,000 claims and is not what is measured here)."""
    with db.unit_of_work() as uow:
        project_id = uow.projects.create("bench", ProjectSettings()).id
        users = [uow.users.ensure(f"labeler{i}").id for i in range(LABELERS)]
        reviewer = uow.users.ensure("reviewer").id
        dataset_id = uow.datasets.ensure(project_id, "d").id
        root_id = uow.data_roots.ensure("r")
        rows = [
            {
                "project_id": project_id, "dataset_id": dataset_id, "kind": AssetKind.IMAGE.value,
                "root_id": root_id, "rel_path": f"img/{i:06d}.png", "member": "", "size": 1, "mtime_ns": 1,
                "content_hash": "h", "frame_count": 1, "width": 64, "height": 64,
                "meta": {"Modality": "CT" if i % 3 else "MR"}, "created_at": T0,
            }
            for i in range(ITEMS)
        ]  # fmt: skip
        uow.session.execute(insert(table_of(AssetRow)), rows)
        ids = list(uow.session.execute(select(AssetRow.id).order_by(AssetRow.id)).scalars())
    queue.enqueue(db, project_id, ids[: ITEMS // 10], required=2, now=lambda: T0)
    queue.enqueue(db, project_id, ids[ITEMS // 10 :], now=lambda: T0)
    with db.unit_of_work() as uow:
        tasks = {int(a): int(t) for a, t in uow.session.execute(select(TaskRow.asset_id, TaskRow.id))}
        assignments, annotations, reviews, threads, done = [], [], [], [], []
        for n, asset_id in enumerate(ids):
            if n % 10 == 9:
                continue  # 10% never claimed
            claimed = T0 + timedelta(minutes=n)
            people = (
                [users[n % LABELERS], users[(n + 1) % LABELERS]] if n < ITEMS // 10 else [users[n % LABELERS]]
            )
            for k, user in enumerate(people):
                assignments.append(
                    {
                        "task_id": tasks[asset_id], "user_id": user, "status": "submitted",
                        "leased_at": claimed, "lease_expires_at": claimed + timedelta(minutes=30),
                        "finished_at": claimed + timedelta(seconds=60 + (n * 37 + k * 11) % 900),
                    }
                )  # fmt: skip
                annotations.append(
                    {
                        "asset_id": asset_id, "frame": 0, "kind": "box", "label": f"class{n % 5}",
                        "geometry": {"box": [1, 1, 9, 9]}, "bbox_x0": 1.0, "bbox_y0": 1.0, "bbox_x1": 9.0,
                        "bbox_y1": 9.0, "attributes": {}, "author_id": user, "source": "human", "version": 1,
                        "deleted": False, "created_at": claimed, "updated_at": claimed,
                    }
                )  # fmt: skip
            done.append(tasks[asset_id])
            if n % 20 == 0:
                verdict = "accepted" if n % 40 else "rejected"
                reviews.append(
                    {"asset_id": asset_id, "task_id": tasks[asset_id], "reviewer_id": reviewer,
                     "verdict": verdict, "note": "", "created_at": claimed + timedelta(hours=2)}
                )  # fmt: skip
            if n % 50 == 0:
                threads.append({"asset_id": asset_id, "frame": 0, "status": "open", "author_id": reviewer,
                                "created_at": claimed})  # fmt: skip
        uow.session.execute(insert(table_of(AssignmentRow)), assignments)
        uow.session.execute(insert(table_of(AnnotationRow)), annotations)
        uow.session.execute(insert(table_of(ReviewRow)), reviews)
        uow.session.execute(insert(table_of(ThreadRow)), threads)
        for start in range(0, len(done), 2000):
            uow.session.execute(
                table_of(TaskRow)
                .update()
                .where(TaskRow.id.in_(done[start : start + 2000]))
                .values(status="submitted")
            )
    return project_id


# --- the peer: a naive per-item ORM loop --------------------------------------------------------------
def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def naive_page(db: Database, project_id: int, now: datetime) -> tuple[list[int], int]:
    """Filter status "submitted", sort by time spent (desc, then id), page: one item at a time."""
    with db.unit_of_work(readonly=True) as uow:
        s = uow.session
        items = []
        assets = s.scalars(select(AssetRow).where(AssetRow.project_id == project_id).order_by(AssetRow.id))
        for asset in assets:
            # every lookup below has an index (task by project+asset, the rest by asset or task)
            mine = select(TaskRow).where(TaskRow.project_id == project_id, TaskRow.asset_id == asset.id)
            task = s.scalars(mine).first()
            work = (
                []
                if task is None
                else s.scalars(select(AssignmentRow).where(AssignmentRow.task_id == task.id))
            )
            assignments = list(work)
            live = any(a.status == "active" and now < _aware(a.lease_expires_at) for a in assignments)
            status = (
                "unqueued" if task is None else ("leased" if task.status == "new" and live else task.status)
            )
            held = [a for a in assignments if a.status == "submitted"]
            seconds = sum((a.finished_at - a.leased_at).total_seconds() for a in held) if held else None
            names = sorted({s.get_one(UserRow, a.user_id).name for a in held})
            labels = select(AnnotationRow.label).where(
                AnnotationRow.asset_id == asset.id, AnnotationRow.deleted.is_(False)
            )
            classes = sorted(set(s.scalars(labels)))
            latest = select(ReviewRow).where(ReviewRow.asset_id == asset.id).order_by(ReviewRow.id.desc())
            review = s.scalars(latest).first()
            threads = select(func.count(ThreadRow.id)).where(
                ThreadRow.asset_id == asset.id, ThreadRow.status == "open"
            )
            issues = s.scalar(threads)
            items.append(
                (asset.id, status, seconds, names, classes, review.verdict if review else None, issues)
            )
    chosen = [i for i in items if i[1] == "submitted"]
    chosen.sort(key=lambda i: (i[2] is None, -(i[2] or 0), i[0]))
    return [i[0] for i in chosen[OFFSET : OFFSET + PAGE]], len(chosen)


# --- one backend --------------------------------------------------------------------------------------
def backend(url: str) -> dict[str, Any]:
    db = Database.open(url)
    started = time.perf_counter()
    project_id = build(db)
    setup_s = time.perf_counter() - started
    _note(f"{db.dialect}: {ITEMS} items set up in {setup_s:.1f} s")
    now = datetime.now(UTC)
    filters = activity.ItemFilters(status="submitted")

    def ours_page() -> activity.ItemPage:
        return activity.item_rows(
            db, project_id, filters, sort="time", descending=True, limit=PAGE, offset=OFFSET
        )

    page = ours_page()
    peer_ids, peer_total = naive_page(db, project_id, now)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    ours_page()
    event.remove(db.engine, "before_cursor_execute", count)
    counted = len(statements)
    ours_s = median_seconds(ours_page, RUNS)
    all_s = median_seconds(lambda: activity.item_rows(db, project_id), RUNS)
    labelers_s = median_seconds(lambda: activity.labeler_rows(db, project_id), RUNS)
    _note(f"{db.dialect}: ours {ours_s * 1000:.0f} ms per page; timing the peer ({PEER_RUNS} runs)")
    peer_s = median_seconds(lambda: naive_page(db, project_id, now), PEER_RUNS)
    with db.engine.connect() as conn:
        assignments = conn.execute(select(func.count()).select_from(AssignmentRow)).scalar_one()
    db.dispose()
    return {
        "items": ITEMS,
        "assignments": int(assignments),
        "setup_s": round(setup_s, 2),
        "ours": {
            "page_and_count_ms": round(ours_s * 1000, 1),
            "statements_per_page": counted,
            "all_rows_ms": round(all_s * 1000, 1),
            "labeler_rows_ms": round(labelers_s * 1000, 1),
        },
        "peer": {"page_and_count_ms": round(peer_s * 1000, 1)},
        "ratio_page": round(peer_s / ours_s, 1),
        "same_page": [r.asset_id for r in page.rows] == peer_ids and page.total == peer_total,
        "total_matching": page.total,
    }


def main() -> None:
    helpers = _load("storage")  # postgres_server, fresh_pg_database
    result: dict[str, Any] = {
        "benchmark": "activity",
        "runs": RUNS,
        "peer_runs": PEER_RUNS,
        "workload": f"{ITEMS} items, page of {PAGE} at offset {OFFSET}, status=submitted, sort=time desc",
        "peer": "naive per-item ORM loop (N+1 queries), filter/sort/page in Python",
    }
    with tempfile.TemporaryDirectory() as tmp:
        result["sqlite"] = backend(str(Path(tmp) / "bench.db"))
    with helpers.postgres_server() as server:
        result["postgresql"] = None if server is None else backend(helpers.fresh_pg_database(server))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
