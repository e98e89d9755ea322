"""Plain records the storage repositories hand to the layers above (never ORM rows).

All are frozen dataclasses; ``Annotation`` lives in :mod:`app.core.annotations` and
``Ontology`` in :mod:`app.core.ontology`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.core.errors import ValidationError


class Role(StrEnum):
    """What a user may do. Global role on the user, plus an optional role per project."""

    ADMIN = "admin"
    PROJECT_ADMIN = "project_admin"
    REVIEWER = "reviewer"
    LABELER = "labeler"


class AssetKind(StrEnum):
    IMAGE = "image"
    DICOM_SERIES = "dicom-series"
    VIDEO = "video"


class TaskStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    REVIEWED = "reviewed"
    DONE = "done"
    SKIPPED = "skipped"
    REJECTED = "rejected"  # a reviewer sent it back to labeler(s); only they may claim it


class AssignmentStatus(StrEnum):
    """A labeler's lease on a task. ``active`` past its expiry counts as expired everywhere."""

    ACTIVE = "active"
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    EXPIRED = "expired"  # marked when someone else took the slot over, or by housekeeping
    RELEASED = "released"  # voided by a requeue (an active lease, or a submission sent back)
    RETURNED = "returned"  # rejected by review: the labeler's held work until they claim it again


class ThreadStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    display_name: str
    role: Role
    active: bool = True


@dataclass(frozen=True, slots=True)
class ProjectSettings:
    """Per-project workflow settings.

    ``consensus_share``: fraction of assets labelled by several people (0..1);
    ``consensus_count``: how many labelers such an asset gets; ``batch_size``: assets handed out per
    claim; ``lease_seconds``: how long a claimed task stays reserved for its labeler.
    """

    consensus_share: float = 0.0
    consensus_count: int = 2
    batch_size: int = 10
    lease_seconds: int = 1800

    def __post_init__(self) -> None:
        if not 0.0 <= self.consensus_share <= 1.0:
            raise ValidationError(f"consensus share must be within 0..1, got {self.consensus_share}")
        if self.consensus_count < 1:
            raise ValidationError(f"consensus count must be at least 1, got {self.consensus_count}")
        if self.batch_size < 1:
            raise ValidationError(f"batch size must be at least 1, got {self.batch_size}")
        if self.lease_seconds < 1:
            raise ValidationError(f"lease time must be at least 1 second, got {self.lease_seconds}")


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    settings: ProjectSettings
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Dataset:
    id: int
    project_id: int
    name: str


@dataclass(frozen=True, slots=True)
class DataRoot:
    """A named place data lives (e.g. ``studies``); each workstation maps it to a local path."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Asset:
    """One image, DICOM series or video, addressed relative to a data root; pixels are never copied."""

    id: int
    project_id: int
    dataset_id: int
    kind: AssetKind
    root: str
    rel_path: str  # posix path relative to the data root
    member: str | None  # archive member or DICOM SeriesInstanceUID
    size: int
    mtime_ns: int
    content_hash: str
    frame_count: int
    width: int
    height: int
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    user_id: int | None
    action: str
    entity: str
    entity_id: int | None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Task:
    """One asset's place in a project's labeling queue."""

    id: int
    project_id: int
    asset_id: int
    status: TaskStatus
    priority: float  # higher is handed out first
    required_labelers: int  # distinct labelers needed (>1 for consensus items)
    created_at: datetime
    updated_at: datetime
    agreement: float | None = None  # consensus items: item_agreement overall, set on submit


@dataclass(frozen=True, slots=True)
class Assignment:
    """One labeler's lease on one task (``asset_id`` is the task's, for convenience)."""

    id: int
    task_id: int
    asset_id: int
    user_id: int
    status: AssignmentStatus
    leased_at: datetime
    lease_expires_at: datetime
    finished_at: datetime | None = None
    required_labelers: int = 1  # the task's, for convenience (> 1: a consensus item)


CONSENSUS_SOURCE = "consensus"  # annotation source of an item's consensus label (set by review)


class Verdict(StrEnum):
    """A review's decision on a task (the latest review of a task is its result)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"  # sent back to one labeler (``Review.labeler``)
    FIXED = "fixed"  # the reviewer corrected the labels, then accepted


@dataclass(frozen=True, slots=True)
class Review:
    """One review decision on an item; ``labeler`` is set when it concerns one labeler's work."""

    id: int
    asset_id: int
    task_id: int | None
    reviewer: str | None
    verdict: Verdict
    note: str
    created_at: datetime
    labeler: str | None = None
    assignment_id: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)  # e.g. the consensus method or labeler


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    thread_id: int
    author: str | None
    body: str  # plain text: shown as text, never rendered as rich text/HTML
    created_at: datetime
    mentions: tuple[str, ...] = ()  # user names written as @name in the body


@dataclass(frozen=True, slots=True)
class Thread:
    """A comment thread (an issue) on an asset, optionally pinned to a point of a frame."""

    id: int
    asset_id: int
    frame: int
    x: float | None
    y: float | None
    status: ThreadStatus
    author: str | None
    created_at: datetime
    resolved_at: datetime | None
    comments: tuple[Comment, ...] = ()
