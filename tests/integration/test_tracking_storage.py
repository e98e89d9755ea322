"""Track columns (migration 0004) on SQLite and PostgreSQL: round trip, query by track, up/down."""

from __future__ import annotations

from _queue_worker import add_assets, make_project
from sqlalchemy import Engine, inspect, text

from app.core.annotations import Annotation, Kind
from app.core.tracks import track_frames
from app.storage import Database, migrate


def _migrate(engine: Engine, revision: str, *, down: bool) -> None:
    from alembic import command

    with engine.begin() as connection:
        config = migrate.alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)


def _columns(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return {c["name"] for c in inspect(connection).get_columns("annotations")}


def _indexes(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return {str(i["name"]) for i in inspect(connection).get_indexes("annotations")}


def _box(frame: int, x: float, **kw: object) -> Annotation:
    return Annotation(Kind.BOX, "car", frame, box=(x, 10.0, x + 20.0, 30.0), **kw)  # type: ignore[arg-type]


def test_track_fields_round_trip_and_filter(db: Database) -> None:
    project, _ = make_project(db)
    (asset,) = add_assets(db, project, 1)
    with db.unit_of_work() as uow:
        saved = uow.annotations.add_many(
            asset,
            [
                _box(0, 0.0, track_id=7),
                _box(10, 40.0, track_id=7, keyframe=False, occluded=True),
                _box(12, 40.0, track_id=7, outside=True),
                _box(3, 5.0),  # plain
                _box(3, 1.0, track_id=8),
            ],
            None,
        )
    with db.unit_of_work(readonly=True) as uow:
        track = uow.annotations.list(asset, track_id=7)
        plain = [a for a in uow.annotations.list(asset) if a.track_id is None]
    assert [(a.frame, a.track_state) for a in track] == [
        (0, (7, True, False, False)),
        (10, (7, False, False, True)),
        (12, (7, True, True, False)),
    ]
    assert [a.track_state for a in plain] == [(None, True, False, False)]
    assert len(track_frames(track)) == 12  # frames 0..11: held until it leaves at 12

    # an edit keeps version checks and turns the tracked frame into a keyframe
    with db.unit_of_work() as uow:
        updated = uow.annotations.update(saved[1].evolve(keyframe=True, box=(41.0, 10.0, 61.0, 30.0)))
    assert updated.version == 2
    with db.unit_of_work(readonly=True) as uow:
        assert uow.annotations.get(saved[1].id or 0).track_state == (7, True, False, True)


def test_0004_downgrades_and_upgrades_again_keeping_annotations(db_url: str) -> None:
    db = Database.open(db_url)
    try:
        assert "0004" in migrate.KNOWN_REVISIONS and migrate.script_heads() == (migrate.HEAD_REVISION,)
        project, _ = make_project(db)
        (asset,) = add_assets(db, project, 1)
        with db.unit_of_work() as uow:
            uow.annotations.add_many(asset, [_box(0, 0.0, track_id=3), _box(1, 2.0)], None)
        engine = db.engine

        _migrate(engine, "0003", down=True)
        with engine.connect() as connection:
            assert migrate.stored_revision(connection) == "0003"
            kept = connection.execute(text("SELECT frame, label FROM annotations ORDER BY frame")).all()
        assert [tuple(r) for r in kept] == [(0, "car"), (1, "car")]
        assert not {"track_id", "keyframe", "outside", "occluded"} & _columns(engine)
        assert "ix_annotations_asset_track" not in _indexes(engine)
        assert {"ix_annotations_asset_frame", "ix_annotations_author"} <= _indexes(engine)

        _migrate(engine, "head", down=False)
        assert db.current_revision() == migrate.HEAD_REVISION
        assert migrate.compare_schema(engine) == []
        assert "ix_annotations_asset_track" in _indexes(engine)
        with db.unit_of_work(readonly=True) as uow:
            back = uow.annotations.list(asset)
        # the track id did not survive the downgrade (the columns were dropped): plain annotations now
        assert [a.track_state for a in back] == [(None, True, False, False)] * 2
    finally:
        db.dispose()
