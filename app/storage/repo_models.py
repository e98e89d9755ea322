"""Registered machine-learning models and the predictions (pre-labels) they made.

Models are site-wide (one row per NAME@VERSION, with the file's sha256 and manifest); a
prediction row links a model to the pre-label annotation it produced on an asset.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.core.errors import ConflictError, NotFoundError
from app.storage.tables import AssetRow, ModelRow, PredictionRow, table_of, utcnow

_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class StoredModel:
    id: int
    name: str
    version: str
    sha256: str
    manifest: Mapping[str, Any]
    path: str  # the .onnx relative to the site's models folder (posix), or absolute outside it
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class StoredPrediction:
    id: int
    model_id: int
    asset_id: int
    annotation_id: int | None
    confidence: float | None


def _model(row: ModelRow) -> StoredModel:
    return StoredModel(
        row.id, row.name, row.version, row.sha256, dict(row.manifest or {}), row.path, row.created_at
    )


class ModelRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def register(
        self, name: str, version: str, sha256: str, manifest: Mapping[str, Any], path: str
    ) -> tuple[StoredModel, bool]:
        """Record a model; returns (model, created). The same file again updates its path only;
        another file under the same NAME@VERSION is a ConflictError."""
        row = self._s.execute(
            select(ModelRow).where(ModelRow.name == name, ModelRow.version == version)
        ).scalar_one_or_none()
        if row is not None:
            if row.sha256 != sha256:
                raise ConflictError(
                    f"model {name}@{version} is already registered with another file (sha256 "
                    f"{row.sha256[:12]}…); give the new one another version"
                )
            row.path = path
            self._s.flush()
            return _model(row), False
        row = ModelRow(
            name=name, version=version, sha256=sha256, manifest=dict(manifest), path=path, created_at=utcnow()
        )
        self._s.add(row)
        self._s.flush()
        return _model(row), True

    def get(self, model_id: int) -> StoredModel:
        row = self._s.get(ModelRow, model_id)
        if row is None:
            raise NotFoundError(f"model {model_id} is not registered")
        return _model(row)

    def find(self, name: str, version: str | None = None) -> StoredModel:
        """``name`` at ``version``, else its most recently registered version."""
        query = select(ModelRow).where(ModelRow.name == name)
        if version is not None:
            query = query.where(ModelRow.version == version)
        row = self._s.execute(query.order_by(ModelRow.id.desc()).limit(1)).scalar_one_or_none()
        if row is None:
            wanted = f"{name}@{version}" if version else name
            known = sorted(f"{m.name}@{m.version}" for m in self.list())
            raise NotFoundError(f"no registered model {wanted}; registered: {known}")
        return _model(row)

    def list(self) -> builtins.list[StoredModel]:
        rows = self._s.execute(select(ModelRow).order_by(ModelRow.name, ModelRow.id)).scalars()
        return [_model(r) for r in rows]

    # --- predictions --------------------------------------------------------------------------------
    def add_predictions(self, rows: Sequence[tuple[int, int, int | None, float | None]]) -> None:
        """(model_id, asset_id, annotation_id, confidence) rows."""
        if not rows:
            return
        now = utcnow()
        self._s.execute(
            insert(table_of(PredictionRow)),
            [
                {"model_id": m, "asset_id": a, "annotation_id": ann, "confidence": c, "created_at": now}
                for m, a, ann, c in rows
            ],
        )

    def predictions(
        self, project_id: int, *, model_id: int | None = None, asset_ids: Iterable[int] | None = None
    ) -> builtins.list[StoredPrediction]:
        query = (
            select(PredictionRow)
            .join(AssetRow, AssetRow.id == PredictionRow.asset_id)
            .where(AssetRow.project_id == project_id)
        )
        if model_id is not None:
            query = query.where(PredictionRow.model_id == model_id)
        if asset_ids is not None:
            query = query.where(PredictionRow.asset_id.in_(list(asset_ids)))
        rows = self._s.execute(query.order_by(PredictionRow.id)).scalars()
        return [StoredPrediction(r.id, r.model_id, r.asset_id, r.annotation_id, r.confidence) for r in rows]

    def prediction_for(self, annotation_id: int) -> StoredPrediction | None:
        row = self._s.execute(
            select(PredictionRow).where(PredictionRow.annotation_id == annotation_id).limit(1)
        ).scalar_one_or_none()
        if row is None:
            return None
        return StoredPrediction(row.id, row.model_id, row.asset_id, row.annotation_id, row.confidence)

    def forget_predictions(self, annotation_ids: Sequence[int]) -> None:
        """Drop the prediction rows of withdrawn pre-labels (a re-run replaced them unseen)."""
        ids = list(annotation_ids)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            self._s.execute(delete(PredictionRow).where(PredictionRow.annotation_id.in_(chunk)))
