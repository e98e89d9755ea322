"""The same user on two workstations (two Database objects on one URL) editing the same things."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _editing_worker import POLYGON, USER, add_polygon, make_project, open_session, paint

from app import api
from app.core.annotations import Annotation, Kind
from app.core.commands import RemoveAnnotation, ReplaceAnnotation
from app.core.errors import NotFoundError
from app.workflow.editing import Conflict, EditSession, SaveState
from app.workflow.journal import Journal


def _two_workstations(db_url: str, tmp_path: Path) -> tuple[api.Project, api.Project, int]:
    first, asset_id = make_project(db_url)
    second = api.open_project(db_url, "p", user=USER, create=False)  # its own Database object
    assert second.db is not first.db
    return first, second, asset_id


def _session(project: api.Project, asset_id: int, tmp_path: Path, name: str) -> EditSession:
    return open_session(project, asset_id, Journal(tmp_path / f"{name}.db"))


def _move(session: EditSession, aid: int, dx: float) -> Annotation:
    before = session.doc.annotation(aid)
    after = before.evolve(points=POLYGON + dx)
    session.stack.push(ReplaceAnnotation(aid, before, after))
    return after


def _polygon_conflict(
    db_url: str, tmp_path: Path
) -> tuple[api.Project, EditSession, EditSession, int, Conflict]:
    first, second, asset_id = _two_workstations(db_url, tmp_path)
    a = _session(first, asset_id, tmp_path, "a")
    add_polygon(a)
    a.flush()
    b = _session(second, asset_id, tmp_path, "b")
    (aid_b,) = b.doc.annotations(0)
    (aid_a,) = a.doc.annotations(0)
    _move(a, aid_a, 10.0)
    a.flush()
    _move(b, aid_b, 20.0)
    result = b.flush()
    assert len(result.conflicts) == 1 and b.status is SaveState.CONFLICT
    assert "conflict" in b.status_text
    return first, a, b, aid_b, result.conflicts[0]


def test_a_stale_save_is_a_conflict_and_overwrites_nothing(db_url: str, tmp_path: Path) -> None:
    project, _a, b, aid_b, conflict = _polygon_conflict(db_url, tmp_path)
    assert conflict.key == aid_b
    assert conflict.mine is not None and np.array_equal(conflict.mine.points, POLYGON + 20.0)
    assert conflict.theirs is not None and np.array_equal(conflict.theirs.points, POLYGON + 10.0)
    assert conflict.their_version == 2
    (stored,) = project.annotation_objects(b.asset.id)
    assert np.array_equal(stored.points, POLYGON + 10.0) and stored.version == 2  # theirs is intact
    # the conflicted item stays pending, retried flushes do not overwrite either
    b.flush()
    (stored,) = project.annotation_objects(b.asset.id)
    assert stored.version == 2


def test_resolve_keep_mine_saves_mine_over_theirs_and_audits(db_url: str, tmp_path: Path) -> None:
    project, _a, b, _aid_b, conflict = _polygon_conflict(db_url, tmp_path)
    result = b.resolve(conflict, "mine")
    assert not result.conflicts and b.status is SaveState.SAVED
    (stored,) = project.annotation_objects(b.asset.id)
    assert np.array_equal(stored.points, POLYGON + 20.0) and stored.version == 3
    with project.db.unit_of_work(readonly=True) as uow:
        actions = [e.action for e in uow.audit.list()]
    assert "annotation.conflict.keep_mine" in actions
    with pytest.raises(NotFoundError):
        b.resolve(conflict, "mine")


def test_resolve_take_theirs_replaces_the_local_content(db_url: str, tmp_path: Path) -> None:
    project, _a, b, aid_b, conflict = _polygon_conflict(db_url, tmp_path)
    result = b.resolve(conflict, "theirs")
    assert not result.conflicts and b.status is SaveState.SAVED
    assert np.array_equal(b.doc.annotation(aid_b).points, POLYGON + 10.0)
    assert not b.stack.can_undo  # documented: taking theirs clears the undo history
    (stored,) = project.annotation_objects(b.asset.id)
    assert stored.version == 2
    assert b.journal.count() == 0
    # later edits save normally on top of their version
    _move(b, aid_b, 30.0)
    assert not b.flush().conflicts
    (stored,) = project.annotation_objects(b.asset.id)
    assert stored.version == 3


def test_edit_of_an_annotation_deleted_elsewhere(db_url: str, tmp_path: Path) -> None:
    first, second, asset_id = _two_workstations(db_url, tmp_path)
    a = _session(first, asset_id, tmp_path, "a")
    add_polygon(a)
    a.flush()
    b = _session(second, asset_id, tmp_path, "b")
    (aid_a,) = a.doc.annotations(0)
    (aid_b,) = b.doc.annotations(0)
    a.stack.push(RemoveAnnotation(aid_a))
    a.flush()
    _move(b, aid_b, 5.0)
    (conflict,) = b.flush().conflicts
    assert conflict.theirs is None and conflict.mine is not None
    assert first.annotation_objects(asset_id) == []
    b.resolve(conflict, "mine")  # keep mine: stored again as a new annotation
    (stored,) = first.annotation_objects(asset_id)
    assert np.array_equal(stored.points, POLYGON + 5.0)


def test_label_layer_conflict_take_theirs(db_url: str, tmp_path: Path) -> None:
    first, second, asset_id = _two_workstations(db_url, tmp_path)
    a = _session(first, asset_id, tmp_path, "a")
    paint(a, 0)  # liver
    a.flush()
    b = _session(second, asset_id, tmp_path, "b")
    paint(a, 2)  # liver again, elsewhere
    a.flush()
    paint(b, 4)  # liver on b, based on version 1
    paint(b, 1)  # lesion: no one else touched it, so it saves
    result = b.flush()
    (conflict,) = result.conflicts
    assert conflict.key == (0, "liver")
    assert conflict.theirs is not None and conflict.mine is not None
    labels = {a.label: a.version for a in first.annotation_objects(asset_id)}
    assert labels == {"liver": 2, "lesion": 1}
    b.resolve(conflict, "theirs")
    assert b.status is SaveState.SAVED
    index = b.ontology.index_of("liver")
    assert np.array_equal(b.doc.label_map(0) == index, a.doc.label_map(0) == index)
    liver = next(x for x in first.annotation_objects(asset_id) if x.label == "liver")
    assert liver.version == 2


def test_label_layer_conflict_keep_mine(db_url: str, tmp_path: Path) -> None:
    first, second, asset_id = _two_workstations(db_url, tmp_path)
    a = _session(first, asset_id, tmp_path, "a")
    paint(a, 0)
    a.flush()
    b = _session(second, asset_id, tmp_path, "b")
    paint(a, 2)
    a.flush()
    paint(b, 4)
    (conflict,) = b.flush().conflicts
    b.resolve(conflict, "mine")
    liver = next(x for x in first.annotation_objects(asset_id) if x.label == "liver")
    assert liver.version == 3 and liver.mask is not None
    assert np.array_equal(liver.mask.to_full(), b.doc.label_map(0) == b.ontology.index_of("liver"))
    assert Kind.MASK is liver.kind
