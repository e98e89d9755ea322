"""Opening databases: create + migrate, schema checks, and every bad input as one clear StorageError."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from app.core.errors import SitelabelError
from app.storage import (
    BadDatabaseURL,
    CorruptDatabase,
    Database,
    DatabaseUnreachable,
    SchemaOutdated,
    SchemaTooNew,
    StorageError,
    migrate,
)
from app.storage.errors import DatabaseMissing


def _assert_clear(error: SitelabelError, *secrets: str) -> None:
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message
    for secret in secrets:
        assert secret not in message


def test_open_creates_and_migrates(db: Database) -> None:
    assert db.current_revision() == db.head_revision() == migrate.HEAD_REVISION
    assert db.upgrade() == (migrate.HEAD_REVISION, migrate.HEAD_REVISION)
    assert db.dialect in {"sqlite", "postgresql"}
    assert "***" in db.url or "@" not in db.url or ":" not in db.url.split("@")[0].split("//")[-1]


def test_reopen_is_idempotent(db_url: str) -> None:
    first = Database.open(db_url)
    with first.unit_of_work() as uow:
        uow.users.ensure("ana")
    first.dispose()
    second = Database.open(db_url, create=False, upgrade=False)
    with second.unit_of_work(readonly=True) as uow:
        assert [u.name for u in uow.users.list()] == ["ana"]
    second.dispose()


def test_migrated_schema_matches_tables(db: Database) -> None:
    assert migrate.compare_schema(db.engine) == []


def test_unknown_revision_is_schema_too_new(db_url: str) -> None:
    db = Database.open(db_url)
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ff99_from_the_future'"))
    db.dispose()
    with pytest.raises(SchemaTooNew) as info:
        Database.open(db_url)
    _assert_clear(info.value)
    assert "newer Sitelabel" in str(info.value)


def test_empty_database_without_create_is_outdated(db_url: str) -> None:
    if "://" not in db_url:
        sqlite3.connect(db_url).close()  # an empty (0 byte) SQLite file
    with pytest.raises(SchemaOutdated) as info:
        Database.open(db_url, create=False)
    _assert_clear(info.value)
    assert "sitelabel init" in str(info.value)


def test_foreign_database_is_refused(db_url: str) -> None:
    if "://" in db_url:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(db_url)
        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
        ) as conn:
            conn.execute("CREATE TABLE invoices (id int)")
    else:
        with sqlite3.connect(db_url) as conn:
            conn.execute("CREATE TABLE invoices (id int)")
    with pytest.raises(CorruptDatabase, match="not a Sitelabel database"):
        Database.open(db_url)


def test_corrupt_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    path.write_bytes(os.urandom(64 * 1024))
    with pytest.raises(CorruptDatabase) as info:
        Database.open(path)
    _assert_clear(info.value)
    assert str(path) in str(info.value) and "backup" in str(info.value)


def test_missing_sqlite_file_without_create(tmp_path: Path) -> None:
    with pytest.raises(DatabaseMissing):
        Database.open(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(BadDatabaseURL):
        Database.open(tmp_path)


@pytest.mark.parametrize("url", ["mysql://ana:s3cret@localhost/labels", "nonsense"])
def test_wrong_url(url: str) -> None:
    with pytest.raises(BadDatabaseURL) as info:
        Database.open(url)
    _assert_clear(info.value, "s3cret")


def test_unreachable_postgres_fails_fast_without_password() -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(DatabaseUnreachable) as info:
        Database.open(f"postgresql://ana:s3cret@127.0.0.1:{port}/labels")
    assert time.monotonic() - started < 6
    _assert_clear(info.value, "s3cret")
    assert f"127.0.0.1:{port}" in str(info.value) and "server is running" in str(info.value)


@pytest.mark.postgres
def test_wrong_password_is_unreachable_without_leaking(pg_server_url: str) -> None:
    # the test cluster trusts every local user; a missing role is refused the same way as a bad login
    url = pg_server_url.replace("postgres@", "nobody:s3cret@", 1)
    with pytest.raises(DatabaseUnreachable) as info:
        Database.open(url)
    _assert_clear(info.value, "s3cret")


@pytest.mark.postgres
def test_missing_postgres_database_is_created(pg_server_url: str) -> None:
    import uuid

    from sqlalchemy.engine import make_url

    name = f"t_new_{uuid.uuid4().hex[:10]}"
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    with pytest.raises(DatabaseMissing):
        Database.open(url, create=False)
    db = Database.open(url)
    try:
        assert db.current_revision() == migrate.HEAD_REVISION
    finally:
        db.dispose()
        import psycopg

        admin = make_url(pg_server_url)
        with psycopg.connect(
            host=admin.host, port=admin.port, user=admin.username, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _journal_mode(db: Database) -> str:
    with db.engine.connect() as connection:
        return str(connection.exec_driver_sql("PRAGMA journal_mode").scalar()).lower()


def test_local_sqlite_uses_wal_with_foreign_keys(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "labels.db")
    try:
        assert not db.on_network_fs and db.warnings == []
        assert _journal_mode(db) == "wal"
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    finally:
        db.dispose()


def test_sqlite_on_network_fs_warns_and_avoids_wal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (share / "labels.db").touch()
    wal_db = Database.open(share / "labels.db")  # first made in WAL mode, as if created locally
    wal_db.dispose()
    real = share.resolve()
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw,relatime 0 0\n"
        f"nas01:/export/labels {real} nfs4 rw,relatime,vers=4.2,hard,proto=tcp,addr=10.0.0.2 0 0\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING):
        db = Database.open(share / "labels.db", mounts_file=mounts)
    try:
        assert db.on_network_fs and db.network_fs_type == "nfs4"
        assert len(db.warnings) == 1 and "PostgreSQL" in db.warnings[0] and "nfs4" in db.warnings[0]
        assert any("PostgreSQL" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
        assert _journal_mode(db) == "delete"
        with db.unit_of_work() as uow:
            uow.users.ensure("ana")
    finally:
        db.dispose()


def test_storage_errors_carry_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))  # a damaged header
    with pytest.raises(StorageError) as info:
        Database.open(path)
    _assert_clear(info.value)
