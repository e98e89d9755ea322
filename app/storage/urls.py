"""Turn what the user typed (a path or a URL) into a database target; redact passwords."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote_plus

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from app.storage.errors import BadDatabaseURL

Dialect = Literal["sqlite", "postgresql"]

SQLITE_SUFFIXES = frozenset({".db", ".sqlite", ".sqlite3", ".sldb"})
_PG_DRIVERS = frozenset({"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2", "pgsql"})
_SQLITE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite"})
_HELP = (
    "Give a SQLite file path (for example labels.db) or a PostgreSQL URL "
    "(for example postgresql://user@host:5432/labels)."
)


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed database location."""

    dialect: Dialect
    url: URL  # the SQLAlchemy URL to connect with (password included; never print it)
    path: Path | None  # the SQLite file, absolute

    @property
    def redacted(self) -> str:
        return redact_url(self.url)


def redact_url(url: URL) -> str:
    """The URL with its password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def scrub(text: str, url: URL | None) -> str:
    """Remove the URL's password (plain or URL-encoded) from an arbitrary message."""
    if url is None or not url.password:
        return text
    password = str(url.password)
    for form in {password, quote_plus(password)}:
        text = text.replace(form, "***")
    return text


def _looks_like_path(text: str) -> bool:
    if "/" in text or os.sep in text or (os.altsep and os.altsep in text):
        return True
    if Path(text).suffix.lower() in SQLITE_SUFFIXES:
        return True
    return Path(text).is_file()


def _sqlite_target(path: Path) -> Target:
    path = path.expanduser().absolute()
    return Target("sqlite", URL.create("sqlite+pysqlite", database=str(path)), path)


def parse_target(url_or_path: str | os.PathLike[str]) -> Target:
    """Parse a SQLite path or a database URL; ``postgresql://`` is rewritten to psycopg 3.

    Raises :class:`BadDatabaseURL` with a message that never contains the password.
    """
    if isinstance(url_or_path, os.PathLike):
        return _sqlite_target(Path(url_or_path))
    if not isinstance(url_or_path, str):
        raise BadDatabaseURL(
            f"a database location must be a path or a URL, got {type(url_or_path).__name__}. {_HELP}"
        )
    text = url_or_path.strip()
    if not text:
        raise BadDatabaseURL(f"no database location given. {_HELP}")
    if "://" not in text:
        if text == ":memory:" or not _looks_like_path(text):
            raise BadDatabaseURL(f"{text!r} is neither a database URL nor a SQLite file path. {_HELP}")
        return _sqlite_target(Path(text))
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        scheme = text.split("://", 1)[0]
        raise BadDatabaseURL(f"cannot parse the database URL (scheme {scheme!r}). {_HELP}") from None
    driver = url.drivername.lower()
    if driver in _SQLITE_DRIVERS:
        if not url.database or url.database == ":memory:":
            raise BadDatabaseURL(
                f"{redact_url(url)} names no file; an in-memory database cannot hold shared labels. {_HELP}"
            )
        return _sqlite_target(Path(url.database))
    if driver in _PG_DRIVERS:
        if not url.database:
            raise BadDatabaseURL(f"{redact_url(url)} names no database; add it after the host, e.g. /labels.")
        return Target("postgresql", url.set(drivername="postgresql+psycopg"), None)
    raise BadDatabaseURL(
        f"unsupported database {url.get_backend_name()!r} in {redact_url(url)}: Sitelabel stores labels in "
        f"SQLite or PostgreSQL. {_HELP}"
    )
