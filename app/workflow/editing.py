"""One user's editing session on one asset: document + undo stack, local journal, autosave, conflicts.

What lives where:

* **Label layer.** The user's human ``mask`` annotations without attributes, one per (frame,
  class), are painted into the frame's uint16 label map with value ``ontology.index_of(label)``.
  A flush turns each changed frame back into one mask annotation per class (added, updated or
  deleted). Where two stored masks overlap, the later one wins the pixel (a label map holds one
  class per pixel).
* **Vector annotations.** Everything else the user authored (polygons, boxes, points, polylines,
  classifications, and masks that are model pre-labels or carry attributes) sits in the document
  under local ids; a flush diffs them against what was last saved.
* **Pre-labels.** Machine-made annotations of the asset (``source != "human"``: model pre-labels,
  imports) are loaded too, whoever uploaded them. Editing or accepting one saves the labeler's
  own version: the pre-label row is deleted (version-checked, so the usual conflict rules hold)
  and the content is added as the labeler's human annotation; deleting one rejects it. The
  pre-label's content stays in the soft-deleted row for quality tracking.

Every change the document reports is journaled (:mod:`app.workflow.journal`) before control returns
to the UI (:mod:`app.workflow.editing_recorder`). ``flush`` writes the pending changes in one unit
of work, version-checked; a stale version becomes a :class:`Conflict` for the user to resolve and
never overwrites anything.
``flush`` may run on a worker thread while the UI keeps editing: it snapshots under a lock,
writes, and clears only what did not change meanwhile. Call everything else from the UI thread.

When the database is unreachable a flush writes nothing and returns an offline result ("Offline, N
edits waiting"); autosave retries after 1 s, 2 s, 4 s ... up to its interval. A flush whose commit
got no answer is checked before anything is written again, by the session or, should it be killed
first, by the next load of it (the check is journaled; :mod:`app.workflow.editing_recovery`).

The session only joins the parts: the bookkeeping is a plain :class:`EditLedger`
(:mod:`app.workflow.editing_ledger`), flushes are planned by a pure function
(:mod:`app.workflow.editing_flush`) and run by :class:`~app.workflow.editing_saver.Saver`, and the
values they pass around live in :mod:`app.workflow.editing_state`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Mapping

import numpy as np

from app.core.annotations import HUMAN, Annotation, MaskPatch
from app.core.commands import NO_MERGE, LabelDocument, UndoStack
from app.core.errors import NotFoundError, ValidationError
from app.core.ontology import Ontology
from app.core.records import CONSENSUS_SOURCE, Asset, TaskStatus, User
from app.storage import Database, StorageError
from app.workflow.editing_flush import is_layer_mask, own
from app.workflow.editing_ledger import EditLedger
from app.workflow.editing_recorder import ChangeRecorder
from app.workflow.editing_recovery import replay, settle_recorded_doubt
from app.workflow.editing_saver import Autosave, Saver
from app.workflow.editing_state import Choice, Conflict, Layer, LayerKey, SaveResult, SaveState, ago
from app.workflow.journal import Journal

__all__ = ["AcceptPrelabels", "Choice", "Conflict", "EditSession", "SaveResult", "SaveState", "unreachable"]

log = logging.getLogger(__name__)


def unreachable(exc: BaseException) -> bool:
    """Is ``exc`` the database failing, the kind of error a flush reports as offline? (Lets the
    editor treat a queue action the same way without importing the storage layer.)"""
    return isinstance(exc, StorageError)


class AcceptPrelabels:
    """Take pre-labels over unchanged as the labeler's own (one undo step; flush stores them)."""

    id = NO_MERGE
    obsolete = False

    def __init__(self, prelabels: Mapping[int, Annotation], text: str = "") -> None:
        self.before = dict(prelabels)
        self.text = text or f"Accept {len(self.before)} pre-label(s)"

    def do(self, doc: LabelDocument) -> None:
        for aid, ann in self.before.items():
            doc.put_annotation(aid, own(ann))

    def undo(self, doc: LabelDocument) -> None:
        for aid, ann in self.before.items():
            doc.put_annotation(aid, ann)

    def merge_with(self, other: object) -> bool:
        return False


class EditSession:
    """See the module doc. ``load()`` first; then edit through ``stack``; ``flush()`` or autosave."""

    def __init__(
        self,
        db: Database,
        project_id: int,
        asset: Asset,
        user: User,
        ontology: Ontology,
        *,
        journal: Journal | None = None,
    ) -> None:
        self.db, self.project_id, self.asset, self.user, self.ontology = db, project_id, asset, user, ontology
        self._own_journal = journal is None
        self.journal = journal if journal is not None else Journal()
        key = self.journal.open_session(db.url, project_id, asset.id, user.name)
        self.doc = LabelDocument((asset.height, asset.width), max(asset.frame_count, 1))
        self.stack = UndoStack(self.doc)
        self.ledger = EditLedger()
        self._recorder = ChangeRecorder(self.journal, key, self.ledger, self.doc)
        self._saver = Saver(
            db, self.ledger, self._recorder, self.doc, asset_id=asset.id, user_id=user.id, ontology=ontology
        )
        self._names = {c.name for c in ontology.classes}
        self._autosave: Autosave | None = None

    @property
    def key(self) -> str:
        """The session's name in the local journal (a new one after :meth:`discard_recovery`)."""
        return self._recorder.key

    # --- loading -----------------------------------------------------------------------------------
    def load(self) -> EditSession:
        """Fill the document with this user's annotations and the asset's pre-labels; start listening."""
        with self.db.unit_of_work(readonly=True) as uow:
            settle_recorded_doubt(self.journal, self.key, uow)  # an earlier run killed with a save in doubt
            stored = uow.annotations.list(self.asset.id, author_id=self.user.id)
            mine = {a.id for a in stored}
            # consensus labels only once the item is done, as the API and row security show them:
            # a requeued item is labeled again blind
            task = uow.tasks.for_asset(self.project_id, self.asset.id)
            done = task is not None and task.status is TaskStatus.DONE
            stored += [
                a
                for a in uow.annotations.list(self.asset.id)
                if a.source != HUMAN and a.id not in mine and (a.source != CONSENSUS_SOURCE or done)
            ]
        stored.sort(key=lambda a: a.id or 0)
        for ann in stored:
            assert ann.id is not None
            if not 0 <= ann.frame < self.doc.frame_count:
                log.warning("annotation %s is on frame %s, past the asset's frames", ann.id, ann.frame)
                continue
            key = (ann.frame, ann.label)
            if is_layer_mask(ann, self._names, self.doc.shape) and key not in self.ledger.layer:
                assert ann.mask is not None
                m = ann.mask
                h, w = m.bits.shape
                crop = self.doc.label_map(ann.frame)[m.y0 : m.y0 + h, m.x0 : m.x0 + w]
                crop[m.bits] = self.ontology.index_of(ann.label)
                self.ledger.layer[key] = Layer(ann.id, ann.version, m)
                continue
            aid = self.doc.new_id()
            self.doc.put_annotation(aid, ann)
            self.ledger.add_stored(aid, ann)
        self.doc.listeners.append(self._recorder.on_change)
        return self

    # --- pre-labels --------------------------------------------------------------------------------
    def prelabels(self, frame: int | None = None) -> dict[int, Annotation]:
        """Machine-made annotations the labeler has not accepted, edited or deleted yet, by local id."""
        with self.ledger.lock:
            found = self.ledger.prelabel_candidates()
        return {
            aid: ann
            for aid, (ann, saved) in sorted(found.items())
            if ann.source != HUMAN
            and saved is not None
            and ann.same_content(saved)
            and (frame is None or ann.frame == frame)
        }

    def accept_prelabels(self, aids: list[int] | None = None, *, min_confidence: float = 0.0) -> int:
        """Accept pre-labels as the labeler's own (one undo step); all of them with a confidence of at
        least ``min_confidence`` when ``aids`` is None. Returns how many were accepted."""
        pending = self.prelabels()
        chosen = list(pending) if aids is None else [a for a in aids if a in pending]
        chosen = [a for a in chosen if (pending[a].confidence or 0.0) >= min_confidence or aids is not None]
        if chosen:
            self.stack.push(AcceptPrelabels({aid: pending[aid] for aid in chosen}))
        return len(chosen)

    # --- state ----------------------------------------------------------------------------------------
    @property
    def pending_count(self) -> int:
        """Items (label frames and vector annotations) not yet in the database."""
        with self.ledger.lock:
            return self.ledger.pending_count

    @property
    def conflicts(self) -> list[Conflict]:
        with self.ledger.lock:
            return list(self.ledger.conflicts.values())

    @property
    def edits_waiting(self) -> int:
        """Edits (journal entries, e.g. strokes) not in the database yet; at least the pending items."""
        try:
            journaled = self.journal.count(self.key)
        except sqlite3.Error:
            journaled = 0
        return max(journaled, self.pending_count)

    @property
    def last_saved_at(self) -> float | None:
        """When a flush last reached the database (``time.time()``), None before the first."""
        return self._saver.last_saved_at

    def retry_delay(self, interval: float) -> float:
        """Seconds until the next autosave: ``interval``, or a short back-off while offline."""
        return self._saver.retry_delay(interval)

    @property
    def status(self) -> SaveState:
        return self._saver.state()

    @property
    def status_text(self) -> str:
        state, n = self.status, self.pending_count
        changes = f"{n} change{'s' if n != 1 else ''}"
        if state is SaveState.OFFLINE:
            waiting, saved_at = self.edits_waiting, self.last_saved_at
            last = f" (last saved {ago(time.time() - saved_at)})" if saved_at else ""
            text = (
                f"Offline, {waiting} edit{'s' if waiting != 1 else ''} waiting — the database is "
                f"unreachable; edits are kept on this computer and saved when it is back{last}"
            )
        else:
            text = {
                SaveState.SAVED: "All changes saved",
                SaveState.UNSAVED: f"{changes} not saved yet",
                SaveState.SAVING: "Saving…",
                SaveState.CONFLICT: f"{len(self.conflicts)} conflict(s) with another save: choose keep mine "
                "or take theirs",
            }[state]
        if self._recorder.error:
            text += f" — WARNING: {self._recorder.error}"
        return text

    # --- saving ---------------------------------------------------------------------------------------
    def flush(self) -> SaveResult:
        """Write every pending change in one unit of work. Safe to call from a worker thread."""
        return self._saver.flush()

    # --- conflicts ------------------------------------------------------------------------------------
    def resolve(self, conflict: Conflict, choice: Choice) -> SaveResult:
        """'mine': save the local content over their version (audited). 'theirs': take their content.

        Taking theirs changes the document outside the undo history, so the undo stack is cleared
        (older steps could no longer be undone consistently).
        """
        if choice not in ("mine", "theirs"):
            raise ValidationError(f"a conflict is resolved with 'mine' or 'theirs', not {choice!r}")
        with self.ledger.lock:
            if self.ledger.conflicts.pop(conflict.key, None) is None:
                raise NotFoundError("this conflict was already resolved")
        theirs, key = conflict.theirs, conflict.key
        if choice == "mine":
            with self.ledger.lock:
                self.ledger.keep_mine(key, theirs)
                entity = theirs.id if theirs is not None else None
                details = {"asset_id": self.asset.id, "their_version": conflict.their_version}
                self._saver.audit(("annotation.conflict.keep_mine", entity, details))
            return self.flush()
        if isinstance(key, tuple):
            _take_theirs_layer(self.ledger, self.doc, self.ontology, key, theirs)
        else:
            _take_theirs_vector(self.ledger, self.doc, key, theirs)
        self.stack.clear()
        return self.flush()

    # --- recovery -------------------------------------------------------------------------------------
    def recoverable(self) -> int:
        """How many journal entries of this session are not in the database (offer recovery if > 0)."""
        return self.journal.count(self.key)

    def discard_recovery(self) -> None:
        self.journal.discard(self.key)  # with a commit-in-doubt record, if any
        self._recorder.key = self.journal.open_session(
            self.db.url, self.project_id, self.asset.id, self.user.name
        )
        self.ledger.based.clear()

    def recover(self) -> int:
        """Replay this session's journal onto the loaded document; returns the entries replayed.

        The replayed edits are pending (the next flush saves them) against the database versions
        they were based on, so another workstation's newer save comes back as a Conflict.
        """
        replayed = replay(self.journal, self.key, self.ledger, self.doc)
        if replayed:
            self.stack.clear()
        return replayed

    # --- autosave and closing -------------------------------------------------------------------------
    def start_autosave(self, interval: float | None = None) -> None:
        """Flush on a background thread every ``interval`` s (default: the site's autosave_seconds)."""
        if self._autosave is None:
            if interval is None:
                from app.config import load_site_config

                interval = load_site_config().autosave_seconds
            self._autosave = Autosave(self, interval)

    def close(self) -> SaveResult:
        """Stop autosave, flush what is pending and stop listening. Journal entries left unsaved stay."""
        if self._autosave is not None:
            self._autosave.stop()
            self._autosave = None
        result = (
            self.flush() if self.pending_count or self._saver.audits else SaveResult(0, (), None, self.status)
        )
        if self._recorder.on_change in self.doc.listeners:
            self.doc.listeners.remove(self._recorder.on_change)
        if self._own_journal:
            self.journal.close()
        return result


# --- taking their side of a conflict (outside the undo history) ------------------------------------------
def _take_theirs_vector(ledger: EditLedger, doc: LabelDocument, aid: int, theirs: Annotation | None) -> None:
    present = aid in ledger.mirror
    with ledger.lock:
        ledger.set_vector_row(aid, theirs)
    if theirs is not None:
        doc.put_annotation(aid, theirs)
    elif present:
        doc.pop_annotation(aid)


def _take_theirs_layer(
    ledger: EditLedger, doc: LabelDocument, ontology: Ontology, key: LayerKey, theirs: Annotation | None
) -> None:
    frame, label = key
    labels = doc.label_map(frame)
    index = ontology.index_of(label)
    mine = labels == index
    wanted = theirs.mask.to_full() if theirs is not None and theirs.mask is not None else np.zeros_like(mine)
    with ledger.lock:
        labels[mine & ~wanted] = 0
        labels[wanted] = index
        ledger.set_layer_row(key, theirs)
    touched = MaskPatch.from_full(mine | wanted)
    if touched.area:
        h, w = touched.bits.shape
        doc.emit(frame, (touched.x0, touched.y0, touched.x0 + w, touched.y0 + h))
