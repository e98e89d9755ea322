"""Worker functions for multi-process storage tests (importable by spawned children)."""

from __future__ import annotations

import numpy as np

from app.core.annotations import Annotation, Kind


def save_many(url: str, asset_id: int, worker: int, count: int) -> tuple[int, list[str]]:
    """Open our own Database and save ``count`` annotations, one unit of work per save."""
    from app.storage import Database

    errors: list[str] = []
    saved = 0
    db = Database.open(url)
    try:
        with db.unit_of_work() as uow:
            user_id = uow.users.ensure(f"worker{worker}").id
        points = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
        for i in range(count):
            ann = Annotation(Kind.POLYGON, "liver", frame=i, points=points + worker, attributes={"i": i})
            try:
                with db.unit_of_work() as uow:
                    uow.annotations.add(asset_id, ann, user_id)
                saved += 1
            except Exception as exc:  # report every failure to the parent
                errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        db.dispose()
    return saved, errors
