"""Queue: fractional task priorities and indexes shaped for lease claims.

``tasks.priority`` becomes a float (e.g. ``1 - model confidence``, which an integer would round
away). ``ix_tasks_queue`` now ends in ``priority DESC, id`` so a claim reads the candidates in claim
order straight from the index, and ``ix_assignments_task_lease`` lets the "live leases of this task"
count be answered from the index alone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_queue")
        batch_op.alter_column(
            "priority", existing_type=sa.Integer(), type_=sa.Float(), existing_nullable=False
        )
    # outside the batch: SQLite's table copy cannot re-create an index with an expression column
    op.create_index(
        "ix_tasks_queue", "tasks", ["project_id", "status", sa.text("priority DESC"), "id"], unique=False
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_task")
        batch_op.create_index(
            "ix_assignments_task_lease", ["task_id", "status", "lease_expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_task_lease")
        batch_op.create_index("ix_assignments_task", ["task_id"], unique=False)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_queue")
        batch_op.alter_column(
            "priority", existing_type=sa.Float(), type_=sa.Integer(), existing_nullable=False
        )
        batch_op.create_index("ix_tasks_queue", ["project_id", "status", "priority"], unique=False)
