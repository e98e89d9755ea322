"""Queue mode without widgets: the labeler's batch, Submit/Skip, lease renewal, and the next item
decoded ahead so Submit shows it at once.

Everything that touches the database or a file runs on the thread pool (app.editor.workers);
the results come back to the UI thread as signals. The batch keeps every item it was handed, in
order, with its state, so a late answer (a submit that found the lease expired, a renewal) always
finds its item.

The parts: this module claims items and moves through the batch; :mod:`app.editor.queue_leases`
submits, skips and renews leases; :mod:`app.editor.queue_prefetch` decodes the next item ahead;
:mod:`app.editor.queue_items` holds the items, the host protocol and the messages (the names are
re-exported here, where the panel and the tests import them).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from app.editor.queue_items import (
    HELD,
    NOTHING_LEFT,
    Claimed,
    ItemState,
    Prepared,
    QueueHost,
    QueueItem,
    expired_message,
    offline_message,
    required_labelers,
    run_job,
    still_opening_message,
    unopened_message,
)
from app.editor.queue_leases import LeaseActions
from app.editor.queue_prefetch import Prefetcher

if TYPE_CHECKING:
    from app.api import Project

__all__ = [
    "HELD",
    "NOTHING_LEFT",
    "REFILL_AT",
    "SETTLE_MS",
    "ItemState",
    "LeaseActions",
    "Prefetcher",
    "Prepared",
    "QueueController",
    "QueueHost",
    "QueueItem",
    "expired_message",
    "offline_message",
    "required_labelers",
    "still_opening_message",
    "unopened_message",
]

REFILL_AT = 2  # claim more in the background once this many items are left after the current one
# Decoding ahead and claiming start this long after an item is shown, so that they do not compete
# with drawing it (a 2-core workstation; Python threads share one interpreter lock).
SETTLE_MS = 250


class QueueController(QObject):
    """See the module doc. ``prefetch=False`` decodes each item only when it is opened (the editor's
    plain asset path; the benchmark's peer)."""

    changed = Signal()  # items, current item or stats changed
    notice = Signal(str)  # a message for the user that must not block them

    def __init__(
        self, project: Project, host: QueueHost, *, prefetch: bool = True, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.project = project
        self.host = host
        self.prefetch = prefetch
        self.items: list[QueueItem] = []
        self.current: int | None = None  # index into items
        self.stats: dict[str, int] = {}
        self.exhausted = False  # the last claim found nothing new
        self.started = False
        self._claiming = False
        self._behind: int | None = None  # asset id of the item before the current one
        self._tokens = itertools.count()
        self.renew_timer = QTimer(self)
        # renew well before the lease runs out: a third of its time leaves two retries
        self.renew_timer.setInterval(max(200, project.settings.lease_seconds * 1000 // 3))
        self.renew_timer.timeout.connect(self.renew)
        self.leases = LeaseActions(self)  # Submit, Skip and renewal
        self.ahead = Prefetcher(project, host, self._next_item, parent=self)
        self.ahead.changed.connect(self.changed)
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(self._settled)
        self.ahead.settled.connect(self._settle.start)
        self.ahead.settled.connect(self.changed)

    # --- queries ---------------------------------------------------------------------------------
    @property
    def item(self) -> QueueItem | None:
        """The item being labeled now."""
        return None if self.current is None else self.items[self.current]

    @property
    def opening(self) -> bool:
        """The current item waits for its decode to finish before it is shown."""
        return self.ahead.opening

    @property
    def prepared(self) -> Prepared | None:
        """The prefetch cache: the next item, decoded and ready to show."""
        return self.ahead.prepared

    @property
    def idle(self) -> bool:
        """Nothing pending: no claim, save, decode or delayed start (tests and benchmarks wait on it)."""
        return not (
            self._claiming
            or self.leases.waiting
            or self._settle.isActive()
            or self.ahead.opening
            or self.ahead.running
        )

    @property
    def busy(self) -> bool:
        """A Submit or Skip waits for its answer, or the current item is not on screen yet: Submit
        and Skip wait (a quick second Submit must not submit an item nobody has seen)."""
        return self.leases.waiting or self.ahead.opening

    def position(self) -> tuple[int, int]:
        """(1-based position of the current item, items in the batch)."""
        return (0 if self.current is None else self.current + 1, len(self.items))

    def index_of(self, key: int) -> int | None:
        """Where the item ``key`` (QueueItem.key) is in the batch, if it is."""
        return next((i for i, item in enumerate(self.items) if item.key == key), None)

    def _next_waiting(self) -> int | None:
        start = -1 if self.current is None else self.current
        after = [i for i in range(start + 1, len(self.items)) if self.items[i].state is ItemState.WAITING]
        return after[0] if after else None

    def _remaining(self) -> int:
        start = -1 if self.current is None else self.current
        return sum(1 for item in self.items[start + 1 :] if item.state is ItemState.WAITING)

    def _run(
        self,
        fn: Callable[[], object],
        done: Callable[[object, object], None],
        failed: Callable[[object, str], None],
    ) -> None:
        run_job(self._tokens, fn, done, failed)

    # --- claiming --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start labeling: claim a batch (or pick up the one held) and open its first item."""
        self.started = True
        self.exhausted = False
        if self.item is None:
            self._claim()
        else:  # back to the queue's item (the user may have browsed other assets meanwhile)
            self._open(self.item)
            self.changed.emit()

    def _claim(self) -> None:
        if self._claiming:
            return
        self._claiming = True
        live = (*HELD, ItemState.SUBMITTING)
        known = frozenset(item.lease.assignment_id for item in self.items if item.state in live)
        # A claim counts the leases held towards its size: top the items still to come up to a
        # batch, on top of what is held (the first claim takes the project's batch size).
        held = sum(1 for item in self.items if item.state in (*HELD, ItemState.SUBMITTING))
        size = held + self.project.settings.batch_size - self._remaining() if self.items else None
        self._run(partial(self._claim_job, known, size), self._claimed, self._claim_failed)

    def _claim_job(self, known: frozenset[int], size: int | None) -> Claimed:
        """Worker: the user's batch (held leases first), minus the items already in the panel."""
        leases = [lease for lease in self.project.claim(size) if lease.assignment_id not in known]
        issues = self.project.open_thread_counts() if leases else {}
        items = [
            QueueItem(
                lease,
                self.project.asset(lease.asset_id),
                required_labelers(self.project, lease),
                issues.get(lease.asset_id, 0),
                getattr(lease, "note", None),
            )
            for lease in leases
        ]
        return Claimed(items, self.project.queue_stats())

    def _claimed(self, _token: object, result: object) -> None:
        self._claiming = False
        assert isinstance(result, Claimed)
        self.stats = result.stats
        # work a reviewer sent back comes next (the queue hands it out first); the rest goes last
        returned = [item for item in result.items if item.note]
        at = len(self.items) if self.current is None else self.current + 1
        self.items[at:at] = returned
        self.items.extend(item for item in result.items if not item.note)
        self.exhausted = not result.items
        if any(item.state in HELD for item in self.items):
            self.renew_timer.start()
        if self.current is None:
            if result.items:
                self.advance()
            elif self.started:
                self.notice.emit(NOTHING_LEFT)
        else:
            self.prefetch_next()
        self.changed.emit()

    def _claim_failed(self, _token: object, message: str) -> None:
        self._claiming = False
        self.notice.emit(f"Could not claim items from the queue: {message}")
        self.changed.emit()

    def _maybe_refill(self) -> None:
        remaining = self._remaining()
        if remaining <= REFILL_AT and remaining < self.project.settings.batch_size and not self.exhausted:
            self._claim()

    # --- moving through the batch ----------------------------------------------------------------
    def advance(self) -> None:
        """Open the next waiting item (the panel moves on), or end the batch (after a Submit, a Skip
        or an expired lease)."""
        previous = self.item
        nxt = self._next_waiting()
        if nxt is None:
            nxt = next((i for i, it in enumerate(self.items) if it.state is ItemState.WAITING), None)
        self.current = nxt
        # Many items pass by: close the source of the one before the previous (the previous one may
        # stay on screen until the next is decoded).
        keep = {it.asset.id for it in (previous, self.item) if it is not None}
        if self._behind is not None and self._behind not in keep:
            self.host.forget_source(self._behind)
        self._behind = previous.asset.id if previous is not None else self._behind
        if self.item is None:
            self.ahead.cancel()
            self._claim()  # new items may have come in; it reports NOTHING_LEFT when none did
            self.changed.emit()
            return
        self.item.state = ItemState.CURRENT
        self._open(self.item)
        self._settle.start()  # then claim more and decode the next item, once this one is drawn
        self.changed.emit()

    def open_item(self, index: int) -> None:
        """Jump to a waiting item of the batch, or back to one whose submit failed."""
        if not 0 <= index < len(self.items) or index == self.current or self.leases.waiting:
            return
        item = self.items[index]
        if item.state not in (ItemState.WAITING, ItemState.FAILED):
            return
        if self.item is not None and self.item.state is ItemState.CURRENT:
            self.item.state = ItemState.WAITING
        self.current = index
        item.state = ItemState.CURRENT
        self._open(item)
        self._settle.start()
        self.changed.emit()

    def _open(self, item: QueueItem) -> None:
        session = self.host.editing.session
        if session is not None and session.asset.id == item.asset.id:
            self.ahead.cancel()
            return  # the editor has this asset open already (picked from the asset list)
        if self.prefetch:
            self.ahead.show(item)
        else:
            self.ahead.cancel()
            self.host.open_asset(item.asset)  # decode on demand

    def prefetch_next(self) -> None:
        """Decode the next item ahead (with prefetch on)."""
        if self.prefetch:
            self.ahead.fill()

    def _settled(self) -> None:
        if self.item is not None:
            self._maybe_refill()
            self.prefetch_next()

    def _next_item(self) -> QueueItem | None:
        nxt = self._next_waiting()
        return None if nxt is None else self.items[nxt]

    # --- submit, skip and renewal (app.editor.queue_leases) --------------------------------------
    def submit(self) -> None:
        """Save the current item's edits, then submit it and open the next item.

        A save conflict stops the submit: the conflict is shown as the editor shows it, and the
        item stays open. The lease is submitted on a worker while the next item is already shown.
        An item whose image never reached the screen (its open failed) is not submitted.
        """
        self.leases.submit()

    def skip(self, reason: str = "") -> None:
        """Give the current item back to the pool (with an optional reason), then open the next;
        offline the item stays open."""
        self.leases.skip(reason)

    def renew(self) -> None:
        """Extend every lease still held (timer-driven, off the UI thread)."""
        self.leases.renew()

    def close(self) -> None:
        """Stop renewing and free the item decoded ahead (the leases stay: a restart gets them back)."""
        self.renew_timer.stop()
        self._settle.stop()
        self.ahead.close()
