"""Review: an agreement score per task, review details and the latest-review-per-task index.

``tasks.agreement`` holds item_agreement's overall score of a consensus task (set when all its
labelers submitted; NULL otherwise). ``reviews.details`` records what a decision was based on (e.g.
the consensus method or the chosen labeler); ``ix_reviews_task`` finds a task's latest review (the
highest id) from the index alone. The verdict vocabulary becomes accepted | rejected | fixed; no row
used the old one (the table had no writer), so no data changes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # adding a nullable column is a plain ALTER on SQLite too: no table copy
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agreement", sa.Float(), nullable=True))
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "details",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.create_index("ix_reviews_task", ["task_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_reviews_task")
        batch_op.drop_column("details")
    # dropping a column copies the table on SQLite, and the copy cannot re-create an index with an
    # expression column (see 0002): take ix_tasks_queue out around it
    op.drop_index("ix_tasks_queue", table_name="tasks")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("agreement")
    op.create_index(
        "ix_tasks_queue", "tasks", ["project_id", "status", sa.text("priority DESC"), "id"], unique=False
    )
