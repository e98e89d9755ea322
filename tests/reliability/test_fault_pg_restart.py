"""Fault: the PostgreSQL server is stopped (``pg_ctl stop -m immediate``: connections die mid-
transaction) and started again on the same port while labelers work.

Edits are journaled locally while the database is gone, each session says "Offline, N edits
waiting", retries with a short back-off, and once the server is back every edit reaches the
database: nothing lost, nothing half-written, no conflicts. A process killed while offline gets
its edits back at the next open.

Every test module-scoped cluster is this module's own (tests/pgcluster.py), so stopping it never
disturbs the shared test server. As a script this file is the worker the SIGKILL test runs::

    python test_fault_pg_restart.py DB_URL PROJECT ASSET_ID JOURNAL_PATH
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from _pg_fault import (
    AUTOSAVE_S,
    DOUBT,
    IMAGES,
    LABELERS,
    WAIT_S,
    add_polygon,
    admin_connect,
    expected_labels,
    make_project,
    move_polygon,
    open_session,
    paint,
    polygon,
    polygons,
    stored_as_loaded,
    versions,
    wait_for,
    wait_for_commit_to_hang,
)

from app import api
from app.workflow.editing import EditSession, SaveState
from app.workflow.editing_state import ago, retry_delay
from app.workflow.journal import Journal

pytestmark = pytest.mark.postgres


@pytest.fixture
def up(pg_up: Any) -> Any:
    """This module's own cluster (tests/conftest.py), started again should a test fail while it is down."""
    return pg_up


def test_retries_back_off_from_one_second_up_to_the_autosave_interval() -> None:
    assert [retry_delay(n, 5.0) for n in range(6)] == [5.0, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert retry_delay(1000, 30.0) == 30.0  # no overflow after a long outage
    assert [ago(s) for s in (3, 42, 150, 7300)] == ["just now", "42 s ago", "2 min ago", "2 h ago"]


# --- several labelers through a restart -----------------------------------------------------------


@dataclass
class Labeler:
    """One workstation: its own Database, journal, session and a thread editing continuously."""

    user: str
    asset_id: int
    project: api.Project
    session: EditSession
    journal: Journal
    offline: threading.Event  # set by the test while the server is down
    stop: threading.Event = field(default_factory=threading.Event)
    edits: int = 0
    edits_offline: int = 0
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def run(self) -> None:
        ids: list[int] = []
        i = 0
        try:
            while not self.stop.is_set():
                if i % 4 == 1:
                    ids.append(add_polygon(self.session, i))
                elif i % 4 == 3 and ids:
                    move_polygon(self.session, ids[i % len(ids)], 1.5)
                else:
                    paint(self.session, i)
                i += 1
                self.edits += 1
                if self.offline.is_set():
                    self.edits_offline += 1
                time.sleep(0.03)
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_labelers_edit_through_an_immediate_restart_and_lose_nothing(
    up: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="app")
    url = up.database("restart_many")
    admin, asset_ids = make_project(url, LABELERS, IMAGES)
    offline = threading.Event()
    team: list[Labeler] = []
    for user, asset_id in zip(LABELERS, asset_ids, strict=True):
        journal = Journal(tmp_path / f"journal-{user}.db")
        project, session = open_session(url, user, asset_id, journal)
        session.start_autosave(AUTOSAVE_S)
        team.append(Labeler(user, asset_id, project, session, journal, offline))
    try:
        for labeler in team:
            labeler.thread = threading.Thread(target=labeler.run, name=f"labeler-{labeler.user}")
            labeler.thread.start()
        wait_for(lambda: all(lb.session.last_saved_at for lb in team), "the first autosaves")
        before = versions(url)

        stopped_at = up.stop()
        offline.set()
        # every workstation notices at its next autosave, and keeps journaling meanwhile
        wait_for(lambda: all(lb.session.status is SaveState.OFFLINE for lb in team), "every session offline")
        time.sleep(1.5)  # edit on while offline (the retries back off: 1 s, then every 2 s)
        for labeler in team:
            labeler.stop.set()
        for labeler in team:
            assert labeler.thread is not None
            labeler.thread.join(WAIT_S)
        for labeler in team:
            assert labeler.error is None, f"{labeler.user}'s editing failed: {labeler.error!r}"
            session = labeler.session
            assert session.status is SaveState.OFFLINE and session.pending_count > 0
            waiting = session.edits_waiting
            assert waiting == labeler.journal.count(session.key) > 0
            assert session.status_text.startswith(f"Offline, {waiting} edits waiting — ")
            assert "\n" not in session.status_text

        back_at = up.start()
        offline.clear()
        saved_at = wait_for(
            lambda: all(lb.session.status is SaveState.SAVED for lb in team), "every session saved"
        )
        outage = back_at - stopped_at
        for labeler in team:
            session = labeler.session
            assert session.conflicts == []
            assert labeler.journal.count(session.key) == 0  # the local journal is empty
            assert session.status_text == "All changes saved"
            labels, shapes = stored_as_loaded(url, labeler.user, labeler.asset_id, tmp_path)
            assert np.array_equal(labels, session.doc.label_map(0)), f"{labeler.user}: masks differ"
            assert shapes == polygons(session), f"{labeler.user}: polygons differ"
        after = versions(url)
        assert all(after[i] >= v for i, v in before.items() if i in after), "a version went backwards"
        # one label-layer mask per (frame, class, author): nothing was written twice
        with admin_connect(url) as conn:
            dupes = conn.execute(
                "SELECT asset_id, label, author_id, count(*) FROM annotations WHERE kind = 'mask' "
                "AND NOT deleted GROUP BY asset_id, frame, label, author_id HAVING count(*) > 1"
            ).fetchall()
        assert dupes == []
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        print(
            f"\nFIGURES outage_s={outage:.2f} back_to_all_saved_s={saved_at - back_at:.2f} "
            f"edits={[lb.edits for lb in team]} edits_while_offline={[lb.edits_offline for lb in team]} "
            f"lost=0"
        )
    finally:
        for labeler in team:
            labeler.stop.set()
            if labeler.thread is not None:
                labeler.thread.join(WAIT_S)
            labeler.session.close()
            labeler.journal.close()
            labeler.project.close()
        admin.close()


# --- a flush cut mid-transaction ------------------------------------------------------------------


def test_a_flush_cut_mid_transaction_writes_nothing_and_is_retried(up: Any, tmp_path: Path) -> None:
    """The flush's first inserts have run when the server dies (its update waits on a row lock):
    nothing of it is in the database afterwards, and the next flush saves it all."""
    url = up.database("restart_mid")
    admin, (asset_id,) = make_project(url, ["ann"], IMAGES[:1])
    journal = Journal(tmp_path / "journal.db")
    project, session = open_session(url, "ann", asset_id, journal)
    try:
        paint(session, 0)
        assert session.flush().error is None
        before = versions(url)
        (mask_id,) = before
        first, second = add_polygon(session, 1), add_polygon(session, 3)  # two inserts ...
        paint(session, 2)  # ... then the update of the stored mask, which will wait
        holder = admin_connect(url)
        holder.execute("BEGIN")
        holder.execute("SELECT id FROM annotations WHERE id = %s FOR UPDATE", (mask_id,))
        results: list[Any] = []
        flusher = threading.Thread(target=lambda: results.append(session.flush()))
        flusher.start()
        with admin_connect(url) as watcher:
            wait_for(
                lambda: (
                    watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND application_name = 'sitelabel'"
                    ).fetchone()
                    == (1,)
                ),
                "the flush to wait on the row lock",
            )
        up.stop()
        flusher.join(WAIT_S)
        with contextlib.suppress(psycopg.Error):
            holder.close()
        (result,) = results  # a SaveResult: no exception escaped the flush
        assert result.error is not None and session.status is SaveState.OFFLINE
        assert session.status_text.startswith("Offline, 3 edits waiting")

        up.start()
        assert versions(url) == before  # the polygons inserted before the cut are not there
        retried = session.flush()  # the same pool: pre-ping replaces the dead connections
        assert retried.error is None and retried.conflicts == () and session.status is SaveState.SAVED
        assert journal.count(session.key) == 0
        labels, shapes = stored_as_loaded(url, "ann", asset_id, tmp_path)
        assert np.array_equal(labels, expected_labels([0, 2], labels.shape))
        assert np.array_equal(labels, session.doc.label_map(0))
        assert shapes == polygons(session) and len(shapes) == 2
        assert session.doc.annotation(first) is not None and session.doc.annotation(second) is not None
        assert versions(url)[mask_id] == before[mask_id] + 1
    finally:
        session.close()
        journal.close()
        project.close()
        admin.close()


@pytest.mark.parametrize("how", sorted(DOUBT))
def test_a_commit_without_an_answer_is_settled_not_written_twice(how: str, up: Any, tmp_path: Path) -> None:
    """The server dies while the flush commits; the session saw an error. Once the server is back,
    the next flush finds out whether that commit went through: no duplicate polygon, no conflict
    with the session's own update, nothing missing, and the edits made meanwhile saved too."""
    prepare, waits_on, undo = DOUBT[how]
    url = up.database(f"restart_doubt_{how}")
    admin, (asset_id,) = make_project(url, ["ann"], IMAGES[:1])
    journal = Journal(tmp_path / "journal.db")
    project, session = open_session(url, "ann", asset_id, journal)
    try:
        paint(session, 0)
        stored_polygon = add_polygon(session, 1)
        assert session.flush().error is None
        before = versions(url)
        add_polygon(session, 3)  # an insert,
        paint(session, 2)  # an update of the stored mask,
        move_polygon(session, stored_polygon, 2.5)  # and of the stored polygon
        with admin_connect(url) as conn:
            for sql in prepare:
                conn.execute(sql)
        results: list[Any] = []
        flusher = threading.Thread(target=lambda: results.append(session.flush()))
        flusher.start()
        wait_for_commit_to_hang(url, waits_on)
        up.stop()
        flusher.join(WAIT_S)
        (result,) = results
        assert result.error is not None and session.status is SaveState.OFFLINE
        paint(session, 5)  # edited on while offline

        up.start()
        with admin_connect(url) as conn:
            for sql in undo:
                conn.execute(sql)
        went_through = how == "durable"
        assert len(versions(url)) == len(before) + int(went_through)  # the new polygon, or not
        retried = session.flush()
        assert retried.error is None and retried.conflicts == () and session.status is SaveState.SAVED
        assert journal.count(session.key) == 0
        labels, shapes = stored_as_loaded(url, "ann", asset_id, tmp_path)
        assert np.array_equal(labels, session.doc.label_map(0))
        assert np.array_equal(labels, expected_labels([0, 2, 5], labels.shape))
        assert shapes == polygons(session) and len(shapes) == 2  # not three
        assert len(versions(url)) == len(before) + 2  # + the polygon, + the lesion mask of stroke 5
    finally:
        session.close()
        journal.close()
        project.close()
        admin.close()


# --- killed while offline -------------------------------------------------------------------------


def test_a_session_killed_while_offline_recovers_its_edits_when_the_server_is_back(
    up: Any, tmp_path: Path
) -> None:
    url = up.database("restart_kill")
    admin, (asset_id,) = make_project(url, ["ann"], IMAGES[:1])
    journal_path = tmp_path / "journal.db"
    err = (tmp_path / "worker.err").open("w")
    child = subprocess.Popen(
        [sys.executable, __file__, url, "fault", str(asset_id), str(journal_path)],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
    )
    committed = -1
    try:
        assert child.stdout is not None

        def read() -> list[str]:
            line = child.stdout.readline() if child.stdout is not None else ""
            if not line:
                pytest.fail(f"the worker ended early: {(tmp_path / 'worker.err').read_text()}")
            return line.split()

        while (words := read())[0] != "saved":  # a first autosave reached the database
            pass
        up.stop()
        while (words := read())[0] != "offline":  # the worker's session noticed
            committed = max(committed, int(words[1])) if words[0] == "committed" else committed
        waiting_then = int(words[1])
        for _ in range(5):  # and journals five more strokes while offline
            while (words := read())[0] != "committed":
                pass
            committed = int(words[1])
        child.send_signal(signal.SIGKILL)
        child.wait(WAIT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(WAIT_S)
        err.close()
    assert child.returncode == -signal.SIGKILL and waiting_then > 0

    up.start()
    journal = Journal(journal_path)
    project, session = open_session(url, "ann", asset_id, journal)
    try:
        assert session.recoverable() > 0
        session.recover()
        result = session.flush()
        assert result.error is None and result.conflicts == ()
        assert journal.count(session.key) == 0
        labels, shapes = stored_as_loaded(url, "ann", asset_id, tmp_path)
        # every stroke the worker reported journaled is stored (one more may have been under way)
        assert any(
            np.array_equal(labels, expected_labels(range(n), labels.shape))
            for n in (committed + 1, committed + 2)
        ), "a stroke journaled before the kill is missing"
        assert shapes == [("lesion", tuple(polygon(1).ravel().tolist()))]
    finally:
        session.close()
        journal.close()
        project.close()
        admin.close()


def worker(argv: list[str]) -> None:
    """The SIGKILL test's workstation: a polygon, then strokes, autosaving every 0.5 s. Prints
    ``saved`` after the first save, ``offline N`` once the session is offline (N edits waiting),
    and ``committed I`` after each stroke is journaled. Runs until killed."""
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
    add_polygon(session, 1)
    session.start_autosave(0.5)
    said: set[str] = set()
    for i in range(100_000):
        paint(session, i)
        print(f"committed {i}", flush=True)
        for word, now in (("saved", session.last_saved_at), ("offline", session.status is SaveState.OFFLINE)):
            if now and word not in said:
                said.add(word)
                print(f"{word} {session.edits_waiting}", flush=True)
        time.sleep(0.05)


if __name__ == "__main__":
    worker(sys.argv[1:])
