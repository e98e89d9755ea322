"""The checks ``Database.open`` runs before a database is used: the SQLite path, the connection
(a missing PostgreSQL database created, SQLite's journal mode set) and the stored schema.

Functions over the parsed target and its engine; each failure is a StorageError with one
printable message.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from app.storage import migrate
from app.storage.engine import driver_message, set_journal_mode, sqlstate, translate
from app.storage.errors import (
    BadDatabaseURL,
    CorruptDatabase,
    DatabaseMissing,
    SchemaOutdated,
    SchemaTooNew,
    StorageError,
)
from app.storage.netfs import network_fs_type
from app.storage.urls import Target, scrub

log = logging.getLogger(__name__)


def location(target: Target) -> str:
    """What messages call the database: the SQLite file, or the URL with the password hidden."""
    return str(target.path) if target.path is not None else target.redacted


def check_sqlite_path(path: Path, *, create: bool, mounts_file: str | os.PathLike[str] | None) -> str | None:
    """Refuse a folder or (without ``create``) a missing file; make the parent folder. Returns the
    network file system the file lies on (``nfs4``, ``cifs`` ...), None on a local disk."""
    if path.is_dir():
        raise BadDatabaseURL(
            f"{path} is a folder; give the path of a database file such as {path / 'labels.db'}"
        )
    if not path.exists():
        if not create:
            raise DatabaseMissing(
                f"the database file {path} does not exist; run `sitelabel init` to create it"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the folder {path.parent}: {exc.strerror}") from None
    return network_fs_type(path, mounts_file=mounts_file)


def connect(target: Target, engine: Engine, *, create: bool, network_fs: str | None) -> list[str]:
    """Reach the database (creating a missing PostgreSQL database when ``create``); returns the
    warnings worth showing (SQLite on a network share, WAL refused)."""
    if target.dialect == "sqlite":
        return prepare_sqlite(target, engine, network_fs)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as exc:
        message = driver_message(exc)
        missing = sqlstate(exc) == "3D000" or ('database "' in message and "does not exist" in message)
        if missing and create:
            create_pg_database(target)
            return []
        if missing:
            raise DatabaseMissing(
                f"the PostgreSQL database {target.redacted} does not exist; run `sitelabel init` or ask "
                "your database administrator to create it"
            ) from None
        raise translate(exc, target) from None
    return []


def prepare_sqlite(target: Target, engine: Engine, network_fs: str | None) -> list[str]:
    """Open the file once and set its journal mode: WAL on a local disk, DELETE on a network share
    (SQLite's WAL needs shared memory that network file systems do not give)."""
    mode = "DELETE" if network_fs is not None else "WAL"
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT count(*) FROM sqlite_master")).scalar()
            connection.rollback()
        actual = set_journal_mode(engine, mode)
    except DBAPIError as exc:
        raise translate(exc, target) from None
    if network_fs is not None:
        return [
            f"the database {target.path} is on a network file system ({network_fs}); "
            "SQLite is not safe for several users there, so WAL mode is off. A team should use a "
            "PostgreSQL server (sitelabel init postgresql://...)."
        ]
    if actual != "wal":
        return [f"SQLite could not switch {target.path} to WAL mode (journal mode is {actual!r})"]
    return []


def create_pg_database(target: Target) -> None:
    """CREATE DATABASE through the server's ``postgres`` database (needs CREATEDB)."""
    from sqlalchemy import create_engine

    name = target.url.database or ""
    admin_url = target.url.set(database="postgres")
    admin = create_engine(
        admin_url,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5, "application_name": "sitelabel"},
    )
    try:
        with admin.connect() as connection:
            quoted = connection.dialect.identifier_preparer.quote(name)
            connection.execute(text(f"CREATE DATABASE {quoted}"))
    except DBAPIError as exc:
        raise StorageError(
            f"the PostgreSQL database {target.redacted} does not exist and could not be created "
            f"({scrub(driver_message(exc), target.url)}); ask your database administrator to "
            "create it or to grant CREATEDB"
        ) from None
    finally:
        admin.dispose()
    log.info("created PostgreSQL database %s", name)


def needs_upgrade(target: Target, engine: Engine, *, create: bool, upgrade: bool) -> bool:
    """Whether the stored schema must be migrated (created, when new) before use. Refuses another
    program's tables, a newer Sitelabel's schema, and, when not allowed, creating or upgrading."""
    try:
        with engine.connect() as connection:
            current = migrate.stored_revision(connection)
            others = migrate.user_tables(connection) if current is None else []
            connection.rollback()
    except DBAPIError as exc:
        raise translate(exc, target) from None
    where = location(target)
    if current is None and others:
        raise CorruptDatabase(
            f"{where} already holds other tables ({', '.join(sorted(others)[:5])}) and is not a "
            "Sitelabel database; choose another file or database"
        )
    if current is not None and current not in migrate.KNOWN_REVISIONS:
        raise SchemaTooNew(
            f"{where} was created or upgraded by a newer Sitelabel (schema {current!r}; this "
            f"version knows up to {migrate.HEAD_REVISION!r}). Install the newer Sitelabel to use it."
        )
    if current == migrate.HEAD_REVISION:
        return False
    if current is None and not create:
        raise SchemaOutdated(f"{where} has no Sitelabel tables yet; run `sitelabel init` to create them")
    if current is not None and not upgrade:
        raise SchemaOutdated(
            f"{where} has an older schema ({current!r}, this Sitelabel needs "
            f"{migrate.HEAD_REVISION!r}); back it up, then run `sitelabel db upgrade`"
        )
    return True
