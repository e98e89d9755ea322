"""Queue mode's plain parts: the batch's items and their states, what the controller needs from the
window (:class:`QueueHost`), the answers background jobs send back, and the user-facing messages.

No widgets and no jobs here; :mod:`app.editor.queue_controller` drives them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import numpy.typing as npt

from app.core.records import Asset
from app.editor.workers import submit
from app.workflow.queue import Lease, LeaseExpired

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.editing_controller import EditingController
    from app.sources import Source
    from app.workflow.editing import EditSession

_UIDS = itertools.count(1)
NOTHING_LEFT = "Nothing is left in the queue for you. Start labeling (Ctrl+Shift+L) checks again."


class QueueHost(Protocol):
    """What the controller needs from the main window."""

    editing: EditingController

    def open_asset(self, asset: Asset) -> None: ...

    def show_prepared(
        self, asset: Asset, source: Source, raw: npt.NDArray[Any], session: EditSession
    ) -> None: ...

    def forget_source(self, asset_id: int) -> None: ...

    def data_unavailable(self, asset: Asset, message: str) -> None: ...

    def open_failure(self, asset_id: int) -> str | None:
        """Why the asset could not be opened, while its image has not loaded since (else None)."""
        ...

    def is_opening(self, asset_id: int) -> bool:
        """The asset's image is being read to be shown (the last image may still be on screen)."""
        ...


class ItemState(StrEnum):
    WAITING = "waiting"
    CURRENT = "current"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    EXPIRED = "expired"
    FAILED = "not submitted"  # the submit failed for another reason: open it and submit again


HELD = (ItemState.WAITING, ItemState.CURRENT, ItemState.FAILED)  # leases we keep renewing


@dataclass
class QueueItem:
    """One leased item of the batch."""

    lease: Lease
    asset: Asset
    required: int  # distinct labelers the item needs: > 1 is a consensus item
    issues: int  # open comment threads
    note: str | None  # why a reviewer sent it back, if they did
    state: ItemState = ItemState.WAITING
    # Items are named by this serial, not by the assignment: work a reviewer sends back returns
    # under its old assignment id and is a new entry of the batch.
    uid: int = field(default_factory=lambda: next(_UIDS))

    @property
    def name(self) -> str:
        return self.asset.rel_path.rsplit("/", 1)[-1]

    @property
    def key(self) -> int:
        return self.uid


@dataclass
class Prepared:
    """An item decoded ahead: source open, first frame decoded, annotations loaded."""

    key: int
    asset: Asset
    source: Source
    raw: npt.NDArray[Any]
    session: EditSession
    stale: bool = False  # the asset was edited in the editor since: load its annotations again


# --- answers of background jobs -----------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    """Names one background job: its sequence number, the batch item (``QueueItem.key``) it is
    about, and for a save, the session saved."""

    seq: int
    key: int
    session: EditSession | None = None


@dataclass(frozen=True)
class Expired:
    message: str


@dataclass(frozen=True)
class Offline:
    """A submit or skip the database did not take because it is unreachable."""

    message: str


@dataclass(frozen=True)
class RootLost:
    """Decoding ahead found the item's data folder unreachable (a share unmounted or offline)."""

    key: int
    asset: Asset
    message: str


@dataclass(frozen=True)
class Claimed:
    items: list[QueueItem]
    stats: dict[str, int]


def run_job(
    tokens: itertools.count[int],
    fn: Callable[[], object],
    done: Callable[[object, object], None],
    failed: Callable[[object, str], None],
    *,
    key: int = -1,
    session: EditSession | None = None,
) -> None:
    """Run ``fn`` on the pool. The callbacks are bound methods of a long-lived object; what they need
    to know about the job travels in its Token."""
    submit(Token(next(tokens), key, session), fn, done, failed)


def required_labelers(project: Project, lease: Lease) -> int:
    """Labelers an item needs (> 1: a consensus item). The lease does not carry it; the queue picks
    consensus items from the project's share with a fixed hash (app.workflow.consensus), so the
    same pick is made here. Items changed later with queue.set_required are not seen."""
    known = getattr(lease, "required", None)
    if isinstance(known, int):
        return known
    from app.workflow.consensus import consensus_plan

    settings = project.settings
    if settings.consensus_share <= 0:
        return 1
    plan = consensus_plan(
        [lease.asset_id],
        share=settings.consensus_share,
        count=settings.consensus_count,
        seed=f"project-{project.id}",
    )
    return plan[lease.asset_id]


def renew_leases(
    project: Project, leases: Sequence[tuple[int, Lease]]
) -> tuple[dict[int, Lease | Expired], dict[str, int]]:
    """Worker: renew each (item key, lease); a lease that ran out comes back as Expired."""
    out: dict[int, Lease | Expired] = {}
    for key, lease in leases:
        try:
            out[key] = project.renew(lease)
        except LeaseExpired as exc:
            out[key] = Expired(str(exc))
    return out, project.queue_stats()  # the counts move as others work: keep them fresh


# --- messages -------------------------------------------------------------------------------------
def offline_message(waiting: int, action: str = "Submit") -> str:
    """Submit or Skip while the database is unreachable: the item stays open, its edits are journaled."""
    if waiting == 0:
        return (
            f"Offline: the database is unreachable; {action} will be possible when the database is back. "
            "This item stays open."
        )
    return (
        f"Offline: {waiting} edit{'s' if waiting != 1 else ''} waiting; {action} will be possible when the "
        "database is back. Your edits are kept on this computer."
    )


def expired_message(names: Sequence[str]) -> str:
    """One message for the leases that ran out together."""
    if len(names) == 1:
        return (
            f"Your lease on {names[0]} expired; your saved annotations are kept; the item went back to "
            "the queue."
        )
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (
        f"Your leases on {shown} expired; your saved annotations are kept; the items went back to the queue."
    )


def unopened_message(name: str) -> str:
    """Submit on an item whose image never loaded: nobody has seen it, so it is not submitted."""
    return (
        f"{name} could not be opened, so it cannot be submitted: press Down to retry, or Skip it with a "
        "reason (Ctrl+Shift+K)"
    )


def still_opening_message(name: str) -> str:
    return f"{name} is still opening, so it cannot be submitted yet: Submit once its image shows."


def ignore(*_args: object) -> None:
    """A job callback for results nobody needs."""
