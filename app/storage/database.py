"""``Database``: open (create, check and migrate) a SQLite file or a PostgreSQL database; units of work.

The checks made on opening are functions in ``app.storage.db_open``."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.storage import db_open, migrate
from app.storage.engine import BEGIN_OPTION, build_engine, driver_message, is_retryable, translate
from app.storage.errors import DatabaseBusy
from app.storage.uow import UnitOfWork
from app.storage.urls import Dialect, Target, parse_target

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
            fs_type = db_open.check_sqlite_path(target.path, create=create, mounts_file=mounts_file)
        engine = build_engine(target, wal=fs_type is None)
        db = cls(target, engine, network_fs=fs_type)
        try:
            for message in db_open.connect(target, engine, create=create, network_fs=fs_type):
                db.warnings.append(message)
                log.warning("%s", message)
            if db_open.needs_upgrade(target, engine, create=create, upgrade=upgrade):
                db.upgrade()
        except BaseException:
            engine.dispose()
            raise
        return db

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
            log.info("database %s migrated from %s to %s", db_open.location(self._target), before, after)
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
