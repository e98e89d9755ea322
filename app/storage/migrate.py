"""Alembic, run programmatically (no alembic.ini): upgrade, current and head revisions.

Alembic is imported only inside these functions so that ``import app.storage`` stays cheap.
``KNOWN_REVISIONS`` lists every revision this release ships, oldest first; a test checks it
against the migration scripts, so opening a database never has to load Alembic just to compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
KNOWN_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005", "0006")
HEAD_REVISION = KNOWN_REVISIONS[-1]
VERSION_TABLE = "alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_heads() -> tuple[str, ...]:
    """Heads according to the migration scripts (loads Alembic)."""
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def script_revisions() -> tuple[str, ...]:
    """Every revision in the scripts, oldest first (loads Alembic)."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    return tuple(reversed([s.revision for s in scripts.walk_revisions()]))


def stored_revision(connection: Connection) -> str | None:
    """The revision recorded in the database, None when it has no version table or row."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    row = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    return None if row is None else str(row[0])


def user_tables(connection: Connection) -> list[str]:
    return [name for name in inspect(connection).get_table_names() if name != VERSION_TABLE]


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate to ``revision`` in one transaction; return (revision before, revision after)."""
    from alembic import command

    with engine.begin() as connection:
        before = stored_revision(connection)
        command.upgrade(alembic_config(connection), revision)
        after = stored_revision(connection)
    return before, after or HEAD_REVISION


def compare_schema(engine: Engine) -> list[Any]:
    """Differences between the live database and ``tables.metadata`` (empty when they match)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from app.storage.tables import metadata

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
        diff: list[Any] = compare_metadata(context, metadata)
        if connection.dialect.name == "sqlite":
            diff = _drop_sqlite_sort_order_noise(connection, diff)
        connection.rollback()
    return diff


def _index_keys(index: Any) -> list[tuple[str, bool]]:
    """(column name, descending) for each column of a metadata Index."""
    keys: list[tuple[str, bool]] = []
    for expr in index.expressions:
        descending = isinstance(expr, UnaryExpression) and expr.modifier is operators.desc_op
        element = expr.element if isinstance(expr, UnaryExpression) else expr
        keys.append((str(getattr(element, "name", None) or getattr(element, "text", element)), descending))
    return keys


def _drop_sqlite_sort_order_noise(connection: Connection, diff: list[Any]) -> list[Any]:
    """SQLAlchemy does not reflect the sort order of SQLite index columns, so an index with a DESC
    column shows up as remove + add. Drop such a pair only when PRAGMA index_xinfo confirms the
    live index has exactly the metadata's columns and sort orders."""
    removed = {d[1].name: d for d in diff if isinstance(d, tuple) and d[0] == "remove_index"}
    added = {d[1].name: d for d in diff if isinstance(d, tuple) and d[0] == "add_index"}
    noise: list[Any] = []
    for name in removed.keys() & added.keys():
        rows = connection.execute(text(f'PRAGMA index_xinfo("{name}")')).all()
        live = [(str(r.name), bool(r.desc)) for r in sorted(rows, key=lambda r: r.seqno) if r.key]
        if live == _index_keys(added[name][1]):
            noise += [removed[name], added[name]]
    return [d for d in diff if not any(d is n for n in noise)]
