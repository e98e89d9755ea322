"""Storage errors: one clear, redacted message each, fit to print as is before exiting non-zero."""

from __future__ import annotations

from app.core.errors import SitelabelError


class StorageError(SitelabelError):
    """Base of every storage failure. ``str(error)`` is a complete message for the user."""


class BadDatabaseURL(StorageError):
    """The database location is neither a SQLite file path nor a supported URL."""


class DatabaseUnreachable(StorageError):
    """The database server could not be reached or refused the connection."""


class DatabaseMissing(StorageError):
    """The database does not exist and creating it was not allowed."""


class SchemaTooNew(StorageError):
    """The database was upgraded by a newer Sitelabel than this one."""


class SchemaOutdated(StorageError):
    """The database schema is older than this Sitelabel and upgrading was not allowed."""


class CorruptDatabase(StorageError):
    """The file is damaged or is not a Sitelabel database."""


class DatabaseBusy(StorageError):
    """Other writers held the database lock for too long (SQLite), even after retries."""
