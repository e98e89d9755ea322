"""Getting a session's work into the database after something failed: functions over the
session's journal and its :class:`~app.workflow.editing_ledger.EditLedger`.

* **Crash recovery.** :func:`replay` replays the local journal of a session whose process died
  onto the freshly loaded document.
* **A commit in doubt.** When the connection dies while a flush commits, the server may or may not
  have committed it (it can make the commit durable and die before answering). Writing the same
  changes again would add rows twice and conflict with the session's own updates, so the next
  flush first asks :func:`went_through` and, if it did, settles that flush as saved. The check is
  also written to the journal (:func:`record_doubt`, a :class:`~app.workflow.journal.Doubt`) when
  the commit fails: should the app be killed before its next save, loading the session at the next
  start settles it the same way before the journal is replayed (:func:`settle_recorded_doubt`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from app.core.annotations import Annotation
from app.core.commands import LabelDocument
from app.core.errors import NotFoundError
from app.storage import UnitOfWork
from app.workflow.editing_ledger import EditLedger
from app.workflow.editing_state import Conflict, InDoubt, Layer, Op
from app.workflow.journal import (
    LABELS,
    PUT,
    Doubt,
    Journal,
    decode_annotation,
    decode_crop,
    encode_annotation,
)

log = logging.getLogger(__name__)


def _probe(doubt: InDoubt) -> tuple[Op, Annotation | None] | None:
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
    went through (what ``EditLedger.settle`` would hand to ``Journal.saved``). ``refs``: the
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
                layer[op.key] = Layer(written.id, written.version, written.mask)
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


def record_doubt(journal: Journal, key: str, ledger: EditLedger, doubt: InDoubt) -> None:
    """Write the flush in doubt to the journal, so a restart settles it too (see the module doc)."""
    with ledger.lock:
        record = durable_doubt(doubt, ledger.refs)
    if record is None:
        return
    try:
        journal.record_doubt(key, record)
    except sqlite3.Error as exc:  # this run still settles it; only a kill before then would not
        log.warning("could not write the save in doubt to the local journal: %s", exc)


def settle_recorded_doubt(journal: Journal, key: str, uow: UnitOfWork) -> None:
    """At load: a flush in doubt an earlier run recorded and never settled (it was killed first).
    If it went through, its journal entries count as saved, so recovery does not write them
    twice (duplicate rows, conflicts with its own updates); if not, they are replayed."""
    try:
        doubt = journal.doubt(key)
        if doubt is None:
            return
        content = decode_annotation(doubt.content) if doubt.content else None
        done = _holds(uow, doubt.row_id, doubt.version, content)
        if done:
            journal.saved(key, doubt.upto, doubt.bases)
        else:
            journal.clear_doubt(key)
    except sqlite3.Error as exc:  # the journal is unreadable or full: recovery says so itself
        log.warning("could not settle a save in doubt in the local journal: %s", exc)
        return
    outcome = "went through" if done else "did not go through: its edits are recovered"
    log.warning("a save whose commit got no answer before the program ended %s", outcome)


def replay(journal: Journal, key: str, ledger: EditLedger, doc: LabelDocument) -> int:
    """Replay the session's journal onto the loaded document; returns the entries replayed.

    The replayed edits are pending (the next flush saves them) against the database versions
    they were based on, so another workstation's newer save comes back as a Conflict.
    """
    entries = journal.entries(key)
    if not entries:
        return 0
    bases = journal.bases(key)
    by_db_id = {ids[0]: aid for aid, ids in ledger.db_ids.items()}
    aid_of: dict[str, int] = {}
    for frame in {e.frame for e in entries if e.kind == LABELS}:
        _rebase_frame(ledger, frame, bases.get(f"L{frame}"))
    ledger.replaying = True
    try:
        for entry in entries:
            if entry.kind == LABELS:
                x0, y0, crop = decode_crop(entry.payload)
                h, w = crop.shape
                doc.label_map(entry.frame)[y0 : y0 + h, x0 : x0 + w] = crop
                doc.emit(entry.frame, (x0, y0, x0 + w, y0 + h))
                continue
            aid = aid_of.get(entry.ref)
            if aid is None:
                aid = _adopt_ref(ledger, doc, entry.ref, bases.get(entry.ref), by_db_id)
                aid_of[entry.ref] = aid
            if entry.kind == PUT:
                doc.put_annotation(aid, decode_annotation(entry.payload))
            elif aid in ledger.mirror:
                doc.pop_annotation(aid)
            else:
                with ledger.lock:
                    ledger.vec_dirty.add(aid)  # a deletion of a stored one the document lacks
    finally:
        ledger.replaying = False
    with ledger.lock:
        ledger.seq = max(ledger.seq, entries[-1].seq)
        ledger.based |= set(bases)
        for entry in entries:
            ledger.ref_seq[entry.ref] = entry.seq
    return len(entries)


def _adopt_ref(
    ledger: EditLedger,
    doc: LabelDocument,
    ref: str,
    base: Mapping[str, Any] | None,
    by_db_id: Mapping[int, int],
) -> int:
    db_id = base.get("id") if base else None
    aid = by_db_id.get(db_id) if db_id is not None else None
    if aid is None:
        aid = doc.new_id()
    with ledger.lock:
        ledger.refs[aid] = ref
        if db_id is not None and base is not None:
            ledger.db_ids[aid] = (int(db_id), int(base.get("version", 0)))  # the version edited
    return aid


def _rebase_frame(ledger: EditLedger, frame: int, base: Mapping[str, Any] | None) -> None:
    """Save a recovered frame against the versions it was edited from (see Journal bases)."""
    if base is None:
        return
    with ledger.lock:
        for (f, label), item in list(ledger.layer.items()):
            if f == frame and label not in base:  # added elsewhere meanwhile
                ledger.layer[(f, label)] = Layer(item.id, 0, item.mask)
        for label, (db_id, version) in base.items():
            loaded = ledger.layer.get((frame, label))
            if loaded is None or loaded.id != db_id:  # deleted (or replaced) elsewhere meanwhile
                ledger.layer[(frame, label)] = Layer(int(db_id), int(version), None)
            else:
                ledger.layer[(frame, label)] = Layer(loaded.id, int(version), loaded.mask)
