"""``Database``: open (create, check and migrate) a SQLite file or a PostgreSQL database; units of work."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.storage import migrate
from app.storage.engine import (
    BEGIN_OPTION,
    build_engine,
    driver_message,
    is_retryable,
    set_journal_mode,
    sqlstate,
    translate,
)
from app.storage.errors import (
    BadDatabaseURL,
    CorruptDatabase,
    DatabaseBusy,
    DatabaseMissing,
    SchemaOutdated,
    SchemaTooNew,
    StorageError,
)
from app.storage.netfs import network_fs_type
from app.storage.uow import UnitOfWork
from app.storage.urls import Dialect, Target, parse_target, scrub

log = logging.getLogger(__name__)
T = TypeVar("T")

BEGIN_ATTEMPTS = 8  # tries to take the write lock (each waits up to the busy timeout)
RUN_ATTEMPTS = 6  # tries of a whole unit of work in Database.run


def _jitter(attempt: int) -> float:
    return random.uniform(0.0, min(1.0, 0.02 * 2**attempt))


def _quiet_rollback(session: Session) -> None:
    """Roll back after a failure; a connection that died meanwhile (the server went away) must not
    replace the first error with a raw driver error: the transaction is gone with it anyway."""
    try:
        session.rollback()
    except DBAPIError as exc:
        log.debug("rollback after a failed unit of work failed too: %s", driver_message(exc))


class Database:
    """An open database. Make one with :meth:`open`; share it between threads; ``dispose()`` at the end."""

    def __init__(self, target: Target, engine: Engine, *, network_fs: str | None = None) -> None:
        self._target = target
        self._engine = engine
        self._readonly_engine = engine.execution_options(**{BEGIN_OPTION: "DEFERRED"})
        self.network_fs_type = network_fs
        self.warnings: list[str] = []

    # --- opening ----------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        url_or_path: str | os.PathLike[str],
        *,
        create: bool = True,
        upgrade: bool = True,
        mounts_file: str | os.PathLike[str] | None = None,
    ) -> Database:
        """Open a SQLite file (plain path) or a PostgreSQL URL; create and migrate it when new.

        ``upgrade=False`` refuses to migrate an older schema (SchemaOutdated). ``mounts_file``
        replaces /proc/mounts for the network-file-system check. Every failure is a StorageError
        with one printable message.
        """
        target = parse_target(url_or_path)
        fs_type: str | None = None
        if target.path is not None:
            fs_type = cls._check_sqlite_path(target.path, create=create, mounts_file=mounts_file)
        engine = build_engine(target, wal=fs_type is None)
        db = cls(target, engine, network_fs=fs_type)
        try:
            db._connect(create=create)
            db._check_schema(create=create, upgrade=upgrade)
        except BaseException:
            engine.dispose()
            raise
        return db

    @staticmethod
    def _check_sqlite_path(
        path: Path, *, create: bool, mounts_file: str | os.PathLike[str] | None
    ) -> str | None:
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

    def _connect(self, *, create: bool) -> None:
        if self.dialect == "sqlite":
            self._prepare_sqlite()
            return
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DBAPIError as exc:
            message = driver_message(exc)
            missing = sqlstate(exc) == "3D000" or ('database "' in message and "does not exist" in message)
            if missing and create:
                self._create_pg_database()
                return
            if missing:
                raise DatabaseMissing(
                    f"the PostgreSQL database {self.url} does not exist; run `sitelabel init` or ask "
                    "your database administrator to create it"
                ) from None
            raise translate(exc, self._target) from None

    def _prepare_sqlite(self) -> None:
        mode = "DELETE" if self.on_network_fs else "WAL"
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT count(*) FROM sqlite_master")).scalar()
                connection.rollback()
            actual = set_journal_mode(self._engine, mode)
        except DBAPIError as exc:
            raise translate(exc, self._target) from None
        if self.on_network_fs:
            message = (
                f"the database {self._target.path} is on a network file system ({self.network_fs_type}); "
                "SQLite is not safe for several users there, so WAL mode is off. A team should use a "
                "PostgreSQL server (sitelabel init postgresql://...)."
            )
            self.warnings.append(message)
            log.warning("%s", message)
        elif actual != "wal":
            message = f"SQLite could not switch {self._target.path} to WAL mode (journal mode is {actual!r})"
            self.warnings.append(message)
            log.warning("%s", message)

    def _create_pg_database(self) -> None:
        from sqlalchemy import create_engine

        name = self._target.url.database or ""
        admin_url = self._target.url.set(database="postgres")
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
                f"the PostgreSQL database {self.url} does not exist and could not be created "
                f"({scrub(driver_message(exc), self._target.url)}); ask your database administrator to "
                "create it or to grant CREATEDB"
            ) from None
        finally:
            admin.dispose()
        log.info("created PostgreSQL database %s", name)

    def _check_schema(self, *, create: bool, upgrade: bool) -> None:
        try:
            with self._engine.connect() as connection:
                current = migrate.stored_revision(connection)
                others = migrate.user_tables(connection) if current is None else []
                connection.rollback()
        except DBAPIError as exc:
            raise translate(exc, self._target) from None
        if current is None and others:
            raise CorruptDatabase(
                f"{self._where} already holds other tables ({', '.join(sorted(others)[:5])}) and is not a "
                "Sitelabel database; choose another file or database"
            )
        if current is not None and current not in migrate.KNOWN_REVISIONS:
            raise SchemaTooNew(
                f"{self._where} was created or upgraded by a newer Sitelabel (schema {current!r}; this "
                f"version knows up to {migrate.HEAD_REVISION!r}). Install the newer Sitelabel to use it."
            )
        if current == migrate.HEAD_REVISION:
            return
        if current is None and not create:
            raise SchemaOutdated(
                f"{self._where} has no Sitelabel tables yet; run `sitelabel init` to create them"
            )
        if current is not None and not upgrade:
            raise SchemaOutdated(
                f"{self._where} has an older schema ({current!r}, this Sitelabel needs "
                f"{migrate.HEAD_REVISION!r}); back it up, then run `sitelabel db upgrade`"
            )
        self.upgrade()

    # --- properties -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The database URL with the password hidden."""
        return self._target.redacted

    @property
    def dialect(self) -> Dialect:
        return self._target.dialect

    @property
    def path(self) -> Path | None:
        """The SQLite file, None for PostgreSQL."""
        return self._target.path

    @property
    def on_network_fs(self) -> bool:
        return self.network_fs_type is not None

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def _where(self) -> str:
        return str(self._target.path) if self._target.path is not None else self.url

    def __repr__(self) -> str:
        return f"Database({self.url!r})"

    # --- schema -----------------------------------------------------------------------------------
    def upgrade(self) -> tuple[str | None, str]:
        """Migrate to the newest schema; returns (revision before, revision after)."""
        try:
            before, after = migrate.upgrade(self._engine)
        except DBAPIError as exc:
            raise translate(exc, self._target) from None
        if before != after:
            log.info("database %s migrated from %s to %s", self._where, before, after)
        return before, after

    def current_revision(self) -> str | None:
        try:
            with self._engine.connect() as connection:
                revision = migrate.stored_revision(connection)
                connection.rollback()
                return revision
        except DBAPIError as exc:
            raise translate(exc, self._target) from None

    def head_revision(self) -> str:
        return migrate.HEAD_REVISION

    def dispose(self) -> None:
        self._engine.dispose()

    # --- units of work ----------------------------------------------------------------------------
    def _begin(self, readonly: bool) -> Session:
        """A session whose transaction has begun (on SQLite write units: the write lock is held)."""
        bind = self._readonly_engine if readonly else self._engine
        for attempt in range(BEGIN_ATTEMPTS):
            session = Session(bind=bind, expire_on_commit=False, autoflush=True)
            try:
                session.connection()  # autobegin now: BEGIN IMMEDIATE waits in SQLite's busy handler
                return session
            except DBAPIError as exc:
                session.close()
                if not is_retryable(exc) or attempt == BEGIN_ATTEMPTS - 1:
                    raise translate(exc, self._target) from exc
                time.sleep(_jitter(attempt))
        raise AssertionError("unreachable")

    @contextmanager
    def unit_of_work(self, *, readonly: bool = False) -> Iterator[UnitOfWork]:
        """One transaction: commits on a clean exit, rolls back on an exception.

        ``readonly=True`` never commits and, on SQLite, does not take the write lock.
        Database driver errors come out as StorageErrors (DatabaseBusy when others held the lock).
        """
        session = self._begin(readonly)
        try:
            yield UnitOfWork(session)
            if readonly:
                session.rollback()
            else:
                session.commit()
        except DBAPIError as exc:
            _quiet_rollback(session)
            raise translate(exc, self._target) from exc
        except BaseException:
            _quiet_rollback(session)
            raise
        finally:
            session.close()

    def run(
        self, work: Callable[[UnitOfWork], T], *, readonly: bool = False, attempts: int = RUN_ATTEMPTS
    ) -> T:
        """Run ``work`` in a unit of work, retrying the whole unit (with jitter) when the database
        was busy (SQLite lock, PostgreSQL serialization failure or deadlock)."""
        for attempt in range(attempts):
            try:
                with self.unit_of_work(readonly=readonly) as uow:
                    return work(uow)
            except DatabaseBusy:
                if attempt == attempts - 1:
                    raise
                time.sleep(_jitter(attempt + 2))
        raise AssertionError("unreachable")
