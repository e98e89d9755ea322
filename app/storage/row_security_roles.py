"""Login roles for ``sitelabel db secure``: role names, SCRAM verifiers, the password file, and the
plan that creates the group role, joins each Sitelabel user's login role to it and runs the SQL of
``app.storage.row_security_sql`` (what the policies enforce: ``app.storage.row_security``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import ValidationError
from app.storage.row_security_sql import DEFAULT_GROUP, Statement, secure_statements

MAX_ROLE_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1: longer identifiers are silently truncated
_RESERVED = frozenset({"public", "none", "current_user", "session_user", "current_role"})


def check_role_name(name: str) -> str:
    """``name`` if PostgreSQL can hold it as a role name unchanged; ValidationError otherwise."""
    if not name or not name.strip():
        raise ValidationError("a database role needs a name")
    if "\x00" in name:
        raise ValidationError(f"the user name {name!r} contains a NUL character; PostgreSQL refuses it")
    size = len(name.encode("utf-8"))
    if size > MAX_ROLE_BYTES:
        raise ValidationError(
            f"the user name {name[:20]!r}... is {size} bytes long; a PostgreSQL role name holds at most "
            f"{MAX_ROLE_BYTES} bytes, so this user cannot get a database role (rename the user)"
        )
    if name.lower().startswith("pg_") or name.lower() in _RESERVED:
        raise ValidationError(f"{name!r} is reserved by PostgreSQL and cannot be a role name")
    return name


def scram_verifier(password: str, *, iterations: int = 4096, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    ``ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'`` stores it as it is, so the plain password never
    reaches the server (nor its statement log). NFKC stands in for SASLprep (same for ASCII).
    """
    if not password:
        raise ValidationError("an empty password is not allowed")
    salt = salt if salt is not None else os.urandom(16)
    normalized = unicodedata.normalize("NFKC", password).encode("utf-8")
    salted = hashlib.pbkdf2_hmac("sha256", normalized, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


@dataclass
class Plan:
    """What ``sitelabel db secure`` will run, and what it noticed on the way."""

    statements: list[Statement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # printed: what was decided per user
    problems: list[str] = field(default_factory=list)  # users that could not get a role


def _roles(cursor: Any) -> dict[str, dict[str, Any]]:
    cursor.execute("SELECT rolname, rolsuper, rolcanlogin, rolbypassrls, rolcreaterole FROM pg_roles")
    return {
        str(r[0]): {"super": bool(r[1]), "login": bool(r[2]), "bypass": bool(r[3]), "createrole": bool(r[4])}
        for r in cursor.fetchall()
    }


def _members(cursor: Any, group: str) -> set[str]:
    cursor.execute(
        "SELECT m.rolname FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid "
        "JOIN pg_roles m ON m.oid = am.member WHERE g.rolname = %s",
        (group,),
    )
    return {str(r[0]) for r in cursor.fetchall()}


def _table_owner(cursor: Any, schema: str) -> str | None:
    cursor.execute(
        "SELECT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = 'annotations'",
        (schema,),
    )
    row = cursor.fetchone()
    return None if row is None else str(row[0])


def plan(
    conn: Any,
    *,
    group: str = DEFAULT_GROUP,
    sync_users: bool = False,
    passwords: Mapping[str, str] | None = None,
) -> Plan:
    """Everything to run on the psycopg connection ``conn`` (the schema owner's), nothing run yet."""
    from psycopg import sql

    check_role_name(group)
    passwords = passwords or {}
    result = Plan()
    with conn.cursor() as cursor:
        cursor.execute("SELECT current_schema(), current_database(), current_user")
        schema, database, admin = (str(v) for v in cursor.fetchone())
        owner = _table_owner(cursor, schema)
        if owner is None:
            raise ValidationError(
                f"{database} has no Sitelabel tables in schema {schema}; run `sitelabel init` or "
                "`sitelabel db upgrade` first"
            )
        roles = _roles(cursor)
        members = _members(cursor, group) if group in roles else set()
        cursor.execute("SELECT name, active FROM users ORDER BY name")
        users = [(str(n), bool(a)) for n, a in cursor.fetchall()]
        # members of the owner's role can SET ROLE to it, and the owner reads every row
        cursor.execute(
            "SELECT rolname FROM pg_roles WHERE rolname <> %s AND pg_has_role(rolname, %s, 'MEMBER')",
            (owner, owner),
        )
        owners = {str(r[0]) for r in cursor.fetchall()}
    g = sql.Identifier(group)
    if group not in roles:
        result.statements.append(Statement(sql.SQL("CREATE ROLE {g} NOLOGIN").format(g=g)))
        result.notes.append(f"group role {group}: created")
    elif roles[group]["login"] or roles[group]["super"] or roles[group]["bypass"]:
        raise ValidationError(
            f"the role {group} exists but can log in or bypass row security; choose another --group name"
        )
    result.statements += secure_statements(schema, database, group, owner)
    unknown = sorted(set(passwords) - {n for n, _ in users})
    if unknown:
        result.problems.append(f"the password file names people who are not Sitelabel users: {unknown}")
    if not sync_users:
        return result
    for name, active in users:
        try:
            check_role_name(name)
        except ValidationError as exc:
            result.problems.append(str(exc))
            continue
        role = sql.Identifier(name)
        found = roles.get(name)
        if name in (owner, admin, group) or (found and (found["super"] or found["bypass"])):
            if active:
                result.notes.append(
                    f"{name}: left alone (the schema owner, a superuser or a role that bypasses row "
                    "security; such a role sees every row, so do not use it for labeling)"
                )
            continue
        if active and name in owners:
            result.problems.append(
                f"{name} is a member of the schema owner's role {owner}: SET ROLE {owner} would read "
                f"every row; revoke that membership (REVOKE {owner} FROM {name})"
            )
        if not active:
            if found is not None and name in members:
                result.statements.append(Statement(sql.SQL("REVOKE {g} FROM {r}").format(g=g, r=role)))
                result.statements.append(Statement(sql.SQL("ALTER ROLE {r} NOLOGIN").format(r=role)))
                result.notes.append(f"{name}: deactivated in Sitelabel: removed from {group}, login off")
            continue
        secret = passwords.get(name)
        if found is None:
            if secret is None:
                create = sql.SQL("CREATE ROLE {r} NOLOGIN").format(r=role)
                result.statements.append(Statement(create))
                result.notes.append(f"{name}: role created without login (set a password to enable it)")
            else:
                created = sql.SQL("CREATE ROLE {r} LOGIN PASSWORD {p}")
                verifier = sql.Literal(scram_verifier(secret))
                result.statements.append(
                    Statement(
                        created.format(r=role, p=verifier), created.format(r=role, p=sql.Literal("***"))
                    )
                )
                result.notes.append(f"{name}: login role created with the password from the file")
        elif secret is not None:
            altered = sql.SQL("ALTER ROLE {r} LOGIN PASSWORD {p}")
            result.statements.append(
                Statement(
                    altered.format(r=role, p=sql.Literal(scram_verifier(secret))),
                    altered.format(r=role, p=sql.Literal("***")),
                )
            )
            result.notes.append(f"{name}: password set from the file, login on")
        # the policies' per-row sub-selects inflate the planner's cost estimates, so on a large scan
        # JIT compilation would start and cost far more than the query (measured: 0.4 s vs 20 ms)
        result.statements.append(
            Statement(
                sql.SQL("ALTER ROLE {r} IN DATABASE {d} SET jit = off").format(
                    r=role, d=sql.Identifier(database)
                )
            )
        )
        if name not in members:
            result.statements.append(Statement(sql.SQL("GRANT {g} TO {r}").format(g=g, r=role)))
            if found is not None and secret is None:
                result.notes.append(f"{name}: existing role joined {group}")
    return result


def apply(conn: Any, statements: Iterable[Statement]) -> int:
    """Run the statements in one transaction on a psycopg connection; returns how many ran."""
    count = 0
    with conn.transaction(), conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement.sql)
            count += 1
    return count


def shown(conn: Any, statements: Sequence[Statement]) -> list[str]:
    """The statements as --dry-run prints them (passwords as ***)."""
    return [(st.shown if st.shown is not None else st.sql).as_string(conn) + ";" for st in statements]


def read_password_file(text_: str) -> dict[str, str]:
    """``name:password`` lines (the first colon splits; ``#`` comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for number, line in enumerate(text_.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, secret = line.partition(":")
        if not sep or not name.strip() or not secret:
            raise ValidationError(f"password file line {number}: expected name:password")
        out[name.strip()] = secret
    return out
