"""The plain values of an edit session: item keys, save states, conflicts, results, what a flush
snapshots and plans, and a flush whose commit is in doubt.

A leaf of :mod:`app.workflow.editing`: nothing here talks to the database, the journal or the
document.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import numpy as np

from app.core.annotations import Annotation, MaskPatch

LayerKey = tuple[int, str]  # (frame, class name) of a label-layer mask
ItemKey = int | LayerKey  # a vector annotation's local id, or a label-layer mask
Choice = Literal["mine", "theirs"]
Audit = tuple[str, int | None, dict[str, Any]]  # (action, entity id, details) for the audit log


class SaveState(StrEnum):
    SAVED = "saved"
    UNSAVED = "unsaved"
    SAVING = "saving"
    CONFLICT = "conflict"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Conflict:
    """Someone saved (or deleted) this item after the version the local edit was based on.

    ``mine`` is None when the local edit deletes it (or erases the class from the frame);
    ``theirs`` is None when they deleted it. The UI shows both ("view both") and calls
    :meth:`EditSession.resolve`.
    """

    key: ItemKey
    mine: Annotation | None
    theirs: Annotation | None
    message: str
    their_version: int


@dataclass(frozen=True, slots=True)
class SaveResult:
    saved: int  # items written
    conflicts: tuple[Conflict, ...]  # new conflicts of this flush
    error: str | None  # the database error when offline
    state: SaveState


@dataclass(frozen=True, slots=True)
class Layer:
    """What the database holds for one label-layer mask (``mask`` None: not known, expect a conflict)."""

    id: int
    version: int
    mask: MaskPatch | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a flush writes, taken under the lock: journal position, dirty frames and vectors."""

    upto: int  # last journal seq covered
    gens: dict[int, int]  # dirty frame -> change counter
    maps: dict[int, np.ndarray]  # copies of the dirty frames' label maps
    vectors: dict[int, Annotation | None]  # dirty local id -> content (None: removed)
    # copies of the bookkeeping, so planning (np.unique, mask compares) runs outside the lock
    blocked: frozenset[ItemKey]
    saved: dict[int, Annotation]
    db_ids: dict[int, tuple[int, int]]
    layer: dict[LayerKey, Layer]
    prelabels: frozenset[int]  # local ids whose database row is machine-made


@dataclass(frozen=True, slots=True)
class Op:
    key: ItemKey
    action: Literal["add", "update", "delete", "replace"]  # replace: a pre-label by the user's own
    content: Annotation | None  # what to store (None for delete)
    db_id: int | None
    version: int


@dataclass(frozen=True, slots=True)
class InDoubt:
    """A flush whose commit failed with the connection: everything needed to settle it later."""

    snap: Snapshot
    ops: list[Op]
    outcomes: list[Annotation | Conflict | None]
    clean: set[ItemKey]
    audits: list[Audit]


def retry_delay(failures: int, interval: float) -> float:
    """Seconds before the next save attempt after ``failures`` failed ones in a row: 1, 2, 4 ...
    capped at the autosave ``interval`` (a database back after a restart is noticed quickly)."""
    if failures <= 0:
        return interval
    return min(interval, 2.0 ** min(failures - 1, 16))


def ago(seconds: float) -> str:
    """A short "how long ago" for the status bar."""
    if seconds < 10:
        return "just now"
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    return f"{int(seconds // 3600)} h ago"
