"""Queue mode without widgets: the Qt binding of the labeler's batch. The batch's state and its
transitions are Qt-free (:class:`app.workflow.queue_batch.QueueBatch`); this controller runs the
round trips on the thread pool (:mod:`app.editor.queue_leases`: claims, Submit, Skip, renewal),
decodes the next item ahead so Submit shows it at once (:mod:`app.editor.queue_prefetch`), and
shows what each transition returns (:meth:`QueueController.apply`).

:mod:`app.editor.queue_items` holds the host protocols and the messages (the names the panel and
the tests import are re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from app.editor.queue_items import (
    HELD,
    NOTHING_LEFT,
    ItemState,
    Prepared,
    QueueHost,
    QueueItem,
    expired_message,
    offline_message,
    still_opening_message,
    unopened_message,
)
from app.editor.queue_leases import LeaseActions
from app.editor.queue_prefetch import Prefetcher
from app.workflow.queue_batch import REFILL_AT, QueueBatch, Step, next_waiting

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
    "renew_interval_ms",
    "still_opening_message",
    "unopened_message",
]

# Decoding ahead and claiming start this long after an item is shown, so that they do not compete
# with drawing it (a 2-core workstation; Python threads share one interpreter lock).
SETTLE_MS = 250


def renew_interval_ms(items: Sequence[QueueItem], fallback_ms: int) -> int:
    """A third of the shortest lease time among the held items, so that two renewals may fail
    before a lease runs out. Each lease keeps the time it was claimed with (app.workflow.queue), so
    a lease time changed while the editor is open is followed here."""
    held = [item.lease.lease_seconds for item in items if item.state in HELD and item.lease.lease_seconds]
    return max(200, min(held) * 1000 // 3) if held else fallback_ms


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
        self.batch = QueueBatch(project.settings.batch_size)
        self._behind: int | None = None  # asset id of the item before the current one
        self.renew_timer = QTimer(self)
        # renew well before the lease runs out: a third of its time leaves two retries
        self.renew_timer.setInterval(max(200, project.settings.lease_seconds * 1000 // 3))
        self.renew_timer.timeout.connect(self.renew)
        self.leases = LeaseActions(self)  # claims, Submit, Skip and renewal
        self.ahead = Prefetcher(project, host, self._next_item, parent=self)
        self.ahead.changed.connect(self.changed)
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(self._settled)
        self.ahead.settled.connect(self._settle.start)
        self.ahead.settled.connect(self.changed)

    # --- queries (the batch's, and what the binding adds) ----------------------------------------
    @property
    def items(self) -> list[QueueItem]:
        """Every item the batch was handed, in order, with its state."""
        return self.batch.items

    @property
    def current(self) -> int | None:
        """Index of the item being labeled now."""
        return self.batch.current

    @property
    def item(self) -> QueueItem | None:
        """The item being labeled now."""
        return self.batch.item

    @property
    def exhausted(self) -> bool:
        """The last claim found nothing new."""
        return self.batch.exhausted

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
            self.batch.claiming
            or self.batch.waiting
            or self._settle.isActive()
            or self.ahead.opening
            or self.ahead.running
        )

    @property
    def busy(self) -> bool:
        """A Submit or Skip waits for its answer, or the current item is not on screen yet: Submit
        and Skip wait (a quick second Submit must not submit an item nobody has seen)."""
        return self.batch.waiting or self.ahead.opening

    # --- moving through the batch ----------------------------------------------------------------
    def start(self) -> None:
        """Start labeling: claim a batch (or pick up the one held) and open its first item."""
        if self.batch.start():
            self.leases.claim()
        else:  # back to the queue's item (the user may have browsed other assets meanwhile)
            assert self.item is not None
            self._open(self.item)
            self.changed.emit()

    def advance(self) -> None:
        """Open the next waiting item (the panel moves on), or end the batch (after a Submit, a Skip
        or an expired lease)."""
        previous = self.item
        item = self.batch.advance()
        # Many items pass by: close the source of the one before the previous (the previous one may
        # stay on screen until the next is decoded).
        keep = {it.asset.id for it in (previous, item) if it is not None}
        if self._behind is not None and self._behind not in keep:
            self.host.forget_source(self._behind)
        self._behind = previous.asset.id if previous is not None else self._behind
        if item is None:
            self.ahead.cancel()
            self.leases.claim()  # new items may have come in; it reports NOTHING_LEFT when none did
            self.changed.emit()
            return
        self._open(item)
        self._settle.start()  # then claim more and decode the next item, once this one is drawn
        self.changed.emit()

    def open_item(self, index: int) -> None:
        """Jump to a waiting item of the batch, or back to one whose submit failed."""
        item = self.batch.open_item(index)
        if item is None:
            return
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

    def _settled(self) -> None:
        if self.item is not None:
            self.leases.claim(refill=True)
            if self.prefetch:
                self.ahead.fill()

    def _next_item(self) -> QueueItem | None:
        nxt = next_waiting(self.items, self.current)
        return None if nxt is None else self.items[nxt]

    def apply(self, step: Step) -> None:
        """Show what a transition of the batch returned: free what was decoded for lost leases,
        start or stop renewing, tell the user, then open the next item or refresh."""
        for key in step.dropped:
            self.ahead.drop(key)
        if step.renewing is False:
            self.renew_timer.stop()
        elif step.renewing:
            every = renew_interval_ms(self.items, self.renew_timer.interval())
            if every != self.renew_timer.interval():
                self.renew_timer.setInterval(every)  # restarts a running timer: renewals come sooner
            if not self.renew_timer.isActive():
                self.renew_timer.start()
        if step.offline is not None:
            session = self.host.editing.session
            waiting = session.edits_waiting if session is not None else 0
            self.notice.emit(offline_message(waiting, step.offline))
        if step.notice is not None:
            self.notice.emit(step.notice)
        if step.advance:
            self.advance()
            return
        if step.prefetch and self.prefetch:
            self.ahead.fill()
        self.changed.emit()

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
