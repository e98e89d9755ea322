"""Migration 0003 (review) upgrades and downgrades on SQLite and PostgreSQL, keeping the queue's rows."""

from __future__ import annotations

from _queue_worker import make_project, make_queue
from sqlalchemy import Engine, inspect, text

from app.storage import Database, migrate


def _migrate(engine: Engine, revision: str, *, down: bool) -> None:
    from alembic import command

    with engine.begin() as connection:
        config = migrate.alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)


def _columns(engine: Engine, table: str) -> set[str]:
    with engine.connect() as connection:
        return {c["name"] for c in inspect(connection).get_columns(table)}


def _indexes(engine: Engine, table: str) -> set[str]:
    with engine.connect() as connection:
        return {str(i["name"]) for i in inspect(connection).get_indexes(table)}


def test_0003_downgrades_and_upgrades_again_keeping_tasks(db_url: str) -> None:
    db = Database.open(db_url)
    try:
        assert "0003" in migrate.KNOWN_REVISIONS
        project, _users = make_project(db)
        assets = make_queue(db, project, 3)
        engine = db.engine
        with engine.begin() as connection:
            connection.execute(text("UPDATE tasks SET agreement = 0.25, priority = 0.5"))

        _migrate(engine, "0002", down=True)
        with engine.connect() as connection:
            assert migrate.stored_revision(connection) == "0002"
            kept = connection.execute(text("SELECT asset_id, priority FROM tasks ORDER BY asset_id")).all()
        assert [(a, p) for a, p in kept] == [(a, 0.5) for a in assets]
        assert "agreement" not in _columns(engine, "tasks")
        assert "details" not in _columns(engine, "reviews")
        assert "ix_tasks_queue" in _indexes(engine, "tasks")
        assert "ix_reviews_task" not in _indexes(engine, "reviews")

        _migrate(engine, "0003", down=False)
        with engine.connect() as connection:
            assert migrate.stored_revision(connection) == "0003"
            again = connection.execute(text("SELECT count(*), max(agreement) FROM tasks")).one()
        assert tuple(again) == (3, None)  # the score is recomputed on the next submit, not invented
        assert "details" in _columns(engine, "reviews")
        assert "ix_reviews_task" in _indexes(engine, "reviews")

        _migrate(engine, "head", down=False)  # later revisions build on 0003
        assert db.current_revision() == migrate.HEAD_REVISION
        assert migrate.compare_schema(engine) == []
    finally:
        db.dispose()
