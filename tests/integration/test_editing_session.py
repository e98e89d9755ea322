"""EditSession on a real image asset and a real database: strokes, vectors, undo, autosave state."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from _editing_worker import (
    POLYGON,
    USER,
    add_polygon,
    expected_labels,
    make_project,
    open_session,
    paint,
)

from app.core.annotations import Annotation, Kind
from app.core.commands import AddAnnotation, RemoveAnnotation, ReplaceAnnotation
from app.workflow.editing import SaveState
from app.workflow.journal import Journal


def _stored(project, asset_id: int) -> list[Annotation]:  # type: ignore[no-untyped-def]
    return project.annotation_objects(asset_id, labeler=USER)


def test_strokes_are_saved_as_one_mask_per_class_and_reload_identically(db_url: str, tmp_path: Path) -> None:
    project, asset_id = make_project(db_url)
    journal = Journal(tmp_path / "journal.db")
    session = open_session(project, asset_id, journal)
    assert session.status is SaveState.SAVED
    for i in range(12):
        paint(session, i)
    assert session.status is SaveState.UNSAVED
    assert journal.count(session.key) == len(session.stack)  # one entry per stroke that changed pixels
    shape = session.doc.shape
    assert np.array_equal(session.doc.label_map(0), expected_labels(range(12), shape))

    result = session.flush()
    assert result.error is None and not result.conflicts
    assert session.status is SaveState.SAVED and session.status_text == "All changes saved"
    assert journal.count(session.key) == 0  # the database holds it all: the journal is trimmed
    stored = _stored(project, asset_id)
    assert sorted(a.label for a in stored) == ["lesion", "liver"]
    assert all(a.kind is Kind.MASK and a.source == "human" and a.author == USER for a in stored)

    again = open_session(project, asset_id, journal)
    assert np.array_equal(again.doc.label_map(0), session.doc.label_map(0))
    assert not again.doc.annotations(0)  # the label layer is not duplicated as vector annotations

    # more strokes update the same two rows (version 2), erasing a class deletes its row
    paint(again, 12)
    again.flush()
    versions = {a.label: a.version for a in _stored(project, asset_id)}
    assert versions == {"liver": 2, "lesion": 1} or versions == {"liver": 1, "lesion": 2}
    labels = again.doc.label_map(0)
    labels[labels == 2] = 0  # an edit outside a command still reaches the session through emit
    again.doc.emit(0, (0, 0, shape[1], shape[0]))
    again.flush()
    assert [a.label for a in _stored(project, asset_id)] == ["liver"]
    session.close()
    again.close()


def test_vector_add_edit_delete_round_trip(db_url: str, tmp_path: Path) -> None:
    project, asset_id = make_project(db_url)
    journal = Journal(tmp_path / "journal.db")
    session = open_session(project, asset_id, journal)
    polygon = add_polygon(session)
    box = AddAnnotation(Annotation(Kind.BOX, "lesion", box=(10.0, 20.0, 60.0, 80.0)))
    point = AddAnnotation(Annotation(Kind.POINT, "landmark", points=np.array([[200.5, 100.5]])))
    session.stack.push(box)
    session.stack.push(point)
    assert session.pending_count == 3
    session.flush()
    assert sorted(a.kind.value for a in _stored(project, asset_id)) == ["box", "point", "polygon"]

    before = session.doc.annotation(polygon)
    moved = before.evolve(points=POLYGON + 5.0, attributes={"note": "moved"})
    session.stack.push(ReplaceAnnotation(polygon, before, moved))
    assert box.aid is not None
    session.stack.push(RemoveAnnotation(box.aid))
    session.flush()
    stored = {a.kind: a for a in _stored(project, asset_id)}
    assert set(stored) == {Kind.POLYGON, Kind.POINT}
    assert stored[Kind.POLYGON].same_content(moved) and stored[Kind.POLYGON].version == 2

    reloaded = open_session(project, asset_id, journal)
    contents = list(reloaded.doc.annotations(0).values())
    assert len(contents) == 2
    assert any(a.same_content(moved) for a in contents)
    assert journal.count() == 0


def test_undo_after_flush_then_flush_again_matches_the_document(db_url: str, tmp_path: Path) -> None:
    project, asset_id = make_project(db_url)
    session = open_session(project, asset_id, Journal(tmp_path / "journal.db"))
    paint(session, 0)
    add_polygon(session)
    session.flush()
    assert len(_stored(project, asset_id)) == 2

    session.stack.undo()  # the polygon
    session.stack.undo()  # the stroke
    assert session.status is SaveState.UNSAVED
    session.flush()
    assert _stored(project, asset_id) == []

    session.stack.redo()
    session.stack.redo()
    session.flush()
    stored = _stored(project, asset_id)
    assert sorted(a.kind.value for a in stored) == ["mask", "polygon"]
    mask = next(a for a in stored if a.kind is Kind.MASK)
    assert mask.mask is not None
    assert np.array_equal(mask.mask.to_full(), expected_labels(range(1), session.doc.shape) == 1)

    # undo back to exactly what is stored: nothing to write, yet the session is clean
    session.stack.undo()
    session.stack.redo()
    result = session.flush()
    assert result.saved == 0 and session.status is SaveState.SAVED


def test_model_prelabel_masks_stay_annotations_not_label_layer(db_url: str, tmp_path: Path) -> None:
    project, asset_id = make_project(db_url)
    full = np.zeros((512, 512), dtype=bool)
    full[100:150, 200:260] = True
    project.upload_annotations(
        asset_id, [{"kind": "mask", "label": "liver", "mask": full}], source="model:m@1"
    )
    session = open_session(project, asset_id, Journal(tmp_path / "journal.db"))
    assert not session.doc.has_label_map(0)
    (prelabel,) = session.doc.annotations(0).values()
    assert prelabel.source == "model:m@1"
    paint(session, 1)
    session.flush()
    assert len(_stored(project, asset_id)) == 2


def test_flush_on_a_worker_thread_while_painting_loses_nothing(db_url: str, tmp_path: Path) -> None:
    project, asset_id = make_project(db_url)
    journal = Journal(tmp_path / "journal.db")
    session = open_session(project, asset_id, journal)
    stop = threading.Event()
    errors: list[BaseException] = []

    def autosave() -> None:
        while not stop.is_set():
            try:
                session.flush()
            except BaseException as exc:  # surfaced below
                errors.append(exc)
                return

    worker = threading.Thread(target=autosave)
    worker.start()
    try:
        for i in range(40):
            paint(session, i)
            if i % 10 == 9:
                add_polygon(session, "lesion")
    finally:
        stop.set()
        worker.join()
    assert not errors
    session.flush()
    assert session.status is SaveState.SAVED and journal.count() == 0
    again = open_session(project, asset_id, journal)
    assert np.array_equal(again.doc.label_map(0), expected_labels(range(40), session.doc.shape))
    assert len(again.doc.annotations(0)) == 4


def test_autosave_thread_saves_without_a_save_button(db_url: str, tmp_path: Path) -> None:
    project, asset_id = make_project(db_url)
    session = open_session(project, asset_id, Journal(tmp_path / "journal.db"))
    session.start_autosave(0.05)
    paint(session, 0)
    deadline = threading.Event()
    for _ in range(200):
        if session.status is SaveState.SAVED:
            break
        deadline.wait(0.05)
    assert session.status is SaveState.SAVED
    assert len(_stored(project, asset_id)) == 1
    session.close()
