"""Shared set-up for the editing tests, and a worker process the SIGKILL test runs and kills.

As a script: ``python _editing_worker.py DB_URL PROJECT ASSET_ID JOURNAL_PATH`` opens the project as
user ``ann``, adds one polygon, then paints stroke after stroke through the real BrushTool. After each
edit is journaled it prints ``committed <i> <time.time()>``. It never flushes to the database
(an autosave that has not happened yet) and runs until killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from app import api, sample_data
from app.core.annotations import Annotation, Kind
from app.core.commands import AddAnnotation
from app.core.tools.base import ToolContext
from app.core.tools.paint import BrushTool, EraserTool
from app.workflow.editing import EditSession
from app.workflow.journal import Journal

USER = "ann"
ONTOLOGY: dict[str, Any] = {
    "classes": [
        {"name": "liver", "color": "#c0504d"},
        {"name": "lesion", "color": "#4f81bd"},
        {"name": "landmark", "color": "#9bbb59"},
    ]
}
RADIUS = 6.0
POLYGON = np.array([[40.0, 40.0], [120.0, 50.0], [90.0, 130.0]])


def make_project(db_url: str, name: str = "p") -> tuple[api.Project, int]:
    """A project with the real 512x512 camera image registered as its one asset."""
    project = api.create_project(db_url, name, ontology=ONTOLOGY, user=USER)
    (asset_id,) = project.import_data([sample_data.skimage_images() / "camera.png"])
    return project, asset_id


def open_session(project: api.Project, asset_id: int, journal: Journal) -> EditSession:
    asset = project.asset(asset_id)
    return EditSession(project.db, project.id, asset, project.user, project.ontology, journal=journal).load()


def stroke(i: int) -> tuple[list[tuple[float, float]], int]:
    """Stroke ``i``: its pointer path and the value it paints (every 4th one erases)."""
    x, y = 20.0 + (i * 37) % 440, 25.0 + (i * 53) % 440
    path = [(x, y), (x + 15.5, y + 7.25), (x + 40.0, y + 22.0)]
    value = 0 if i % 4 == 3 else 1 + i % 2
    return path, value


def paint(session: EditSession, i: int, frame: int = 0) -> None:
    """Apply stroke ``i`` as the editor does: press, moves, release on the real tool."""
    path, value = stroke(i)
    ctx = ToolContext(session.doc, session.stack, frame=frame, class_index=max(value, 1))
    tool = EraserTool(ctx, RADIUS) if value == 0 else BrushTool(ctx, RADIUS)
    tool.press(*path[0])
    for x, y in path[1:]:
        tool.move(x, y)
    tool.release(*path[-1])


def expected_labels(strokes: range, shape: tuple[int, int]) -> np.ndarray:
    """The label map those strokes give, computed independently with the core rasteriser."""
    from app.core.raster import rasterize_stroke

    out = np.zeros(shape, dtype=np.uint16)
    for i in strokes:
        path, value = stroke(i)
        out[rasterize_stroke(np.array(path), RADIUS, shape)] = value
    return out


def add_polygon(session: EditSession, label: str = "liver") -> int:
    command = AddAnnotation(Annotation(Kind.POLYGON, label, points=POLYGON))
    session.stack.push(command)
    assert command.aid is not None
    return command.aid


def main(argv: list[str]) -> None:
    db_url, name, asset_id, journal_path = argv[0], argv[1], int(argv[2]), Path(argv[3])
    project = api.open_project(db_url, name, user=USER, create=False)
    session = open_session(project, asset_id, Journal(journal_path))
    add_polygon(session)
    print(f"polygon {time.time()}", flush=True)
    for i in range(10_000):
        paint(session, i)
        print(f"committed {i} {time.time()}", flush=True)
        time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1:])
