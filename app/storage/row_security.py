"""PostgreSQL per-user database roles and row-level security (``sitelabel db secure``).

Convention: a Sitelabel user who connects to PostgreSQL directly logs in as a role with the same
name as their Sitelabel user name. Every such role is a member of one group role (``sitelabel_app``
by default) that holds exactly the privileges the app needs: SELECT, INSERT and UPDATE on the app
tables (DELETE only where the app deletes rows; no TRUNCATE, no DDL, no ownership), SELECT + INSERT
only on the audit log and comments, USAGE on the sequences. The schema owner (the role that ran
``sitelabel db upgrade``) keeps ownership and is not subject to row security; it is for upgrades and
admins only.

Row-level security (policies apply to the group role's members):

* ``annotations`` - a labeler reads their own rows and, in projects they belong to, machine rows
  (``source <> 'human'``), consensus rows only while the item's task is done. Reviewers and project
  admins of the asset's project, and site admins, read everything. Writes follow the API: own rows,
  pre-label rows a labeler accepts or rejects (soft delete), reviewers fix anyone's; no labeler
  writes consensus rows or another author's rows; hard DELETE is not granted at all.
* ``reviews`` - verdict notes can describe another labeler's work ("bob's outline misses ..."):
  a labeler reads rejections sent to them and whole-item verdicts of items they worked on.
* ``audit_log`` - details name labels and rejection reasons: a labeler reads only their own rows
  (and the project's watch-folder list); inserts must be their own. UPDATE/DELETE are not granted.
* ``users`` / ``project_members`` - readable by all; only site admins change users and roles, project
  admins their project's members, so nobody can make themselves a reviewer to see blind rows.
* ``tasks`` - a labeler cannot mark a task done (that would reveal the consensus rows).
* ``threads`` / ``comments`` - the API's rule (``app.api._team`` ``_visible_threads``): in their
  projects labelers read every thread except another labeler's on an unfinished consensus item (its
  pin and words describe their labels); own threads and those opened by people who see all labels of
  the project always show. A comment shows iff its thread does. Members open threads and reply to
  visible ones as themselves; only the author or a reviewer resolves or reopens; comments are
  append-only and a thread's pin cannot move.
* Columns tying rows to people and projects (``assets.project_id``, ``assignments.user_id`` ...)
  are not updatable by the group role at all (column privileges).

The policies call small STABLE functions (``sitelabel_user_id()`` ...) wrapped in sub-selects,
so PostgreSQL evaluates each once per statement (an InitPlan), not once per row. They run with the
caller's rights (not SECURITY DEFINER): everything they read is readable by the group anyway, and
``current_user`` inside a SECURITY DEFINER function would be the owner, not the caller, which would
also break ``SET ROLE alice`` checks by the DBA. Every name in them is schema-qualified and nobody
but the owner may create objects in the schema, so they need no ``SET search_path``. They are
PL/pgSQL, whose query plans are cached per session (a plain SQL function is planned at every call:
measured 0.5 ms more per statement).

The statements live in ``app.storage.row_security_sql``, the login roles and the plan that runs
them (``sitelabel db secure``) in ``app.storage.row_security_roles``; this module is what the app
asks at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.core.errors import PermissionDenied
from app.storage.row_security_sql import DEFAULT_GROUP, RLS_TABLES


@dataclass(frozen=True)
class RowSecurityStatus:
    """Row security as the database has it set up (``tables``: table -> RLS enabled)."""

    available: bool  # PostgreSQL
    tables: dict[str, bool] = field(default_factory=dict)
    group: str = DEFAULT_GROUP  # the role the policies apply to
    login_roles: int = 0  # members of the group that may log in

    @property
    def on(self) -> bool:
        return self.available and bool(self.tables) and all(self.tables.values())

    def summary(self) -> str:
        if not self.available:
            return "not available (SQLite has no database roles; use PostgreSQL for per-user roles)"
        if self.on:
            return (
                f"on ({', '.join(sorted(self.tables))}); group role {self.group}, "
                f"{self.login_roles} labeler role(s) can log in"
            )
        partly = [t for t, on in self.tables.items() if on]
        extra = f" (enabled only on {', '.join(partly)})" if partly else ""
        return f"off{extra}; run `sitelabel db secure` as the schema owner to set it up"


def status(connection: Connection) -> RowSecurityStatus:
    """Row security state of the database behind a SQLAlchemy connection (the group role is the
    one ``sitelabel db secure`` named in its policies)."""
    if connection.dialect.name != "postgresql":
        return RowSecurityStatus(available=False)
    rows = connection.execute(
        text(
            "SELECT c.relname, c.relrowsecurity FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relname = ANY(:t)"
        ),
        {"t": list(RLS_TABLES)},
    ).all()
    tables = {str(r[0]): bool(r[1]) for r in rows}
    for name in RLS_TABLES:
        tables.setdefault(name, False)
    named = connection.execute(
        text(
            "SELECT roles[1] FROM pg_policies WHERE schemaname = current_schema() "
            "AND tablename = 'annotations' AND policyname = 'sitelabel_read'"
        )
    ).scalar()
    group = str(named) if named else DEFAULT_GROUP
    logins = connection.execute(
        text(
            "SELECT count(*) FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid "
            "JOIN pg_roles m ON m.oid = am.member WHERE g.rolname = :g AND m.rolcanlogin"
        ),
        {"g": group},
    ).scalar()
    return RowSecurityStatus(True, tables, group, int(logins or 0))


def restricted_login(connection: Connection | Session) -> str | None:
    """The PostgreSQL role whose rows row security filters on this connection, else None
    (SQLite, no row security set up, or the owner / a superuser / a BYPASSRLS role)."""
    bind = connection.get_bind() if isinstance(connection, Session) else connection
    if bind.dialect.name != "postgresql":
        return None
    row = connection.execute(
        text("SELECT current_user, coalesce(row_security_active(to_regclass('annotations')), false)")
    ).one()
    return str(row[0]) if row[1] else None


def check_acting_user(connection: Connection | Session, acting: str) -> None:
    """Under row security the app acts only as the logged-in role: PermissionDenied otherwise."""
    login = restricted_login(connection)
    if login is not None and login != acting:
        raise PermissionDenied(
            f"connected to PostgreSQL as {login!r}, row-level security lets this connection act only as "
            f"the Sitelabel user {login!r}, not {acting!r}; log in to the database as {acting!r} instead"
        )


def sees_all_labels(connection: Connection | Session, project_id: int) -> bool:
    """Whether queries on this connection return every labeler's annotations of the project
    (always on SQLite and for the owner; under row security only reviewers and above)."""
    if restricted_login(connection) is None:
        return True
    value = connection.execute(text("SELECT sitelabel_sees_all(:p)"), {"p": project_id}).scalar()
    return bool(value)


def describe(location: str) -> str:
    """One line for ``config check`` / ``db status``: row security on or off, and whether this
    login is one of the per-user roles it binds."""
    from sqlalchemy.exc import DBAPIError

    from app.storage.engine import build_engine, translate
    from app.storage.urls import parse_target

    target = parse_target(location)
    engine = build_engine(target)
    try:
        with engine.connect() as connection:
            found = status(connection)
            login = restricted_login(connection)
            connection.rollback()
    except DBAPIError as exc:
        raise translate(exc, target) from None
    finally:
        engine.dispose()
    line = found.summary()
    if login is not None:
        line += f"; this login ({login}) reads only what row security allows it"
    return line
