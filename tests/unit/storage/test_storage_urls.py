"""Database locations: plain paths, URLs, rewriting to psycopg 3, and password redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.errors import SitelabelError
from app.storage import BadDatabaseURL, StorageError, parse_target
from app.storage.errors import (
    CorruptDatabase,
    DatabaseBusy,
    DatabaseMissing,
    DatabaseUnreachable,
    SchemaOutdated,
    SchemaTooNew,
)
from app.storage.urls import scrub


def test_plain_paths_mean_sqlite_files(tmp_path: Path) -> None:
    for given in (tmp_path / "labels.db", str(tmp_path / "labels.db"), "labels.db", "sub/dir/x", "x.sqlite3"):
        target = parse_target(given)
        assert target.dialect == "sqlite"
        assert target.path is not None and target.path.is_absolute()
        assert target.url.drivername == "sqlite+pysqlite"


def test_sqlite_url_is_accepted(tmp_path: Path) -> None:
    target = parse_target(f"sqlite:///{tmp_path}/a.db")
    assert target.path == tmp_path / "a.db"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ana@db.example:5432/labels",
        "postgres://ana@db.example:5432/labels",
        "postgresql+psycopg2://ana@db.example:5432/labels",
        "postgresql+psycopg://ana@db.example:5432/labels",
    ],
)
def test_postgres_urls_are_rewritten_to_psycopg3(url: str) -> None:
    target = parse_target(url)
    assert target.dialect == "postgresql"
    assert target.url.drivername == "postgresql+psycopg"
    assert (target.url.host, target.url.port, target.url.database) == ("db.example", 5432, "labels")


def test_passwords_are_redacted() -> None:
    target = parse_target("postgresql://ana:s3cr%40t@db.example/labels")
    assert target.url.password == "s3cr@t"
    assert "s3cr" not in target.redacted and "***" in target.redacted
    assert scrub("auth failed for s3cr@t and s3cr%40t", target.url) == "auth failed for *** and ***"


@pytest.mark.parametrize(
    "given",
    [
        "mysql://ana:s3cret@x/db",
        "nonsense",
        "",
        "sqlite://",
        ":memory:",
        "postgresql://ana:s3cret@host",
        "oracle+cx://ana:s3cret@h/db",
        "http://[bad",
    ],
)
def test_bad_locations_raise_one_clear_message(given: str) -> None:
    with pytest.raises(BadDatabaseURL) as info:
        parse_target(given)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert "s3cret" not in message
    assert "SQLite" in message or "database" in message


def test_storage_errors_are_sitelabel_errors() -> None:
    for cls in (
        BadDatabaseURL,
        DatabaseUnreachable,
        SchemaTooNew,
        SchemaOutdated,
        CorruptDatabase,
        DatabaseBusy,
        DatabaseMissing,
    ):
        assert issubclass(cls, StorageError)
        assert issubclass(cls, SitelabelError)
