"""Writing an edit session's pending changes to the database, and the autosave thread.

:class:`Saver` runs one flush at a time: it snapshots the ledger under its lock, plans the writes
(:func:`~app.workflow.editing_flush.plan_flush`), runs them in one unit of work and records the
outcome in the ledger and the journal. When the database is unreachable it keeps the edits
pending and reports offline; a commit that got no answer is settled before anything is written
again (:mod:`app.workflow.editing_recovery`).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from typing import Protocol

from app.core.annotations import Annotation
from app.core.commands import LabelDocument
from app.core.ontology import Ontology
from app.storage import Database, StorageError
from app.workflow.editing_flush import apply_op, plan_flush
from app.workflow.editing_ledger import EditLedger
from app.workflow.editing_recorder import ChangeRecorder
from app.workflow.editing_recovery import record_doubt, went_through
from app.workflow.editing_state import (
    Audit,
    Conflict,
    InDoubt,
    ItemKey,
    Op,
    SaveResult,
    SaveState,
    Snapshot,
    retry_delay,
)

log = logging.getLogger(__name__)


class Saver:
    """The save state of one edit session and its flush (see the module doc). Its fields are
    guarded by the ledger's lock, as the session's status reads them with the ledger's."""

    def __init__(
        self,
        db: Database,
        ledger: EditLedger,
        recorder: ChangeRecorder,
        doc: LabelDocument,
        *,
        asset_id: int,
        user_id: int,
        ontology: Ontology,
    ) -> None:
        self.db, self.asset_id, self.user_id, self.ontology = db, asset_id, user_id, ontology
        self.ledger, self.recorder, self.doc = ledger, recorder, doc
        self._flush_lock = threading.Lock()  # one flush at a time
        self.audits: list[Audit] = []  # written with the next flush
        self.last_saved_at: float | None = None
        self._saving = False
        self._offline: str | None = None
        self._failures = 0  # failed flushes in a row (the retry back-off)
        self._in_doubt: InDoubt | None = None  # a flush whose commit got no answer

    def state(self) -> SaveState:
        with self.ledger.lock:
            if self._saving and self._offline is None:  # a retry while offline still says offline
                return SaveState.SAVING
            if self.ledger.conflicts:
                return SaveState.CONFLICT
            if self._offline is not None:
                return SaveState.OFFLINE
            return SaveState.UNSAVED if self.ledger.pending_count else SaveState.SAVED

    def retry_delay(self, interval: float) -> float:
        """Seconds until the next autosave: ``interval``, or a short back-off while offline."""
        with self.ledger.lock:
            return retry_delay(self._failures, interval)

    def audit(self, entry: Audit) -> None:
        """Write ``entry`` to the audit log with the next flush."""
        with self.ledger.lock:
            self.audits.append(entry)

    def flush(self) -> SaveResult:
        """Write every pending change in one unit of work. Safe to call from a worker thread."""
        with self._flush_lock:
            if self._in_doubt is not None and (offline := self._settle_doubt()) is not None:
                return offline
            with self.ledger.lock:
                self._saving = True
                dirty = [f for f in self.ledger.frame_gen if self.doc.has_label_map(f)]
                snap = self.ledger.snapshot({f: self.doc.label_map(f).copy() for f in dirty})
                audits, self.audits = self.audits, []
            plan = plan_flush(snap, self.ontology)
            ops, clean = plan.ops, plan.clean
            committing = False
            try:
                with self.db.unit_of_work() as uow:
                    outcomes = [apply_op(uow, op, self.asset_id, self.user_id) for op in ops]
                    for action, entity_id, details in audits:
                        uow.audit.record(self.user_id, action, "annotation", entity_id, details)
                    committing = True  # leaving the block commits: a failure from here on is in doubt
            except StorageError as exc:
                doubt = InDoubt(snap, ops, outcomes, clean, audits) if committing else None
                return self._went_offline(exc, audits, doubt)
            except BaseException:  # a bug, not the database: never stay "saving" with the audits lost
                with self.ledger.lock:
                    self._saving = False
                    self.audits = audits + self.audits
                raise
            with self.ledger.lock:
                saved, conflicts = self._settle(snap, ops, outcomes, clean)
                self._saving, self._offline, self._failures = False, None, 0
                self.last_saved_at = time.time()
                return SaveResult(saved, tuple(conflicts), None, self.state())

    def _went_offline(self, exc: StorageError, audits: list[Audit], doubt: InDoubt | None) -> SaveResult:
        with self.ledger.lock:
            self._saving, self._offline = False, str(exc)
            self._failures += 1
            self.audits = audits + self.audits
            self._in_doubt = doubt or self._in_doubt
            first = self._failures == 1  # the retries every few seconds need no warning each
        if doubt is not None:  # durably: a kill before the next save must not lose the check
            record_doubt(self.recorder.journal, self.recorder.key, self.ledger, doubt)
        (log.warning if first else log.debug)("save failed, edits stay in the local journal: %s", exc)
        return SaveResult(0, (), str(exc), self.state())

    def _settle_doubt(self) -> SaveResult | None:
        """Before writing again: settle the flush in doubt as saved if it went through (see
        app.workflow.editing_recovery). Returns the offline result when the database is still away."""
        doubt = self._in_doubt
        assert doubt is not None
        try:
            with self.db.unit_of_work(readonly=True) as uow:
                done = went_through(uow, doubt)
        except StorageError as exc:
            return self._went_offline(exc, [], None)
        with self.ledger.lock:
            self._in_doubt = None
            if done:
                del self.audits[: len(doubt.audits)]  # they were written then (and put back first)
                self._settle(doubt.snap, doubt.ops, doubt.outcomes, doubt.clean)
        if not done:
            with contextlib.suppress(sqlite3.Error):  # a stale record only costs a check at load
                self.recorder.journal.clear_doubt(self.recorder.key)
        outcome = "went through" if done else "did not go through: saving it again"
        log.warning("a save whose commit got no answer %s", outcome)
        return None

    def _settle(
        self,
        snap: Snapshot,
        ops: list[Op],
        outcomes: list[Annotation | Conflict | None],
        clean: set[ItemKey],
    ) -> tuple[int, list[Conflict]]:
        """Record what the database now holds, and drop the saved entries from the journal."""
        saved, conflicts, done = self.ledger.settle(snap, ops, outcomes, clean)
        try:
            self.recorder.journal.saved(self.recorder.key, snap.upto, done)
        except sqlite3.Error as exc:  # the entries stay; recovery would re-apply saved state: harmless
            log.warning("could not trim the local journal: %s", exc)
        else:
            self.ledger.trimmed(done, snap.upto)
        return saved, conflicts


class AutosaveHost(Protocol):
    """What the autosave thread drives (an :class:`~app.workflow.editing.EditSession`)."""

    @property
    def pending_count(self) -> int: ...

    def flush(self) -> SaveResult: ...

    def retry_delay(self, interval: float) -> float: ...


class Autosave:
    """A daemon thread flushing pending edits; while the database is unreachable it retries with a
    short back-off (:func:`~app.workflow.editing_state.retry_delay`) instead of a whole interval."""

    def __init__(self, host: AutosaveHost, interval: float) -> None:
        self._host, self._interval = host, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sitelabel-autosave", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        delay = self._interval
        while not self._stop.wait(delay):
            if self._host.pending_count:
                try:
                    self._host.flush()
                except Exception:  # never let the thread die: the journal keeps the edits
                    log.exception("autosave failed")
            delay = self._host.retry_delay(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
