"""The local edit journal: every committed edit is written here before it goes to the project database.

One SQLite file per user (``user_data_dir()/journal.db``), rollback journal (no WAL: the user data
dir may sit on a roaming network home) and ``synchronous=FULL``: a write that returned survives a
SIGKILL of the app and, as far as the disk honours fsync, a power cut.

Tables:

* ``sessions``: one row per (database, project, asset, user) being edited; ``key`` names it.
* ``entries``: the edits, in ``seq`` order. ``kind`` is ``labels`` (a uint16 label-map crop after
  the change: idempotent state, so undo and redo are journaled like any edit), ``put`` (an
  annotation's full content) or ``remove``. ``ref`` names the item an entry belongs to
  (``L<frame>`` for a frame's label map, an opaque id for a vector annotation).
* ``bases``: per session and item, the database state the local edits are based on (``{"id": ..,
  "version": ..}`` for a vector annotation, ``{label: [id, version]}`` for a label frame). Recovery
  saves against these versions, so a change another workstation made meanwhile becomes a conflict
  instead of being overwritten.
* ``doubts``: per session, at most one flush whose commit got no answer (the connection died while
  it committed: the server may have made it durable). It names one row that flush wrote (``row_id``
  at ``version`` with ``content``, or deleted) and the bases its items have if it went through. The
  next save, or recovery at the next start, checks that row and, if the flush went through, counts
  its entries up to ``upto`` as saved (:meth:`Journal.saved`) instead of writing them twice.

The schema only ever grows by ``CREATE ... IF NOT EXISTS``, so a journal file an older Sitelabel
wrote opens as it is and gains the new tables.

Entries are deleted once the database holds them (:meth:`Journal.saved`); whatever is left after a
crash is offered for recovery (:meth:`Journal.pending`).
"""

from __future__ import annotations

import json
import sqlite3
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation
from app.core.errors import ValidationError
from app.core.mask_codec import decode_mask, encode_mask

LABELS, PUT, REMOVE = "labels", "put", "remove"
_CROP = struct.Struct("<4I")  # x0, y0, height, width
_JSON_LEN = struct.Struct("<I")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY, db_url TEXT NOT NULL, project_id INTEGER NOT NULL,
    asset_id INTEGER NOT NULL, user_name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, created REAL NOT NULL,
    kind TEXT NOT NULL, frame INTEGER NOT NULL, ref TEXT NOT NULL, payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_session ON entries (session, ref, seq);
CREATE TABLE IF NOT EXISTS bases (
    session TEXT NOT NULL, ref TEXT NOT NULL, base TEXT NOT NULL, PRIMARY KEY (session, ref)
);
CREATE TABLE IF NOT EXISTS doubts (
    session TEXT PRIMARY KEY, created REAL NOT NULL, upto INTEGER NOT NULL, row_id INTEGER NOT NULL,
    version INTEGER NOT NULL, content BLOB NOT NULL, bases TEXT NOT NULL
);
"""


def session_key(db_url: str, project_id: int, asset_id: int, user_name: str) -> str:
    """The journal's name for one editing session; ``db_url`` must already be redacted."""
    return f"{db_url}|project={project_id}|asset={asset_id}|user={user_name}"


@dataclass(frozen=True, slots=True)
class PendingSession:
    """Unsaved work found in the journal (offer to recover it at start)."""

    key: str
    db_url: str
    project_id: int
    asset_id: int
    user_name: str
    count: int  # journal entries not yet in the database
    newest: float  # time.time() of the newest entry


@dataclass(frozen=True, slots=True)
class Doubt:
    """A flush whose commit got no answer (see the module doc): how to tell whether it went through,
    and what it leaves saved if it did."""

    upto: int  # the last journal seq that flush covered
    row_id: int  # a row it wrote ...
    version: int  # ... the version it gave that row ...
    content: bytes  # ... and the content (encode_annotation), or b"" when it deleted the row
    bases: dict[str, dict[str, Any]]  # per item it saved: the base after it (as Journal.saved takes)


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    created: float
    kind: str
    frame: int
    ref: str
    payload: bytes


# --- payloads ----------------------------------------------------------------------------------------
def encode_crop(x0: int, y0: int, crop: npt.NDArray[np.uint16]) -> bytes:
    h, w = crop.shape
    data = np.ascontiguousarray(crop, dtype="<u2").tobytes()
    return _CROP.pack(x0, y0, h, w) + zlib.compress(data, 1)  # level 1: speed over size


def decode_crop(payload: bytes) -> tuple[int, int, npt.NDArray[np.uint16]]:
    x0, y0, h, w = _CROP.unpack_from(payload)
    raw = zlib.decompress(payload[_CROP.size :])
    crop = np.frombuffer(raw, dtype="<u2").astype(np.uint16).reshape(h, w)
    return x0, y0, crop


def encode_annotation(annotation: Annotation) -> bytes:
    """JSON of the plain-data form (ids left out), then the mask as mask_codec bytes if any."""
    data = annotation.to_dict(full_mask=False)
    mask = data.pop("mask", None)
    for key in ("id", "version", "asset_id"):
        data.pop(key, None)
    text = json.dumps(data, separators=(",", ":")).encode()
    return _JSON_LEN.pack(len(text)) + text + (encode_mask(mask) if mask is not None else b"")


def decode_annotation(payload: bytes) -> Annotation:
    (n,) = _JSON_LEN.unpack_from(payload)
    data: dict[str, Any] = json.loads(payload[_JSON_LEN.size : _JSON_LEN.size + n])
    rest = payload[_JSON_LEN.size + n :]
    if rest:
        data["mask"] = decode_mask(rest)
    return Annotation.from_dict(data)


# --- the journal ---------------------------------------------------------------------------------------
class Journal:
    """A durable, append-mostly log of edits. Thread-safe; share one per process."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            from app.config import user_data_dir

            path = user_data_dir() / "journal.db"
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one commit per call.
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        self._known_sessions: set[str] = set()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=DELETE")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # --- writing --------------------------------------------------------------------------------------
    def open_session(self, db_url: str, project_id: int, asset_id: int, user_name: str) -> str:
        key = session_key(db_url, project_id, asset_id, user_name)
        if key not in self._known_sessions:
            with self._transaction() as c:
                c.execute(
                    "INSERT OR IGNORE INTO sessions VALUES (?, ?, ?, ?, ?)",
                    (key, db_url, project_id, asset_id, user_name),
                )
            self._known_sessions.add(key)
        return key

    def append(
        self,
        key: str,
        kind: str,
        frame: int,
        ref: str,
        payload: bytes,
        *,
        base: Mapping[str, Any] | None = None,
    ) -> int:
        """Write one entry durably (and the item's base state, when given); returns its seq."""
        if kind not in (LABELS, PUT, REMOVE):
            raise ValidationError(f"unknown journal entry kind {kind!r}")
        with self._transaction() as c:
            if base is not None:
                c.execute("INSERT OR REPLACE INTO bases VALUES (?, ?, ?)", (key, ref, json.dumps(dict(base))))
            cursor = c.execute(
                "INSERT INTO entries (session, created, kind, frame, ref, payload) VALUES (?, ?, ?, ?, ?, ?)",
                (key, time.time(), kind, frame, ref, payload),
            )
            seq = cursor.lastrowid
        assert seq is not None
        return int(seq)

    def saved(self, key: str, upto: int, bases: Mapping[str, Mapping[str, Any]]) -> None:
        """The database now holds every entry of the items ``bases`` names up to ``upto``.

        Their entries up to ``upto`` go; an item with later entries keeps its base row, moved to
        the new database state given here; an item without gets its base row dropped too.
        The session's commit-in-doubt record goes too: a session saves again only after settling
        the flush in doubt, so whatever it described is decided now.
        """
        with self._transaction() as c:
            c.execute("DELETE FROM doubts WHERE session = ?", (key,))
            for ref, base in bases.items():
                c.execute("DELETE FROM entries WHERE session = ? AND ref = ? AND seq <= ?", (key, ref, upto))
                left = c.execute(
                    "SELECT 1 FROM entries WHERE session = ? AND ref = ? LIMIT 1", (key, ref)
                ).fetchone()
                if left:
                    c.execute(
                        "INSERT OR REPLACE INTO bases VALUES (?, ?, ?)", (key, ref, json.dumps(dict(base)))
                    )
                else:
                    c.execute("DELETE FROM bases WHERE session = ? AND ref = ?", (key, ref))

    def record_doubt(self, key: str, doubt: Doubt) -> None:
        """Durably remember a flush whose commit got no answer (replaces an older one)."""
        with self._transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO doubts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    time.time(),
                    doubt.upto,
                    doubt.row_id,
                    doubt.version,
                    doubt.content,
                    json.dumps(doubt.bases),
                ),
            )

    def clear_doubt(self, key: str) -> None:
        """The flush in doubt did not go through: its entries stay and are written again."""
        with self._transaction() as c:
            c.execute("DELETE FROM doubts WHERE session = ?", (key,))

    def discard(self, key: str) -> None:
        """Forget a session's unsaved edits (the user declined to recover them)."""
        with self._transaction() as c:
            c.execute("DELETE FROM doubts WHERE session = ?", (key,))
            c.execute("DELETE FROM entries WHERE session = ?", (key,))
            c.execute("DELETE FROM bases WHERE session = ?", (key,))
            c.execute("DELETE FROM sessions WHERE key = ?", (key,))
        self._known_sessions.discard(key)

    # --- reading --------------------------------------------------------------------------------------
    def pending(self) -> list[PendingSession]:
        """Sessions with entries the database does not hold yet, newest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.key, s.db_url, s.project_id, s.asset_id, s.user_name, count(e.seq), max(e.created)"
                " FROM sessions s JOIN entries e ON e.session = s.key GROUP BY s.key"
                " ORDER BY max(e.created) DESC"
            ).fetchall()
        return [
            PendingSession(str(k), str(u), int(p), int(a), str(n), int(c), float(t))
            for k, u, p, a, n, c, t in rows
        ]

    def entries(self, key: str) -> list[Entry]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, created, kind, frame, ref, payload FROM entries WHERE session = ? ORDER BY seq",
                (key,),
            ).fetchall()
        return [Entry(int(s), float(t), str(k), int(f), str(r), bytes(p)) for s, t, k, f, r, p in rows]

    def doubt(self, key: str) -> Doubt | None:
        """The session's flush in doubt, if one is recorded."""
        with self._lock:
            row = self._conn.execute(
                "SELECT upto, row_id, version, content, bases FROM doubts WHERE session = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        upto, row_id, version, content, bases = row
        return Doubt(int(upto), int(row_id), int(version), bytes(content), json.loads(bases))

    def bases(self, key: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT ref, base FROM bases WHERE session = ?", (key,)).fetchall()
        return {str(ref): json.loads(base) for ref, base in rows}

    def count(self, key: str | None = None) -> int:
        with self._lock:
            if key is None:
                row = self._conn.execute("SELECT count(*) FROM entries").fetchone()
            else:
                row = self._conn.execute("SELECT count(*) FROM entries WHERE session = ?", (key,)).fetchone()
        return int(row[0])
