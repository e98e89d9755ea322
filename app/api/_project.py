"""The core of an open project: who is acting, what they may do, the project's settings and assets."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from app.config import SiteConfig, load_site_config
from app.core.errors import NotFoundError, ValidationError
from app.core.ontology import Ontology
from app.core.permissions import Action, allowed, effective_role, require
from app.core.records import Asset, ProjectSettings, Role
from app.core.records import Project as ProjectRecord

if TYPE_CHECKING:
    from app.storage import Database
    from app.workflow.upkeep import AssetCheck

Progress = Callable[[int, int], bool | None]
WATCH_FOLDERS_ENTITY = "watch_folders"  # audit-log entity holding a project's watch-folder list


def as_ontology(value: Mapping[str, Any] | Ontology) -> Ontology:
    return value if isinstance(value, Ontology) else Ontology.from_dict(value)


class ProjectBase:
    """One labeling project in a database, acting as one user."""

    def __init__(self, database: Database, project_id: int, user_name: str) -> None:
        from app.storage.row_security import check_acting_user

        self.db = database
        self.id = project_id
        self.user_name = user_name
        self._config: SiteConfig | None = None
        with database.unit_of_work(readonly=True) as uow:
            # under PostgreSQL row security, acting as someone else than the login role is refused
            check_acting_user(uow.session, user_name.strip())
            self._record = uow.projects.get(project_id)
            known = [u for u in uow.users.list() if u.name == user_name.strip()]
        if not known:  # a stranger is refused without leaving a user row behind
            require(None, Action.VIEW, user=user_name, project=self._record.name)
        self.user = known[0]
        self.require(Action.VIEW)

    # --- permissions ----------------------------------------------------------------------
    @property
    def role(self) -> Role | None:
        """The acting user's effective role here (read each time: an admin may change it)."""
        with self.db.unit_of_work(readonly=True) as uow:
            user = uow.users.get(self.user.id)
            return effective_role(user.role, uow.users.role_in(user.id, self.id))

    def can(self, action: Action) -> bool:
        return allowed(self.role, action)

    def require(self, action: Action) -> None:
        """Raise PermissionDenied unless the acting user's role allows ``action`` in this project."""
        require(self.role, action, user=self.user_name, project=self.name)

    # --- basics ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._record.name

    @property
    def settings(self) -> ProjectSettings:
        """The workflow settings, read from the database each time: a project admin may change
        them while the project is open (app.api._settings, app.workflow.project_settings)."""
        with self.db.unit_of_work(readonly=True) as uow:
            self._record = uow.projects.get(self.id)
        return self._record.settings

    @property
    def record(self) -> ProjectRecord:
        return self._record

    @property
    def config(self) -> SiteConfig:
        if self._config is None:
            self._config = load_site_config()
        return self._config

    @property
    def ontology(self) -> Ontology:
        """The current ontology version (an empty one when none was set)."""
        with self.db.unit_of_work() as uow:
            current = uow.ontologies.current(self.id)
        return current if current is not None else Ontology(classes=(), version=0)

    def set_ontology(self, ontology: Mapping[str, Any] | Ontology) -> Ontology:
        """Store a new ontology version; earlier annotations keep the version they were made with."""
        self.require(Action.EDIT_ONTOLOGY)
        new = as_ontology(ontology)
        with self.db.unit_of_work() as uow:
            stored = uow.ontologies.add(self.id, new)
            uow.audit.record(self.user.id, "ontology.set", "project", self.id, {"version": stored.version})
        return stored

    @property
    def watch_folders(self) -> list[Path]:
        """The folders this project's new data arrives in (remembered at set-up; empty when none)."""
        with self.db.unit_of_work(readonly=True) as uow:
            latest = uow.audit.list(1, entity=WATCH_FOLDERS_ENTITY, entity_id=self.id)
        return [Path(f) for f in latest[0].details.get("folders", ())] if latest else []

    def set_watch_folders(self, folders: Sequence[str | os.PathLike[str]]) -> list[Path]:
        """Remember the project's watch folders (replacing the previous list); project admins.

        No table holds project settings beyond the queue's, so the list lives in the audit log:
        the newest ``watch_folders`` entry of the project is the current list, and every change
        is audited by construction. Move it to a settings column with the next migration.
        """
        self.require(Action.IMPORT_DATA)
        paths = [Path(f).expanduser().resolve() for f in folders]
        missing = [str(p) for p in paths if not p.is_dir()]
        if missing:
            raise ValidationError(f"watch folders must be existing folders; not found: {missing}")
        unique = list(dict.fromkeys(str(p) for p in paths))
        with self.db.unit_of_work() as uow:
            uow.audit.record(
                self.user.id, "project.watch_folders", WATCH_FOLDERS_ENTITY, self.id, {"folders": unique}
            )
        return [Path(p) for p in unique]

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def verify(self) -> list[AssetCheck]:
        """Check every asset's files against what was recorded at import: ok, missing, changed, moved?."""
        from app.workflow.upkeep import verify_assets

        self.require(Action.VIEW)
        return verify_assets(self.db, self.id, self.config.all_data_roots)

    def asset(self, asset_id: int) -> Asset:
        """One asset of this project (NotFoundError for another project's); members only."""
        self.require(Action.VIEW)
        with self.db.unit_of_work() as uow:
            found = uow.assets.get(asset_id)
        if found.project_id != self.id:
            raise NotFoundError(f"asset {asset_id} is not in project {self.name!r}")
        return found

    def asset_path(self, asset: Asset | int) -> Path:
        """Where an asset's file or folder is on this workstation (through the data-root mapping).

        ``NotFoundError`` when its data root is not configured here, ``app.sources.DataRootError``
        when its stored path would leave the root."""
        from app.sources import asset_path

        # a record is looked up again: it may come from another project (or be made up)
        record = self.asset(asset.id if isinstance(asset, Asset) else asset)
        return asset_path(record, self.config.all_data_roots)
