"""Queue mode's plain parts on the editor's side: what the controller needs from the window
(:class:`QueueHost`), what the database round trips need from the controller
(:class:`BatchDriver`), items decoded ahead, and the user-facing messages. The batch itself, its
items and their states are Qt-free: :mod:`app.workflow.queue_batch` (re-exported here).

No widgets and no jobs here; :mod:`app.editor.queue_controller` drives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy.typing as npt

from app.core.records import Asset
from app.workflow.queue_batch import (
    HELD,
    NOTHING_LEFT,
    ItemState,
    QueueBatch,
    QueueItem,
    Step,
    expired_message,
)

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.editing_controller import EditingController
    from app.sources import Source
    from app.workflow.editing import EditSession

__all__ = [
    "HELD",
    "NOTHING_LEFT",
    "BatchDriver",
    "ItemState",
    "Prepared",
    "QueueHost",
    "QueueItem",
    "RootLost",
    "expired_message",
    "offline_message",
    "still_opening_message",
    "unopened_message",
]


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


class BatchDriver(Protocol):
    """What the database round trips (app.editor.queue_leases) need from the queue controller."""

    project: Project
    host: QueueHost
    batch: QueueBatch

    @property
    def busy(self) -> bool:
        """Submit and Skip must wait (an answer is awaited, or the current item is not shown yet)."""
        ...

    def apply(self, step: Step) -> None:
        """Show what a transition of the batch returned (notices, moving on, renewal)."""
        ...


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
class RootLost:
    """Decoding ahead found the item's data folder unreachable (a share unmounted or offline)."""

    key: int
    asset: Asset
    message: str


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


def unopened_message(name: str) -> str:
    """Submit on an item whose image never loaded: nobody has seen it, so it is not submitted."""
    return (
        f"{name} could not be opened, so it cannot be submitted: press Down to retry, or Skip it with a "
        "reason (Ctrl+Shift+K)"
    )


def still_opening_message(name: str) -> str:
    return f"{name} is still opening, so it cannot be submitted yet: Submit once its image shows."
