"""The public Python API: what ML engineers script against. Small, documented, stable.

    from app import api
    project = api.open_project("labels.db")            # or "postgresql://user@host/db"
    ids = project.import_data(["/mnt/studies/ct1"])     # registers files in place, never copies pixels
    project.upload_annotations(ids[0], [{"kind": "box", "label": "lesion", "frame": 3,
                                         "box": [10, 20, 60, 80]}], source="model:lesion@2", confidence=0.8)
    project.annotations(ids[0], frame=3)

Annotations go in and come out as the plain dicts of DESIGN.md; no SQL is ever needed.
Every error raised on purpose is an :class:`app.core.errors.SitelabelError` with a message
meant for people.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.api._activity import ActivityMixin
from app.api._data import DataMixin
from app.api._exchange import ExchangeMixin
from app.api._labels import LabelsMixin
from app.api._models import ModelInfo, ModelsMixin
from app.api._people import Person, list_people
from app.api._project import Progress, as_ontology
from app.api._review import ReviewMixin
from app.api._settings import SettingsMixin
from app.api._splits import SplitsMixin
from app.api._team import TeamMixin
from app.api._training import TrainingMixin
from app.config import current_user_name, load_site_config
from app.core.errors import NotFoundError, PermissionDenied, SitelabelError, ValidationError
from app.core.ontology import Ontology
from app.core.records import ProjectSettings, Role, User

if TYPE_CHECKING:
    from app.sources import ScanResult, Source
    from app.storage import Database


__all__ = [
    "DatabaseCheck",
    "ModelInfo",
    "NotFoundError",
    "Person",
    "Progress",
    "Project",
    "SitelabelError",
    "ValidationError",
    "check_database",
    "create_project",
    "open_database",
    "open_project",
    "open_source",
    "people",
    "scan_data",
]


class Project(
    DataMixin,
    LabelsMixin,
    TeamMixin,
    ReviewMixin,
    ActivityMixin,
    ExchangeMixin,
    TrainingMixin,
    ModelsMixin,
    SettingsMixin,
    SplitsMixin,
):
    """One labeling project in a database, acting as one user.

    The methods are grouped by concern in the mixins (data, labels, team work, review, exchange,
    training data, settings); all of them check the acting user's role first.
    """


def open_database(db: str | os.PathLike[str], *, create: bool = True, upgrade: bool = True) -> Database:
    """Open (and by default create and migrate) a project database: a SQLite path or a PostgreSQL URL."""
    from app.storage import Database

    return Database.open(os.fspath(db), create=create, upgrade=upgrade)


def open_source(path: str | os.PathLike[str]) -> Source:
    """Open an image, DICOM file/series folder or video in place; headers only, frames decode on demand."""
    from app.sources import SourceLimits
    from app.sources import open_source as _open

    config = load_site_config()
    return _open(path, limits=SourceLimits(max_pixels=config.max_image_pixels))


@dataclass(frozen=True)
class DatabaseCheck:
    """What a connection test found. ``exists`` False: it will be created when a project is made."""

    url: str  # the file of a SQLite database, the URL (password hidden) of a PostgreSQL one
    exists: bool
    projects: tuple[str, ...] = ()
    needs_upgrade: bool = False
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for people."""
        if not self.exists:
            return f"{self.url}: reachable; a new Sitelabel database will be set up there"
        if self.needs_upgrade:
            return f"{self.url}: connected; its schema will be upgraded (back it up first)"
        if not self.projects:
            return f"{self.url}: connected, no projects yet"
        return f"{self.url}: connected, {len(self.projects)} project(s): {', '.join(self.projects)}"


def check_database(db: str | os.PathLike[str]) -> DatabaseCheck:
    """Try a database without creating or migrating anything; a SitelabelError (one line) when unusable."""
    from app.storage import Database, DatabaseMissing, SchemaOutdated, StorageError, parse_target

    target = parse_target(db)
    where = str(target.path) if target.path is not None else target.redacted
    try:
        database = Database.open(db, create=False, upgrade=False)
    except DatabaseMissing:
        if target.path is not None:
            # the nearest existing folder must take a new file (the rest of the path is created)
            folder = next(p for p in target.path.parents if p.exists())
            if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
                raise StorageError(f"cannot create {target.path}: {folder} is not writable") from None
        return DatabaseCheck(where, exists=False)
    except SchemaOutdated as exc:
        # an empty PostgreSQL database (made by its admin) is new to us, not outdated
        fresh = "no Sitelabel tables" in str(exc)
        return DatabaseCheck(where, exists=not fresh, needs_upgrade=not fresh)
    try:
        with database.unit_of_work(readonly=True) as uow:
            names = tuple(p.name for p in uow.projects.list())
        return DatabaseCheck(where, True, names, warnings=tuple(database.warnings))
    finally:
        database.dispose()


def scan_data(paths: Sequence[str | os.PathLike[str]], *, progress: Progress | None = None) -> ScanResult:
    """A dry run of ``import_data``: the images, series and videos found, nothing stored."""
    from app.sources import SourceLimits, scan

    limits = SourceLimits(max_pixels=load_site_config().max_image_pixels)
    return scan([Path(p) for p in paths], limits=limits, progress=progress)


def create_project(
    db: str | os.PathLike[str] | Database,
    name: str,
    ontology: Mapping[str, Any] | Ontology | None = None,
    *,
    settings: ProjectSettings | None = None,
    user: str | None = None,
) -> Project:
    """Create a project (the acting user becomes its admin) and return it open."""
    database = _database(db)
    acting = user or _default_user(database)
    with database.unit_of_work() as uow:
        _check_acting_user(uow.session, acting)  # row security: only as the login role
        try:
            uow.projects.by_name(name)
        except NotFoundError:
            pass
        else:
            raise ValidationError(
                f"a project named {name!r} already exists in {database.url}; to change its settings: "
                f"sitelabel project set KEY VALUE --project {name!r} (see sitelabel project set --help)"
            )
        first_user = not uow.users.list()
        if not first_user:
            existing = [u for u in uow.users.list() if u.name == acting]
            if not existing or existing[0].role is not Role.ADMIN:
                raise PermissionDenied(
                    f"only a site admin can create projects in {database.url}; {acting} is not one "
                    f"(an admin can run: sitelabel users add {acting} --role admin)"
                )
        record = uow.projects.create(name, settings)
        owner = uow.users.ensure(acting)
        if first_user:  # whoever creates the first project of a new database administers it
            uow.users.set_role(owner.id, Role.ADMIN)
        uow.users.set_role(owner.id, Role.PROJECT_ADMIN, project_id=record.id)
        if ontology is not None:
            uow.ontologies.add(record.id, as_ontology(ontology))
        uow.audit.record(owner.id, "project.create", "project", record.id, {"name": name})
    return Project(database, record.id, acting)


def open_project(
    db: str | os.PathLike[str] | Database,
    name: str | None = None,
    *,
    user: str | None = None,
    create: bool = True,
) -> Project:
    """Open a project in a database; with one project ``name`` may be left out.

    A new, empty database gets a project called ``name`` (or "default") when ``create`` is true.
    """
    database = _database(db, create=create)
    acting = user or _default_user(database)
    with database.unit_of_work() as uow:
        projects = uow.projects.list()
    if name is not None:
        match = [p for p in projects if p.name == name]
        if match:
            return Project(database, match[0].id, acting)
        if not create:
            raise NotFoundError(
                f"no project named {name!r} in {database.url}; there are: {[p.name for p in projects]}"
            )
        return create_project(database, name, user=acting)
    if len(projects) == 1:
        return Project(database, projects[0].id, acting)
    if not projects and create:
        return create_project(database, "default", user=acting)
    raise ValidationError(
        f"{database.url} holds {len(projects)} projects; name one of {[p.name for p in projects]}"
    )


def set_site_role(
    db: str | os.PathLike[str] | Database, name: str, role: Role | str, *, user: str | None = None
) -> User:
    """Give ``name`` a site-wide role (admin for every project, or back to labeler); admins only.

    In a database with no users yet, the acting user becomes its first admin.
    """
    database = _database(db)
    acting = user or _default_user(database)
    with database.unit_of_work() as uow:
        _check_acting_user(uow.session, acting)  # row security: only as the login role
        if not uow.users.list():
            uow.users.set_role(uow.users.ensure(acting).id, Role.ADMIN)
        me = next((u for u in uow.users.list() if u.name == acting), None)
        if me is None or me.role is not Role.ADMIN:
            raise PermissionDenied(f"only a site admin can change site-wide roles; {acting} is not one")
        target = uow.users.ensure(name)
        uow.users.set_role(target.id, Role(role))
        uow.audit.record(me.id, "user.site_role", "user", target.id, {"role": Role(role).value})
        return uow.users.get(target.id)


def people(db: str | os.PathLike[str] | Database, *, project: str | None = None) -> list[Person]:
    """Everyone in the database with their site-wide role and their role in each project (only
    ``project``'s with a name): ``person.role_in("liver")`` is what they may do there."""
    return list_people(_database(db, create=False), project)


def _default_user(database: Database) -> str:
    """Who acts when no user is named: the login role where PostgreSQL row security binds the
    connection to one (so the OS account name need not match it), else the OS user."""
    from app.storage.row_security import restricted_login

    if database.dialect != "postgresql":
        return current_user_name()
    with database.unit_of_work(readonly=True) as uow:
        login = restricted_login(uow.session)
    return login if login is not None else current_user_name()


def _check_acting_user(session: Any, acting: str) -> None:
    """PermissionDenied when row security binds this connection to another user than ``acting``."""
    from app.storage.row_security import check_acting_user as check

    check(session, acting)


def _database(db: str | os.PathLike[str] | Database, *, create: bool = True) -> Database:
    from app.storage import Database

    return db if isinstance(db, Database) else open_database(db, create=create)
