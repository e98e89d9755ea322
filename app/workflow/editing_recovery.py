"""Getting a session's work into the database after something failed.

* **Crash recovery.** :class:`JournalRecovery` (a base of :class:`~app.workflow.editing.EditSession`)
  replays the local journal of a session whose process died onto the freshly loaded document.
* **A commit in doubt.** When the connection dies while a flush commits, the server may or may not
  have committed it (it can make the commit durable and die before answering). Writing the same
  changes again would add rows twice and conflict with the session's own updates, so the next
  flush first asks :func:`went_through` and, if it did, settles that flush as saved. The check is
  also written to the journal (:class:`~app.workflow.journal.Doubt`) when the commit fails: should
  the app be killed before its next save, loading the session at the next start settles it the
  same way before the journal is replayed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.core.annotations import Annotation
from app.core.commands import LabelDocument, UndoStack
from app.core.errors import NotFoundError
from app.core.records import Asset, User
from app.storage import Database, UnitOfWork
from app.workflow.editing_state import Conflict, ItemKey, LayerKey, _Layer, _Op, _Snapshot
from app.workflow.journal import (
    LABELS,
    PUT,
    Doubt,
    Journal,
    decode_annotation,
    decode_crop,
    encode_annotation,
)

Audit = tuple[str, int | None, dict[str, Any]]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InDoubt:
    """A flush whose commit failed with the connection: everything needed to settle it later."""

    snap: _Snapshot
    ops: list[_Op]
    outcomes: list[Annotation | Conflict | None]
    clean: set[ItemKey]
    audits: list[Audit]


def _probe(doubt: InDoubt) -> tuple[_Op, Annotation | None] | None:
    """The row that tells whether the flush in doubt committed: an added row first (its id came from
    that transaction, nobody else has it), else an updated one (its version and content), else a
    deleted one. None when it wrote no row (an audit entry at most: writing again is harmless)."""
    rank = {"add": 0, "replace": 0, "update": 1, "delete": 2}
    writes = [
        (op, out) for op, out in zip(doubt.ops, doubt.outcomes, strict=True) if not isinstance(out, Conflict)
    ]
    writes.sort(key=lambda write: rank[write[0].action])
    return writes[0] if writes else None


def _holds(uow: UnitOfWork, row_id: int, version: int, content: Annotation | None) -> bool:
    """Does the database hold what the flush in doubt wrote to this row (None: deleted it)?"""
    try:
        row = uow.annotations.get(row_id, include_deleted=True)
    except NotFoundError:
        return False
    if content is None:
        try:
            uow.annotations.get(row_id)
        except NotFoundError:
            return row.version == version  # deleted, at the version that delete gave it
        return False
    return row.version == version and row.same_content(content)


def went_through(uow: UnitOfWork, doubt: InDoubt) -> bool:
    """Did the flush in doubt commit? Told by one row it wrote (see :func:`_probe`)."""
    probe = _probe(doubt)
    if probe is None:
        return False
    op, outcome = probe
    if outcome is None:  # a delete
        assert op.db_id is not None
        return _holds(uow, op.db_id, op.version + 1, None)
    assert outcome.id is not None
    return _holds(uow, outcome.id, outcome.version, outcome)


def durable_doubt(doubt: InDoubt, refs: Mapping[int, str]) -> Doubt | None:
    """The journal's record of a flush in doubt: its probe row, and the bases its items have if it
    went through (what ``EditSession._settle`` would hand to ``Journal.saved``). ``refs``: the
    session's journal refs by local id. None when it wrote no row."""
    probe = _probe(doubt)
    if probe is None:
        return None
    op, outcome = probe
    if outcome is None:
        assert op.db_id is not None
        row_id, version, content = op.db_id, op.version + 1, b""
    else:
        assert outcome.id is not None
        row_id, version, content = outcome.id, outcome.version, encode_annotation(outcome)
    snap = doubt.snap
    layer, db_ids, clean = dict(snap.layer), dict(snap.db_ids), set(doubt.clean)
    blocked = {key[0] for key in snap.blocked if isinstance(key, tuple)}  # frames with a conflict
    for op, result in zip(doubt.ops, doubt.outcomes, strict=True):
        if isinstance(result, Conflict) and (result.mine is not None or result.theirs is not None):
            if isinstance(op.key, tuple):
                blocked.add(op.key[0])
            continue
        written = None if isinstance(result, Conflict) else result  # both deleted it: saved
        if isinstance(op.key, tuple):
            if written is None:
                layer.pop(op.key, None)
            else:
                assert written.id is not None
                layer[op.key] = _Layer(written.id, written.version, written.mask)
        else:
            clean.add(op.key)
            if written is None:
                db_ids.pop(op.key, None)
            else:
                assert written.id is not None
                db_ids[op.key] = (written.id, written.version)
    bases: dict[str, dict[str, Any]] = {}
    for key in clean:
        if isinstance(key, int) and key in refs:
            db_id, ver = db_ids.get(key, (None, 0))
            bases[refs[key]] = {"id": db_id, "version": ver}
    for frame in snap.gens:
        if frame not in blocked:
            bases[f"L{frame}"] = {lab: [it.id, it.version] for (f, lab), it in layer.items() if f == frame}
    return Doubt(snap.upto, row_id, version, content, bases)


class JournalRecovery:
    """The journal-replay half of EditSession (see the module doc)."""

    db: Database
    project_id: int
    asset: Asset
    user: User
    journal: Journal
    key: str
    doc: LabelDocument
    stack: UndoStack
    _lock: threading.RLock
    _db_ids: dict[int, tuple[int, int]]
    _mirror: dict[int, Annotation]
    _vec_dirty: set[int]
    _layer: dict[LayerKey, _Layer]
    _refs: dict[int, str]
    _based: set[str]
    _ref_seq: dict[str, int]
    _seq: int
    _replaying: bool

    def _record_doubt(self, doubt: InDoubt) -> None:
        """Write the flush in doubt to the journal, so a restart settles it too (see the module doc)."""
        with self._lock:
            record = durable_doubt(doubt, self._refs)
        if record is None:
            return
        try:
            self.journal.record_doubt(self.key, record)
        except sqlite3.Error as exc:  # this run still settles it; only a kill before then would not
            log.warning("could not write the save in doubt to the local journal: %s", exc)

    def _settle_recorded_doubt(self, uow: UnitOfWork) -> None:
        """At load: a flush in doubt an earlier run recorded and never settled (it was killed first).
        If it went through, its journal entries count as saved, so recovery does not write them
        twice (duplicate rows, conflicts with its own updates); if not, they are replayed."""
        try:
            doubt = self.journal.doubt(self.key)
            if doubt is None:
                return
            content = decode_annotation(doubt.content) if doubt.content else None
            done = _holds(uow, doubt.row_id, doubt.version, content)
            if done:
                self.journal.saved(self.key, doubt.upto, doubt.bases)
            else:
                self.journal.clear_doubt(self.key)
        except sqlite3.Error as exc:  # the journal is unreadable or full: recovery says so itself
            log.warning("could not settle a save in doubt in the local journal: %s", exc)
            return
        outcome = "went through" if done else "did not go through: its edits are recovered"
        log.warning("a save whose commit got no answer before the program ended %s", outcome)

    def recoverable(self) -> int:
        """How many journal entries of this session are not in the database (offer recovery if > 0)."""
        return self.journal.count(self.key)

    def discard_recovery(self) -> None:
        self.journal.discard(self.key)  # with a commit-in-doubt record, if any
        self.key = self.journal.open_session(self.db.url, self.project_id, self.asset.id, self.user.name)
        self._based.clear()

    def recover(self) -> int:
        """Replay this session's journal onto the loaded document; returns the entries replayed.

        The replayed edits are pending (the next flush saves them) against the database versions
        they were based on, so another workstation's newer save comes back as a Conflict.
        """
        entries = self.journal.entries(self.key)
        if not entries:
            return 0
        bases = self.journal.bases(self.key)
        by_db_id = {ids[0]: aid for aid, ids in self._db_ids.items()}
        aid_of: dict[str, int] = {}
        for frame in {e.frame for e in entries if e.kind == LABELS}:
            self._rebase_frame(frame, bases.get(f"L{frame}"))
        self._replaying = True
        try:
            for entry in entries:
                if entry.kind == LABELS:
                    x0, y0, crop = decode_crop(entry.payload)
                    h, w = crop.shape
                    self.doc.label_map(entry.frame)[y0 : y0 + h, x0 : x0 + w] = crop
                    self.doc.emit(entry.frame, (x0, y0, x0 + w, y0 + h))
                    continue
                aid = aid_of.get(entry.ref)
                if aid is None:
                    aid = self._adopt_ref(entry.ref, bases.get(entry.ref), by_db_id)
                    aid_of[entry.ref] = aid
                if entry.kind == PUT:
                    self.doc.put_annotation(aid, decode_annotation(entry.payload))
                elif aid in self._mirror:
                    self.doc.pop_annotation(aid)
                else:
                    with self._lock:
                        self._vec_dirty.add(aid)  # a deletion of a stored one the document lacks
        finally:
            self._replaying = False
        with self._lock:
            self._seq = max(self._seq, entries[-1].seq)
            self._based |= set(bases)
            for entry in entries:
                self._ref_seq[entry.ref] = entry.seq
        self.stack.clear()
        return len(entries)

    def _adopt_ref(self, ref: str, base: Mapping[str, Any] | None, by_db_id: Mapping[int, int]) -> int:
        db_id = base.get("id") if base else None
        aid = by_db_id.get(db_id) if db_id is not None else None
        if aid is None:
            aid = self.doc.new_id()
        with self._lock:
            self._refs[aid] = ref
            if db_id is not None and base is not None:
                self._db_ids[aid] = (int(db_id), int(base.get("version", 0)))  # the version edited
        return aid

    def _rebase_frame(self, frame: int, base: Mapping[str, Any] | None) -> None:
        """Save a recovered frame against the versions it was edited from (see Journal bases)."""
        if base is None:
            return
        with self._lock:
            for (f, label), item in list(self._layer.items()):
                if f == frame and label not in base:  # added elsewhere meanwhile
                    self._layer[(f, label)] = _Layer(item.id, 0, item.mask)
            for label, (db_id, version) in base.items():
                loaded = self._layer.get((frame, label))
                if loaded is None or loaded.id != db_id:  # deleted (or replaced) elsewhere meanwhile
                    self._layer[(frame, label)] = _Layer(int(db_id), int(version), None)
                else:
                    self._layer[(frame, label)] = _Layer(loaded.id, int(version), loaded.mask)
