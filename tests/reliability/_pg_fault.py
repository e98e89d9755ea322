"""Shared by the PostgreSQL fault tests (test_fault_pg_restart.py, test_fault_commit_unknown.py):
the project set-up, the edits labelers make (real brush and editor commands) and how they are checked,
and the two ways a commit loses its answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from sqlalchemy.engine import make_url

from app import api, sample_data
from app.core.annotations import Annotation, Kind
from app.core.commands import AddAnnotation, ReplaceAnnotation
from app.core.raster import rasterize_stroke
from app.core.tools.base import ToolContext
from app.core.tools.paint import BrushTool, EraserTool
from app.workflow.editing import EditSession
from app.workflow.journal import Journal

ONTOLOGY: dict[str, Any] = {
    "classes": [
        {"name": "liver", "color": "#c0504d", "kinds": ["mask", "polygon"]},
        {"name": "lesion", "color": "#4f81bd", "kinds": ["mask", "polygon"]},
    ]
}
IMAGES = ["camera.png", "coins.png", "moon.png", "page.png"]
LABELERS = ["ann", "bob", "cid", "dee"]
RADIUS = 5.0
AUTOSAVE_S = 2.0  # the site default: while offline the retries come after 1 s, then every 2 s
WAIT_S = 60.0  # generous deadline for anything that should take seconds (2 shared cores)


def admin_connect(url: str, dbname: str | None = None) -> psycopg.Connection:
    u = make_url(url)
    return psycopg.connect(
        host=u.host, port=u.port, user=u.username, dbname=dbname or u.database, autocommit=True
    )


# --- edits ----------------------------------------------------------------------------------------


def stroke(i: int, shape: tuple[int, int]) -> tuple[list[tuple[float, float]], int]:
    """Stroke ``i``: its pointer path and the value it paints (every 5th one erases)."""
    h, w = shape
    x, y = 15.0 + (i * 37) % (w - 60), 15.0 + (i * 53) % (h - 60)
    return [(x, y), (x + 12.5, y + 6.25), (x + 30.0, y + 18.0)], (0 if i % 5 == 4 else 1 + i % 2)


def paint(session: EditSession, i: int) -> None:
    """Stroke ``i`` through the real brush (or eraser): press, moves, release."""
    path, value = stroke(i, session.doc.shape)
    ctx = ToolContext(session.doc, session.stack, frame=0, class_index=max(value, 1))
    tool = EraserTool(ctx, RADIUS) if value == 0 else BrushTool(ctx, RADIUS)
    tool.press(*path[0])
    for x, y in path[1:]:
        tool.move(x, y)
    tool.release(*path[-1])


def expected_labels(strokes: Iterable[int], shape: tuple[int, int]) -> np.ndarray:
    """The label map those strokes give, computed independently with the core rasteriser."""
    out = np.zeros(shape, dtype=np.uint16)
    for i in strokes:
        path, value = stroke(i, shape)
        out[rasterize_stroke(np.array(path), RADIUS, shape)] = value
    return out


def polygon(i: int) -> np.ndarray:
    x, y = 10.0 + (i * 29) % 200, 10.0 + (i * 17) % 200
    return np.array([[x, y], [x + 40.0, y + 3.0], [x + 22.0, y + 35.0]])


def add_polygon(session: EditSession, i: int) -> int:
    command = AddAnnotation(Annotation(Kind.POLYGON, "lesion" if i % 2 else "liver", points=polygon(i)))
    session.stack.push(command)
    assert command.aid is not None
    return command.aid


def move_polygon(session: EditSession, aid: int, dx: float) -> None:
    before = session.doc.annotation(aid)
    assert before.points is not None
    session.stack.push(ReplaceAnnotation(aid, before, before.evolve(points=before.points + dx)))


def polygons(session: EditSession) -> list[tuple[str, tuple[float, ...]]]:
    found = [
        (a.label, tuple(np.asarray(a.points, dtype=float).ravel().tolist()))
        for a in session.doc.annotations(0).values()
        if a.kind is Kind.POLYGON
    ]
    return sorted(found)


def make_project(url: str, labelers: list[str], images: list[str]) -> tuple[api.Project, list[int]]:
    project = api.create_project(url, "fault", ontology=ONTOLOGY, user="admin")
    ids = project.import_data([sample_data.skimage_images() / name for name in images])
    for name in labelers:
        project.set_member(name, "labeler")
    return project, ids


def open_session(url: str, user: str, asset_id: int, journal: Journal) -> tuple[api.Project, EditSession]:
    """A workstation's own connection pool (its own Database), and the user's session on the asset."""
    project = api.open_project(url, "fault", user=user, create=False)
    session = EditSession(
        project.db, project.id, project.asset(asset_id), project.user, project.ontology, journal=journal
    )
    return project, session.load()


def stored_as_loaded(url: str, user: str, asset_id: int, tmp: Path) -> tuple[np.ndarray, list[Any]]:
    """What a fresh start of the editor would show: label map and polygons read from the database."""
    project, fresh = open_session(url, user, asset_id, Journal(tmp / f"fresh-{user}.db"))
    try:
        return fresh.doc.label_map(0).copy(), polygons(fresh)
    finally:
        fresh.close()
        project.close()


def versions(url: str) -> dict[int, int]:
    with admin_connect(url) as conn:
        rows = conn.execute("SELECT id, version FROM annotations WHERE NOT deleted").fetchall()
    return {int(i): int(v) for i, v in rows}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> float:
    """Poll until ``condition`` holds; returns the monotonic time it did (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)
    return time.monotonic()


# --- a commit in doubt -------------------------------------------------------------------------------


# Two ways a commit loses its answer. "durable": the commit is in the WAL and the backend waits for a
# synchronous standby that never comes (so it went through). "cut": a deferred constraint trigger
# sleeps inside COMMIT, before the commit record (so it did not).
DOUBT = {
    "durable": (
        ["ALTER SYSTEM SET synchronous_standby_names = 'nobody'", "SELECT pg_reload_conf()"],
        "SyncRep",
        ["ALTER SYSTEM RESET synchronous_standby_names", "SELECT pg_reload_conf()"],
    ),
    "cut": (
        [
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(300); RETURN NULL; END $$",
            "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT OR UPDATE ON annotations "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
        ],
        "PgSleep",
        ["DROP TRIGGER slow_commit ON annotations"],
    ),
}


def wait_for_commit_to_hang(url: str, waits_on: str) -> None:
    """Block until one app connection sits inside its COMMIT on ``waits_on`` (a DOUBT wait event)."""
    with admin_connect(url) as watcher:
        wait_for(
            lambda: (
                watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event = %s "
                    "AND application_name = 'sitelabel'",
                    (waits_on,),
                ).fetchone()
                == (1,)
            ),
            f"the commit to wait ({waits_on})",
        )
