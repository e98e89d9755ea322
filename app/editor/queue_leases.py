"""Queue mode's round trips about a leased item: Submit, Skip and lease renewal.

Each runs on the thread pool and its answer decides the item's state; the controller
(:class:`app.editor.queue_controller.QueueController`) keeps the batch and moves through it.

What the labeler sees while an answer is awaited:
- Submit with edits saves first; once saved the next item opens at once and the submit itself
  is answered in the background (a failure marks the item "not submitted", to submit again).
- Submit with nothing to save, and Skip, wait for the database's answer with the item on screen:
  no save proved the database reachable, and offline the item must stay where it is.
- Submit is refused for an item whose image never reached the screen (still opening, or its open
  failed): nobody has seen it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from app.core.errors import SitelabelError
from app.editor.queue_items import (
    HELD,
    Expired,
    ItemState,
    Offline,
    QueueItem,
    Token,
    expired_message,
    offline_message,
    renew_leases,
    run_job,
    still_opening_message,
    unopened_message,
)
from app.workflow.editing import SaveState, unreachable
from app.workflow.queue import Lease, LeaseExpired

if TYPE_CHECKING:
    from app.editor.queue_controller import QueueController
    from app.workflow.editing import EditSession

Outcome = tuple[Expired | Offline | None, dict[str, int] | None]


class LeaseActions:
    """Submit, Skip and renewal for ``owner``'s batch (see the module doc)."""

    def __init__(self, owner: QueueController) -> None:
        self.owner = owner
        self.flushing = False  # Submit is saving the current item's edits
        self.acking = False  # a Submit with nothing to save waits for the submit's answer
        self.skipping = False  # a Skip waits for its answer before the next item opens
        self.renewing = False
        self._tokens = itertools.count()

    @property
    def waiting(self) -> bool:
        """Submit or Skip waits for an answer about the current item."""
        return self.flushing or self.acking or self.skipping

    def _run(
        self,
        fn: Callable[[], object],
        done: Callable[[object, object], None],
        failed: Callable[[object, str], None],
        key: int = -1,
        session: EditSession | None = None,
    ) -> None:
        run_job(self._tokens, fn, done, failed, key=key, session=session)

    def _edits_waiting(self) -> int:
        session = self.owner.host.editing.session
        return session.edits_waiting if session is not None else 0

    # --- submit ----------------------------------------------------------------------------------
    def submit(self) -> None:
        """See QueueController.submit."""
        o = self.owner
        item = o.item
        if item is None:
            o.notice.emit("Nothing to submit: start labeling first (Ctrl+Shift+L).")
            return
        if o.busy:
            return
        unseen = self._unseen(item)
        if unseen is not None:
            o.notice.emit(unseen)
            return
        session = o.host.editing.session
        offline = session is not None and session.status is SaveState.OFFLINE
        if session is None or (session.pending_count == 0 and not session.conflicts and not offline):
            self._submit_acknowledged(item)
            return
        self.flushing = True
        o.changed.emit()
        self._run(session.flush, self._flushed, self._flush_failed, item.key, session)

    def _unseen(self, item: QueueItem) -> str | None:
        """Why Submit must not take ``item``: its image has not been on screen since it was opened."""
        host = self.owner.host
        if host.is_opening(item.asset.id):
            return still_opening_message(item.name)
        if host.open_failure(item.asset.id) is not None:
            return unopened_message(item.name)
        return None

    def _flushed(self, token: object, result: object) -> None:
        assert isinstance(token, Token) and token.session is not None
        o, key, session = self.owner, token.key, token.session
        self.flushing = False
        error = getattr(result, "error", None)
        if error and session.status is SaveState.OFFLINE:  # the item stays open; nothing is lost
            o.notice.emit(offline_message(session.edits_waiting))
        elif error:
            o.notice.emit(f"Not submitted: the edits could not be saved ({error}). They are kept; try again.")
        elif o.host.editing.saves.show_conflicts(session):
            o.notice.emit("Not submitted: a save conflict had to be resolved first. Submit again when done.")
        else:
            self._saved(key)
            return
        o.changed.emit()

    def _flush_failed(self, _token: object, message: str) -> None:
        self.flushing = False
        self.owner.notice.emit(
            f"Not submitted: the edits could not be saved ({message}). They are kept; try again."
        )
        self.owner.changed.emit()

    def _saved(self, key: int) -> None:
        o = self.owner
        index = o.index_of(key)
        if index is None or index != o.current:
            return  # the item was dropped meanwhile (its lease expired)
        item = o.items[index]
        item.state = ItemState.SUBMITTING
        self._run(partial(self._submit_job, item.lease), self._submitted, self._submit_failed, key)
        o.advance()

    def _submit_job(self, lease: Lease) -> Outcome:
        return self._lease_job(lambda: self.owner.project.submit(lease))

    def _lease_job(self, action: Callable[[], None]) -> Outcome:
        """Submit or skip on a worker: an expired lease (the item is back in the pool) and an
        unreachable database are outcomes the UI handles, anything else is a failure."""
        project = self.owner.project
        try:
            action()
        except LeaseExpired as exc:
            return Expired(str(exc)), project.queue_stats()
        except SitelabelError as exc:
            if not unreachable(exc):
                raise
            return Offline(str(exc)), None
        return None, project.queue_stats()

    def _submit_acknowledged(self, item: QueueItem) -> None:
        """Submit with nothing to save: no save just showed the database reachable, so the item
        stays on screen until the submit is answered (offline, it stays with the message). A
        Submit with edits saves first and moves on at once; that save is the proof."""
        item.state = ItemState.SUBMITTING
        self.acking = True
        self.owner.changed.emit()
        self._run(partial(self._submit_job, item.lease), self._acknowledged, self._ack_failed, item.key)

    def _acknowledged(self, token: object, result: object) -> None:
        assert isinstance(token, Token) and isinstance(result, tuple)
        o = self.owner
        outcome, stats = result
        if isinstance(outcome, Offline):
            self._kept(token.key, offline_message(self._edits_waiting()))
            return
        self.acking, o.stats = False, stats
        index = o.index_of(token.key)
        if index is not None:
            o.items[index].state = ItemState.EXPIRED if outcome is not None else ItemState.SUBMITTED
            if outcome is not None:
                self.expired_notice(o.items[index])
        if index is not None and index == o.current:
            o.advance()
        else:
            o.changed.emit()

    def _ack_failed(self, token: object, message: str) -> None:
        assert isinstance(token, Token)
        self._kept(token.key, f"Not submitted: {message}. Your annotations are saved; Submit again.")

    def _kept(self, key: int, message: str) -> None:
        """The database did not take a Submit with nothing to save: the item stays on screen."""
        o = self.owner
        self.acking = False
        index = o.index_of(key)
        if index is not None:
            o.items[index].state = ItemState.CURRENT if index == o.current else ItemState.FAILED
            if not o.renew_timer.isActive():  # it stops when no lease was held meanwhile
                o.renew_timer.start()
        o.notice.emit(message)
        o.changed.emit()

    def _submitted(self, token: object, result: object) -> None:
        assert isinstance(token, Token) and isinstance(result, tuple)
        o = self.owner
        outcome, stats = result
        if isinstance(outcome, Offline):  # it went away between the save and the submit
            self._submit_failed(token, outcome.message)
            return
        expired, o.stats = outcome, stats
        index = o.index_of(token.key)
        if index is not None:
            item = o.items[index]
            item.state = ItemState.EXPIRED if expired else ItemState.SUBMITTED
            if expired:
                self.expired_notice(item)
        o.changed.emit()

    def _submit_failed(self, token: object, message: str) -> None:
        assert isinstance(token, Token)
        o = self.owner
        index = o.index_of(token.key)
        if index is not None:
            item = o.items[index]
            item.state = ItemState.FAILED
            o.notice.emit(
                f"Could not submit {item.name}: {message}. Your annotations are saved; open it from the "
                "batch list and submit again."
            )
        o.changed.emit()

    # --- skip ------------------------------------------------------------------------------------
    def skip(self, reason: str = "") -> None:
        """See QueueController.skip. The item stays current until the database took the skip:
        offline it stays on screen with a message, and Skip works again once the server is back."""
        o = self.owner
        item = o.item
        if item is None or o.busy:
            return
        self.skipping = True
        o.changed.emit()
        job = partial(self._skip_job, item.lease, reason.strip())
        self._run(job, self._skipped, self._skip_failed, item.key)

    def _skip_job(self, lease: Lease, reason: str) -> Outcome:
        return self._lease_job(lambda: self.owner.project.skip(lease, reason))

    def _skipped(self, token: object, result: object) -> None:
        assert isinstance(token, Token) and isinstance(result, tuple)
        o = self.owner
        outcome, stats = result
        self.skipping = False
        if isinstance(outcome, Offline):  # the item stays current, on screen; its lease is renewed
            o.notice.emit(offline_message(self._edits_waiting(), "Skip"))
            o.changed.emit()
            return
        o.stats = stats if stats is not None else o.stats
        index = o.index_of(token.key)
        if index is None or o.items[index].state is not ItemState.CURRENT:
            o.changed.emit()  # a renewal found the lease gone meanwhile and moved on
            return
        item = o.items[index]
        item.state = ItemState.EXPIRED if outcome is not None else ItemState.SKIPPED
        if outcome is not None:
            self.expired_notice(item)
        if index == o.current:
            o.advance()  # the editor saves the item's edits as it leaves it
        else:
            o.changed.emit()

    def _skip_failed(self, token: object, message: str) -> None:
        assert isinstance(token, Token)
        o = self.owner
        self.skipping = False
        index = o.index_of(token.key)
        name = o.items[index].name if index is not None else "the item"
        o.notice.emit(f"Could not skip {name}: {message}")
        o.changed.emit()

    # --- lease renewal ---------------------------------------------------------------------------
    def renew(self) -> None:
        """See QueueController.renew."""
        o = self.owner
        held = [(item.key, item.lease) for item in o.items if item.state in HELD]
        if not held:
            o.renew_timer.stop()
            return
        if self.renewing:
            return
        self.renewing = True
        self._run(partial(renew_leases, o.project, held), self._renewed, self._renew_failed)

    def _renewed(self, _token: object, answer: object) -> None:
        o = self.owner
        self.renewing = False
        assert isinstance(answer, tuple)
        result, o.stats = answer
        moved_on, expired = False, []
        for key, outcome in result.items():
            index = o.index_of(key)
            if index is None or o.items[index].state not in HELD:
                continue  # submitted or skipped meanwhile: that answer decides
            item = o.items[index]
            if isinstance(outcome, Lease):
                item.lease = outcome
                continue
            item.state = ItemState.EXPIRED
            expired.append(item)
            o.ahead.drop(key)
            if index == o.current:
                moved_on = True
        if expired:
            self.expired_notice(*expired)
        if moved_on:
            o.advance()
        else:
            o.prefetch_next()
            o.changed.emit()

    def _renew_failed(self, _token: object, message: str) -> None:
        self.renewing = False  # the items stay in the batch: the next renewal tries again
        self.owner.notice.emit(f"Could not renew your leases (will retry; your items stay open): {message}")

    def expired_notice(self, *items: QueueItem) -> None:
        self.owner.notice.emit(expired_message([item.name for item in items]))
