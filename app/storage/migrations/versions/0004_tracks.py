"""Tracks: an annotation may belong to an object track across the frames of a video or series.

``annotations.track_id`` is the object id (per asset); ``keyframe`` tells a frame a person placed
from one the tracker placed; ``outside`` marks that the object left the view at that frame and
``occluded`` that it is hidden behind something (app.core.tracks). All four are nullable: rows
written before this revision are plain annotations (NULL track) and read back as keyframes that are
neither outside nor occluded. ``ix_annotations_asset_track`` finds the anchors of one track.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("track_id", "keyframe", "outside", "occluded")


def upgrade() -> None:
    # nullable columns: a plain ALTER TABLE ADD COLUMN on SQLite too, no table copy
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("track_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("keyframe", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("outside", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("occluded", sa.Boolean(), nullable=True))
        batch_op.create_index("ix_annotations_asset_track", ["asset_id", "track_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.drop_index("ix_annotations_asset_track")
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
