"""Queue benchmark: claim throughput and p99 claim latency with 1, 4 and 16 concurrent claimer
processes on PostgreSQL and SQLite, duplicates counted (must be 0).

Each claimer loops "claim one item, submit it" (a labeler's cycle; only the claim is timed for the
latency). Throughput = claims / wall time of the whole run. Peer, in the same run and on the same
database: the naive claim "SELECT id ... WHERE status='new' ORDER BY id LIMIT 1, then UPDATE ... SET
status='claimed' WHERE id=:id AND status='new'", retried when the UPDATE finds the row gone (a
conflict), without SKIP LOCKED; its conflicts (= retries) and duplicates are counted.
``ratio`` = ours / peer claims per second (above 1: we are faster). Figures are medians of RUNS runs.

Prints ONE JSON object. PostgreSQL: $SITELABEL_TEST_PG_URL if set, else a throwaway cluster from
tests/pgcluster.py.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from app.storage import Database  # noqa: E402
from app.workflow import queue as work_queue  # noqa: E402

RUNS = 3
CLAIMERS = (1, 4, 16)
CLAIMS_PER_CLAIMER = {1: 200, 4: 80, 16: 30}
LEASE_S = 3600
_DBS: dict[str, Database] = {}


def _db(url: str) -> Database:
    if url not in _DBS:  # one per worker process and database, opened before the clock starts
        _DBS[url] = Database.open(url)
    return _DBS[url]


def _wait(start_at: float) -> float:
    time.sleep(max(0.0, start_at - time.time()))
    return time.perf_counter()


# --- the claimers (run in pool processes) -----------------------------------------------------------
def ours(url: str, project_id: int, user_id: int, count: int, start_at: float) -> dict[str, Any]:
    db = _db(url)
    t0 = _wait(start_at)
    latencies: list[float] = []
    for _ in range(count):
        start = time.perf_counter()
        leases = work_queue.claim(db, project_id, user_id, batch=1, lease_seconds=LEASE_S)
        latencies.append(time.perf_counter() - start)
        if not leases:
            break
        work_queue.submit(db, leases[0])
    return {"latencies": latencies, "seconds": time.perf_counter() - t0, "conflicts": 0}


def naive(url: str, project_id: int, user_id: int, count: int, start_at: float) -> dict[str, Any]:
    engine = _db(url).engine
    t0 = _wait(start_at)
    latencies: list[float] = []
    conflicts = 0
    for _ in range(count):
        start = time.perf_counter()
        task_id = None
        while True:
            with engine.begin() as conn:
                task_id = conn.execute(
                    text(
                        "SELECT id FROM naive_tasks WHERE project = :p AND status = 'new' ORDER BY id LIMIT 1"
                    ),
                    {"p": project_id},
                ).scalar()
                if task_id is None:
                    break
                claimed = conn.execute(
                    text(
                        "UPDATE naive_tasks SET status = 'claimed', owner = :u "
                        "WHERE id = :t AND status = 'new'"
                    ),
                    {"u": user_id, "t": task_id},
                ).rowcount
                if claimed == 1:
                    conn.execute(
                        text("INSERT INTO naive_log (task_id, owner) VALUES (:t, :u)"),
                        {"t": task_id, "u": user_id},
                    )
                    break
            conflicts += 1  # someone else updated the row between our SELECT and UPDATE: retry
        latencies.append(time.perf_counter() - start)
        if task_id is None:
            break
        with engine.begin() as conn:
            conn.execute(text("UPDATE naive_tasks SET status = 'done' WHERE id = :t"), {"t": task_id})
    return {"latencies": latencies, "seconds": time.perf_counter() - t0, "conflicts": conflicts}


# --- set-up and one run -------------------------------------------------------------------------------
def prepare(db: Database, claimers: int, items: int) -> tuple[int, list[int]]:
    """A fresh project holding ``items`` queued assets (ours) and as many naive rows (peer)."""
    from _queue_worker import make_project, make_queue

    project_id, users = make_project(db, f"bench-{time.time_ns()}", users=0)
    with db.unit_of_work() as uow:
        users = [uow.users.ensure(f"claimer{i}").id for i in range(claimers)]
    make_queue(db, project_id, items)
    with db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO naive_tasks (project, status) VALUES (:p, 'new')"),
            [{"p": project_id}] * items,
        )
    return project_id, users


def duplicates(db: Database, impl: str, project_id: int) -> int:
    if impl == "ours":
        sql = (
            "SELECT count(*) FROM (SELECT a.task_id FROM assignments a JOIN tasks t ON t.id = a.task_id "
            "WHERE t.project_id = :p GROUP BY a.task_id HAVING count(*) > 1) d"
        )
    else:
        sql = (
            "SELECT count(*) FROM (SELECT l.task_id FROM naive_log l JOIN naive_tasks n ON n.id = l.task_id "
            "WHERE n.project = :p GROUP BY l.task_id HAVING count(*) > 1) d"
        )
    with db.engine.connect() as conn:
        return int(conn.execute(text(sql), {"p": project_id}).scalar_one())


def one_run(pool: Any, url: str, db: Database, impl: str, claimers: int) -> dict[str, float]:
    per = CLAIMS_PER_CLAIMER[claimers]
    project_id, users = prepare(db, claimers, claims := per * claimers)
    fn = ours if impl == "ours" else naive
    start_at = time.time() + 1.0  # every claimer has its connection open before the start
    results = pool.starmap(fn, [(url, project_id, u, per, start_at) for u in users], chunksize=1)
    latencies = sorted(x for r in results for x in r["latencies"])
    wall = max(r["seconds"] for r in results)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return {
        "claims_per_s": claims / wall,
        "p99_ms": p99 * 1000,
        "duplicates": duplicates(db, impl, project_id),
        "conflicts": sum(r["conflicts"] for r in results),
    }


def backend(pool: Any, url: str) -> dict[str, Any]:
    db = Database.open(url)
    pk = "SERIAL PRIMARY KEY" if db.dialect == "postgresql" else "INTEGER PRIMARY KEY"
    with db.engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE naive_tasks (id {pk}, project INTEGER, status TEXT, owner INTEGER)"))
        conn.execute(text("CREATE INDEX ix_naive ON naive_tasks (project, status, id)"))
        conn.execute(text("CREATE TABLE naive_log (task_id INTEGER, owner INTEGER)"))
    out: dict[str, Any] = {}
    for claimers in CLAIMERS:
        runs: dict[str, list[dict[str, float]]] = {"ours": [], "peer": []}
        for _ in range(RUNS):
            runs["ours"].append(one_run(pool, url, db, "ours", claimers))
            runs["peer"].append(one_run(pool, url, db, "naive", claimers))
        row: dict[str, Any] = {}
        for impl, results in runs.items():
            row[impl] = {
                "claims_per_s": round(statistics.median(r["claims_per_s"] for r in results), 1),
                "p99_claim_ms": round(statistics.median(r["p99_ms"] for r in results), 2),
                "duplicates": sum(int(r["duplicates"]) for r in results),
            }
        row["peer"]["conflicts_retried"] = sum(int(r["conflicts"]) for r in runs["peer"])
        row["ratio_claims_per_s"] = round(row["ours"]["claims_per_s"] / row["peer"]["claims_per_s"], 2)
        out[f"{claimers}_claimers"] = row
    db.dispose()
    return out


def main() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_storage", HERE / "storage.py")
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)  # postgres_server, fresh_pg_database
    spec.loader.exec_module(helpers)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "queue",
        "runs": RUNS,
        "workload": "each claimer: claim 1 item, submit it; repeat",
        "claims_per_claimer": CLAIMS_PER_CLAIMER,
        "peer": "naive SELECT ... LIMIT 1 then guarded UPDATE, retried on conflict (no SKIP LOCKED)",
    }
    with (
        multiprocessing.get_context("spawn").Pool(max(CLAIMERS)) as pool,
        tempfile.TemporaryDirectory() as tmp,
    ):
        result["sqlite"] = backend(pool, str(Path(tmp) / "bench.db"))
        with helpers.postgres_server() as server:
            result["postgresql"] = (
                None if server is None else backend(pool, helpers.fresh_pg_database(server))
            )
    result["total_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
