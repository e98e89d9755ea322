"""Splits: a project's train/val/test plan and each asset's split, assigned once (app.core.splits).

``split_plans`` holds one row per project (target shares and the seed that orders new groups); a
project without a row uses the default plan (80/20 train/val). ``asset_splits`` holds one row per
asset that has been assigned: its split and its group (a digest of the PatientID or
StudyInstanceUID, or the asset itself), so a new series of a patient joins the patient's split.
Both are new tables; nothing existing changes, and a downgrade drops them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "split_plans",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("train", sa.Float(), nullable=False),
        sa.Column("val", sa.Float(), nullable=False),
        sa.Column("test", sa.Float(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_split_plans_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_split_plans")),
    )
    op.create_table(
        "asset_splits",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=10), nullable=False),
        sa.Column("group_key", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_asset_splits_asset_id_assets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_asset_splits_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_asset_splits")),
    )
    op.create_index("ix_asset_splits_project", "asset_splits", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_asset_splits_project", table_name="asset_splits")
    op.drop_table("asset_splits")
    op.drop_table("split_plans")
