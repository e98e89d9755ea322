"""Queue mode without widgets: the labeler's batch, Submit/Skip, lease renewal, and the next item
decoded ahead so Submit shows it at once.

Everything that touches the database or a file runs on the thread pool (app.editor.workers);
the results come back to the UI thread as signals. The batch keeps every item it was handed, in
order, with its state, so a late answer (a submit that found the lease expired, a renewal) always
finds its item.

Decoding ahead: while the user labels item k, item k+1 is prepared on a worker (its source
opened, the frame the editor shows first decoded, the user's annotations loaded into an edit
session). Submit then hands the prepared item to the window, which shows it without another
round trip to a worker.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import numpy.typing as npt
from PySide6.QtCore import QObject, QTimer, Signal

from app.core.records import Asset
from app.editor.workers import submit
from app.workflow.queue import Lease, LeaseExpired

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.editing_controller import EditingController
    from app.sources import Source
    from app.workflow.editing import EditSession

_UIDS = itertools.count(1)
REFILL_AT = 2  # claim more in the background once this many items are left after the current one
# Decoding ahead and claiming start this long after an item is shown, so that they do not compete
# with drawing it (a 2-core workstation; Python threads share one interpreter lock).
SETTLE_MS = 250
NOTHING_LEFT = "Nothing is left in the queue for you. Start labeling (Ctrl+Shift+L) checks again."


class QueueHost(Protocol):
    """What the controller needs from the main window."""

    editing: EditingController

    def open_asset(self, asset: Asset) -> None: ...

    def show_prepared(
        self, asset: Asset, source: Source, raw: npt.NDArray[Any], session: EditSession
    ) -> None: ...

    def forget_source(self, asset_id: int) -> None: ...


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


@dataclass(frozen=True)
class _Token:
    """Names one background job: its sequence number, the batch item (assignment id) it is about,
    and for a save, the session saved."""

    seq: int
    key: int
    session: EditSession | None = None


@dataclass(frozen=True)
class _Expired:
    message: str


@dataclass(frozen=True)
class _Claimed:
    items: list[QueueItem]
    stats: dict[str, int]


class Prefetcher(QObject):
    """Decodes the item after the current one on a worker and shows items from that cache.

    ``next_item`` tells which item comes next; a decode that finishes after the batch moved on
    is thrown away and the right one started.
    """

    changed = Signal()  # an item is ready
    settled = Signal()  # an awaited item was shown

    def __init__(
        self,
        project: Project,
        host: QueueHost,
        next_item: Callable[[], QueueItem | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.project, self.host, self._next_item = project, host, next_item
        self.prepared: Prepared | None = None
        self._preparing: set[int] = set()  # keys of the items being decoded
        self._awaited: QueueItem | None = None  # shown as soon as it is decoded
        self._failed: set[int] = set()  # decoding ahead failed: open these the plain way
        self._closed = False
        self._tokens = itertools.count()
        host.editing.session_opened.connect(self._session_opened)

    @property
    def opening(self) -> bool:
        return self._awaited is not None

    @property
    def running(self) -> bool:
        """A decode is running."""
        return bool(self._preparing)

    def show(self, item: QueueItem) -> None:
        """Show ``item``: at once when it is ready, else as soon as its decode (started if need be) ends."""
        self._awaited = None
        prepared = self.prepared
        if prepared is not None and prepared.key == item.key:
            self.prepared = None
            self._show(prepared)
        elif item.key in self._failed:
            self.host.open_asset(item.asset)  # the window says why it cannot be opened
        else:
            self._awaited = item
            if item.key not in self._preparing:
                self._prepare(item)

    def fill(self) -> None:
        """Decode the next item, unless it is ready or a decode is running (its end calls this)."""
        item = self._next_item()
        if item is None or self._preparing or item.key in self._failed:
            return
        if self.prepared is None or self.prepared.key != item.key:
            self._prepare(item)

    def cancel(self) -> None:
        """Show nothing when the decode running ends (another item was opened)."""
        self._awaited = None

    def close(self) -> None:
        """Free the prepared item, and every one still decoding when it ends."""
        self._closed = True
        self._awaited = None
        self.drop(None)

    def drop(self, key: int | None) -> None:
        """Free the prepared item if it is ``key`` (any item when None): its lease is gone."""
        if self.prepared is not None and key in (None, self.prepared.key):
            self._discard(self.prepared)
            self.prepared = None

    def _show(self, prepared: Prepared) -> None:
        session = prepared.session
        editing = self.host.editing
        same = editing.session is not None and editing.session.asset.id == prepared.asset.id
        if prepared.stale or same:  # loaded before the editor's last save of this asset: reload
            session.close()
            editing.close_session()
            session = editing.load_session(prepared.asset)
        self.host.show_prepared(prepared.asset, prepared.source, prepared.raw, session)

    def _prepare(self, item: QueueItem) -> None:
        self._preparing.add(item.key)
        job = partial(self._prepare_job, item.key, item.asset)
        # bound-method callbacks: a queued call to a partial can be dropped with the finished job
        submit(_Token(next(self._tokens), item.key), job, self._prepared, self._prepare_failed)

    def _prepare_job(self, key: int, asset: Asset) -> Prepared:
        """Worker: open the source, decode the frame the editor shows first, load the annotations."""
        source = self.project.open_asset(asset)
        try:
            raw = source.frame(0)
            session = self.host.editing.load_session(asset)
        except BaseException:
            source.close()
            raise
        return Prepared(key, asset, source, raw, session)

    def _prepared(self, _token: object, result: object) -> None:
        assert isinstance(result, Prepared)
        self._preparing.discard(result.key)
        if self._closed:
            self._discard(result)
        elif self._awaited is not None and self._awaited.key == result.key:
            self._awaited = None
            self._show(result)
            self.settled.emit()  # the controller starts the next decode once this one is drawn
        elif (nxt := self._next_item()) is not None and nxt.key == result.key:
            self.drop(None)
            self.prepared = result
            self.changed.emit()
        else:  # the batch moved on while it decoded
            self._discard(result)
            self.fill()

    def _prepare_failed(self, token: object, _message: str) -> None:
        assert isinstance(token, _Token)
        self._preparing.discard(token.key)
        self._failed.add(token.key)
        if self._awaited is not None and self._awaited.key == token.key:
            item, self._awaited = self._awaited, None
            self.host.open_asset(item.asset)  # the window says why it cannot be opened
            self.settled.emit()
        self.fill()

    def _discard(self, prepared: Prepared) -> None:
        prepared.session.close()
        submit(None, prepared.source.close, _ignore, _ignore)

    def _session_opened(self, session: object) -> None:
        """The editor opened an asset: a prepared copy of it holds annotations from before."""
        prepared = self.prepared
        if prepared is not None and session is not prepared.session:
            asset = getattr(session, "asset", None)
            if asset is not None and asset.id == prepared.asset.id:
                prepared.stale = True


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
        self._flushing = False
        self._renewing = False
        self._behind: int | None = None  # asset id of the item before the current one
        self._tokens = itertools.count()
        self.renew_timer = QTimer(self)
        # renew well before the lease runs out: a third of its time leaves two retries
        self.renew_timer.setInterval(max(200, project.settings.lease_seconds * 1000 // 3))
        self.renew_timer.timeout.connect(self.renew)
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
            or self._flushing
            or self._settle.isActive()
            or self.ahead.opening
            or self.ahead.running
        )

    @property
    def busy(self) -> bool:
        """A Submit is saving the current item, or the current item is not on screen yet: Submit
        and Skip wait (a quick second Submit must not submit an item nobody has seen)."""
        return self._flushing or self.ahead.opening

    def position(self) -> tuple[int, int]:
        """(1-based position of the current item, items in the batch)."""
        return (0 if self.current is None else self.current + 1, len(self.items))

    def _index(self, key: int) -> int | None:
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
        key: int = -1,
        session: EditSession | None = None,
    ) -> None:
        # Callbacks are bound methods of this QObject (a queued call to a partial or a lambda can be
        # dropped with the finished job); what they need to know travels in the token.
        submit(_Token(next(self._tokens), key, session), fn, done, failed)

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

    def _claim_job(self, known: frozenset[int], size: int | None) -> _Claimed:
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
        return _Claimed(items, self.project.queue_stats())

    def _claimed(self, _token: object, result: object) -> None:
        self._claiming = False
        assert isinstance(result, _Claimed)
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
                self._advance()
            elif self.started:
                self.notice.emit(NOTHING_LEFT)
        else:
            self._prefetch_next()
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
    def _advance(self) -> None:
        """Open the next waiting item (the panel moves on), or end the batch."""
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
        if not 0 <= index < len(self.items) or index == self.current or self._flushing:
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

    def _prefetch_next(self) -> None:
        if self.prefetch:
            self.ahead.fill()

    def _settled(self) -> None:
        if self.item is not None:
            self._maybe_refill()
            self._prefetch_next()

    def _next_item(self) -> QueueItem | None:
        nxt = self._next_waiting()
        return None if nxt is None else self.items[nxt]

    # --- submit and skip -------------------------------------------------------------------------
    def submit(self) -> None:
        """Save the current item's edits, then submit it and open the next item.

        A save conflict stops the submit: the conflict is shown as the editor shows it, and the
        item stays open. The lease is submitted on a worker while the next item is already shown.
        """
        item = self.item
        if item is None:
            self.notice.emit("Nothing to submit: start labeling first (Ctrl+Shift+L).")
            return
        if self.busy:
            return
        session = self.host.editing.session
        if session is None or (session.pending_count == 0 and not session.conflicts):
            self._saved(item.key, session)
            return
        self._flushing = True
        self.changed.emit()
        self._run(session.flush, self._flushed, self._flush_failed, item.key, session)

    def _flushed(self, token: object, result: object) -> None:
        assert isinstance(token, _Token) and token.session is not None
        key, session = token.key, token.session
        self._flushing = False
        error = getattr(result, "error", None)
        if error:
            self.notice.emit(
                f"Not submitted: the edits could not be saved ({error}). They are kept; try again."
            )
        elif self.host.editing.show_conflicts(session):
            self.notice.emit(
                "Not submitted: a save conflict had to be resolved first. Submit again when done."
            )
        else:
            self._saved(key, session)
            return
        self.changed.emit()

    def _flush_failed(self, _token: object, message: str) -> None:
        self._flushing = False
        self.notice.emit(
            f"Not submitted: the edits could not be saved ({message}). They are kept; try again."
        )
        self.changed.emit()

    def _saved(self, key: int, _session: EditSession | None) -> None:
        index = self._index(key)
        if index is None or index != self.current:
            return  # the item was dropped meanwhile (its lease expired)
        item = self.items[index]
        item.state = ItemState.SUBMITTING
        job = partial(self._submit_job, item.lease)
        self._run(job, self._submitted, self._submit_failed, key)
        self._advance()

    def _submit_job(self, lease: Lease) -> tuple[_Expired | None, dict[str, int]]:
        try:
            self.project.submit(lease)
        except LeaseExpired as exc:
            return _Expired(str(exc)), self.project.queue_stats()
        return None, self.project.queue_stats()

    def _submitted(self, token: object, result: object) -> None:
        assert isinstance(token, _Token) and isinstance(result, tuple)
        expired, self.stats = result
        index = self._index(token.key)
        if index is not None:
            item = self.items[index]
            item.state = ItemState.EXPIRED if expired else ItemState.SUBMITTED
            if expired:
                self._expired_notice(item)
        self.changed.emit()

    def _submit_failed(self, token: object, message: str) -> None:
        assert isinstance(token, _Token)
        index = self._index(token.key)
        if index is not None:
            item = self.items[index]
            item.state = ItemState.FAILED
            self.notice.emit(
                f"Could not submit {item.name}: {message}. Your annotations are saved; open it from the "
                "batch list and submit again."
            )
        self.changed.emit()

    def skip(self, reason: str = "") -> None:
        """Give the current item back to the pool (with an optional reason) and open the next."""
        item = self.item
        if item is None or self.busy:
            return
        item.state = ItemState.SKIPPED
        job = partial(self._skip_job, item.lease, reason.strip())
        self._run(job, self._skipped, self._skip_failed, item.key)
        self._advance()  # the editor saves the item's edits as it leaves it

    def _skip_job(self, lease: Lease, reason: str) -> dict[str, int]:
        self.project.skip(lease, reason)
        return self.project.queue_stats()

    def _skipped(self, _token: object, result: object) -> None:
        if isinstance(result, dict):
            self.stats = result
        self.changed.emit()

    def _skip_failed(self, token: object, message: str) -> None:
        assert isinstance(token, _Token)
        index = self._index(token.key)
        name = self.items[index].name if index is not None else "the item"
        self.notice.emit(f"Could not skip {name}: {message}")
        self.changed.emit()

    # --- lease renewal ---------------------------------------------------------------------------
    def renew(self) -> None:
        """Extend every lease still held (timer-driven, off the UI thread)."""
        held = [(item.key, item.lease) for item in self.items if item.state in HELD]
        if not held:
            self.renew_timer.stop()
            return
        if self._renewing:
            return
        self._renewing = True
        self._run(partial(_renew, self.project, held), self._renewed, self._renew_failed)

    def _renewed(self, _token: object, answer: object) -> None:
        self._renewing = False
        assert isinstance(answer, tuple)
        result, self.stats = answer
        moved_on, expired = False, []
        for key, outcome in result.items():
            index = self._index(key)
            if index is None or self.items[index].state not in HELD:
                continue  # submitted or skipped meanwhile: that answer decides
            item = self.items[index]
            if isinstance(outcome, Lease):
                item.lease = outcome
                continue
            item.state = ItemState.EXPIRED
            expired.append(item)
            self.ahead.drop(key)
            if index == self.current:
                moved_on = True
        if expired:
            self._expired_notice(*expired)
        if moved_on:
            self._advance()
        else:
            self._prefetch_next()
            self.changed.emit()

    def _renew_failed(self, _token: object, message: str) -> None:
        self._renewing = False
        self.notice.emit(f"Could not renew your leases (will retry): {message}")

    def _expired_notice(self, *items: QueueItem) -> None:
        self.notice.emit(expired_message([item.name for item in items]))

    def close(self) -> None:
        """Stop renewing and free the item decoded ahead (the leases stay: a restart gets them back)."""
        self.renew_timer.stop()
        self._settle.stop()
        self.ahead.close()


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


def _renew(
    project: Project, leases: Sequence[tuple[int, Lease]]
) -> tuple[dict[int, Lease | _Expired], dict[str, int]]:
    """Worker: renew each (item key, lease); a lease that ran out comes back as _Expired."""
    out: dict[int, Lease | _Expired] = {}
    for key, lease in leases:
        try:
            out[key] = project.renew(lease)
        except LeaseExpired as exc:
            out[key] = _Expired(str(exc))
    return out, project.queue_stats()  # the counts move as others work: keep them fresh


def _ignore(*_args: object) -> None:
    pass
