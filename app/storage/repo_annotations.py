"""Annotations: optimistic concurrency (version column), soft delete, bulk insert, audit rows."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Text, and_, cast, func, insert, select, text, update
from sqlalchemy.orm import Session

from app.core.annotations import Annotation
from app.core.errors import ConflictError, NotFoundError
from app.storage.codec import annotation_from_row, annotation_values, parse_geometries
from app.storage.repositories import AuditRepository
from app.storage.tables import AnnotationRow, UserRow, table_of, utcnow

_T = table_of(AnnotationRow)
_COLUMNS = (
    AnnotationRow.id,
    AnnotationRow.asset_id,
    AnnotationRow.frame,
    AnnotationRow.kind,
    AnnotationRow.label,
    # the JSON text, parsed for a whole result at once (codec.parse_geometries): fast bulk reads
    cast(AnnotationRow.geometry, Text).label("geometry"),
    AnnotationRow.mask,
    cast(AnnotationRow.attributes, Text).label("attributes"),  # mostly "{}": not worth a JSON parse
    AnnotationRow.source,
    AnnotationRow.confidence,
    AnnotationRow.version,
    AnnotationRow.deleted,
    AnnotationRow.track_id,
    AnnotationRow.keyframe,
    AnnotationRow.outside,
    AnnotationRow.occluded,
    UserRow.name.label("author"),
)


def _track_values(ann: Annotation) -> dict[str, Any]:
    """Track columns: all NULL for a plain annotation (rows before migration 0004 read the same)."""
    if ann.track_id is None:
        return {"track_id": None, "keyframe": None, "outside": None, "occluded": None}
    return {
        "track_id": ann.track_id,
        "keyframe": ann.keyframe,
        "outside": ann.outside,
        "occluded": ann.occluded,
    }


class AnnotationRepository:
    """Every add, update and delete also writes an audit row (action ``annotation.*``)."""

    def __init__(self, session: Session, audit: AuditRepository) -> None:
        self._session = session
        self._audit = audit
        self._names: dict[int, str | None] = {}

    # --- reads ------------------------------------------------------------------------------------
    def _select(self) -> Any:
        return select(*_COLUMNS).outerjoin(UserRow, UserRow.id == AnnotationRow.author_id)

    @staticmethod
    def _load(row: Row[Any], geometry: Any = None) -> Annotation:
        mapping = row._mapping
        ann = annotation_from_row(mapping, mapping["author"], geometry)
        if mapping["track_id"] is None:
            return ann
        return ann.evolve(
            track_id=int(mapping["track_id"]),
            keyframe=mapping["keyframe"] is not False,
            outside=bool(mapping["outside"]),
            occluded=bool(mapping["occluded"]),
        )

    def get(self, annotation_id: int, *, include_deleted: bool = False) -> Annotation:
        row = self._session.execute(self._select().where(AnnotationRow.id == annotation_id)).first()
        if row is None or (row.deleted and not include_deleted):
            raise NotFoundError(f"annotation {annotation_id} does not exist or was deleted")
        return self._load(row)

    def list(
        self,
        asset_id: int,
        frame: int | None = None,
        author_id: int | None = None,
        source: str | None = None,
        *,
        label: str | None = None,
        track_id: int | None = None,
    ) -> builtins.list[Annotation]:
        """Live annotations of an asset (deleted ones left out), oldest first."""
        query = self._select().where(AnnotationRow.asset_id == asset_id, AnnotationRow.deleted.is_(False))
        if track_id is not None:
            query = query.where(AnnotationRow.track_id == track_id)
        if frame is not None:
            query = query.where(AnnotationRow.frame == frame)
        if author_id is not None:
            query = query.where(AnnotationRow.author_id == author_id)
        if source is not None:
            query = query.where(AnnotationRow.source == source)
        if label is not None:
            query = query.where(AnnotationRow.label == label)
        rows = self._session.execute(query.order_by(AnnotationRow.id)).all()
        geometries = parse_geometries([row.geometry for row in rows])
        return [self._load(row, geometry) for row, geometry in zip(rows, geometries, strict=True)]

    def count(self, asset_id: int) -> int:
        query = select(func.count()).where(
            AnnotationRow.asset_id == asset_id, AnnotationRow.deleted.is_(False)
        )
        return int(self._session.execute(query).scalar_one())

    def _author_name(self, author_id: int | None) -> str | None:
        if author_id is None:
            return None
        if author_id not in self._names:
            name = self._session.execute(select(UserRow.name).where(UserRow.id == author_id)).scalar()
            if name is None:
                raise NotFoundError(f"user {author_id} does not exist")
            self._names[author_id] = name
        return self._names[author_id]

    # --- writes -----------------------------------------------------------------------------------
    def add(self, asset_id: int, ann: Annotation, author_id: int | None) -> Annotation:
        return self.add_many(asset_id, [ann], author_id)[0]

    def add_many(
        self, asset_id: int, anns: Sequence[Annotation], author_id: int | None
    ) -> builtins.list[Annotation]:
        """Insert new annotations in one statement; returns them with id, version 1 and asset id."""
        if not anns:
            return []
        author = self._author_name(author_id)
        now = utcnow()
        rows = [
            {
                **annotation_values(a),
                **_track_values(a),
                "asset_id": asset_id,
                "author_id": author_id,
                "version": 1,
                "deleted": False,
                "created_at": now,
                "updated_at": now,
            }
            for a in anns
        ]
        ids = self._allocate_ids(len(rows))
        for row, new_id in zip(rows, ids, strict=True):
            row["id"] = new_id
        self._session.execute(insert(_T), rows)  # executemany / multi-row VALUES, no per-row RETURNING
        if len(ids) == 1:
            self._audit.record(
                author_id,
                "annotation.add",
                "annotation",
                ids[0],
                {"asset_id": asset_id, "label": anns[0].label, "kind": anns[0].kind.value},
            )
        else:
            self._audit.record(
                author_id, "annotation.add_many", "asset", asset_id, {"count": len(ids), "ids": ids}
            )
        return [
            a.evolve(id=i, version=1, asset_id=asset_id, author=author)
            for a, i in zip(anns, ids, strict=True)
        ]

    def _allocate_ids(self, count: int) -> builtins.list[int]:
        """Ids for ``count`` new rows, so a bulk insert needs no per-row RETURNING.

        PostgreSQL: taken from the table's sequence (safe with concurrent writers). SQLite: the next
        ids after the largest one; safe because a write unit holds the write lock (BEGIN IMMEDIATE).
        """
        if self._session.get_bind().dialect.name == "postgresql":
            result = self._session.execute(
                text(
                    "SELECT nextval(pg_get_serial_sequence('annotations', 'id')) FROM generate_series(1, :n)"
                ),
                {"n": count},
            )
            return sorted(int(i) for i in result.scalars())
        top = self._session.execute(select(func.max(AnnotationRow.id))).scalar()
        start = int(top or 0) + 1
        return list(range(start, start + count))

    def _conflict(self, annotation_id: int, expected: int, action: str) -> ConflictError | NotFoundError:
        row = self._session.execute(
            select(AnnotationRow.version, AnnotationRow.deleted).where(AnnotationRow.id == annotation_id)
        ).first()
        if row is None:
            return NotFoundError(f"annotation {annotation_id} does not exist")
        if row.deleted:
            message = (
                f"cannot {action} annotation {annotation_id}: someone deleted it meanwhile "
                f"(now version {row.version}, yours was {expected})"
            )
        else:
            message = (
                f"cannot {action} annotation {annotation_id}: someone else saved a newer version "
                f"({row.version}, yours was based on {expected}); reload it and apply your change again"
            )
        return ConflictError(
            message, annotation_id=annotation_id, expected_version=expected, current_version=int(row.version)
        )

    def _guarded(self, annotation_id: int, expected: int) -> Any:
        return and_(
            AnnotationRow.id == annotation_id,
            AnnotationRow.version == expected,
            AnnotationRow.deleted.is_(False),
        )

    def update(self, ann: Annotation, *, editor_id: int | None = None) -> Annotation:
        """Save new content for ``ann.id``, which was based on ``ann.version``; returns version + 1.

        Raises ConflictError when the stored version differs or the annotation was deleted.
        Author and asset are kept; ``editor_id`` is who made the change (for the audit log).
        """
        if ann.id is None:
            raise NotFoundError("this annotation was never saved; add it instead of updating it")
        values = {**annotation_values(ann), **_track_values(ann)}
        result = self._session.execute(
            update(_T)
            .where(self._guarded(ann.id, ann.version))
            .values(**values, version=_T.c.version + 1, updated_at=utcnow())
            .returning(_T.c.version, _T.c.asset_id)
        ).first()
        if result is None:
            raise self._conflict(ann.id, ann.version, "save")
        self._audit.record(
            editor_id,
            "annotation.update",
            "annotation",
            ann.id,
            {"version": int(result.version), "label": ann.label},
        )
        return ann.evolve(version=int(result.version), asset_id=int(result.asset_id))

    def delete(self, annotation_id: int, expected_version: int, *, user_id: int | None = None) -> None:
        """Soft delete (the row stays for history); ConflictError when ``expected_version`` is stale."""
        result = self._session.execute(
            update(_T)
            .where(self._guarded(annotation_id, expected_version))
            .values(deleted=True, version=_T.c.version + 1, updated_at=utcnow())
            .returning(_T.c.version)
        ).first()
        if result is None:
            raise self._conflict(annotation_id, expected_version, "delete")
        self._audit.record(
            user_id, "annotation.delete", "annotation", annotation_id, {"version": int(result.version)}
        )
