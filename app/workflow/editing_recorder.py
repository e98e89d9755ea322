"""The edit session's document listener: every change the document reports is recorded in the
ledger and written to the local journal (:mod:`app.workflow.journal`) before control returns to
the UI.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from app.core.annotations import Annotation
from app.core.commands import Bbox, LabelDocument
from app.workflow.editing_ledger import EditLedger
from app.workflow.journal import LABELS, PUT, REMOVE, Journal, encode_annotation, encode_crop

log = logging.getLogger(__name__)


class ChangeRecorder:
    """Journals one session's edits under its journal ``key`` (see the module doc)."""

    def __init__(self, journal: Journal, key: str, ledger: EditLedger, doc: LabelDocument) -> None:
        self.journal, self.key, self.ledger, self.doc = journal, key, ledger, doc
        self.error: str | None = None  # why the journal cannot be written, once it could not
        self.write_seconds: deque[float] = deque(maxlen=1000)  # duration of each journal write

    def on_change(self, frame: int, bbox: Bbox | None) -> None:
        """The document listener."""
        per_frame = self.doc.annotations(frame)
        with self.ledger.lock:
            changed, gone = self.ledger.changes_on(frame, per_frame)
            if changed or gone:
                for aid in gone:
                    self._vector_changed(aid, None)
                for aid in changed:
                    self._vector_changed(aid, per_frame[aid])
            elif bbox is not None and self.doc.has_label_map(frame):
                self._labels_changed(frame, bbox)

    def _vector_changed(self, aid: int, ann: Annotation | None) -> None:
        ref = self.ledger.vector_changed(aid, ann)
        if self.ledger.replaying:
            return
        base = None if ref in self.ledger.based else self.ledger.vector_base(aid)
        if ann is None:
            self._append(REMOVE, -1, ref, b"", base)
        else:
            self._append(PUT, ann.frame, ref, encode_annotation(ann), base)

    def _labels_changed(self, frame: int, bbox: Bbox) -> None:
        self.ledger.frame_changed(frame)
        if self.ledger.replaying:
            return
        x0, y0, x1, y1 = bbox
        ref = f"L{frame}"
        base = None if ref in self.ledger.based else self.ledger.frame_base(frame)
        crop = self.doc.label_map(frame)[y0:y1, x0:x1]
        self._append(LABELS, frame, ref, encode_crop(x0, y0, crop), base)

    def _append(
        self, kind: str, frame: int, ref: str, payload: bytes, base: Mapping[str, Any] | None
    ) -> None:
        start = time.perf_counter()
        try:
            seq = self.journal.append(self.key, kind, frame, ref, payload, base=base)
        except sqlite3.Error as exc:  # a full disk must not lose the edit in memory; say so loudly
            self.error = f"the local journal {self.journal.path} cannot be written: {exc}"
            log.error("%s", self.error)
            return
        self.ledger.journaled(ref, seq, based=base is not None)
        self.write_seconds.append(time.perf_counter() - start)
