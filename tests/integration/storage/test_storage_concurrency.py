"""Optimistic concurrency, atomic units of work, and many writers on one SQLite file."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _storage_workers import save_many
from sqlalchemy import func, select

from app.core.annotations import Annotation, Kind
from app.core.errors import ConflictError
from app.core.records import AssetKind
from app.storage import Database
from app.storage.tables import AnnotationRow

POLY = np.array([[1.0, 1.0], [20.0, 1.0], [20.0, 30.0]])


def _setup(db: Database) -> tuple[int, int, Annotation]:
    with db.unit_of_work() as uow:
        user = uow.users.ensure("ana")
        project = uow.projects.create("liver")
        dataset = uow.datasets.ensure(project.id, "d")
        asset = uow.assets.add(
            project.id,
            dataset.id,
            kind=AssetKind.IMAGE,
            root="r",
            rel_path="a.png",
            size=1,
            mtime_ns=1,
            content_hash="h",
            frame_count=1,
            width=64,
            height=64,
            metadata={},
        )
        ann = uow.annotations.add(asset.id, Annotation(Kind.POLYGON, "liver", points=POLY), user.id)
    return user.id, asset.id, ann


def test_stale_update_and_delete_raise_conflict(db_url: str) -> None:
    """Two workstations, each with its own Database: both load v1, A saves v2, B's v1 save fails."""
    db_a, db_b = Database.open(db_url), Database.open(db_url)
    try:
        _, asset_id, ann = _setup(db_a)
        with db_a.unit_of_work(readonly=True) as uow:
            seen_a = uow.annotations.get(ann.id or 0)
        with db_b.unit_of_work(readonly=True) as uow:
            seen_b = uow.annotations.get(ann.id or 0)
        assert seen_a.version == seen_b.version == 1
        with db_a.unit_of_work() as uow:
            assert uow.annotations.update(seen_a.evolve(label="A")).version == 2
        with pytest.raises(ConflictError) as info, db_b.unit_of_work() as uow:
            uow.annotations.update(seen_b.evolve(label="B", points=POLY * 2))
        assert (info.value.expected_version, info.value.current_version) == (1, 2)
        assert "reload" in str(info.value)
        with pytest.raises(ConflictError), db_b.unit_of_work() as uow:
            uow.annotations.delete(seen_b.id or 0, seen_b.version)
        with db_b.unit_of_work(readonly=True) as uow:
            stored = uow.annotations.get(ann.id or 0)
            assert (stored.label, stored.version) == ("A", 2)
            assert np.array_equal(stored.points, POLY)  # B's data was not written
            assert len(uow.annotations.list(asset_id)) == 1
        # a save based on the newest version works; then saving against a deleted one conflicts
        with db_b.unit_of_work() as uow:
            uow.annotations.delete(stored.id or 0, 2)
        with pytest.raises(ConflictError, match="deleted"), db_a.unit_of_work() as uow:
            uow.annotations.update(stored.evolve(label="again"))
    finally:
        db_a.dispose()
        db_b.dispose()


@pytest.mark.postgres
def test_interleaved_transactions_on_postgres(pg_url: str) -> None:
    """B's transaction is open (it read v1) while A commits v2; B's save then conflicts."""
    db_a, db_b = Database.open(pg_url), Database.open(pg_url)
    try:
        _, _, ann = _setup(db_a)
        with pytest.raises(ConflictError), db_b.unit_of_work() as uow_b:
            seen_b = uow_b.annotations.get(ann.id or 0)
            with db_a.unit_of_work() as uow_a:
                uow_a.annotations.update(uow_a.annotations.get(ann.id or 0).evolve(label="A"))
            uow_b.annotations.update(seen_b.evolve(label="B"))
        with db_a.unit_of_work(readonly=True) as uow:
            assert uow.annotations.get(ann.id or 0).label == "A"
    finally:
        db_a.dispose()
        db_b.dispose()


def test_unit_of_work_is_atomic(db: Database) -> None:
    user_id, asset_id, ann = _setup(db)
    with db.unit_of_work() as uow:
        uow.annotations.update(ann.evolve(label="newer"))
    with pytest.raises(ConflictError), db.unit_of_work() as uow:
        uow.annotations.add_many(asset_id, [Annotation(Kind.BOX, "x", box=(0, 0, 1, 1))] * 5, user_id)
        uow.annotations.update(ann.evolve(label="stale"))  # fails: everything in this unit rolls back
    with pytest.raises(RuntimeError), db.unit_of_work() as uow:
        uow.users.ensure("temporary")
        raise RuntimeError("boom")
    with db.unit_of_work(readonly=True) as uow:
        assert [a.label for a in uow.annotations.list(asset_id)] == ["newer"]
        assert [u.name for u in uow.users.list()] == ["ana"]
        assert [e.action for e in uow.audit.list()] == ["annotation.update", "annotation.add"]


def test_run_retries_whole_units(db: Database) -> None:
    _, asset_id, _ = _setup(db)

    def work(uow: Any) -> int:
        return len(uow.annotations.list(asset_id))

    assert db.run(work, readonly=True) == 1


WORKERS, SAVES = 4, 500


def test_concurrent_sqlite_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    db = Database.open(path)
    _, asset_id, _ = _setup(db)
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    started = time.monotonic()
    with context.Pool(WORKERS) as pool:
        results = pool.starmap(save_many, [(str(path), asset_id, w, SAVES) for w in range(WORKERS)])
    elapsed = time.monotonic() - started
    errors = [e for _, errs in results for e in errs]
    assert errors == [], errors[:5]
    assert [saved for saved, _ in results] == [SAVES] * WORKERS
    with db.unit_of_work(readonly=True) as uow:
        total = uow.session.execute(select(func.count()).select_from(AnnotationRow)).scalar_one()
        assert total == 1 + WORKERS * SAVES
        anns = uow.annotations.list(asset_id)
        for worker in range(WORKERS):
            frames = sorted(a.frame for a in anns if a.author == f"worker{worker}")
            assert frames == list(range(SAVES))
    db.dispose()
    print(f"{WORKERS}x{SAVES} saves in {elapsed:.1f}s")
