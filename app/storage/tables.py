"""Database tables (SQLAlchemy 2 typed declarative). The Alembic migrations must match these.

Rows never leave :mod:`app.storage`: repositories turn them into records from :mod:`app.core`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    desc,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# searchable JSON: JSONB on PostgreSQL (indexable, containment queries), JSON text on SQLite
SearchJSON = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default="labeler")  # global role (app.core.records.Role)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created()


class ProjectRow(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    consensus_share: Mapped[float] = mapped_column(Float, default=0.0)
    consensus_count: Mapped[int] = mapped_column(Integer, default=2)
    batch_size: Mapped[int] = mapped_column(Integer, default=10)
    lease_seconds: Mapped[int] = mapped_column(Integer, default=1800)
    created_at: Mapped[datetime] = _created()


class MemberRow(Base):
    """A user's role within one project."""

    __tablename__ = "project_members"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))


class OntologyRow(Base):
    """One version of a project's ontology (plain-data form of app.core.ontology.Ontology)."""

    __tablename__ = "ontologies"
    __table_args__ = (UniqueConstraint("project_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


class DataRootRow(Base):
    __tablename__ = "data_roots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)


class AssetRow(Base):
    __tablename__ = "assets"
    __table_args__ = (
        UniqueConstraint("project_id", "root_id", "rel_path", "member"),
        Index("ix_assets_dataset", "dataset_id"),
        Index("ix_assets_hash", "content_hash"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # image | dicom-series | video
    root_id: Mapped[int] = mapped_column(ForeignKey("data_roots.id"))
    rel_path: Mapped[str] = mapped_column(Text)  # posix, relative to the data root
    member: Mapped[str] = mapped_column(Text, default="")  # "" = none (keeps the unique key working)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(128))
    frame_count: Mapped[int] = mapped_column(Integer, default=1)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", SearchJSON, default=dict)
    created_at: Mapped[datetime] = _created()


class AnnotationRow(Base):
    """One label on one frame. Never deleted: ``deleted`` marks it, ``version`` guards edits."""

    __tablename__ = "annotations"
    __table_args__ = (
        Index("ix_annotations_asset_frame", "asset_id", "frame"),
        Index("ix_annotations_author", "author_id"),
        Index("ix_annotations_asset_track", "asset_id", "track_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    frame: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(200))
    geometry: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {"points": ...} | {"box": ...}
    mask: Mapped[bytes | None] = mapped_column(LargeBinary)  # app.core.mask_codec bytes
    bbox_x0: Mapped[float | None] = mapped_column(Float)
    bbox_y0: Mapped[float | None] = mapped_column(Float)
    bbox_x1: Mapped[float | None] = mapped_column(Float)
    bbox_y1: Mapped[float | None] = mapped_column(Float)
    attributes: Mapped[dict[str, Any]] = mapped_column(SearchJSON, default=dict)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(200), default="human")  # human | model:NAME@VER
    confidence: Mapped[float | None] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer, default=1)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    # object tracks (app.core.tracks); NULL on plain annotations and rows older than migration 0004
    track_id: Mapped[int | None] = mapped_column(Integer)
    keyframe: Mapped[bool | None] = mapped_column(Boolean)
    outside: Mapped[bool | None] = mapped_column(Boolean)
    occluded: Mapped[bool | None] = mapped_column(Boolean)


class TaskRow(Base):
    """Labeling work for one asset in one project (the queue)."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("project_id", "asset_id"),
        # claim order is "priority DESC, id": this index hands the rows over in exactly that order
        Index("ix_tasks_queue", "project_id", "status", desc("priority"), "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="new")
    priority: Mapped[float] = mapped_column(Float, default=0.0)  # higher first (e.g. 1 - model confidence)
    required_labelers: Mapped[int] = mapped_column(Integer, default=1)  # >1 for consensus tasks
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    # consensus tasks: item_agreement's overall score, stored when all labelers submitted
    agreement: Mapped[float | None] = mapped_column(Float)


class AssignmentRow(Base):
    """A labeler's claim on a task: a lease that expires unless renewed or finished."""

    __tablename__ = "assignments"
    __table_args__ = (
        Index("ix_assignments_task_lease", "task_id", "status", "lease_expires_at"),  # live-lease counts
        Index("ix_assignments_user_status", "user_id", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="active")  # app.core.records.AssignmentStatus
    leased_at: Mapped[datetime] = _created()
    lease_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReviewRow(Base):
    """A review decision; the latest row of a task (highest id) is the task's review result."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_asset", "asset_id"), Index("ix_reviews_task", "task_id", "id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id", ondelete="SET NULL"))
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id", ondelete="SET NULL"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # accepted | rejected | fixed (app.core.records.Verdict); assignment_id: the labeler a
    # rejection sends the item back to (None for whole-item verdicts)
    verdict: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any] | None] = mapped_column(SearchJSON)  # e.g. consensus method/labeler
    created_at: Mapped[datetime] = _created()


class ThreadRow(Base):
    """A comment thread (issue) pinned to a point of a frame."""

    __tablename__ = "threads"
    __table_args__ = (Index("ix_threads_asset", "asset_id", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    frame: Mapped[int] = mapped_column(Integer, default=0)
    x: Mapped[float | None] = mapped_column(Float)
    y: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | resolved
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CommentRow(Base):
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_thread", "thread_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class AuditRow(Base):
    """Append-only (migration 0005: triggers refuse UPDATE/DELETE); no foreign key, so the rows
    outlive a deleted user and keep naming who acted."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = _created()
    user_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(60))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(SearchJSON, default=dict)


class ModelRow(Base):
    """A registered machine-learning model (ONNX file + manifest)."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(60))
    sha256: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class PredictionRow(Base):
    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_asset", "asset_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id", ondelete="SET NULL"))
    confidence: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = _created()


class SplitPlanRow(Base):
    """A project's split plan (app.core.splits): target shares and the seed ordering new groups."""

    __tablename__ = "split_plans"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    train: Mapped[float] = mapped_column(Float)
    val: Mapped[float] = mapped_column(Float)
    test: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = _created()


class AssetSplitRow(Base):
    """An asset's train/val/test split, assigned once and never changed (app.core.splits)."""

    __tablename__ = "asset_splits"
    __table_args__ = (Index("ix_asset_splits_project", "project_id"),)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    split: Mapped[str] = mapped_column(String(10))
    group_key: Mapped[str] = mapped_column(String(80))  # patient:/study: digest, or asset:ID
    created_at: Mapped[datetime] = _created()


metadata = Base.metadata


def table_of(row_class: type[Base]) -> Table:
    """The Core table of a mapped class (typed, for insert/update statements)."""
    return cast(Table, row_class.__table__)
