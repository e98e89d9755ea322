"""The audit log is append-only, in the database too: triggers refuse UPDATE and DELETE of its rows
(and TRUNCATE on PostgreSQL), whoever connects — defence in depth behind the API, which never
changes an audit row.

``audit_log.user_id`` loses its foreign key. Its ``ON DELETE SET NULL`` would now be an UPDATE the
trigger refuses, so deleting a user with a history would fail with a puzzling message; without the
key the rows outlive a deleted user and keep naming who acted (by id). No project key exists: an
entry names its project in ``entity``/``entity_id``/``details`` and outlives the project.

A later migration that rebuilds ``audit_log`` on SQLite (batch mode copies the table) drops these
triggers with the old table and must create them again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "the audit log is append-only"
_FK = "fk_audit_log_user_id_users"

_SQLITE_UP = [
    f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
    f"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
]
_SQLITE_DOWN = ["DROP TRIGGER IF EXISTS audit_log_no_update", "DROP TRIGGER IF EXISTS audit_log_no_delete"]

_PG_UP = [
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
]
_PG_DOWN = [
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "DROP FUNCTION IF EXISTS audit_log_append_only()",
]


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    # the key goes first: on SQLite dropping it copies the table, which would not keep triggers
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_constraint(_FK, type_="foreignkey")
    for statement in _SQLITE_UP if _sqlite() else _PG_UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in _SQLITE_DOWN if _sqlite() else _PG_DOWN:
        op.execute(statement)
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_foreign_key(_FK, "users", ["user_id"], ["id"], ondelete="SET NULL")
