"""Engine factory for SQLite and PostgreSQL, and the translation of driver errors to StorageErrors.

SQLite: pysqlite's own transaction handling is switched off (``isolation_level = None``) and the
engine's ``begin`` event emits ``BEGIN IMMEDIATE`` for write units (``BEGIN`` for read-only ones),
the SQLAlchemy-documented recipe. A write unit so takes the write lock up front, waiting in
SQLite's busy handler, instead of upgrading a read lock later, which can deadlock and fail at once
with "database is locked" whatever the busy timeout.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry

from app.storage.errors import CorruptDatabase, DatabaseBusy, DatabaseUnreachable, StorageError
from app.storage.urls import Target, redact_url, scrub

BUSY_TIMEOUT_S = 15.0
PG_CONNECT_TIMEOUT_S = 5
BEGIN_OPTION = "sitelabel_begin"  # execution option: "IMMEDIATE" (default) or "DEFERRED"


def _json_default(value: Any) -> Any:
    for attr in ("tolist", "item"):  # numpy arrays and scalars
        if hasattr(value, attr):
            return getattr(value, attr)()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=_json_default, allow_nan=False)


def build_engine(target: Target, *, wal: bool = True) -> Engine:
    """A new engine for ``target`` (never created at import time)."""
    if target.dialect == "sqlite":
        return _sqlite_engine(target.url, wal=wal)
    return create_engine(
        target.url,
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S, "application_name": "sitelabel"},
        pool_pre_ping=True,
        json_serializer=json_dumps,
    )


def _sqlite_engine(url: URL, *, wal: bool) -> Engine:
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
        json_serializer=json_dumps,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see module doc)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA synchronous=NORMAL" if wal else "PRAGMA synchronous=FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(BEGIN_OPTION, "IMMEDIATE")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

    return engine


def set_journal_mode(engine: Engine, mode: str) -> str:
    """Set SQLite's journal mode outside any transaction; return the mode now in force."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"PRAGMA journal_mode={mode}")
        row = cursor.fetchone()
        cursor.close()
        return str(row[0]).lower() if row else ""
    finally:
        raw.close()


# --- error translation ---------------------------------------------------------------------------

_PG_UNREACHABLE = ("08", "28", "57P0")  # connection exceptions, auth failures, admin shutdown
_PG_RETRY = ("40001", "40P01")  # serialization failure, deadlock


def driver_message(exc: BaseException) -> str:
    """The driver's own first message line (no SQL, no parameters, no traceback)."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return lines[0] if lines else type(orig).__name__


def sqlstate(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return str(getattr(orig, "sqlstate", None) or "")


def is_locked(exc: BaseException) -> bool:
    text = driver_message(exc).lower()
    return "database is locked" in text or "database table is locked" in text


def is_retryable(exc: BaseException) -> bool:
    return is_locked(exc) or sqlstate(exc) in _PG_RETRY


def translate(exc: BaseException, target: Target) -> StorageError:
    """A StorageError with one clear, password-free message for a driver error."""
    where = target.path if target.path is not None else redact_url(target.url)
    message = scrub(driver_message(exc), target.url)
    lower = message.lower()
    if is_locked(exc):
        return DatabaseBusy(
            f"the database {where} stayed locked by other writers for too long ({message}). "
            "Try again; if it keeps happening, a team should use PostgreSQL."
        )
    if sqlstate(exc) in _PG_RETRY:
        return DatabaseBusy(f"a concurrent change got in the way ({message}). Try again.")
    if "file is not a database" in lower or "malformed" in lower or "not a database" in lower:
        return CorruptDatabase(
            f"{where} is damaged or is not a Sitelabel database (SQLite says: {message}). "
            "Restore it from a backup or choose another file."
        )
    if target.dialect == "postgresql" and (sqlstate(exc).startswith(_PG_UNREACHABLE) or not sqlstate(exc)):
        return DatabaseUnreachable(
            f"cannot connect to the PostgreSQL database {where}: {message}. "
            "Check that the server is running and that host, port, user, password and database "
            "name are right."
        )
    if "unable to open database file" in lower or "readonly" in lower or "read-only" in lower:
        return StorageError(
            f"cannot open or write the SQLite file {where} ({message}). "
            "Check that the folder exists and that you may write to it."
        )
    return StorageError(f"database error on {where}: {message}")
