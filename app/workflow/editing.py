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
to the UI. ``flush`` writes the pending changes in one unit of work, version-checked; a stale
version becomes a :class:`Conflict` for the user to resolve and never overwrites anything.
``flush`` may run on a worker thread while the UI keeps editing: it snapshots under a lock,
writes, and clears only what did not change meanwhile. Call everything else from the UI thread.

When the database is unreachable a flush writes nothing and returns an offline result ("Offline, N
edits waiting"); autosave retries after 1 s, 2 s, 4 s ... up to its interval. A flush whose commit
got no answer is checked before anything is written again, by the session or, should it be killed
first, by the next load of it (the check is journaled; :mod:`app.workflow.editing_recovery`).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from app.core.annotations import HUMAN, Annotation, Kind, MaskPatch
from app.core.commands import NO_MERGE, Bbox, LabelDocument, UndoStack
from app.core.errors import ConflictError, NotFoundError, ValidationError
from app.core.ontology import Ontology
from app.core.records import CONSENSUS_SOURCE, Asset, TaskStatus, User
from app.storage import Database, StorageError, UnitOfWork
from app.workflow.editing_recovery import Audit, InDoubt, JournalRecovery, went_through
from app.workflow.editing_state import (
    Choice,
    Conflict,
    ItemKey,
    LayerKey,
    SaveResult,
    SaveState,
    _Autosave,
    _Layer,
    _Op,
    _Snapshot,
    ago,
    retry_delay,
)
from app.workflow.journal import (
    LABELS,
    PUT,
    REMOVE,
    Journal,
    encode_annotation,
    encode_crop,
)

__all__ = ["AcceptPrelabels", "Choice", "Conflict", "EditSession", "SaveResult", "SaveState", "unreachable"]

log = logging.getLogger(__name__)


def unreachable(exc: BaseException) -> bool:
    """Is ``exc`` the database failing, the kind of error a flush reports as offline? (Lets the
    editor treat a queue action the same way without importing the storage layer.)"""
    return isinstance(exc, StorageError)


def _own(annotation: Annotation) -> Annotation:
    """What a labeler's session stores: their own, human annotation (a pre-label they took over)."""
    if annotation.source == HUMAN and annotation.confidence is None:
        return annotation
    return annotation.evolve(source=HUMAN, confidence=None)


class AcceptPrelabels:
    """Take pre-labels over unchanged as the labeler's own (one undo step; flush stores them)."""

    id = NO_MERGE
    obsolete = False

    def __init__(self, prelabels: Mapping[int, Annotation], text: str = "") -> None:
        self.before = dict(prelabels)
        self.text = text or f"Accept {len(self.before)} pre-label(s)"

    def do(self, doc: LabelDocument) -> None:
        for aid, ann in self.before.items():
            doc.put_annotation(aid, _own(ann))

    def undo(self, doc: LabelDocument) -> None:
        for aid, ann in self.before.items():
            doc.put_annotation(aid, ann)

    def merge_with(self, other: object) -> bool:
        return False


class EditSession(JournalRecovery):
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
        self.key = self.journal.open_session(db.url, project_id, asset.id, user.name)
        self.doc = LabelDocument((asset.height, asset.width), max(asset.frame_count, 1))
        self.stack = UndoStack(self.doc)
        self._names = {c.name for c in ontology.classes}
        self._lock = threading.RLock()  # guards all bookkeeping below (listener vs. flush thread)
        self._flush_lock = threading.Lock()  # one flush at a time
        # vector annotations by local id
        self._mirror: dict[int, Annotation] = {}  # the document's content as the listener saw it
        self._by_frame: dict[int, set[int]] = {}
        self._saved: dict[int, Annotation] = {}  # content the database holds
        self._db_ids: dict[int, tuple[int, int]] = {}  # local id -> (database id, version)
        self._prelabel_rows: set[int] = set()  # local ids whose database row is machine-made
        self._vec_dirty: set[int] = set()
        # label layer
        self._layer: dict[LayerKey, _Layer] = {}
        self._frame_gen: dict[int, int] = {}  # dirty frames -> change counter
        # journal bookkeeping
        self._refs: dict[int, str] = {}  # local id -> journal ref (stable across restarts)
        self._based: set[str] = set()  # refs whose base row is in the journal
        self._ref_seq: dict[str, int] = {}  # ref -> seq of its newest journal entry
        self._seq = 0
        self._replaying = False
        self.journal_error: str | None = None
        self.journal_seconds: deque[float] = deque(maxlen=1000)  # duration of each journal write
        # save state
        self._conflicts: dict[ItemKey, Conflict] = {}
        self._audits: list[Audit] = []
        self._saving = False
        self._offline: str | None = None
        self._failures = 0  # failed flushes in a row (the retry back-off)
        self._in_doubt: InDoubt | None = None  # a flush whose commit got no answer
        self.last_saved_at: float | None = None
        self._autosave: _Autosave | None = None

    # --- loading -----------------------------------------------------------------------------------
    def load(self) -> EditSession:
        """Fill the document with this user's annotations and the asset's pre-labels; start listening."""
        with self.db.unit_of_work(readonly=True) as uow:
            self._settle_recorded_doubt(uow)  # an earlier run killed with a save in doubt
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
            if self._is_layer(ann) and key not in self._layer:
                assert ann.mask is not None
                m = ann.mask
                h, w = m.bits.shape
                crop = self.doc.label_map(ann.frame)[m.y0 : m.y0 + h, m.x0 : m.x0 + w]
                crop[m.bits] = self.ontology.index_of(ann.label)
                self._layer[key] = _Layer(ann.id, ann.version, m)
                continue
            aid = self.doc.new_id()
            self.doc.put_annotation(aid, ann)
            self._track(aid, ann)
            self._saved[aid] = ann
            self._db_ids[aid] = (ann.id, ann.version)
            self._refs[aid] = f"db:{ann.id}"
            if ann.source != HUMAN:
                self._prelabel_rows.add(aid)
        self.doc.listeners.append(self._on_change)
        return self

    # --- pre-labels --------------------------------------------------------------------------------
    def prelabels(self, frame: int | None = None) -> dict[int, Annotation]:
        """Machine-made annotations the labeler has not accepted, edited or deleted yet, by local id."""
        with self._lock:
            found = {
                aid: (self._mirror[aid], self._saved.get(aid))
                for aid in self._prelabel_rows
                if aid in self._mirror
            }
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

    def _is_layer(self, ann: Annotation) -> bool:
        return (
            ann.kind is Kind.MASK
            and ann.source == HUMAN
            and not ann.attributes
            and ann.label in self._names
            and ann.mask is not None
            and ann.mask.frame_shape == self.doc.shape
        )

    def _track(self, aid: int, ann: Annotation | None) -> None:
        old = self._mirror.pop(aid, None)
        if old is not None:
            self._by_frame[old.frame].discard(aid)
        if ann is not None:
            self._mirror[aid] = ann
            self._by_frame.setdefault(ann.frame, set()).add(aid)

    # --- listening and journaling ---------------------------------------------------------------------
    def _on_change(self, frame: int, bbox: Bbox | None) -> None:
        per_frame = self.doc.annotations(frame)
        with self._lock:
            known = self._by_frame.get(frame, set())
            changed = [aid for aid, a in per_frame.items() if self._mirror.get(aid) is not a]
            gone = [aid for aid in known if aid not in per_frame]
            if changed or gone:
                for aid in gone:
                    self._vector_changed(aid, None)
                for aid in changed:
                    self._vector_changed(aid, per_frame[aid])
            elif bbox is not None and self.doc.has_label_map(frame):
                self._labels_changed(frame, bbox)

    def _vector_changed(self, aid: int, ann: Annotation | None) -> None:
        self._track(aid, ann)
        self._vec_dirty.add(aid)
        ref = self._refs.setdefault(aid, uuid.uuid4().hex)
        if self._replaying:
            return
        base = None if ref in self._based else self._vector_base(aid)
        if ann is None:
            self._journal(REMOVE, -1, ref, b"", base)
        else:
            self._journal(PUT, ann.frame, ref, encode_annotation(ann), base)

    def _labels_changed(self, frame: int, bbox: Bbox) -> None:
        self._frame_gen[frame] = self._frame_gen.get(frame, 0) + 1
        if self._replaying:
            return
        x0, y0, x1, y1 = bbox
        ref = f"L{frame}"
        base = None if ref in self._based else self._frame_base(frame)
        crop = self.doc.label_map(frame)[y0:y1, x0:x1]
        self._journal(LABELS, frame, ref, encode_crop(x0, y0, crop), base)

    def _vector_base(self, aid: int) -> dict[str, Any]:
        db_id, version = self._db_ids.get(aid, (None, 0))
        return {"id": db_id, "version": version}

    def _frame_base(self, frame: int) -> dict[str, Any]:
        return {label: [item.id, item.version] for (f, label), item in self._layer.items() if f == frame}

    def _journal(
        self, kind: str, frame: int, ref: str, payload: bytes, base: Mapping[str, Any] | None
    ) -> None:
        start = time.perf_counter()
        try:
            self._seq = self.journal.append(self.key, kind, frame, ref, payload, base=base)
            self._ref_seq[ref] = self._seq
        except sqlite3.Error as exc:  # a full disk must not lose the edit in memory; say so loudly
            self.journal_error = f"the local journal {self.journal.path} cannot be written: {exc}"
            log.error("%s", self.journal_error)
            return
        if base is not None:
            self._based.add(ref)
        self.journal_seconds.append(time.perf_counter() - start)

    # --- state ----------------------------------------------------------------------------------------
    @property
    def pending_count(self) -> int:
        """Items (label frames and vector annotations) not yet in the database."""
        with self._lock:
            return len(self._frame_gen) + len(self._vec_dirty)

    @property
    def conflicts(self) -> list[Conflict]:
        with self._lock:
            return list(self._conflicts.values())

    @property
    def edits_waiting(self) -> int:
        """Edits (journal entries, e.g. strokes) not in the database yet; at least the pending items."""
        try:
            journaled = self.journal.count(self.key)
        except sqlite3.Error:
            journaled = 0
        return max(journaled, self.pending_count)

    def retry_delay(self, interval: float) -> float:
        """Seconds until the next autosave: ``interval``, or a short back-off while offline."""
        with self._lock:
            return retry_delay(self._failures, interval)

    @property
    def status(self) -> SaveState:
        with self._lock:
            if self._saving and self._offline is None:  # a retry while offline still says offline
                return SaveState.SAVING
            if self._conflicts:
                return SaveState.CONFLICT
            if self._offline is not None:
                return SaveState.OFFLINE
            return SaveState.UNSAVED if self.pending_count else SaveState.SAVED

    @property
    def status_text(self) -> str:
        state, n = self.status, self.pending_count
        changes = f"{n} change{'s' if n != 1 else ''}"
        if state is SaveState.OFFLINE:
            text = self._offline_text()
        else:
            text = {
                SaveState.SAVED: "All changes saved",
                SaveState.UNSAVED: f"{changes} not saved yet",
                SaveState.SAVING: "Saving…",
                SaveState.CONFLICT: f"{len(self._conflicts)} conflict(s) with another save: choose keep mine "
                "or take theirs",
            }[state]
        if self.journal_error:
            text += f" — WARNING: {self.journal_error}"
        return text

    def _offline_text(self) -> str:
        waiting = self.edits_waiting
        last = f" (last saved {ago(time.time() - self.last_saved_at)})" if self.last_saved_at else ""
        return (
            f"Offline, {waiting} edit{'s' if waiting != 1 else ''} waiting — the database is unreachable; "
            f"edits are kept on this computer and saved when it is back{last}"
        )

    # --- saving ---------------------------------------------------------------------------------------
    def flush(self) -> SaveResult:
        """Write every pending change in one unit of work. Safe to call from a worker thread."""
        with self._flush_lock:
            if self._in_doubt is not None and (offline := self._settle_doubt()) is not None:
                return offline
            with self._lock:
                self._saving = True
                gens = dict(self._frame_gen)
                snap = _Snapshot(
                    upto=self._seq,
                    gens=gens,
                    maps={f: self.doc.label_map(f).copy() for f in gens if self.doc.has_label_map(f)},
                    vectors={aid: self._mirror.get(aid) for aid in self._vec_dirty},
                    blocked=frozenset(self._conflicts),
                    saved=dict(self._saved),
                    db_ids=dict(self._db_ids),
                    layer=dict(self._layer),
                )
                audits, self._audits = self._audits, []
                prelabels = frozenset(self._prelabel_rows)
            ops, clean = self._plan(snap, prelabels)
            committing = False
            try:
                with self.db.unit_of_work() as uow:
                    outcomes = [self._apply(uow, op) for op in ops]
                    for action, entity_id, details in audits:
                        uow.audit.record(self.user.id, action, "annotation", entity_id, details)
                    committing = True  # leaving the block commits: a failure from here on is in doubt
            except StorageError as exc:
                doubt = InDoubt(snap, ops, outcomes, clean, audits) if committing else None
                return self._went_offline(exc, audits, doubt)
            except BaseException:  # a bug, not the database: never stay "saving" with the audits lost
                with self._lock:
                    self._saving = False
                    self._audits = audits + self._audits
                raise
            with self._lock:
                result = self._settle(snap, ops, outcomes, clean)
                self._saving, self._offline, self._failures = False, None, 0
                self.last_saved_at = time.time()
                return SaveResult(result[0], tuple(result[1]), None, self.status)

    def _went_offline(self, exc: StorageError, audits: list[Audit], doubt: InDoubt | None) -> SaveResult:
        with self._lock:
            self._saving, self._offline = False, str(exc)
            self._failures += 1
            self._audits = audits + self._audits
            self._in_doubt = doubt or self._in_doubt
            first = self._failures == 1  # the retries every few seconds need no warning each
        if doubt is not None:
            self._record_doubt(doubt)  # durably: a kill before the next save must not lose the check
        (log.warning if first else log.debug)("save failed, edits stay in the local journal: %s", exc)
        return SaveResult(0, (), str(exc), self.status)

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
        with self._lock:
            self._in_doubt = None
            if done:
                del self._audits[: len(doubt.audits)]  # they were written then (and put back first)
                self._settle(doubt.snap, doubt.ops, doubt.outcomes, doubt.clean)
        if not done:
            with contextlib.suppress(sqlite3.Error):  # a stale record only costs a check at load
                self.journal.clear_doubt(self.key)
        outcome = "went through" if done else "did not go through: saving it again"
        log.warning("a save whose commit got no answer %s", outcome)
        return None

    def _plan(
        self, snap: _Snapshot, prelabels: frozenset[int] = frozenset()
    ) -> tuple[list[_Op], set[ItemKey]]:
        """Operations to run, and items already equal to the database (nothing to write)."""
        ops: list[_Op] = []
        clean: set[ItemKey] = set()
        for aid, mine in snap.vectors.items():
            if aid in snap.blocked:
                continue
            saved, ids = snap.saved.get(aid), snap.db_ids.get(aid)
            changed = saved is None or (mine is not None and not mine.same_content(saved))
            if mine is None and ids is not None:
                ops.append(_Op(aid, "delete", None, *ids))
            elif mine is not None and ids is None:
                ops.append(_Op(aid, "add", _own(mine), None, 0))
            elif (
                mine is not None
                and ids is not None
                and aid in prelabels
                and (changed or mine.source == HUMAN)
            ):
                ops.append(_Op(aid, "replace", _own(mine), *ids))  # an edited or accepted pre-label
            elif mine is not None and ids is not None and changed:
                ops.append(_Op(aid, "update", _own(mine), *ids))
            else:
                clean.add(aid)
        for frame, labels in snap.maps.items():
            present = {int(v) for v in np.unique(labels)}
            names = {c.name for i, c in enumerate(self.ontology.classes, 1) if i in present}
            names |= {label for (f, label) in snap.layer if f == frame}
            for label in sorted(names):
                key = (frame, label)
                if key in snap.blocked:
                    continue
                bits = labels == self.ontology.index_of(label)
                item = snap.layer.get(key)
                if not bits.any():
                    if item is not None:
                        ops.append(_Op(key, "delete", None, item.id, item.version))
                    continue
                patch = MaskPatch.from_full(bits)
                if item is not None and item.mask is not None and item.mask == patch:
                    continue
                content = Annotation(kind=Kind.MASK, label=label, frame=frame, mask=patch, source=HUMAN)
                if item is None:
                    ops.append(_Op(key, "add", content, None, 0))
                else:
                    ops.append(_Op(key, "update", content, item.id, item.version))
        return ops, clean

    def _apply(self, uow: UnitOfWork, op: _Op) -> Annotation | Conflict | None:
        """Run one operation; a stale version comes back as a Conflict, the rest still saves."""
        repo = uow.annotations
        try:
            if op.action == "add":
                assert op.content is not None
                return repo.add(self.asset.id, op.content.evolve(id=None, version=0), self.user.id)
            assert op.db_id is not None
            if op.action == "replace":
                assert op.content is not None
                repo.delete(op.db_id, op.version, user_id=self.user.id)
                return repo.add(self.asset.id, op.content.evolve(id=None, version=0), self.user.id)
            if op.action == "update":
                assert op.content is not None
                return repo.update(op.content.evolve(id=op.db_id, version=op.version), editor_id=self.user.id)
            repo.delete(op.db_id, op.version, user_id=self.user.id)
            return None
        except (ConflictError, NotFoundError) as exc:
            assert op.db_id is not None
            try:
                theirs: Annotation | None = repo.get(op.db_id)
            except NotFoundError:
                theirs = None
            version = getattr(exc, "current_version", None) or 0
            return Conflict(op.key, op.content, theirs, str(exc), int(version))

    def _settle(
        self,
        snap: _Snapshot,
        ops: list[_Op],
        outcomes: list[Annotation | Conflict | None],
        clean: set[ItemKey],
    ) -> tuple[int, list[Conflict]]:
        """Record what the database now holds; clear what did not change since the snapshot."""
        conflicts: list[Conflict] = []
        done: dict[str, dict[str, Any]] = {}
        frames_blocked: set[int] = set()
        saved = 0
        for op, result in zip(ops, outcomes, strict=True):
            outcome = None if isinstance(result, Conflict) else result
            # a conflict where both sides deleted the item is no disagreement: count it as saved
            if isinstance(result, Conflict) and (result.mine is not None or result.theirs is not None):
                conflicts.append(result)
                self._conflicts[op.key] = result
                if isinstance(op.key, tuple):
                    frames_blocked.add(op.key[0])
                continue
            saved += 1
            if isinstance(op.key, tuple):
                if outcome is None:
                    self._layer.pop(op.key, None)
                else:
                    assert outcome.id is not None
                    self._layer[op.key] = _Layer(outcome.id, outcome.version, outcome.mask)
            else:
                clean.add(op.key)
                self._prelabel_rows.discard(op.key)  # the row is now the labeler's, or gone
                if outcome is None:
                    self._db_ids.pop(op.key, None)
                    self._saved.pop(op.key, None)
                else:
                    assert outcome.id is not None
                    self._db_ids[op.key] = (outcome.id, outcome.version)
                    self._saved[op.key] = snap.vectors[op.key] or outcome
        for key in clean:
            assert isinstance(key, int)
            mine = snap.vectors[key]
            current = self._saved.get(key)
            if (
                mine is not None
                and current is not mine
                and key in self._db_ids
                and (current is None or current.source == mine.source)
            ):
                self._saved[key] = mine  # equal content: adopt the object, so identity checks hold
            if self._mirror.get(key) is mine:
                self._vec_dirty.discard(key)
            if key in self._refs:
                done[self._refs[key]] = self._vector_base(key)
        for frame, gen in snap.gens.items():
            if frame in frames_blocked or any(f == frame for f, _ in self._conflict_layers()):
                continue
            if self._frame_gen.get(frame) == gen:
                del self._frame_gen[frame]
            done[f"L{frame}"] = self._frame_base(frame)
        try:
            self.journal.saved(self.key, snap.upto, done)
        except sqlite3.Error as exc:  # the entries stay; recovery would re-apply saved state: harmless
            log.warning("could not trim the local journal: %s", exc)
        else:
            for ref in done:  # the journal dropped the base rows of refs with no later entries
                if self._ref_seq.get(ref, 0) <= snap.upto:
                    self._based.discard(ref)
        return saved, conflicts

    def _conflict_layers(self) -> list[LayerKey]:
        return [k for k in self._conflicts if isinstance(k, tuple)]

    # --- conflicts ------------------------------------------------------------------------------------
    def resolve(self, conflict: Conflict, choice: Choice) -> SaveResult:
        """'mine': save the local content over their version (audited). 'theirs': take their content.

        Taking theirs changes the document outside the undo history, so the undo stack is cleared
        (older steps could no longer be undone consistently).
        """
        if choice not in ("mine", "theirs"):
            raise ValidationError(f"a conflict is resolved with 'mine' or 'theirs', not {choice!r}")
        with self._lock:
            if self._conflicts.pop(conflict.key, None) is None:
                raise NotFoundError("this conflict was already resolved")
        theirs, key = conflict.theirs, conflict.key
        if choice == "mine":
            with self._lock:
                if isinstance(key, tuple):
                    if theirs is None:
                        self._layer.pop(key, None)
                    else:
                        assert theirs.id is not None
                        self._layer[key] = _Layer(theirs.id, theirs.version, theirs.mask)
                    self._frame_gen[key[0]] = self._frame_gen.get(key[0], 0) + 1
                else:
                    if theirs is None:
                        self._db_ids.pop(key, None)
                        self._saved.pop(key, None)
                    else:
                        assert theirs.id is not None
                        self._db_ids[key] = (theirs.id, theirs.version)
                        self._saved[key] = theirs
                    self._vec_dirty.add(key)
                entity = theirs.id if theirs is not None else None
                details = {"asset_id": self.asset.id, "their_version": conflict.their_version}
                self._audits.append(("annotation.conflict.keep_mine", entity, details))
            return self.flush()
        if isinstance(key, tuple):
            self._take_theirs_layer(key, theirs)
        else:
            self._take_theirs_vector(key, theirs)
        self.stack.clear()
        return self.flush()

    def _take_theirs_vector(self, aid: int, theirs: Annotation | None) -> None:
        present = aid in self._mirror
        if theirs is not None:
            assert theirs.id is not None
            with self._lock:
                self._db_ids[aid] = (theirs.id, theirs.version)
                self._saved[aid] = theirs
            self.doc.put_annotation(aid, theirs)
        else:
            with self._lock:
                self._db_ids.pop(aid, None)
                self._saved.pop(aid, None)
            if present:
                self.doc.pop_annotation(aid)

    def _take_theirs_layer(self, key: LayerKey, theirs: Annotation | None) -> None:
        frame, label = key
        labels = self.doc.label_map(frame)
        index = self.ontology.index_of(label)
        mine = labels == index
        wanted = (
            theirs.mask.to_full() if theirs is not None and theirs.mask is not None else np.zeros_like(mine)
        )
        with self._lock:
            labels[mine & ~wanted] = 0
            labels[wanted] = index
            if theirs is not None:
                assert theirs.id is not None
                self._layer[key] = _Layer(theirs.id, theirs.version, theirs.mask)
            else:
                self._layer.pop(key, None)
        touched = MaskPatch.from_full(mine | wanted)
        if touched.area:
            h, w = touched.bits.shape
            self.doc.emit(frame, (touched.x0, touched.y0, touched.x0 + w, touched.y0 + h))

    # --- autosave and closing -------------------------------------------------------------------------
    def start_autosave(self, interval: float | None = None) -> None:
        """Flush on a background thread every ``interval`` s (default: the site's autosave_seconds)."""
        if self._autosave is None:
            if interval is None:
                from app.config import load_site_config

                interval = load_site_config().autosave_seconds
            self._autosave = _Autosave(self, interval)

    def close(self) -> SaveResult:
        """Stop autosave, flush what is pending and stop listening. Journal entries left unsaved stay."""
        if self._autosave is not None:
            self._autosave.stop()
            self._autosave = None
        result = self.flush() if self.pending_count or self._audits else SaveResult(0, (), None, self.status)
        if self._on_change in self.doc.listeners:
            self.doc.listeners.remove(self._on_change)
        if self._own_journal:
            self.journal.close()
        return result
