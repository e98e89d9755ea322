"""The plain state of an edit session: save states, conflicts, results, and what a flush plans.

Split from :mod:`app.workflow.editing` so the session class stays readable; nothing here talks to
the database or the document.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

import numpy as np

from app.core.annotations import Annotation, MaskPatch

if TYPE_CHECKING:
    from app.workflow.editing import EditSession

log = logging.getLogger(__name__)

LayerKey = tuple[int, str]  # (frame, class name) of a label-layer mask
ItemKey = int | LayerKey  # a vector annotation's local id, or a label-layer mask
Choice = Literal["mine", "theirs"]


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
class _Layer:
    """What the database holds for one label-layer mask (``mask`` None: not known, expect a conflict)."""

    id: int
    version: int
    mask: MaskPatch | None


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What a flush writes, taken under the lock: journal position, dirty frames and vectors."""

    upto: int  # last journal seq covered
    gens: dict[int, int]  # dirty frame -> change counter
    maps: dict[int, np.ndarray]  # copies of the dirty frames' label maps
    vectors: dict[int, Annotation | None]  # dirty local id -> content (None: removed)
    # copies of the bookkeeping, so planning (np.unique, mask compares) runs outside the lock
    blocked: frozenset[ItemKey]
    saved: dict[int, Annotation]
    db_ids: dict[int, tuple[int, int]]
    layer: dict[LayerKey, _Layer]


@dataclass(frozen=True, slots=True)
class _Op:
    key: ItemKey
    action: Literal["add", "update", "delete", "replace"]  # replace: a pre-label by the user's own
    content: Annotation | None  # what to store (None for delete)
    db_id: int | None
    version: int


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


class _Autosave:
    """A daemon thread flushing pending edits; while the database is unreachable it retries with a
    short back-off (:func:`retry_delay`) instead of a whole interval."""

    def __init__(self, session: EditSession, interval: float) -> None:
        self._session, self._interval = session, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sitelabel-autosave", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        delay = self._interval
        while not self._stop.wait(delay):
            if self._session.pending_count:
                try:
                    self._session.flush()
                except Exception:  # never let the thread die: the journal keeps the edits
                    log.exception("autosave failed")
            delay = self._session.retry_delay(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
