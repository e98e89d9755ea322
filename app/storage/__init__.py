"""Storage: SQLAlchemy tables, the engine factory (SQLite / PostgreSQL), repositories returning
core records, the unit of work and Alembic migrations.

    db = Database.open("labels.db")            # or "postgresql://user@host/labels"
    with db.unit_of_work() as uow:
        user = uow.users.ensure("ana")

Importing this package creates no engine and does not load Alembic.
"""

from app.storage.database import Database
from app.storage.errors import (
    BadDatabaseURL,
    CorruptDatabase,
    DatabaseBusy,
    DatabaseMissing,
    DatabaseUnreachable,
    SchemaOutdated,
    SchemaTooNew,
    StorageError,
)
from app.storage.uow import UnitOfWork
from app.storage.urls import parse_target, redact_url

__all__ = [
    "BadDatabaseURL",
    "CorruptDatabase",
    "Database",
    "DatabaseBusy",
    "DatabaseMissing",
    "DatabaseUnreachable",
    "SchemaOutdated",
    "SchemaTooNew",
    "StorageError",
    "UnitOfWork",
    "parse_target",
    "redact_url",
]
