"""What an edit session knows about each item, against the database and the local journal.

:class:`EditLedger` is plain state: the document's content as the journal listener last saw it,
the database rows and versions behind it, the dirty sets a flush writes, the label-layer masks,
the journal refs and the open conflicts. It never talks to the database, the journal or the
document: :mod:`app.workflow.editing` and its helpers do, and record what happened here.

Every read and write goes under :attr:`EditLedger.lock`: the document listener runs on the UI
thread while a flush may run on a worker.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from app.core.annotations import HUMAN, Annotation
from app.workflow.editing_state import Conflict, ItemKey, Layer, LayerKey, Op, Snapshot


class EditLedger:
    """The bookkeeping of one edit session (see the module doc)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # guards everything below (listener vs. flush thread)
        # vector annotations by local id
        self.mirror: dict[int, Annotation] = {}  # the document's content as the listener saw it
        self.by_frame: dict[int, set[int]] = {}
        self.saved: dict[int, Annotation] = {}  # content the database holds
        self.db_ids: dict[int, tuple[int, int]] = {}  # local id -> (database id, version)
        self.prelabel_rows: set[int] = set()  # local ids whose database row is machine-made
        self.vec_dirty: set[int] = set()
        # label layer
        self.layer: dict[LayerKey, Layer] = {}
        self.frame_gen: dict[int, int] = {}  # dirty frames -> change counter
        # journal bookkeeping
        self.refs: dict[int, str] = {}  # local id -> journal ref (stable across restarts)
        self.based: set[str] = set()  # refs whose base row is in the journal
        self.ref_seq: dict[str, int] = {}  # ref -> seq of its newest journal entry
        self.seq = 0  # the newest journal entry of the session
        self.replaying = False  # recovery is replaying the journal: changes are not journaled again
        self.conflicts: dict[ItemKey, Conflict] = {}

    # --- what the document holds ----------------------------------------------------------------------
    def track(self, aid: int, ann: Annotation | None) -> None:
        old = self.mirror.pop(aid, None)
        if old is not None:
            self.by_frame[old.frame].discard(aid)
        if ann is not None:
            self.mirror[aid] = ann
            self.by_frame.setdefault(ann.frame, set()).add(aid)

    def add_stored(self, aid: int, ann: Annotation) -> None:
        """A vector annotation loaded from the database under local id ``aid``."""
        assert ann.id is not None
        self.track(aid, ann)
        self.saved[aid] = ann
        self.db_ids[aid] = (ann.id, ann.version)
        self.refs[aid] = f"db:{ann.id}"
        if ann.source != HUMAN:
            self.prelabel_rows.add(aid)

    def changes_on(self, frame: int, shown: Mapping[int, Annotation]) -> tuple[list[int], list[int]]:
        """The local ids on ``frame`` whose content changed, and those that are gone."""
        known = self.by_frame.get(frame, set())
        changed = [aid for aid, a in shown.items() if self.mirror.get(aid) is not a]
        gone = [aid for aid in known if aid not in shown]
        return changed, gone

    def vector_changed(self, aid: int, ann: Annotation | None) -> str:
        """Record a changed (None: removed) vector annotation as pending; returns its journal ref."""
        self.track(aid, ann)
        self.vec_dirty.add(aid)
        return self.refs.setdefault(aid, uuid.uuid4().hex)

    def frame_changed(self, frame: int) -> None:
        self.frame_gen[frame] = self.frame_gen.get(frame, 0) + 1

    @property
    def pending_count(self) -> int:
        """Items (label frames and vector annotations) not yet in the database."""
        return len(self.frame_gen) + len(self.vec_dirty)

    def prelabel_candidates(self) -> dict[int, tuple[Annotation, Annotation | None]]:
        """Shown content and saved content of the items whose database row is machine-made."""
        return {
            aid: (self.mirror[aid], self.saved.get(aid)) for aid in self.prelabel_rows if aid in self.mirror
        }

    # --- journal bases --------------------------------------------------------------------------------
    def vector_base(self, aid: int) -> dict[str, Any]:
        db_id, version = self.db_ids.get(aid, (None, 0))
        return {"id": db_id, "version": version}

    def frame_base(self, frame: int) -> dict[str, Any]:
        return {label: [item.id, item.version] for (f, label), item in self.layer.items() if f == frame}

    def journaled(self, ref: str, seq: int, *, based: bool) -> None:
        """An entry for ``ref`` reached the journal (with the item's base row when ``based``)."""
        self.seq = seq
        self.ref_seq[ref] = seq
        if based:
            self.based.add(ref)

    def trimmed(self, refs: Iterable[str], upto: int) -> None:
        """The journal dropped the entries up to ``upto`` and the base rows of refs with no later ones."""
        for ref in refs:
            if self.ref_seq.get(ref, 0) <= upto:
                self.based.discard(ref)

    # --- saving ---------------------------------------------------------------------------------------
    def snapshot(self, maps: dict[int, np.ndarray]) -> Snapshot:
        """What a flush writes now; ``maps``: copies of the label maps of the dirty frames."""
        return Snapshot(
            upto=self.seq,
            gens=dict(self.frame_gen),
            maps=maps,
            vectors={aid: self.mirror.get(aid) for aid in self.vec_dirty},
            blocked=frozenset(self.conflicts),
            saved=dict(self.saved),
            db_ids=dict(self.db_ids),
            layer=dict(self.layer),
            prelabels=frozenset(self.prelabel_rows),
        )

    def settle(
        self,
        snap: Snapshot,
        ops: list[Op],
        outcomes: list[Annotation | Conflict | None],
        clean: set[ItemKey],
    ) -> tuple[int, list[Conflict], dict[str, dict[str, Any]]]:
        """Record what the database now holds; clear what did not change since the snapshot.
        Returns the items saved, the new conflicts and the journal bases of the saved items."""
        conflicts: list[Conflict] = []
        done: dict[str, dict[str, Any]] = {}
        frames_blocked: set[int] = set()
        saved = 0
        for op, result in zip(ops, outcomes, strict=True):
            outcome = None if isinstance(result, Conflict) else result
            # a conflict where both sides deleted the item is no disagreement: count it as saved
            if isinstance(result, Conflict) and (result.mine is not None or result.theirs is not None):
                conflicts.append(result)
                self.conflicts[op.key] = result
                if isinstance(op.key, tuple):
                    frames_blocked.add(op.key[0])
                continue
            saved += 1
            if isinstance(op.key, tuple):
                self.set_layer_row(op.key, outcome)
            else:
                clean.add(op.key)
                self.prelabel_rows.discard(op.key)  # the row is now the labeler's, or gone
                if outcome is None:
                    self.set_vector_row(op.key, None)
                else:
                    assert outcome.id is not None
                    self.db_ids[op.key] = (outcome.id, outcome.version)
                    self.saved[op.key] = snap.vectors[op.key] or outcome
        for key in clean:
            assert isinstance(key, int)
            mine = snap.vectors[key]
            current = self.saved.get(key)
            if (
                mine is not None
                and current is not mine
                and key in self.db_ids
                and (current is None or current.source == mine.source)
            ):
                self.saved[key] = mine  # equal content: adopt the object, so identity checks hold
            if self.mirror.get(key) is mine:
                self.vec_dirty.discard(key)
            if key in self.refs:
                done[self.refs[key]] = self.vector_base(key)
        conflict_frames = {k[0] for k in self.conflicts if isinstance(k, tuple)}
        for frame, gen in snap.gens.items():
            if frame in frames_blocked or frame in conflict_frames:
                continue
            if self.frame_gen.get(frame) == gen:
                del self.frame_gen[frame]
            done[f"L{frame}"] = self.frame_base(frame)
        return saved, conflicts, done

    # --- conflicts ------------------------------------------------------------------------------------
    def set_vector_row(self, aid: int, row: Annotation | None) -> None:
        """The database row behind local id ``aid`` is ``row`` now (None: there is none)."""
        if row is None:
            self.db_ids.pop(aid, None)
            self.saved.pop(aid, None)
        else:
            assert row.id is not None
            self.db_ids[aid] = (row.id, row.version)
            self.saved[aid] = row

    def set_layer_row(self, key: LayerKey, row: Annotation | None) -> None:
        """The database row behind the label-layer mask ``key`` is ``row`` now (None: there is none)."""
        if row is None:
            self.layer.pop(key, None)
        else:
            assert row.id is not None
            self.layer[key] = Layer(row.id, row.version, row.mask)

    def keep_mine(self, key: ItemKey, theirs: Annotation | None) -> None:
        """Base the local content on their version, so the next flush writes it over theirs."""
        if isinstance(key, tuple):
            self.set_layer_row(key, theirs)
            self.frame_changed(key[0])
        else:
            self.set_vector_row(key, theirs)
            self.vec_dirty.add(key)
