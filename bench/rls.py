"""Overhead of PostgreSQL row-level security (``sitelabel db secure``) on reading annotations.

A project of 2,000 assets x 35 annotations (10 per labeler x 3 labelers, 5 machine pre-labels;
70,000 rows), secured with ``sitelabel db secure --sync-users``. Timed, median of many calls:

* ``list_asset``: the annotation query of one asset (the repository's SELECT ... LEFT JOIN users
  WHERE asset_id = ? AND NOT deleted ORDER BY id), on random assets:
  - as the reviewer under RLS (sees every row) vs the peer: the same query as the table owner,
    no RLS (same 35 rows: the cost of evaluating the policies);
  - as a labeler under RLS (15 rows) vs the peer: the owner with the API's blindness filter
    written into the WHERE clause (the same 15 rows).
* ``count_all``: ``SELECT count(*) FROM annotations`` as the reviewer under RLS vs the owner
  (the per-row policy cost over the whole table).
* ``api``: ``Project.annotation_objects(asset)`` for the labeler through app.api on her own login
  (RLS) vs on the owner's login (the API filters in Python).
* ``threads``: then 300 comment threads (3 comments each) on 100 assets, by the 3 labelers and the
  reviewer, half of those items unfinished consensus items: ``Project.threads()`` (the whole project)
  and ``Project.threads(asset)`` for the labeler on her own login (the thread and comment policies)
  vs on the owner's login (the API's ``_visible_threads`` filter in Python); both return the same.
  ``count_comments_labeler``: ``SELECT count(*) FROM comments`` as the labeler (each comment checks
  its thread's policy) vs the owner (every comment, no policy).

Prints ONE JSON object. PostgreSQL: $SITELABEL_TEST_PG_URL if set, else a throwaway cluster from
tests/pgcluster.py.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from storage import fresh_pg_database, postgres_server  # noqa: E402 - bench/ is on sys.path
from timing import median_seconds  # noqa: E402

ASSETS = 2000
PER_LABELER = 10
MACHINE = 5
LABELERS = ("alice", "bob", "carol")
RUNS = 300
THREAD_ASSETS = 100
THREADS_PER_ASSET = 3
COMMENTS_PER_THREAD = 3

LIST = (
    "SELECT a.id, a.asset_id, a.frame, a.kind, a.label, a.geometry, a.mask, a.attributes, a.source, "
    "a.confidence, a.version, a.deleted, a.track_id, u.name FROM annotations a "
    "LEFT JOIN users u ON u.id = a.author_id WHERE a.asset_id = %s AND NOT a.deleted {extra} ORDER BY a.id"
)


def _connect(url: str, role: str) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return psycopg.connect(host=u.host, port=u.port, user=role, dbname=u.database, autocommit=True)


def _url_as(url: str, role: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


def build(url: str) -> tuple[Any, list[int], dict[str, int]]:
    """The project (as the owner's ``ada``), its asset ids and the user ids."""
    from app import api, sample_data
    from app.workflow import queue

    ada = api.create_project(url, "bench", ontology={"classes": [{"name": "coin"}]}, user="ada")
    (first,) = ada.import_data([sample_data.skimage_images() / "coins.png"])
    for name in LABELERS:
        ada.set_member(name, "labeler")
    ada.set_member("rita", "reviewer")
    with _connect(url, "postgres") as conn:
        conn.execute(
            "INSERT INTO assets (project_id, dataset_id, kind, root_id, rel_path, member, size, mtime_ns, "
            "content_hash, frame_count, width, height, metadata, created_at) "
            "SELECT project_id, dataset_id, kind, root_id, rel_path, 'copy-' || g, size, mtime_ns, "
            "content_hash, frame_count, width, height, metadata, created_at "
            "FROM assets, generate_series(1, %s) g WHERE id = %s",
            (ASSETS - 1, first),
        )
        ids = [int(r[0]) for r in conn.execute("SELECT id FROM assets ORDER BY id")]
        users = {str(n): int(i) for n, i in conn.execute("SELECT name, id FROM users")}
    queue.enqueue(ada.db, ada.id, ids, required=1)
    with _connect(url, "postgres") as conn:
        conn.execute("UPDATE tasks SET status = 'done' WHERE id % 3 = 0")  # a third done
        polygon = json.dumps({"points": [[1, 1], [40, 1], [40, 40], [1, 40]]})
        for name in LABELERS:
            conn.execute(
                "INSERT INTO annotations (asset_id, frame, kind, label, geometry, attributes, author_id, "
                "source, version, deleted, created_at, updated_at, bbox_x0, bbox_y0, bbox_x1, bbox_y1) "
                "SELECT a.id, 0, 'polygon', 'coin', %s, '{}', %s, 'human', 1, false, now(), now(), "
                "1, 1, 40, 40 FROM assets a, generate_series(1, %s)",
                (polygon, users[name], PER_LABELER),
            )
        conn.execute(
            "INSERT INTO annotations (asset_id, frame, kind, label, geometry, attributes, author_id, source, "
            "confidence, version, deleted, created_at, updated_at, bbox_x0, bbox_y0, bbox_x1, bbox_y1) "
            "SELECT a.id, 0, 'polygon', 'coin', %s, '{}', %s, 'model:m@1', 0.8, 1, false, now(), now(), "
            "1, 1, 40, 40 FROM assets a, generate_series(1, %s)",
            (polygon, users["ada"], MACHINE),
        )
        conn.execute("ANALYZE")
    return ada, ids, users


def timed_query(conn: Any, sql: str, ids: list[int], expect: int) -> float:
    rng = random.Random(7)

    def once() -> None:
        rows = conn.execute(sql, (rng.choice(ids),)).fetchall()
        assert len(rows) == expect, (len(rows), expect)

    once()  # warm the plan cache and the connection
    return median_seconds(once, RUNS)


def measure(url: str) -> dict[str, Any]:
    from app import api
    from app.cli import main as cli

    ada, ids, users = build(url)
    with contextlib.redirect_stdout(sys.stderr):
        passwords = Path(tempfile.mkdtemp()) / "passwords"
        passwords.write_text("".join(f"{n}:bench-{n}\n" for n in (*LABELERS, "rita")), encoding="utf-8")
        passwords.chmod(0o600)
        assert cli(["db", "secure", url, "--sync-users", "--password-file", str(passwords)]) == 0
    total = PER_LABELER * len(LABELERS) + MACHINE
    alice_sees = PER_LABELER + MACHINE
    blind = f"AND (a.author_id = {users['alice']} OR a.source <> 'human')"
    out: dict[str, Any] = {"rows": len(ids) * total, "assets": len(ids), "runs": RUNS}
    with _connect(url, "postgres") as owner, _connect(url, "rita") as rita, _connect(url, "alice") as alice:
        plan = "\n".join(r[0] for r in alice.execute("EXPLAIN " + LIST.format(extra=""), (ids[0],)))
        out["labeler_plan_initplans"] = plan.count("InitPlan")
        out["labeler_plan_uses_asset_index"] = "Index Cond: (asset_id =" in plan
        reviewer = timed_query(rita, LIST.format(extra=""), ids, total)
        peer = timed_query(owner, LIST.format(extra=""), ids, total)
        out["list_asset_reviewer"] = {
            "rls_ms": reviewer * 1e3,
            "peer_owner_ms": peer * 1e3,
            "ratio": reviewer / peer,
        }
        labeler = timed_query(alice, LIST.format(extra=""), ids, alice_sees)
        peer = timed_query(owner, LIST.format(extra=blind), ids, alice_sees)
        out["list_asset_labeler"] = {
            "rls_ms": labeler * 1e3,
            "peer_owner_where_ms": peer * 1e3,
            "ratio": labeler / peer,
        }

        def count(conn: Any) -> float:
            return median_seconds(lambda: conn.execute("SELECT count(*) FROM annotations").fetchone(), 15)

        reviewer, peer = count(rita), count(owner)
        out["count_all_reviewer"] = {
            "rls_ms": reviewer * 1e3,
            "peer_owner_ms": peer * 1e3,
            "ratio": reviewer / peer,
        }

    mine = api.open_project(_url_as(url, "alice"), "bench", user="alice", create=False)
    theirs = api.open_project(ada.db, "bench", user="alice")
    rng = random.Random(11)
    rls = median_seconds(lambda: mine.annotation_objects(rng.choice(ids)), 100)
    peer = median_seconds(lambda: theirs.annotation_objects(rng.choice(ids)), 100)
    out["api_annotation_objects_labeler"] = {
        "rls_ms": rls * 1e3,
        "peer_owner_login_ms": peer * 1e3,
        "ratio": rls / peer,
    }
    out.update(measure_threads(url, mine, theirs, ids, users))
    mine.close()
    ada.close()
    return out


def add_threads(url: str, ids: list[int], users: dict[str, int]) -> list[int]:
    """Threads by every labeler and the reviewer on the first assets; half of them consensus
    items not done yet (another labeler's threads there are blind). Returns those asset ids."""
    on = ids[:THREAD_ASSETS]
    authors = [users[n] for n in (*LABELERS, "rita")]
    with _connect(url, "postgres") as conn:
        conn.execute(
            "INSERT INTO threads (asset_id, frame, status, author_id, created_at) "
            "SELECT a, 0, 'open', (%s::integer[])[1 + (a + g) %% 4], now() "
            "FROM unnest(%s::integer[]) a, generate_series(1, %s) g",
            (authors, on, THREADS_PER_ASSET),
        )
        conn.execute(
            "INSERT INTO comments (thread_id, author_id, body, created_at) "
            "SELECT t.id, CASE WHEN g = 1 THEN t.author_id ELSE (%s::integer[])[1 + (t.id + g) %% 4] END, "
            "'a remark about the rim, number ' || g, now() FROM threads t, generate_series(1, %s) g",
            (authors, COMMENTS_PER_THREAD),
        )
        conn.execute(
            "UPDATE tasks SET required_labelers = 2, status = 'new' "
            "WHERE asset_id = ANY (%s) AND id %% 2 = 0",
            (on,),
        )
        conn.execute("ANALYZE")
    return on


def measure_threads(
    url: str, mine: Any, theirs: Any, ids: list[int], users: dict[str, int]
) -> dict[str, Any]:
    on = add_threads(url, ids, users)
    out: dict[str, Any] = {}

    def seen(project: Any, asset_id: int | None = None) -> list[tuple[int, int]]:
        return [(t.id, len(t.comments)) for t in project.threads(asset_id)]

    shown = seen(mine)
    assert shown == seen(theirs), "the labeler's login and the owner's disagree"
    for asset_id in on[:10]:
        assert seen(mine, asset_id) == seen(theirs, asset_id)
    out["threads_total"] = THREAD_ASSETS * THREADS_PER_ASSET
    out["threads_shown_to_labeler"] = len(shown)
    with _connect(url, "alice") as alice:
        plan = "\n".join(
            r[0]
            for r in alice.execute("EXPLAIN SELECT id FROM threads WHERE asset_id = %s ORDER BY id", (on[0],))
        )
        out["labeler_thread_plan_uses_asset_index"] = "ix_threads_asset" in plan
        with _connect(url, "postgres") as owner:  # the per-row cost of the nested comment policy

            def count(conn: Any) -> float:
                return median_seconds(lambda: conn.execute("SELECT count(*) FROM comments").fetchone(), 50)

            rls, peer = count(alice), count(owner)
        out["count_comments_labeler"] = {
            "rls_ms": rls * 1e3,
            "peer_owner_ms": peer * 1e3,
            "ratio": rls / peer,
        }
    rls = median_seconds(mine.threads, 15)
    peer = median_seconds(theirs.threads, 15)
    out["api_threads_project_labeler"] = {
        "rls_ms": rls * 1e3,
        "peer_owner_login_ms": peer * 1e3,
        "ratio": rls / peer,
    }
    rng = random.Random(13)
    rls = median_seconds(lambda: mine.threads(rng.choice(on)), 100)
    peer = median_seconds(lambda: theirs.threads(rng.choice(on)), 100)
    out["api_threads_asset_labeler"] = {
        "rls_ms": rls * 1e3,
        "peer_owner_login_ms": peer * 1e3,
        "ratio": rls / peer,
    }
    return out


def main() -> None:
    with postgres_server() as server:
        if server is None:
            print(json.dumps({"error": "PostgreSQL server binaries not found"}))
            return
        url = fresh_pg_database(server)
        result = measure(url)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
