"""Repositories for users, projects, ontologies, datasets, data roots, assets and the audit log.

They return records from :mod:`app.core.records` (never ORM rows). Audit is explicit here: the API
layer calls ``uow.audit.record``; only the annotation repository audits itself.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.core.errors import ConflictError, NotFoundError, ValidationError
from app.core.ontology import Ontology
from app.core.records import (
    Asset,
    AssetKind,
    AuditEntry,
    DataRoot,
    Dataset,
    Project,
    ProjectSettings,
    Role,
    User,
)
from app.storage.tables import (
    AssetRow,
    AuditRow,
    DataRootRow,
    DatasetRow,
    MemberRow,
    OntologyRow,
    ProjectRow,
    UserRow,
    table_of,
    utcnow,
)


def insert_ignore(
    session: Session, table: Table, values: Mapping[str, Any], keys: builtins.list[str]
) -> None:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, safe against concurrent inserts of the same key."""
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    session.execute(ins.values(**values).on_conflict_do_nothing(index_elements=keys))


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        name=row.name,
        display_name=row.display_name or row.name,
        role=Role(row.role),
        active=row.active,
    )


class UserRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def ensure(self, name: str, display_name: str | None = None) -> User:
        """The user called ``name``, created (as a labeler) if new."""
        name = name.strip()
        if not name:
            raise ValidationError("a user needs a name")
        insert_ignore(
            self._s,
            table_of(UserRow),
            {
                "name": name,
                "display_name": display_name or name,
                "role": Role.LABELER.value,
                "active": True,
                "created_at": utcnow(),
            },
            ["name"],
        )
        return self.get_by_name(name)

    def get(self, user_id: int) -> User:
        row = self._s.get(UserRow, user_id)
        if row is None:
            raise NotFoundError(f"user {user_id} does not exist")
        return _user(row)

    def get_by_name(self, name: str) -> User:
        row = self._s.execute(select(UserRow).where(UserRow.name == name)).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"there is no user called {name!r}")
        return _user(row)

    def list(self) -> builtins.list[User]:
        return [_user(r) for r in self._s.execute(select(UserRow).order_by(UserRow.name)).scalars()]

    def set_role(self, user_id: int, role: Role, project_id: int | None = None) -> None:
        """Set the global role (``project_id`` None) or the user's role in one project."""
        self.get(user_id)
        role = Role(role)
        if project_id is None:
            self._s.execute(update(UserRow).where(UserRow.id == user_id).values(role=role.value))
            return
        if self._s.get(ProjectRow, project_id) is None:
            raise NotFoundError(f"project {project_id} does not exist")
        member = self._s.get(MemberRow, (project_id, user_id))
        if member is None:
            self._s.add(MemberRow(project_id=project_id, user_id=user_id, role=role.value))
        else:
            member.role = role.value
        self._s.flush()

    def role_in(self, user_id: int, project_id: int) -> Role | None:
        """The user's role in a project: the membership role, else ADMIN for global admins, else None."""
        member = self._s.get(MemberRow, (project_id, user_id))
        if member is not None:
            return Role(member.role)
        user = self.get(user_id)
        return Role.ADMIN if user.role is Role.ADMIN else None

    def members(self, project_id: int) -> builtins.list[tuple[User, Role]]:
        rows = self._s.execute(
            select(UserRow, MemberRow.role)
            .join(MemberRow, MemberRow.user_id == UserRow.id)
            .where(MemberRow.project_id == project_id)
            .order_by(UserRow.name)
        ).all()
        return [(_user(u), Role(r)) for u, r in rows]


def _project(row: ProjectRow) -> Project:
    settings = ProjectSettings(
        consensus_share=row.consensus_share,
        consensus_count=row.consensus_count,
        batch_size=row.batch_size,
        lease_seconds=row.lease_seconds,
    )
    return Project(id=row.id, name=row.name, settings=settings, created_at=row.created_at)


def _settings_values(settings: ProjectSettings) -> dict[str, Any]:
    return {
        "consensus_share": settings.consensus_share,
        "consensus_count": settings.consensus_count,
        "batch_size": settings.batch_size,
        "lease_seconds": settings.lease_seconds,
    }


class ProjectRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def create(self, name: str, settings: ProjectSettings | None = None) -> Project:
        name = name.strip()
        if not name:
            raise ValidationError("a project needs a name")
        if self._s.execute(select(ProjectRow.id).where(ProjectRow.name == name)).first() is not None:
            raise ConflictError(f"a project called {name!r} already exists")
        row = ProjectRow(name=name, created_at=utcnow(), **_settings_values(settings or ProjectSettings()))
        self._s.add(row)
        self._s.flush()
        return _project(row)

    def get(self, project_id: int) -> Project:
        row = self._s.get(ProjectRow, project_id)
        if row is None:
            raise NotFoundError(f"project {project_id} does not exist")
        return _project(row)

    def by_name(self, name: str) -> Project:
        row = self._s.execute(select(ProjectRow).where(ProjectRow.name == name)).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"there is no project called {name!r}")
        return _project(row)

    def list(self) -> builtins.list[Project]:
        return [_project(r) for r in self._s.execute(select(ProjectRow).order_by(ProjectRow.id)).scalars()]

    def update_settings(self, project_id: int, settings: ProjectSettings) -> Project:
        self.get(project_id)
        self._s.execute(
            update(ProjectRow).where(ProjectRow.id == project_id).values(**_settings_values(settings))
        )
        self._s.expire_all()
        return self.get(project_id)


class OntologyRepository:
    """One row per ontology version; the current one is the highest version."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, project_id: int, ontology: Ontology, created_by: int | None = None) -> Ontology:
        if self._s.get(ProjectRow, project_id) is None:
            raise NotFoundError(f"project {project_id} does not exist")
        latest = self._s.execute(
            select(func.max(OntologyRow.version)).where(OntologyRow.project_id == project_id)
        ).scalar()
        version = int(latest or 0) + 1
        data = {**ontology.to_dict(), "version": version}
        self._s.add(
            OntologyRow(
                project_id=project_id, version=version, data=data, created_by=created_by, created_at=utcnow()
            )
        )
        self._s.flush()
        return Ontology.from_dict(data, version)

    def current(self, project_id: int) -> Ontology | None:
        row = self._s.execute(
            select(OntologyRow.data, OntologyRow.version)
            .where(OntologyRow.project_id == project_id)
            .order_by(OntologyRow.version.desc())
            .limit(1)
        ).first()
        return None if row is None else Ontology.from_dict(row.data, row.version)

    def history(self, project_id: int) -> builtins.list[Ontology]:
        rows = self._s.execute(
            select(OntologyRow.data, OntologyRow.version)
            .where(OntologyRow.project_id == project_id)
            .order_by(OntologyRow.version)
        )
        return [Ontology.from_dict(r.data, r.version) for r in rows]


class DatasetRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def ensure(self, project_id: int, name: str) -> Dataset:
        if self._s.get(ProjectRow, project_id) is None:
            raise NotFoundError(f"project {project_id} does not exist")
        insert_ignore(
            self._s,
            table_of(DatasetRow),
            {"project_id": project_id, "name": name, "created_at": utcnow()},
            ["project_id", "name"],
        )
        row = self._s.execute(
            select(DatasetRow).where(DatasetRow.project_id == project_id, DatasetRow.name == name)
        ).scalar_one()
        return Dataset(id=row.id, project_id=row.project_id, name=row.name)

    def get(self, dataset_id: int) -> Dataset:
        row = self._s.get(DatasetRow, dataset_id)
        if row is None:
            raise NotFoundError(f"dataset {dataset_id} does not exist")
        return Dataset(id=row.id, project_id=row.project_id, name=row.name)

    def list(self, project_id: int) -> builtins.list[Dataset]:
        rows = self._s.execute(
            select(DatasetRow).where(DatasetRow.project_id == project_id).order_by(DatasetRow.id)
        ).scalars()
        return [Dataset(id=r.id, project_id=r.project_id, name=r.name) for r in rows]


class DataRootRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def ensure(self, name: str) -> int:
        name = name.strip()
        if not name:
            raise ValidationError("a data root needs a name")
        insert_ignore(self._s, table_of(DataRootRow), {"name": name}, ["name"])
        return int(self._s.execute(select(DataRootRow.id).where(DataRootRow.name == name)).scalar_one())

    def list(self) -> builtins.list[DataRoot]:
        rows = self._s.execute(select(DataRootRow).order_by(DataRootRow.name)).scalars()
        return [DataRoot(id=r.id, name=r.name) for r in rows]


def _asset(row: AssetRow, root: str) -> Asset:
    return Asset(
        id=row.id,
        project_id=row.project_id,
        dataset_id=row.dataset_id,
        kind=AssetKind(row.kind),
        root=root,
        rel_path=row.rel_path,
        member=row.member or None,
        size=row.size,
        mtime_ns=row.mtime_ns,
        content_hash=row.content_hash,
        frame_count=row.frame_count,
        width=row.width,
        height=row.height,
        metadata=dict(row.meta or {}),
    )


class AssetRepository:
    def __init__(self, session: Session, roots: DataRootRepository) -> None:
        self._s = session
        self._roots = roots

    def _query(self) -> Any:
        return select(AssetRow, DataRootRow.name).join(DataRootRow, DataRootRow.id == AssetRow.root_id)

    def add(
        self,
        project_id: int,
        dataset_id: int,
        *,
        kind: AssetKind | str,
        root: str,
        rel_path: str,
        member: str | None = None,
        size: int,
        mtime_ns: int,
        content_hash: str,
        frame_count: int,
        width: int,
        height: int,
        metadata: Mapping[str, Any] | None = None,
    ) -> Asset:
        """Register one asset (its path relative to ``root``, posix separators)."""
        kind = AssetKind(kind)
        rel_path = rel_path.replace("\\", "/")
        if rel_path.startswith("/") or not rel_path:
            raise ValidationError(f"an asset path must be relative to its data root, got {rel_path!r}")
        if self.find(project_id, root, rel_path, member) is not None:
            where = f"{root}:{rel_path}" + (f" [{member}]" if member else "")
            raise ConflictError(f"{where} is already registered in project {project_id}")
        row = AssetRow(
            project_id=project_id,
            dataset_id=dataset_id,
            kind=kind.value,
            root_id=self._roots.ensure(root),
            rel_path=rel_path,
            member=member or "",
            size=size,
            mtime_ns=mtime_ns,
            content_hash=content_hash,
            frame_count=frame_count,
            width=width,
            height=height,
            meta=dict(metadata or {}),
            created_at=utcnow(),
        )
        self._s.add(row)
        self._s.flush()
        return _asset(row, root)

    def get(self, asset_id: int) -> Asset:
        row = self._s.execute(self._query().where(AssetRow.id == asset_id)).first()
        if row is None:
            raise NotFoundError(f"asset {asset_id} does not exist")
        return _asset(row[0], row[1])

    def list(
        self, project_id: int, dataset_id: int | None = None, limit: int | None = None, offset: int = 0
    ) -> builtins.list[Asset]:
        query = self._query().where(AssetRow.project_id == project_id)
        if dataset_id is not None:
            query = query.where(AssetRow.dataset_id == dataset_id)
        query = query.order_by(AssetRow.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return [_asset(a, r) for a, r in self._s.execute(query)]

    def find(self, project_id: int, root: str, rel_path: str, member: str | None = None) -> Asset | None:
        row = self._s.execute(
            self._query().where(
                AssetRow.project_id == project_id,
                DataRootRow.name == root,
                AssetRow.rel_path == rel_path.replace("\\", "/"),
                AssetRow.member == (member or ""),
            )
        ).first()
        return None if row is None else _asset(row[0], row[1])

    def count(self, project_id: int) -> int:
        query = select(func.count()).select_from(AssetRow).where(AssetRow.project_id == project_id)
        return int(self._s.execute(query).scalar_one())

    def update_file_info(self, asset_id: int, *, size: int, mtime_ns: int, content_hash: str) -> Asset:
        """Record that the file changed (new size, mtime, hash)."""
        self.get(asset_id)
        self._s.execute(
            update(AssetRow)
            .where(AssetRow.id == asset_id)
            .values(size=size, mtime_ns=mtime_ns, content_hash=content_hash)
        )
        self._s.expire_all()
        return self.get(asset_id)


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def record(
        self,
        user_id: int | None,
        action: str,
        entity: str,
        entity_id: int | None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self._s.execute(
            table_of(AuditRow)
            .insert()
            .values(
                at=utcnow(),
                user_id=user_id,
                action=action,
                entity=entity,
                entity_id=entity_id,
                details=dict(details or {}),
            )
        )

    def list(
        self,
        limit: int = 100,
        *,
        entity: str | None = None,
        entity_id: int | None = None,
        user_id: int | None = None,
    ) -> builtins.list[AuditEntry]:
        """Newest first."""
        query = select(AuditRow)
        if entity is not None:
            query = query.where(AuditRow.entity == entity)
        if entity_id is not None:
            query = query.where(AuditRow.entity_id == entity_id)
        if user_id is not None:
            query = query.where(AuditRow.user_id == user_id)
        rows = self._s.execute(query.order_by(AuditRow.id.desc()).limit(limit)).scalars()
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                user_id=r.user_id,
                action=r.action,
                entity=r.entity,
                entity_id=r.entity_id,
                details=dict(r.details or {}),
            )
            for r in rows
        ]
