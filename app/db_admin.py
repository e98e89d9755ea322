"""``sitelabel db upgrade``: migrate a shared database safely.

- A schema written by a newer Sitelabel is refused and nothing is touched.
- Before migrating an older schema it says how to back it up (``pg_dump`` for PostgreSQL; a SQLite
  file is copied with SQLite's online backup next to itself) and asks; ``--yes`` is for scripts.
- On PostgreSQL it warns when other Sitelabel sessions are still connected.
The migration itself runs in one transaction (``app.storage.migrate.upgrade``).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from app.core.errors import SitelabelError
from app.storage import Database, SchemaOutdated, SchemaTooNew, migrate, parse_target
from app.storage.engine import build_engine, translate


def _ask_default(question: str) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        return False
    return input(question).strip().lower() in ("y", "yes")


def pg_dump_hint(url: URL, before: str | None) -> str:
    """The command that backs the database up (no password in it: pg_dump asks or reads ~/.pgpass)."""
    parts = ["pg_dump", "--format=custom"]
    if url.host:
        parts.append(f"--host={url.host}")
    if url.port:
        parts.append(f"--port={url.port}")
    if url.username:
        parts.append(f"--username={url.username}")
    parts += [f"--file=sitelabel-{url.database}-schema-{before}.dump", f"--dbname={url.database}"]
    return " ".join(parts)


def sqlite_backup(path: Path, before: str | None) -> Path:
    """A consistent copy of a SQLite database beside it (SQLite's online backup, WAL included)."""
    target = path.with_name(f"{path.stem}-schema-{before}{path.suffix or '.db'}")
    source = sqlite3.connect(str(path))
    try:
        copy = sqlite3.connect(str(target))
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()
    return target


def _state(location: str) -> tuple[str | None, int]:
    """(stored revision, other Sitelabel sessions connected) without migrating anything."""
    target = parse_target(location)
    engine = build_engine(target)
    try:
        with engine.connect() as connection:
            revision = migrate.stored_revision(connection)
            others = 0
            if target.dialect == "postgresql":
                others = int(
                    connection.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid() AND application_name = 'sitelabel'"
                        )
                    ).scalar_one()
                )
            connection.rollback()
        return revision, others
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        if isinstance(exc, DBAPIError):
            raise translate(exc, target) from None
        raise
    finally:
        engine.dispose()


def upgrade_database(
    location: str, *, assume_yes: bool = False, ask: Callable[[str], bool] = _ask_default
) -> int:
    """Run ``sitelabel db upgrade`` on ``location``; returns the exit code."""
    try:
        db = Database.open(location, create=True, upgrade=False)
    except SchemaTooNew as exc:
        print(f"sitelabel: refusing to upgrade: {exc} Nothing was changed.", file=sys.stderr)
        return 1
    except SchemaOutdated:
        pass
    else:
        print(f"{db.url}: schema already at {db.current_revision()}")
        db.dispose()
        return 0

    target = parse_target(location)
    before, others = _state(location)
    shown = target.redacted if target.path is None else str(target.path)
    print(f"{shown}: schema {before} is older than this Sitelabel's {migrate.HEAD_REVISION}.")
    print(
        "Every Sitelabel on the team must be closed during the upgrade; older versions cannot use it after."
    )
    if others:
        print(
            f"warning: {others} other Sitelabel session(s) are connected to this database now.",
            file=sys.stderr,
        )
    if target.path is None:
        print("Back the database up first:")
        print(f"    {pg_dump_hint(target.url, before)}")
        print(f"    (to go back: pg_restore --clean --dbname={target.url.database} THAT_FILE)")
    else:
        print("A copy of the file is made first, beside it.")
    if not assume_yes and not ask("Upgrade now? [y/N] "):
        print(
            "Nothing was changed. Run `sitelabel db upgrade --yes` once the backup is done.", file=sys.stderr
        )
        return 1
    if target.path is not None:
        try:
            copy = sqlite_backup(target.path, before)
        except (OSError, sqlite3.Error) as exc:
            raise SitelabelError(f"could not back up {target.path} ({exc}); nothing was changed") from None
        print(f"backup written: {copy}")
    db = Database.open(location, create=True, upgrade=True)
    try:
        print(f"{db.url}: schema upgraded from {before} to {db.current_revision()}")
    finally:
        db.dispose()
    return 0


# --- sitelabel db secure -----------------------------------------------------------------------------
def secure_database(
    location: str,
    *,
    group: str | None = None,
    sync_users: bool = False,
    password_file: Path | None = None,
    dry_run: bool = False,
) -> int:
    """Run ``sitelabel db secure``: the group role, grants, functions and row-security policies
    (PostgreSQL only), and with ``sync_users`` a role per Sitelabel user; returns the exit code.

    Connect as the schema owner (the role ``sitelabel db upgrade`` uses). Passwords come only from
    ``password_file`` (``name:password`` lines); they are sent as SCRAM verifiers, never printed.
    """
    import psycopg

    from app.storage import row_security_roles as roles
    from app.storage.row_security_sql import DEFAULT_GROUP

    target = parse_target(location)
    if target.dialect != "postgresql":
        raise SitelabelError(
            "row-level security needs PostgreSQL: a SQLite file has no database roles, so anyone who "
            "can read the file reads every label. Move a team to PostgreSQL (sitelabel init postgresql://...)"
        )
    passwords: dict[str, str] = {}
    if password_file is not None:
        try:
            if password_file.stat().st_mode & 0o077:
                print(
                    f"warning: {password_file} can be read by other accounts; chmod 600 it",
                    file=sys.stderr,
                )
            passwords = roles.read_password_file(password_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SitelabelError(f"cannot read the password file {password_file}: {exc.strerror}") from None
    args = target.url.translate_connect_args(username="user", database="dbname")
    for key, value in target.url.query.items():  # e.g. ?sslmode=require or ?host=/run/postgresql
        args[key] = value if isinstance(value, str) else value[-1]
    try:
        conn = psycopg.connect(**args, connect_timeout=10, application_name="sitelabel-admin")
    except psycopg.Error as exc:
        raise translate(exc, target) from None
    try:
        plan = roles.plan(conn, group=group or DEFAULT_GROUP, sync_users=sync_users, passwords=passwords)
        conn.rollback()  # the plan only read
        if dry_run:
            for line in roles.shown(conn, plan.statements):
                print(line)
        else:
            count = roles.apply(conn, plan.statements)
            print(f"{target.redacted}: row-level security set up ({count} statements)")
        for note in plan.notes:
            print(f"  {note}")
        for problem in plan.problems:
            print(f"sitelabel: {problem}", file=sys.stderr)
    except psycopg.Error as exc:
        raise translate(exc, target) from None
    finally:
        conn.close()
    return 1 if plan.problems else 0
