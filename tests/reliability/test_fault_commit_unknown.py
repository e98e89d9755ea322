"""Fault: a flush's commit gets no answer (the server dies while it commits), and the app is killed
before its next save.

The session writes the check it owes ("did that commit go through?") to the local journal when the
commit fails. At the next start, loading the session settles it against the database before the
journal is replayed: a commit that went through counts as saved (no second copy of the rows it
added, no conflict with its own updates), one that did not is written again. Either way the
database ends up with exactly the labeler's work.

A real PostgreSQL cluster of this module's own is stopped with ``pg_ctl stop -m immediate`` while
a worker process commits; the worker is SIGKILLed. The commit is made to hang with the two tricks
of tests/reliability/_pg_fault.py (``DOUBT``): a synchronous standby that never answers
(the commit is durable) or a deferred trigger sleeping inside COMMIT (it is not). As a script this
file is that worker::

    python test_fault_commit_unknown.py DB_URL PROJECT ASSET_ID JOURNAL_PATH
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import _pg_fault as fault
import numpy as np
import pytest

from app import api
from app.core.annotations import Annotation, Kind
from app.workflow.editing import EditSession
from app.workflow.journal import LABELS, Doubt, Journal, encode_annotation

# The edits, the project set-up and the commit-in-doubt tricks of the restart fault test.
WAIT_S: float = fault.WAIT_S


@pytest.fixture
def up(pg_up: Any) -> Any:
    """This module's own cluster (tests/conftest.py), started again should a test fail while it is down."""
    return pg_up


def _read(child: subprocess.Popen[str], err: Path) -> list[str]:
    line = child.stdout.readline() if child.stdout is not None else ""
    if not line:
        pytest.fail(f"the worker ended early: {err.read_text()}")
    return line.split()


def _wait_line(child: subprocess.Popen[str], err: Path, word: str) -> list[str]:
    while (words := _read(child, err))[0] != word:
        pass
    return words


def _mask_dupes(url: str) -> list[Any]:
    with fault.admin_connect(url) as conn:
        return list(
            conn.execute(
                "SELECT asset_id, frame, label, author_id, count(*) FROM annotations WHERE kind = 'mask' "
                "AND NOT deleted GROUP BY asset_id, frame, label, author_id HAVING count(*) > 1"
            ).fetchall()
        )


@pytest.mark.postgres
@pytest.mark.parametrize("how", sorted(fault.DOUBT))
def test_a_commit_without_an_answer_then_a_kill_is_settled_at_the_next_start(
    how: str, up: Any, tmp_path: Path
) -> None:
    """The worker's flush (a new polygon, a stroke over the stored mask, a move of the stored
    polygon) loses its commit answer; it edits on offline (a stroke of another class, a move of the
    new polygon) and is killed. At the next start: no duplicate rows, no conflict, the content the
    labeler made, whether that commit went through ("durable") or not ("cut")."""
    prepare, waits_on, undo = fault.DOUBT[how]
    url = up.database(f"doubt_kill_{how}")
    admin, (asset_id,) = fault.make_project(url, ["ann"], fault.IMAGES[:1])
    journal_path = tmp_path / "journal.db"
    err_path = tmp_path / "worker.err"
    err: IO[str] = err_path.open("w")
    child = subprocess.Popen(
        [sys.executable, __file__, url, "fault", str(asset_id), str(journal_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
    )
    try:
        _wait_line(child, err_path, "saved")
        before = fault.versions(url)  # the stored mask and polygon
        _wait_line(child, err_path, "edited")
        with fault.admin_connect(url) as conn:
            for sql in prepare:
                conn.execute(sql)
        assert child.stdin is not None
        child.stdin.write("flush\n")
        child.stdin.flush()
        fault.wait_for_commit_to_hang(url, waits_on)
        up.stop()
        words = _wait_line(child, err_path, "offline")
        assert words[1] == "error"  # the flush came back with the connection error
        _wait_line(child, err_path, "edited-offline")
        # the check the worker owes is on disk before the kill
        peek = Journal(journal_path)
        (pending,) = peek.pending()
        recorded = peek.doubt(pending.key)
        peek.close()
        assert recorded is not None and recorded.upto > 0 and recorded.bases
        child.send_signal(signal.SIGKILL)
        child.wait(WAIT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(WAIT_S)
        err.close()
    assert child.returncode == -signal.SIGKILL

    up.start()
    with fault.admin_connect(url) as conn:
        for sql in undo:
            conn.execute(sql)
    went_through = how == "durable"
    assert len(fault.versions(url)) == len(before) + int(went_through)  # the new polygon, or not

    journal = Journal(journal_path)
    journal_entries = journal.count(pending.key)
    project, session = fault.open_session(url, "ann", asset_id, journal)  # the next start
    try:
        assert session.key == pending.key
        assert journal.doubt(session.key) is None  # settled at load
        left = session.recoverable()
        if went_through:  # only the edits made after that commit are left to recover
            assert 0 < left < journal_entries
        else:
            assert left == journal_entries
        session.recover()
        result = session.flush()
        assert result.error is None and result.conflicts == () and session.conflicts == []
        assert journal.count(session.key) == 0 and journal.doubt(session.key) is None

        labels, shapes = fault.stored_as_loaded(url, "ann", asset_id, tmp_path)
        assert np.array_equal(labels, fault.expected_labels([0, 2, 5], labels.shape))
        assert np.array_equal(labels, session.doc.label_map(0))
        expected = sorted(
            [
                ("lesion", tuple((fault.polygon(1) + 2.5).ravel().tolist())),
                ("lesion", tuple((fault.polygon(3) + 1.0).ravel().tolist())),
            ]
        )
        assert shapes == expected == fault.polygons(session)  # two polygons, not three
        assert _mask_dupes(url) == []
        after = fault.versions(url)
        assert len(after) == len(before) + 2  # + the polygon, + the lesion mask of stroke 5
        assert all(after[i] > v for i, v in before.items())  # both stored rows were updated
    finally:
        session.close()
        journal.close()
        project.close()
        admin.close()


@pytest.mark.postgres
@pytest.mark.parametrize("how", sorted(fault.DOUBT))
def test_the_session_that_lived_on_settles_the_recorded_check_and_forgets_it(
    how: str, up: Any, tmp_path: Path
) -> None:
    """No kill: the session's own next save settles the commit in doubt; the journal's record of
    it goes with it (a later start has nothing left to check)."""
    prepare, waits_on, undo = fault.DOUBT[how]
    url = up.database(f"doubt_live_{how}")
    admin, (asset_id,) = fault.make_project(url, ["ann"], fault.IMAGES[:1])
    journal = Journal(tmp_path / "journal.db")
    project, session = fault.open_session(url, "ann", asset_id, journal)
    try:
        fault.paint(session, 0)
        assert session.flush().error is None and journal.doubt(session.key) is None
        fault.add_polygon(session, 3)
        fault.paint(session, 2)
        with fault.admin_connect(url) as conn:
            for sql in prepare:
                conn.execute(sql)
        results: list[Any] = []
        flusher = threading.Thread(target=lambda: results.append(session.flush()))
        flusher.start()
        fault.wait_for_commit_to_hang(url, waits_on)
        up.stop()
        flusher.join(WAIT_S)
        assert results[0].error is not None
        assert journal.doubt(session.key) is not None  # recorded when the commit failed
        up.start()
        with fault.admin_connect(url) as conn:
            for sql in undo:
                conn.execute(sql)
        retried = session.flush()
        assert retried.error is None and retried.conflicts == ()
        assert journal.doubt(session.key) is None and journal.count(session.key) == 0
        labels, shapes = fault.stored_as_loaded(url, "ann", asset_id, tmp_path)
        assert np.array_equal(labels, fault.expected_labels([0, 2], labels.shape))
        assert len(shapes) == 1 and _mask_dupes(url) == []
    finally:
        session.close()
        journal.close()
        project.close()
        admin.close()


# --- the journal file ---------------------------------------------------------------------------------

# The journal schema before commit-in-doubt records existed.
OLD_SCHEMA = """
CREATE TABLE sessions (
    key TEXT PRIMARY KEY, db_url TEXT NOT NULL, project_id INTEGER NOT NULL,
    asset_id INTEGER NOT NULL, user_name TEXT NOT NULL
);
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, created REAL NOT NULL,
    kind TEXT NOT NULL, frame INTEGER NOT NULL, ref TEXT NOT NULL, payload BLOB NOT NULL
);
CREATE INDEX entries_session ON entries (session, ref, seq);
CREATE TABLE bases (
    session TEXT NOT NULL, ref TEXT NOT NULL, base TEXT NOT NULL, PRIMARY KEY (session, ref)
);
"""


def test_a_journal_file_of_the_older_schema_opens_keeps_its_edits_and_records_doubts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    key = "sqlite:///x.db|project=1|asset=7|user=ann"
    old.execute("INSERT INTO sessions VALUES (?, 'sqlite:///x.db', 1, 7, 'ann')", (key,))
    for ref in ("L0", "L0", "p1"):
        old.execute(
            "INSERT INTO entries (session, created, kind, frame, ref, payload) VALUES (?, ?, ?, 0, ?, ?)",
            (key, time.time(), LABELS, ref, b"x"),
        )
    old.execute("INSERT INTO bases VALUES (?, 'L0', ?)", (key, json.dumps({"liver": [3, 2]})))
    old.commit()
    old.close()

    journal = Journal(path)
    try:
        assert [e.seq for e in journal.entries(key)] == [1, 2, 3] and journal.doubt(key) is None
        content = encode_annotation(Annotation(Kind.POLYGON, "liver", points=fault.polygon(1)))
        doubt = Doubt(2, 41, 1, content, {"L0": {"liver": [3, 3]}, "p1": {"id": 41, "version": 1}})
        journal.record_doubt(key, doubt)
        other = Journal(path)  # durable: another connection reads it back
        assert other.doubt(key) == doubt
        other.close()
        journal.saved(key, doubt.upto, doubt.bases)  # it went through
        assert journal.doubt(key) is None
        assert [e.seq for e in journal.entries(key)] == [3]  # p1's later entry stays ...
        assert journal.bases(key) == {"p1": {"id": 41, "version": 1}}  # ... on the new base
        journal.record_doubt(key, doubt)
        journal.clear_doubt(key)  # it did not go through
        assert journal.doubt(key) is None and journal.count(key) == 1
        journal.record_doubt(key, doubt)
        journal.discard(key)
        assert journal.doubt(key) is None and journal.pending() == []
    finally:
        journal.close()


# --- the worker ---------------------------------------------------------------------------------------


def worker(argv: list[str]) -> None:
    """The workstation killed with a save in doubt: prints ``saved`` once its first flush is in the
    database, ``edited`` when the next edits are journaled, flushes when told so on stdin, prints
    ``offline error|ok`` with that flush's outcome, edits on (``edited-offline``) and waits to be
    killed. No autosave: the kill comes before any next save."""
    url, name, asset_id, journal_path = argv[0], argv[1], int(argv[2]), Path(argv[3])
    project = api.open_project(url, name, user="ann", create=False)
    session = EditSession(
        project.db,
        project.id,
        project.asset(asset_id),
        project.user,
        project.ontology,
        journal=Journal(journal_path),
    ).load()
    fault.paint(session, 0)
    stored = fault.add_polygon(session, 1)
    assert session.flush().error is None
    print("saved", flush=True)
    added = fault.add_polygon(session, 3)  # an insert,
    fault.paint(session, 2)  # an update of the stored mask,
    fault.move_polygon(session, stored, 2.5)  # and of the stored polygon
    print("edited", flush=True)
    assert sys.stdin.readline().strip() == "flush"
    result = session.flush()
    print(f"offline {'error' if result.error else 'ok'}", flush=True)
    fault.paint(session, 5)  # another class: a new mask
    fault.move_polygon(session, added, 1.0)  # the polygon whose insert is in doubt
    print("edited-offline", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    worker(sys.argv[1:])
