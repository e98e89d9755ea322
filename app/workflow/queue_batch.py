"""A labeler's batch in queue mode, as plain state: the leased items in order, the one being labeled,
and what the labeler waits for. No Qt and no database here: the editor's queue controller runs the
round trips on workers, feeds their answers to :class:`QueueBatch`, and shows what it returns.

The batch keeps every item it was handed, in order, with its state, so a late answer (a submit that
found the lease expired, a renewal) always finds its item, and an answer about an item that is no
longer the current one never acts on the item shown now.

One :class:`BatchState` says what the labeler waits for; Submit and Skip are refused while an
answer is awaited. A claim and a lease renewal run in the background beside any state (the batch
tops itself up while the labeler works; renewals keep every held lease alive).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from app.core.records import Asset
from app.workflow.queue import Lease

__all__ = [
    "HELD",
    "NOTHING_LEFT",
    "REFILL_AT",
    "Answer",
    "BatchState",
    "ClaimRequest",
    "ItemState",
    "LeaseAnswer",
    "QueueBatch",
    "QueueItem",
    "Step",
    "expired_message",
    "index_of",
    "next_waiting",
    "skipped_line",
]

NOTHING_LEFT = (
    "Nothing is left in the queue for you (items you skipped go to the others first). "
    "Start labeling (Ctrl+Shift+L) checks again."
)
REFILL_AT = 2  # claim more in the background once this many items are left after the current one
_UIDS = itertools.count(1)


class ItemState(StrEnum):
    WAITING = "waiting"
    CURRENT = "current"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    EXPIRED = "expired"
    FAILED = "not submitted"  # the submit failed for another reason: open it and submit again


HELD = (ItemState.WAITING, ItemState.CURRENT, ItemState.FAILED)  # leases we keep renewing


class BatchState(StrEnum):
    """What the labeler waits for (Submit and Skip are refused while an answer is awaited)."""

    IDLE = "idle"  # no current item: not started, between batches, or nothing left
    HOLDING = "holding"  # an item is current and nothing is awaited about it
    SAVING = "saving"  # Submit saves the current item's edits; the submit follows in the background
    SUBMITTING = "submitting"  # Submit with nothing to save waits for the database with the item shown
    SKIPPING = "skipping"  # Skip waits for the database with the item shown
    OFFLINE = "offline"  # the current item's Submit or Skip found the database unreachable: it stays


_AWAITING = (BatchState.SAVING, BatchState.SUBMITTING, BatchState.SKIPPING)


@dataclass
class QueueItem:
    """One leased item of the batch."""

    lease: Lease
    asset: Asset
    issues: int  # open comment threads
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

    @property
    def required(self) -> int:
        """Distinct labelers the item needs (> 1: a consensus item), as the queue says today."""
        return self.lease.required_labelers

    @property
    def note(self) -> str | None:
        """Why a reviewer sent it back, if they did."""
        return self.lease.note

    @property
    def skipped(self) -> str | None:
        """The labeler skipped it earlier and it came back (nobody else could take it): their
        reason, "" when they gave none; None when they never skipped it."""
        return self.lease.skipped


def skipped_line(reason: str) -> str:
    """The queue panel's line on an item that came back to the labeler who skipped it."""
    why = f": {reason}" if reason.strip() else " (no reason given)"
    return f"You skipped this earlier{why}. It came back because nobody else can take it now."


class Answer(StrEnum):
    DONE = "done"
    EXPIRED = "expired"  # the lease ran out or was taken over: the item is back in the pool
    OFFLINE = "offline"  # the database is unreachable: nothing was written
    FAILED = "failed"  # anything else (the message says what)


@dataclass(frozen=True)
class LeaseAnswer:
    """The database's answer to a Submit or a Skip."""

    answer: Answer
    message: str = ""
    stats: Mapping[str, int] | None = None  # the queue's counts after it (None: not read)


@dataclass(frozen=True)
class ClaimRequest:
    """A claim to run: leases already in the batch are left out of its answer."""

    known: frozenset[int]  # assignment ids in the batch
    size: int | None  # the claim's batch size (None: the project's)


@dataclass(frozen=True)
class Step:
    """What the binding does after a transition (the batch itself never shows anything)."""

    advance: bool = False  # the current item is done or gone: open the next
    prefetch: bool = False  # decode the next item ahead
    notice: str | None = None  # one line for the user
    offline: str | None = None  # this action ("Submit", "Skip") found the database unreachable
    renewing: bool | None = None  # start (True) or stop (False) renewing the held leases
    dropped: tuple[int, ...] = ()  # items whose leases are gone: free what was decoded for them


def index_of(items: Sequence[QueueItem], key: int) -> int | None:
    """Where the item ``key`` (QueueItem.key) is in the batch, if it is."""
    return next((i for i, item in enumerate(items) if item.key == key), None)


def next_waiting(items: Sequence[QueueItem], current: int | None) -> int | None:
    """The first waiting item after ``current`` (from the start when None)."""
    start = -1 if current is None else current
    return next((i for i in range(start + 1, len(items)) if items[i].state is ItemState.WAITING), None)


def _remaining(items: Sequence[QueueItem], current: int | None) -> int:
    start = -1 if current is None else current
    return sum(1 for item in items[start + 1 :] if item.state is ItemState.WAITING)


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


class QueueBatch:
    """The labeler's batch (see the module doc). Each transition returns what to show, or the item
    or request the binding must act on."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.items: list[QueueItem] = []
        self.current: int | None = None  # index into items
        self.state = BatchState.IDLE
        self.stats: dict[str, int] = {}
        self.started = False
        self.exhausted = False  # the last claim found nothing new
        self.claiming = False  # a claim is running
        self.renewing = False  # a renewal is running
        self._awaited: int | None = None  # key of the item whose Submit or Skip answer is awaited

    @property
    def item(self) -> QueueItem | None:
        """The item being labeled now."""
        return None if self.current is None else self.items[self.current]

    @property
    def waiting(self) -> bool:
        """A Submit or Skip waits for its answer."""
        return self.state in _AWAITING

    def _answered(self, offline: bool = False) -> None:
        """Nothing is awaited any more; ``offline``: the current item stays because of it."""
        self._awaited = None
        self.state = (
            BatchState.IDLE if self.current is None else BatchState.OFFLINE if offline else BatchState.HOLDING
        )

    # --- claiming ------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start labeling; True when a claim must run (no item is held), else reopen :attr:`item`."""
        self.started = True
        self.exhausted = False
        return self.item is None

    def begin_claim(self, *, refill: bool = False) -> ClaimRequest | None:
        """A claim to run, or None while one runs. ``refill``: only when few items are left."""
        remaining = _remaining(self.items, self.current)
        if self.claiming or (
            refill and (remaining > REFILL_AT or remaining >= self.batch_size or self.exhausted)
        ):
            return None
        self.claiming = True
        live = (*HELD, ItemState.SUBMITTING)
        known = frozenset(item.lease.assignment_id for item in self.items if item.state in live)
        # A claim counts the leases held towards its size: top the items still to come up to a
        # batch, on top of what is held (the first claim takes the project's batch size).
        held = sum(1 for item in self.items if item.state in live)
        return ClaimRequest(known, held + self.batch_size - remaining if self.items else None)

    def claimed(self, items: Sequence[QueueItem], stats: Mapping[str, int]) -> Step:
        self.claiming = False
        self.stats = dict(stats)
        # work a reviewer sent back comes next (the queue hands it out first); the rest goes last
        returned = [item for item in items if item.note]
        at = len(self.items) if self.current is None else self.current + 1
        self.items[at:at] = returned
        self.items.extend(item for item in items if not item.note)
        self.exhausted = not items
        renewing = True if any(item.state in HELD for item in self.items) else None
        if self.current is not None:
            return Step(prefetch=True, renewing=renewing)
        if items:
            return Step(advance=True, renewing=renewing)
        return Step(notice=NOTHING_LEFT if self.started else None, renewing=renewing)

    def claim_failed(self, message: str) -> Step:
        self.claiming = False
        return Step(notice=f"Could not claim items from the queue: {message}")

    # --- moving through the batch ----------------------------------------------------------------
    def advance(self) -> QueueItem | None:
        """Make the next waiting item current (wrapping to an earlier one) and return it; None ends
        the batch. The item left behind keeps the state its answer gave it."""
        nxt = next_waiting(self.items, self.current)
        if nxt is None:
            nxt = next_waiting(self.items, None)
        self.current = nxt
        item = self.item
        if item is not None:
            item.state = ItemState.CURRENT
        if not self.waiting:
            self._answered()
        return item

    def open_item(self, index: int) -> QueueItem | None:
        """Jump to a waiting item, or back to one whose submit failed; None: not allowed now."""
        if not 0 <= index < len(self.items) or index == self.current or self.waiting:
            return None
        item = self.items[index]
        if item.state not in (ItemState.WAITING, ItemState.FAILED):
            return None
        if self.item is not None and self.item.state is ItemState.CURRENT:
            self.item.state = ItemState.WAITING
        self.current = index
        item.state = ItemState.CURRENT
        self._answered()
        return item

    # --- submit and skip -------------------------------------------------------------------------
    def begin_submit(self, *, save: bool) -> QueueItem:
        """Submit the current item: ``save`` first (the submit follows once saved: :meth:`saved`),
        else wait for the submit's answer with the item shown. The caller checked :attr:`waiting`."""
        item = self.item
        assert item is not None and not self.waiting
        self._awaited = item.key
        if save:
            self.state = BatchState.SAVING
        else:
            item.state = ItemState.SUBMITTING
            self.state = BatchState.SUBMITTING
        return item

    def saved(self, key: int) -> QueueItem | None:
        """The edits of ``key`` are saved: returns the item to submit in the background (the batch
        moves on at once), or None when it is no longer the current item (its lease expired)."""
        self._answered()
        item = self.item
        if item is None or item.key != key:
            return None
        item.state = ItemState.SUBMITTING
        return item

    def save_refused(self, *, offline: bool) -> None:
        """The edits could not be saved (or a conflict must be resolved first): the item stays."""
        self._answered(offline)

    def submit_answered(self, key: int, reply: LeaseAnswer) -> Step:
        """The database answered the submit of ``key``: awaited (nothing was saved first), or in the
        background (after a save, when the batch had moved on)."""
        index = index_of(self.items, key)
        item = None if index is None else self.items[index]
        awaited = self.state is BatchState.SUBMITTING and self._awaited == key
        refused = reply.answer in (Answer.OFFLINE, Answer.FAILED)
        if awaited:
            self._answered(offline=reply.answer is Answer.OFFLINE and index == self.current)
        if refused and awaited:  # nothing was saved first: the item stays where it is
            if item is not None:
                item.state = ItemState.CURRENT if index == self.current else ItemState.FAILED
            if reply.answer is Answer.OFFLINE:
                return Step(offline="Submit", renewing=True)
            why = f"Not submitted: {reply.message}. Your annotations are saved; Submit again."
            return Step(notice=why, renewing=True)
        if refused:  # saved, then the database went away before the submit
            if item is None:
                return Step()
            item.state = ItemState.FAILED
            return Step(
                notice=f"Could not submit {item.name}: {reply.message}. Your annotations are saved; "
                "open it from the batch list and submit again."
            )
        self.stats = dict(reply.stats or self.stats)
        if item is None:
            return Step()
        expired = reply.answer is Answer.EXPIRED
        item.state = ItemState.EXPIRED if expired else ItemState.SUBMITTED
        notice = expired_message([item.name]) if expired else None
        return Step(advance=awaited and index == self.current, notice=notice)

    def begin_skip(self) -> QueueItem:
        """Skip the current item: it stays current until the database took it. The caller checked
        :attr:`waiting`."""
        item = self.item
        assert item is not None and not self.waiting
        self._awaited = item.key
        self.state = BatchState.SKIPPING
        return item

    def skip_answered(self, key: int, reply: LeaseAnswer) -> Step:
        index = index_of(self.items, key)
        item = None if index is None else self.items[index]
        if reply.answer is Answer.FAILED:
            self._answered()
            name = item.name if item is not None else "the item"
            return Step(notice=f"Could not skip {name}: {reply.message}")
        if reply.answer is Answer.OFFLINE:  # the item stays current, on screen; its lease is renewed
            self._answered(offline=index is not None and index == self.current)
            return Step(offline="Skip")
        self._answered()
        self.stats = dict(reply.stats or self.stats)
        if item is None or item.state is not ItemState.CURRENT:
            return Step()  # a renewal found the lease gone meanwhile and moved on
        expired = reply.answer is Answer.EXPIRED
        item.state = ItemState.EXPIRED if expired else ItemState.SKIPPED
        notice = expired_message([item.name]) if expired else None
        return Step(advance=index == self.current, notice=notice)  # the editor saves as it leaves

    # --- lease renewal ---------------------------------------------------------------------------
    def begin_renew(self) -> list[tuple[int, Lease]] | None:
        """The (item key, lease) pairs to renew: [] when none is held (stop renewing), None while
        a renewal runs."""
        held = [(item.key, item.lease) for item in self.items if item.state in HELD]
        if not held:
            return []
        if self.renewing:
            return None
        self.renewing = True
        return held

    def renewed(self, leases: Mapping[int, Lease | None], stats: Mapping[str, int]) -> Step:
        """Renewed leases by item key; None: that lease ran out (the item went back to the pool)."""
        self.renewing = False
        self.stats = dict(stats)
        expired: list[QueueItem] = []
        moved_on = False
        for key, lease in leases.items():
            index = index_of(self.items, key)
            if index is None or self.items[index].state not in HELD:
                continue  # submitted or skipped meanwhile: that answer decides
            item = self.items[index]
            if lease is not None:
                item.lease = lease
                continue
            item.state = ItemState.EXPIRED
            expired.append(item)
            moved_on = moved_on or index == self.current
        return Step(
            advance=moved_on,
            prefetch=not moved_on,
            notice=expired_message([item.name for item in expired]) if expired else None,
            dropped=tuple(item.key for item in expired),
        )

    def renew_failed(self, message: str) -> Step:
        self.renewing = False  # the items stay in the batch: the next renewal tries again
        return Step(notice=f"Could not renew your leases (will retry; your items stay open): {message}")
