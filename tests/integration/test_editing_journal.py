"""Never lose work: the local journal survives SIGKILL, recovery saves it, an unreachable database
keeps the edits local until it is back."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from _editing_worker import (
    POLYGON,
    USER,
    add_polygon,
    expected_labels,
    make_project,
    open_session,
    paint,
)
from sqlalchemy.engine import make_url

from app import api
from app.core.commands import ReplaceAnnotation
from app.workflow.editing import SaveState
from app.workflow.journal import Journal

WORKER = Path(__file__).with_name("_editing_worker.py")
KILL_AFTER = 25  # strokes


def _run_and_kill(
    db_url: str, asset_id: int, journal_path: Path, tmp_path: Path
) -> tuple[float, dict[int, float]]:
    """Start the worker, SIGKILL it after KILL_AFTER strokes; returns (kill time, stroke -> commit time)."""
    stderr = (tmp_path / "worker.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), db_url, "p", str(asset_id), str(journal_path)],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    committed: dict[int, float] = {}
    try:
        assert proc.stdout is not None
        while len(committed) < KILL_AFTER:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"the worker ended early: {(tmp_path / 'worker.err').read_text()}")
            words = line.split()
            if words[0] == "committed":
                committed[int(words[1])] = float(words[2])
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.time()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return killed_at, committed


def test_sigkill_after_strokes_then_restart_recovers_them(db_url: str, tmp_path: Path) -> None:
    project, asset_id = make_project(db_url)
    journal_path = tmp_path / "journal.db"
    killed_at, committed = _run_and_kill(db_url, asset_id, journal_path, tmp_path)
    assert project.annotation_objects(asset_id) == []  # the worker never saved to the database

    journal = Journal(journal_path)
    (pending,) = journal.pending()
    assert (pending.asset_id, pending.project_id, pending.user_name) == (asset_id, project.id, USER)
    assert pending.count >= 1 and pending.newest <= killed_at

    session = open_session(project, asset_id, journal)
    assert session.recoverable() == pending.count
    assert session.recover() == pending.count
    assert session.status is SaveState.UNSAVED
    result = session.flush()
    assert result.error is None and not result.conflicts
    assert journal.pending() == []

    # every stroke committed more than a second before the kill is in the database; the ones
    # after it may be too (they were journaled), so the map is the replay of strokes 0..j
    old_enough = max(i for i, t in committed.items() if t < killed_at - 1.0)
    fresh = open_session(project, asset_id, Journal(tmp_path / "other.db"))
    labels = fresh.doc.label_map(0)
    last = max(committed)
    matches = [
        j for j in (last, last + 1) if np.array_equal(labels, expected_labels(range(j + 1), labels.shape))
    ]
    assert matches and matches[0] >= old_enough
    (polygon,) = fresh.doc.annotations(0).values()
    assert np.array_equal(polygon.points, POLYGON)


def test_recovery_does_not_overwrite_a_newer_save_from_elsewhere(db_url: str, tmp_path: Path) -> None:
    project, asset_id = make_project(db_url)
    journal = Journal(tmp_path / "journal.db")
    crashed = open_session(project, asset_id, journal)
    add_polygon(crashed)
    paint(crashed, 0)
    crashed.flush()
    (aid,) = crashed.doc.annotations(0)
    before = crashed.doc.annotation(aid)
    crashed.stack.push(ReplaceAnnotation(aid, before, before.evolve(points=POLYGON + 3.0)))
    paint(crashed, 2)  # liver again: the label frame is pending too
    # ... and the app dies here (nothing closed). Another workstation saves newer versions:
    other = open_session(
        api.open_project(db_url, "p", user=USER, create=False), asset_id, Journal(tmp_path / "o.db")
    )
    (other_aid,) = other.doc.annotations(0)
    o_before = other.doc.annotation(other_aid)
    other.stack.push(ReplaceAnnotation(other_aid, o_before, o_before.evolve(points=POLYGON + 9.0)))
    paint(other, 4)
    other.flush()

    restarted = open_session(project, asset_id, journal)
    assert restarted.recover() == 2
    result = restarted.flush()
    assert {c.key if isinstance(c.key, tuple) else "polygon" for c in result.conflicts} == {
        "polygon",
        (0, "liver"),
    }
    stored = {a.kind.value: a for a in project.annotation_objects(asset_id)}
    assert np.array_equal(stored["polygon"].points, POLYGON + 9.0)  # theirs, untouched
    assert journal.count(restarted.key) == 2  # still kept until the user decides
    for conflict in restarted.conflicts:
        restarted.resolve(conflict, "mine")
    assert journal.count() == 0
    stored = {a.kind.value: a for a in project.annotation_objects(asset_id)}
    assert np.array_equal(stored["polygon"].points, POLYGON + 3.0)


def test_discarding_a_recovery(tmp_path: Path) -> None:
    project, asset_id = make_project(str(tmp_path / "labels.db"))
    journal = Journal(tmp_path / "journal.db")
    session = open_session(project, asset_id, journal)
    paint(session, 0)
    assert [p.asset_id for p in journal.pending()] == [asset_id]
    restarted = open_session(project, asset_id, journal)
    restarted.discard_recovery()
    assert journal.pending() == [] and restarted.recover() == 0


def _admin_connection(db_url: str) -> psycopg.Connection:
    """An autocommit connection to the cluster's maintenance database (for ALTER DATABASE)."""
    url = make_url(db_url)
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname="postgres",
        autocommit=True,
    )


def _go_offline(db_url: str, project: api.Project, share: Path | None) -> None:
    if share is not None:  # SQLite on a share that went away
        share.rename(share.with_name("unmounted"))
        project.db.dispose()  # its open handles would be dead too
        return
    name = make_url(db_url).database
    with _admin_connection(db_url) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def _back_online(db_url: str, share: Path | None) -> None:
    if share is not None:
        share.with_name("unmounted").rename(share)
        return
    with _admin_connection(db_url) as conn:
        conn.execute(f'ALTER DATABASE "{make_url(db_url).database}" ALLOW_CONNECTIONS true')


def test_unreachable_database_keeps_journaling_and_saves_later(db_url: str, tmp_path: Path) -> None:
    share: Path | None = None
    if "://" not in db_url or db_url.startswith("sqlite"):
        share = tmp_path / "share"
        db_url = str(share / "labels.db")
    project, asset_id = make_project(db_url)
    journal = Journal(tmp_path / "journal.db")
    session = open_session(project, asset_id, journal)
    paint(session, 0)
    session.flush()
    _go_offline(db_url, project, share)
    try:
        for i in range(1, 6):
            paint(session, i)
        result = session.flush()
        assert result.error is not None and session.status is SaveState.OFFLINE
        assert "unreachable" in session.status_text
        paint(session, 6)  # still editing, still journaled
        assert journal.count(session.key) == len(session.stack) - 1
    finally:
        _back_online(db_url, share)
    result = session.flush()
    assert result.error is None and session.status is SaveState.SAVED
    fresh = open_session(project, asset_id, Journal(tmp_path / "other.db"))
    assert np.array_equal(fresh.doc.label_map(0), expected_labels(range(7), fresh.doc.shape))
    assert journal.count() == 0


def test_journal_survives_reopening_and_copying(tmp_path: Path) -> None:
    """The journal is a plain SQLite file: closed, then copied away, it still holds the edits."""
    project, asset_id = make_project(str(tmp_path / "labels.db"))
    journal = Journal(tmp_path / "journal.db")
    session = open_session(project, asset_id, journal)
    for i in range(3):
        paint(session, i)
    journal.close()
    shutil.copy(tmp_path / "journal.db", tmp_path / "copy.db")
    (pending,) = Journal(tmp_path / "copy.db").pending()
    assert pending.count == 3 and pending.asset_id == asset_id
