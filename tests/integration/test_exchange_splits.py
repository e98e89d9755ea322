"""Splits are stored in the project (migration 0006), on SQLite and PostgreSQL: assigned once, grouped
by patient, the same in every export and in provenance.json, never changed as assets arrive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _frames_setup import ONTOLOGY
from _layouts_setup import patient_series
from sqlalchemy import Engine, inspect, text

from app import api, sample_data
from app.core.errors import PermissionDenied
from app.storage import Database, migrate


def _label(project: api.Project, ids: list[int]) -> None:
    for asset_id in ids:
        frame = 1 if project.asset(asset_id).frame_count > 1 else 0
        box = {"kind": "box", "label": "object", "frame": frame, "box": [10.0, 12.0, 60.0, 70.0]}
        project.upload_annotations(asset_id, [box])


def _splits_in(out: Path, project: api.Project) -> dict[int, str]:
    """Each exported asset's split as the YOLO export laid it out (images/<split>/...)."""
    found: dict[int, str] = {}
    for image in (out / "images").rglob("*.png"):
        split, *rest = image.relative_to(out / "images").parts
        if rest[0] == "frames":
            found[int(rest[1])] = split
        else:
            (asset,) = [a for a in project.assets() if image.as_posix().endswith("/" + a.rel_path)]
            found[asset.id] = split
    return found


def test_splits_are_stored_grouped_and_never_change(db_url: str, tmp_path: Path) -> None:
    project = api.create_project(db_url, "splits", ontology=ONTOLOGY, user="ann")
    images = [sample_data.skimage_images() / n for n in ("camera.png", "coins.png", "moon.png")]
    first = project.import_data(
        [*images, patient_series(tmp_path, "a1", "P1"), patient_series(tmp_path, "b", "P2")]
    )
    _label(project, first)
    assert project.splits().unassigned == 5 and not project.splits().assignments
    assigned = project.assign_splits(val=0.5, seed=3)
    assert assigned.added == 5 and assigned.plan.as_dict() == {
        "train": 0.5,
        "val": 0.5,
        "test": 0.0,
        "seed": 3,
    }
    before = {a.asset_id: a.split for a in assigned.assignments}
    assert set(before.values()) == {"train", "val"}
    project.export("yolo", tmp_path / "one", yolo_task="detect")
    assert _splits_in(tmp_path / "one", project) == before
    provenance = json.loads((tmp_path / "one" / "provenance.json").read_text())
    assert {a["asset_id"]: a["split"] for a in provenance["splits"]["assets"]} == before
    assert provenance["splits"]["plan"] == assigned.plan.as_dict()
    assert {i["asset_id"]: i["split"] for i in provenance["items"]} == before  # per item too

    # new assets: another study of P1, a new patient, more photos; and a new plan for them
    more = [sample_data.skimage_images() / n for n in ("astronaut.png", "chelsea.png")]
    later = project.import_data(
        [*more, patient_series(tmp_path, "a2", "P1", seed=4), patient_series(tmp_path, "c", "P3", seed=5)]
    )
    _label(project, later)
    project.assign_splits(val=0.1, test=0.0, seed=9)  # plan only touches assets assigned from now on
    project.export("yolo", tmp_path / "two", yolo_task="detect")
    after = project.splits()
    assert {i: after.split_of(i) for i in before} == before  # nothing assigned earlier moved
    assert after.split_of(later[2]) == before[first[3]]  # P1's new study joins P1
    assert _splits_in(tmp_path / "two", project) == {a.asset_id: a.split for a in after.assignments}
    groups = {a.asset_id: a.group for a in after.assignments}
    assert groups[later[2]] == groups[first[3]] and groups[first[4]] != groups[first[3]]
    assert after.unassigned == 0 and after.plan.val == 0.1

    project.set_member("lee", "reviewer")
    reviewer = api.open_project(project.db, "splits", user="lee")
    with pytest.raises(PermissionDenied):
        reviewer.assign_splits(val=0.3)  # changing the plan is for project admins
    assert reviewer.assign_splits().added == 0  # assigning new assets is any exporter's
    reviewer.close()
    project.close()


def _migrate(engine: Engine, revision: str, *, down: bool) -> None:
    from alembic import command

    with engine.begin() as connection:
        config = migrate.alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)


def test_0006_downgrades_and_upgrades_again(db_url: str, tmp_path: Path) -> None:
    project = api.create_project(db_url, "m", ontology=ONTOLOGY, user="ann")
    ids = project.import_data([sample_data.skimage_images() / "camera.png"])
    project.assign_splits(val=0.3)
    project.close()
    db = Database.open(db_url)
    try:
        assert migrate.KNOWN_REVISIONS[-1] == "0006" == migrate.script_heads()[0]
        engine = db.engine
        _migrate(engine, "0005", down=True)
        with engine.connect() as connection:
            assert migrate.stored_revision(connection) == "0005"
            tables = set(inspect(connection).get_table_names())
            assert not {"asset_splits", "split_plans"} & tables
            assert connection.execute(text("SELECT count(*) FROM assets")).scalar() == len(ids)
        _migrate(engine, "head", down=False)
        assert db.current_revision() == migrate.HEAD_REVISION == "0006"
        assert migrate.compare_schema(engine) == []
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM asset_splits")).scalar() == 0
    finally:
        db.dispose()
    again = api.open_project(db_url, "m", user="ann")
    assert again.assign_splits().added == len(ids)  # assigned afresh after the round trip
    again.close()
