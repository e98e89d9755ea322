"""The audit log cannot be edited: no public API call changes or removes an audit row (the whole
call table of test_security_roles, run as an admin), and the database itself refuses UPDATE, DELETE
and TRUNCATE of audit rows (migration 0005), on SQLite and PostgreSQL, through the app's own engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _security_setup import (
    EXTRA_CALLS,
    FREE,
    MODULE_CALLS,
    MUTATE,
    PROJECT_CALLS,
    READ,
    audit_rows,
    build_world,
)
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from app.storage import Database, StorageError, migrate

APPEND_ONLY = "append-only"


def test_no_api_call_changes_an_existing_audit_row(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, tmp_path)
    ordered = [
        *[(n, c) for n, c in PROJECT_CALLS.items() if c.kind == READ],
        *[(n, c) for n, c in PROJECT_CALLS.items() if c.kind == MUTATE],
        *EXTRA_CALLS.items(),
        *[(n, c) for n, c in MODULE_CALLS.items() if c.kind != FREE],
    ]
    grew = 0
    for name, case in ordered:
        assert case.call is not None
        who = "lee" if case.least == "owner" else "ada"  # only the owner may use a lease
        before = audit_rows(world.db)
        case.call(world, world[who])
        after = audit_rows(world.db)
        assert after[: len(before)] == before, f"{name} changed or removed audit rows"
        top = max((r[0] for r in before), default=0)
        assert all(r[0] > top for r in after[len(before) :]), f"{name}: audit ids must only grow"
        grew += len(after) > len(before)
    assert grew >= 20  # the mutating calls did write audit rows


def _refuses(engine: Engine, statement: str) -> None:
    with pytest.raises(DBAPIError, match=APPEND_ONLY), engine.begin() as conn:
        conn.execute(text(statement))


def _some_history(db: Database) -> None:
    from app import api

    project = api.create_project(db, "audited", user="ada")
    project.set_member("lee", "labeler")
    project.set_member("lee", "reviewer")


def test_the_database_refuses_to_change_or_remove_audit_rows(db: Database) -> None:
    _some_history(db)
    before = audit_rows(db)
    assert len(before) >= 3
    for statement in (
        "UPDATE audit_log SET action = 'nothing happened'",
        "UPDATE audit_log SET user_id = NULL WHERE id = (SELECT min(id) FROM audit_log)",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)",
    ):
        _refuses(db.engine, statement)
    if db.dialect == "postgresql":
        _refuses(db.engine, "TRUNCATE audit_log")
    # through the app's own unit of work as well (the ORM session): a one-line StorageError
    with pytest.raises(StorageError, match=APPEND_ONLY), db.unit_of_work() as uow:
        uow.session.execute(text("DELETE FROM audit_log"))
    assert audit_rows(db) == before
    # appending still works, and a deleted user's history stays, naming them by id
    with db.unit_of_work() as uow:
        lee = uow.users.get_by_name("lee")
        uow.audit.record(lee.id, "test.append", "user", lee.id, {"ok": True})
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM project_members WHERE user_id = :id"), {"id": lee.id})
        conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": lee.id})
    after = audit_rows(db)
    assert after[: len(before)] == before and len(after) == len(before) + 1
    assert after[-1][2] == lee.id  # still names who acted


def _migrate(engine: Engine, revision: str, *, down: bool) -> None:
    from alembic import command

    with engine.begin() as connection:
        config = migrate.alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)


def _triggers(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
        else:
            query = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal"
        return {str(r[0]) for r in conn.execute(text(query))}


def _audit_keys(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return [
            (k["referred_table"], k["options"].get("ondelete"))
            for k in inspect(conn).get_foreign_keys("audit_log")
        ]


def test_0005_downgrades_and_upgrades_again_keeping_the_log(db: Database) -> None:
    assert "0005" in migrate.KNOWN_REVISIONS and migrate.script_heads() == (migrate.HEAD_REVISION,)
    _some_history(db)
    before = audit_rows(db)
    engine = db.engine
    assert _triggers(engine) and _audit_keys(engine) == []

    _migrate(engine, "0004", down=True)
    with engine.connect() as conn:
        assert migrate.stored_revision(conn) == "0004"
    assert _triggers(engine) == set()
    assert _audit_keys(engine) == [("users", "SET NULL")]
    assert audit_rows(db) == before
    with engine.begin() as conn:  # without the triggers an update goes through (then is undone)
        conn.execute(text("UPDATE audit_log SET action = action"))

    _migrate(engine, "head", down=False)
    assert db.current_revision() == migrate.HEAD_REVISION  # later revisions build on 0005
    expected = {"audit_log_no_update", "audit_log_no_delete"}
    if db.dialect == "postgresql":
        expected = {"audit_log_append_only", "audit_log_no_truncate"}
    assert _triggers(engine) == expected
    assert _audit_keys(engine) == []
    assert audit_rows(db) == before
    assert migrate.compare_schema(engine) == []
    _refuses(engine, "DELETE FROM audit_log")
