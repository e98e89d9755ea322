"""Storage benchmark: annotation save/load throughput on SQLite and PostgreSQL, and CLI start-up.

Prints ONE JSON object. Peer: a plain sqlite3 / psycopg ``executemany`` of the same rows (geometry
as JSON text, masks as the same mask_codec bytes) into a bare table, and a plain SELECT + decode to
load them; ``ratio`` = ours / peer (time; above 1 means we are slower). Figures are medians.

PostgreSQL: $SITELABEL_TEST_PG_URL if set, else a throwaway cluster from tests/pgcluster.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import median_seconds  # noqa: E402 - bench/ is on sys.path when run as a script

from app.core.annotations import Annotation, Kind, MaskPatch  # noqa: E402
from app.core.mask_codec import decode_mask, encode_mask  # noqa: E402
from app.core.records import AssetKind  # noqa: E402
from app.storage import Database  # noqa: E402

RUNS = 3
SINGLE_RUNS = 30


def blob_mask(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """An organ-like blob: a wobbly ellipse at a random place."""
    yy, xx = np.mgrid[0:size, 0:size]
    cx, cy = rng.uniform(size * 0.3, size * 0.7, 2)
    rx, ry = rng.uniform(size * 0.08, size * 0.25, 2)
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = 1 + 0.1 * np.sin(3 * angle + rng.uniform(0, 6)) + 0.05 * np.cos(7 * angle + rng.uniform(0, 6))
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= wobble**2


def workloads() -> dict[str, list[Annotation]]:
    rng = np.random.default_rng(7)
    theta = np.linspace(0, 2 * np.pi, 50, endpoint=False)

    def polygon(i: int) -> Annotation:
        centre = rng.uniform(50, 450, 2)
        radius = rng.uniform(10, 40) * (1 + 0.2 * rng.random(50))
        pts = np.stack([centre[0] + radius * np.cos(theta), centre[1] + radius * np.sin(theta)], axis=1)
        return Annotation(Kind.POLYGON, "liver", frame=i % 100, points=pts, attributes={"quality": "good"})

    masks = [
        Annotation(Kind.MASK, "liver", frame=i, mask=MaskPatch.from_full(blob_mask(rng))) for i in range(1000)
    ]
    return {
        "polygon_1": [polygon(0)],
        "polygons_10000x50": [polygon(i) for i in range(10_000)],
        "masks_1000x512": masks,
    }


# --- ours ------------------------------------------------------------------------------------------
def ours(url: str, anns: list[Annotation], runs: int) -> dict[str, float]:
    db = Database.open(url)
    with db.unit_of_work() as uow:
        user = uow.users.ensure("bench")
        project = uow.projects.create(f"bench-{uuid.uuid4().hex[:8]}")
        dataset = uow.datasets.ensure(project.id, "d")
    with db.unit_of_work() as uow:  # assets made up front: only annotation saves are timed
        asset_ids = [
            uow.assets.add(
                project.id,
                dataset.id,
                kind=AssetKind.IMAGE,
                root="r",
                rel_path=f"{i}.png",
                size=1,
                mtime_ns=1,
                content_hash="h",
                frame_count=1,
                width=512,
                height=512,
                metadata={},
            ).id
            for i in range(runs)
        ]
    used: list[int] = []

    def save() -> None:
        used.append(asset_ids[len(used)])
        with db.unit_of_work() as uow:
            uow.annotations.add_many(used[-1], anns, user.id)

    def load() -> None:
        with db.unit_of_work(readonly=True) as uow:
            got = uow.annotations.list(used[-1])
        assert len(got) == len(anns)

    result = {"save_s": median_seconds(save, runs), "load_s": median_seconds(load, runs)}
    db.dispose()
    return result


# --- peer: plain DB-API executemany ----------------------------------------------------------------
PEER_COLUMNS = "asset_id, frame, kind, label, geometry, mask, attributes, source, version, deleted"


def peer_rows(anns: list[Annotation], asset_id: int) -> list[tuple[Any, ...]]:
    rows = []
    for a in anns:
        geometry = json.dumps({"points": a.points.tolist()}) if a.points is not None else None
        mask = encode_mask(a.mask) if a.mask is not None else None
        rows.append(
            (
                asset_id,
                a.frame,
                a.kind.value,
                a.label,
                geometry,
                mask,
                json.dumps(dict(a.attributes)),
                a.source,
                1,
                False,
            )
        )
    return rows


def peer_decode(rows: list[tuple[Any, ...]]) -> int:
    for geometry, mask, attributes in rows:
        if geometry is not None:
            g = geometry if isinstance(geometry, dict) else json.loads(geometry)
            np.asarray(g["points"], dtype=np.float64)
        if mask is not None:
            decode_mask(bytes(mask))
        if isinstance(attributes, str):
            json.loads(attributes)
    return len(rows)


def peer_sqlite(path: Path, anns: list[Annotation], runs: int) -> dict[str, float]:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS peer (id INTEGER PRIMARY KEY, asset_id INT, frame INT, kind TEXT, "
        "label TEXT, geometry TEXT, mask BLOB, attributes TEXT, source TEXT, version INT, deleted INT)"
    )
    state = {"asset": 0}

    def save() -> None:
        state["asset"] += 1
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            f"INSERT INTO peer ({PEER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", peer_rows(anns, state["asset"])
        )
        conn.execute("COMMIT")

    def load() -> None:
        rows = conn.execute(
            "SELECT geometry, mask, attributes FROM peer WHERE asset_id = ? AND deleted = 0 ORDER BY id",
            (state["asset"],),
        ).fetchall()
        assert peer_decode(rows) == len(anns)

    result = {"save_s": median_seconds(save, runs), "load_s": median_seconds(load, runs)}
    conn.close()
    return result


def peer_postgres(url: str, anns: list[Annotation], runs: int) -> dict[str, float]:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS peer (id serial PRIMARY KEY, asset_id int, frame int, kind text, "
        "label text, geometry json, mask bytea, attributes jsonb, source text, version int, "
        "deleted boolean)"
    )
    conn.commit()
    state = {"asset": 0}

    def save() -> None:
        state["asset"] += 1
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO peer ({PEER_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                peer_rows(anns, state["asset"]),
            )
        conn.commit()

    def load() -> None:
        rows = conn.execute(
            "SELECT geometry, mask, attributes FROM peer WHERE asset_id = %s AND NOT deleted ORDER BY id",
            (state["asset"],),
        ).fetchall()
        conn.commit()
        assert peer_decode(rows) == len(anns)

    result = {"save_s": median_seconds(save, runs), "load_s": median_seconds(load, runs)}
    conn.close()
    return result


# --- setup -----------------------------------------------------------------------------------------
@contextmanager
def postgres_server() -> Iterator[str | None]:
    given = os.environ.get("SITELABEL_TEST_PG_URL")
    if given:
        yield given
        return
    spec = importlib.util.spec_from_file_location("pgcluster", ROOT / "tests" / "pgcluster.py")
    assert spec is not None and spec.loader is not None
    pgcluster = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pgcluster)
    try:
        pgcluster.find_bin_dir()
    except pgcluster.PgBinariesMissing:
        yield None
        return
    base = tempfile.mkdtemp(prefix="sitelabel-bench-pg-")
    try:
        yield pgcluster.start_cluster(base)
    finally:
        pgcluster.stop_cluster(base, remove=True)


def fresh_pg_database(server_url: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(server_url)
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(
        host=u.host,
        port=u.port,
        user=u.username,
        password=u.password,
        dbname=u.database or "postgres",
        autocommit=True,
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return u.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


def startup_time() -> float | None:
    times = []
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    for _ in range(5):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "app", "--help"],
            cwd=ROOT,
            capture_output=True,
            env=env,
            check=False,
            timeout=60,
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            return None
        times.append(elapsed)
    return statistics.median(times)


def compare(ours_r: dict[str, float], peer_r: dict[str, float], count: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for op in ("save", "load"):
        t_ours, t_peer = ours_r[f"{op}_s"], peer_r[f"{op}_s"]
        out[op] = {
            "ours_s": round(t_ours, 5),
            "peer_s": round(t_peer, 5),
            "ours_per_s": round(count / t_ours, 1),
            "peer_per_s": round(count / t_peer, 1),
            "ratio": round(t_ours / t_peer, 2),
        }
    return out


def main() -> None:
    loads = workloads()
    report: dict[str, Any] = {
        "benchmark": "storage",
        "peer": "plain sqlite3 / psycopg 3 executemany of the same rows (JSON geometry, mask_codec bytes)",
        "ratio": "ours / peer wall time (median); >1 = slower than the peer",
        "runs": {"bulk": RUNS, "single": SINGLE_RUNS},
        "sqlite": {},
        "postgresql": None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, anns in loads.items():
            runs = SINGLE_RUNS if len(anns) == 1 else RUNS
            ours_r = ours(str(Path(tmp) / f"ours_{name}.db"), anns, runs)
            peer_r = peer_sqlite(Path(tmp) / f"peer_{name}.db", anns, runs)
            report["sqlite"][name] = compare(ours_r, peer_r, len(anns))
    with postgres_server() as server:
        if server is not None:
            report["postgresql"] = {}
            for name, anns in loads.items():
                runs = SINGLE_RUNS if len(anns) == 1 else RUNS
                ours_r = ours(fresh_pg_database(server), anns, runs)
                peer_r = peer_postgres(fresh_pg_database(server), anns, runs)
                report["postgresql"][name] = compare(ours_r, peer_r, len(anns))
    report["cli_help_startup_s"] = startup_time()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
