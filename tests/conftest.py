"""Shared test set-up: every test runs with its own HOME, config and cache folders; database
fixtures give each test a fresh SQLite file or a fresh database on a real PostgreSQL server."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# tests/support/ is importable from every test folder as ``support``
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


@pytest.fixture(autouse=True)
def _isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Keep per-user state (settings, journals, caches) out of the real home directory."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (
        ("HOME", ""),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
    ):
        path = home / sub
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(path))
    monkeypatch.setenv("SITELABEL_CACHE_DIR", str(home / ".cache" / "sitelabel"))
    monkeypatch.delenv("SITELABEL_CONFIG", raising=False)
    yield home


# --- databases: SQLite files and a real, throwaway PostgreSQL server --------------------------------


def _pgcluster() -> ModuleType:
    name = "sitelabel_tests_pgcluster"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("pgcluster.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _pg_binaries() -> ModuleType:
    """tests/pgcluster.py once the server binaries are known to be there (in CI their absence fails)."""
    pgcluster = _pgcluster()
    try:
        pgcluster.find_bin_dir()
    except pgcluster.PgBinariesMissing as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but PostgreSQL is missing: {exc}")
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    return pgcluster


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server for tests: $SITELABEL_TEST_PG_URL, else a cluster started here.

    Under pytest-xdist a worker takes $SITELABEL_TEST_PG_URL_<worker> (scripts/test.sh starts one
    cluster per worker), else starts its own: roles are cluster-wide, so two workers on one server
    would trip over each other's row-security roles.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    given = os.environ.get(f"SITELABEL_TEST_PG_URL_{worker}" if worker else "SITELABEL_TEST_PG_URL")
    if given:
        yield given
        return
    pgcluster = _pg_binaries()
    base = tempfile.mkdtemp(prefix="sitelabel-pg-")  # not under pytest's root-only tmp dir
    try:
        url = pgcluster.start_cluster(base)
    except Exception:
        pgcluster.stop_cluster(base, remove=True)
        raise
    try:
        yield url
    finally:
        pgcluster.stop_cluster(base, remove=True)


@dataclass
class OwnCluster:
    """A PostgreSQL cluster of one test module's own, which the fault tests stop and start again."""

    base: Path
    url: str

    def stop(self) -> float:
        """Kill the server (immediate mode: connections die mid-transaction); returns when it is down."""
        _pgcluster().stop_server(self.base, mode="immediate")
        return time.monotonic()

    def start(self) -> float:
        """Start it again on the same port; returns when it accepts connections."""
        _pgcluster().start_server(self.base)
        return time.monotonic()

    @property
    def running(self) -> bool:
        return (self.base / "data" / "postmaster.pid").exists()

    def database(self, name: str) -> str:
        """A fresh database on this server."""
        from sqlalchemy.engine import make_url

        with _admin_connect(self.url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def own_pg_cluster() -> Iterator[OwnCluster]:
    """This module's own PostgreSQL cluster, with synchronous commits (see start_server): stopping
    it disturbs no other test."""
    pgcluster = _pg_binaries()
    base = Path(tempfile.mkdtemp(prefix="sitelabel-pgown-"))  # not under pytest's root-only tmp
    try:
        pgcluster.start_cluster(base)
        yield OwnCluster(base, pgcluster.restart_server(base))
    finally:
        pgcluster.stop_cluster(base, remove=True)


@pytest.fixture
def pg_up(own_pg_cluster: OwnCluster) -> Iterator[OwnCluster]:
    """The module's own cluster, started again at the end should a test fail while it is down."""
    yield own_pg_cluster
    if not own_pg_cluster.running:
        own_pg_cluster.start()


def _admin_connect(server_url: str) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=url.database or "postgres",
        autocommit=True,
        connect_timeout=10,
    )


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    from sqlalchemy.engine import make_url

    name = f"t_{uuid.uuid4().hex[:16]}"
    with _admin_connect(pg_server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(pg_server_url).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with _admin_connect(pg_server_url) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database location on each backend: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "labels.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db(db_url: str) -> Iterator[Any]:
    """An opened (created and migrated) Database on each backend."""
    from app.storage import Database

    database = Database.open(db_url)
    try:
        yield database
    finally:
        database.dispose()
