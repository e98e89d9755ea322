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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from app.config import SiteConfig, current_user_name, load_site_config
from app.core.annotations import HUMAN, Annotation
from app.core.errors import NotFoundError, PermissionDenied, SitelabelError, ValidationError
from app.core.ontology import Ontology
from app.core.permissions import Action, allowed, effective_role, require
from app.core.records import Asset, Comment, ProjectSettings, Role, Thread, ThreadStatus, User
from app.core.records import Project as ProjectRecord

if TYPE_CHECKING:
    from app.exchange.export import ExportReport
    from app.exchange.importers import ImportReport as LabelImportReport
    from app.ingest.watcher import FolderWatcher
    from app.sources import Source
    from app.storage import Database
    from app.workflow.importing import ImportReport
    from app.workflow.queue import Lease
    from app.workflow.upkeep import AssetCheck

Progress = Callable[[int, int], bool | None]

__all__ = [
    "NotFoundError",
    "Project",
    "SitelabelError",
    "ValidationError",
    "create_project",
    "open_database",
    "open_project",
    "open_source",
]


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
    acting = user or current_user_name()
    with database.unit_of_work() as uow:
        try:
            uow.projects.by_name(name)
        except NotFoundError:
            pass
        else:
            raise ValidationError(f"a project named {name!r} already exists in {database.url}")
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
            uow.ontologies.add(record.id, _as_ontology(ontology))
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
    acting = user or current_user_name()
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
    acting = user or current_user_name()
    with database.unit_of_work() as uow:
        if not uow.users.list():
            uow.users.set_role(uow.users.ensure(acting).id, Role.ADMIN)
        me = next((u for u in uow.users.list() if u.name == acting), None)
        if me is None or me.role is not Role.ADMIN:
            raise PermissionDenied(f"only a site admin can change site-wide roles; {acting} is not one")
        target = uow.users.ensure(name)
        uow.users.set_role(target.id, Role(role))
        uow.audit.record(me.id, "user.site_role", "user", target.id, {"role": Role(role).value})
        return uow.users.get(target.id)


def _database(db: str | os.PathLike[str] | Database, *, create: bool = True) -> Database:
    from app.storage import Database

    return db if isinstance(db, Database) else open_database(db, create=create)


def _as_ontology(value: Mapping[str, Any] | Ontology) -> Ontology:
    return value if isinstance(value, Ontology) else Ontology.from_dict(value)


class Project:
    """One labeling project in a database, acting as one user."""

    def __init__(self, database: Database, project_id: int, user_name: str) -> None:
        self.db = database
        self.id = project_id
        self.user_name = user_name
        self._config: SiteConfig | None = None
        with database.unit_of_work() as uow:
            self._record = uow.projects.get(project_id)
            self.user = uow.users.ensure(user_name)
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
        new = _as_ontology(ontology)
        with self.db.unit_of_work() as uow:
            stored = uow.ontologies.add(self.id, new)
            uow.audit.record(self.user.id, "ontology.set", "project", self.id, {"version": stored.version})
        return stored

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- data -----------------------------------------------------------------------------
    def import_data(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        dataset: str = "default",
        progress: Progress | None = None,
    ) -> list[int]:
        """Register files, folders, archives, DICOM folders and videos in place; returns new asset ids.

        Files already registered are skipped. Unreadable files are reported in
        :attr:`last_import_errors` and do not stop the rest.
        """
        from app.workflow.importing import import_paths

        self.require(Action.IMPORT_DATA)
        report = import_paths(
            self.db,
            self.id,
            [Path(p) for p in paths],
            dataset=dataset,
            roots=self.config.all_data_roots,
            user_id=self.user.id,
            max_pixels=self.config.max_image_pixels,
            progress=progress,
        )
        self.last_import_errors: list[tuple[str, str]] = report.errors
        self.last_import_skipped: int = report.skipped
        self._enqueue(report.asset_ids)
        return report.asset_ids

    def assets(self, dataset: str | None = None, *, limit: int | None = None, offset: int = 0) -> list[Asset]:
        with self.db.unit_of_work() as uow:
            dataset_id = None
            if dataset is not None:
                dataset_id = next((d.id for d in uow.datasets.list(self.id) if d.name == dataset), -1)
            return list(uow.assets.list(self.id, dataset_id=dataset_id, limit=limit, offset=offset))

    def watch(
        self,
        folder: str | os.PathLike[str],
        *,
        dataset: str = "default",
        settle_seconds: float = 5.0,
        polling: bool = False,
        on_import: Callable[[ImportReport], None] | None = None,
    ) -> FolderWatcher:
        """Register new files and DICOM series that appear in ``folder`` once they are complete.

        Returns the running watcher; call ``.stop()`` to end it. ``polling=True`` for network shares.
        """
        from app.ingest.watcher import FolderWatcher
        from app.workflow.importing import import_paths

        self.require(Action.IMPORT_DATA)

        def register(files: list[Path]) -> None:  # runs on the watcher's thread
            report = import_paths(
                self.db,
                self.id,
                files,
                dataset=dataset,
                roots=self.config.all_data_roots,
                user_id=self.user.id,
                max_pixels=self.config.max_image_pixels,
            )
            self._enqueue(report.asset_ids)
            if on_import is not None:
                on_import(report)

        return FolderWatcher(Path(folder), register, settle_seconds, polling=polling).start()

    def _enqueue(self, asset_ids: Sequence[int]) -> None:
        """New assets join the labeling queue; the consensus share gets several labelers."""
        from app.workflow.queue import enqueue_with_consensus

        if asset_ids:
            settings = self._record.settings
            enqueue_with_consensus(
                self.db, self.id, asset_ids, share=settings.consensus_share, count=settings.consensus_count
            )

    # --- comments and issues --------------------------------------------------------------
    def comment(
        self, asset_id: int, body: str, *, frame: int = 0, x: float | None = None, y: float | None = None
    ) -> Thread:
        """Open a thread (an issue) on an asset, optionally pinned to a point of a frame; @name mentions."""
        self.require(Action.ANNOTATE)
        asset = self.asset(asset_id)
        if not 0 <= frame < max(asset.frame_count, 1):
            raise ValidationError(f"frame {frame} is not in asset {asset_id} (0..{asset.frame_count - 1})")
        with self.db.unit_of_work() as uow:
            thread = uow.threads.open(asset_id, self.user.id, body, frame=frame, x=x, y=y)
            uow.audit.record(self.user.id, "thread.open", "thread", thread.id, {"asset_id": asset_id})
            return thread

    def reply(self, thread_id: int, body: str) -> Comment:
        self.require(Action.ANNOTATE)
        self._thread_here(thread_id)
        with self.db.unit_of_work() as uow:
            return uow.threads.reply(thread_id, self.user.id, body)

    def resolve(self, thread_id: int, *, reopen: bool = False) -> Thread:
        """Close (or reopen) a thread: its author or a reviewer."""
        thread = self._thread_here(thread_id)
        if thread.author != self.user_name:
            self.require(Action.REVIEW)
        status = ThreadStatus.OPEN if reopen else ThreadStatus.RESOLVED
        with self.db.unit_of_work() as uow:
            changed = uow.threads.set_status(thread_id, status)
            uow.audit.record(self.user.id, f"thread.{status.value}", "thread", thread_id, None)
            return changed

    def threads(self, asset_id: int | None = None, *, open_only: bool = False) -> list[Thread]:
        """Comment threads of one asset, or of the whole project."""
        self.require(Action.VIEW)
        if asset_id is not None:
            self.asset(asset_id)
        with self.db.unit_of_work(readonly=True) as uow:
            return uow.threads.list(
                asset_id, project_id=self.id, status=ThreadStatus.OPEN if open_only else None
            )

    def open_thread_counts(self) -> dict[int, int]:
        """Open issues per asset id, shown beside the assets in queues and lists."""
        self.require(Action.VIEW)
        with self.db.unit_of_work(readonly=True) as uow:
            return uow.threads.open_counts(self.id)

    def _thread_here(self, thread_id: int) -> Thread:
        with self.db.unit_of_work(readonly=True) as uow:
            thread = uow.threads.get(thread_id)
        self.asset(thread.asset_id)  # NotFoundError when the thread belongs to another project
        return thread

    # --- the labeling queue ---------------------------------------------------------------
    def claim(self, batch: int | None = None) -> list[Lease]:
        """Reserve the next items for the acting user (their live leases first), highest priority first."""
        from app.workflow.queue import claim

        self.require(Action.ANNOTATE)
        return claim(self.db, self.id, self.user.id, batch=batch)

    def submit(self, lease: Lease) -> None:
        """Done with an item; a late submit on an expired lease is refused (LeaseExpired)."""
        from app.workflow.queue import submit

        self._own_lease(lease)
        submit(self.db, lease)

    def skip(self, lease: Lease, reason: str = "") -> None:
        from app.workflow.queue import skip

        self._own_lease(lease)
        skip(self.db, lease, reason=reason)

    def renew(self, lease: Lease) -> Lease:
        from app.workflow.queue import renew

        self._own_lease(lease)
        return renew(self.db, lease)

    def queue_stats(self) -> dict[str, int]:
        from app.workflow.queue import queue_stats

        self.require(Action.VIEW)
        return queue_stats(self.db, self.id)

    def _own_lease(self, lease: Lease) -> None:
        self.require(Action.ANNOTATE)
        if lease.user_id != self.user.id:
            raise PermissionDenied(f"this lease belongs to another labeler, not {self.user_name}")

    def verify(self) -> list[AssetCheck]:
        """Check every asset's files against what was recorded at import: ok, missing, changed, moved?."""
        from app.workflow.upkeep import verify_assets

        return verify_assets(self.db, self.id, self.config.all_data_roots)

    def asset(self, asset_id: int) -> Asset:
        with self.db.unit_of_work() as uow:
            found = uow.assets.get(asset_id)
        if found.project_id != self.id:
            raise NotFoundError(f"asset {asset_id} is not in project {self.name!r}")
        return found

    def asset_path(self, asset: Asset | int) -> Path:
        """Where an asset's file or folder is on this workstation (through the data-root mapping)."""
        record = asset if isinstance(asset, Asset) else self.asset(asset)
        roots = self.config.all_data_roots
        if record.root not in roots:
            raise NotFoundError(
                f"data root {record.root!r} is not configured on this workstation; add it under "
                f"[data_roots] in the site config"
            )
        return roots[record.root] / Path(record.rel_path)

    def open_asset(self, asset: Asset | int) -> Source:
        """The source (image, DICOM series, video) of an asset, opened in place."""
        from app.workflow.importing import open_asset_source

        record = asset if isinstance(asset, Asset) else self.asset(asset)
        return open_asset_source(record, self.asset_path(record), max_pixels=self.config.max_image_pixels)

    # --- annotations ----------------------------------------------------------------------
    def upload_annotations(
        self,
        asset_id: int,
        annotations: Sequence[Mapping[str, Any]],
        *,
        source: str = HUMAN,
        confidence: float | None = None,
    ) -> list[int]:
        """Store annotations (e.g. model pre-labels, ``source="model:NAME@VER"``); returns their ids.

        All are checked against the ontology first; nothing is stored unless all fit.
        """
        self.require(Action.ANNOTATE)
        asset = self.asset(asset_id)
        ontology = self.ontology
        frame_shape = (asset.height, asset.width)
        parsed: list[Annotation] = []
        for index, raw in enumerate(annotations):
            try:
                ann = Annotation.from_dict(
                    raw,
                    frame_shape=frame_shape,
                    source=raw.get("source", source),
                    confidence=raw.get("confidence", confidence),
                )
            except (ValidationError, TypeError, ValueError) as exc:
                raise ValidationError(f"annotation #{index + 1}: {exc}") from None
            if ann.frame >= max(asset.frame_count, 1):
                raise ValidationError(
                    f"annotation #{index + 1}: frame {ann.frame} is past the last frame "
                    f"({asset.frame_count - 1}) of asset {asset_id}"
                )
            if ontology.classes:
                problems = ontology.check(ann)
                if problems:
                    raise ValidationError(f"annotation #{index + 1}: " + "; ".join(problems))
            parsed.append(ann)
        with self.db.unit_of_work() as uow:
            stored = uow.annotations.add_many(asset_id, parsed, self.user.id)
        return [a.id for a in stored if a.id is not None]

    def annotations(
        self, asset_id: int, frame: int | None = None, labeler: str | None = None
    ) -> list[dict[str, Any]]:
        """The current annotations of an asset as plain dicts (masks full-frame bool arrays)."""
        return [a.to_dict() for a in self.annotation_objects(asset_id, frame=frame, labeler=labeler)]

    def annotation_objects(
        self, asset_id: int, frame: int | None = None, labeler: str | None = None
    ) -> list[Annotation]:
        """Reviewers and above see everyone's labels; a labeler sees their own and machine-made ones
        (model pre-labels, imports), so labelers stay blind to each other until review."""
        self.asset(asset_id)
        see_all = self.can(Action.SEE_ALL_LABELS)
        if labeler is not None and labeler != self.user_name and not see_all:
            self.require(Action.SEE_ALL_LABELS)
        with self.db.unit_of_work() as uow:
            author_id = uow.users.get_by_name(labeler).id if labeler else None
            found = list(uow.annotations.list(asset_id, frame=frame, author_id=author_id))
        if see_all:
            return found
        return [a for a in found if a.author == self.user_name or a.source != HUMAN]

    def save_annotation(self, annotation: Annotation) -> Annotation:
        """Insert a new annotation or update one (conflict-checked against its version)."""
        self._require_edit(annotation)
        with self.db.unit_of_work() as uow:
            if annotation.id is None:
                if annotation.asset_id is None:
                    raise ValidationError("a new annotation needs its asset_id")
                return uow.annotations.add(annotation.asset_id, annotation, self.user.id)
            return uow.annotations.update(annotation)

    def delete_annotation(self, annotation: Annotation) -> None:
        if annotation.id is None:
            raise ValidationError("only a saved annotation can be deleted")
        self._require_edit(annotation)
        with self.db.unit_of_work() as uow:
            uow.annotations.delete(annotation.id, annotation.version)

    def _require_edit(self, annotation: Annotation) -> None:
        """Anyone labeling may change their own labels; changing someone else's is a reviewer's fix."""
        self.require(Action.ANNOTATE)
        if annotation.id is not None:
            with self.db.unit_of_work(readonly=True) as uow:
                stored = uow.annotations.get(annotation.id)
            if stored.author not in (None, self.user_name):
                self.require(Action.REVIEW)

    def render(self, asset_id: int, frame: int = 0, *, labeler: str | None = None) -> npt.NDArray[np.uint8]:
        """The frame with its annotations drawn as the canvas shows them: RGBA uint8 (H, W, 4)."""
        from app.exchange.render import render_asset

        self.asset(asset_id)
        if not self.can(Action.SEE_ALL_LABELS):  # a labeler's render shows their own labels only
            if labeler not in (None, self.user_name):
                self.require(Action.SEE_ALL_LABELS)
            labeler = self.user_name
        with self.db.unit_of_work() as uow:
            author_id = uow.users.get_by_name(labeler).id if labeler else None
        return render_asset(
            self.db,
            self.id,
            asset_id,
            frame=frame,
            roots=self.config.all_data_roots,
            max_pixels=self.config.max_image_pixels,
            author_id=author_id,
        )

    # --- exchange -------------------------------------------------------------------------
    def export(
        self,
        fmt: str,
        out_dir: str | os.PathLike[str],
        *,
        dataset: str | None = None,
        labeler: str | None = None,
        classes: Sequence[str] = (),
        status: str | None = None,
        consensus: str | None = None,
        progress: Progress | None = None,
    ) -> ExportReport:
        """Export labels to ``out_dir`` (png-masks, coco, yolo, voc, nifti, dicom-seg, project-json, csv).

        Files appear atomically with a checksum manifest written last; unchanged files are not
        rewritten; a failed or cancelled export leaves the previous one intact.
        """
        from app.exchange.export import ExportFilters, export_project

        self.require(Action.EXPORT)

        filters = ExportFilters(
            dataset=dataset, labeler=labeler, classes=tuple(classes), status=status, consensus=consensus
        )
        return export_project(
            self.db,
            self.id,
            fmt,
            Path(out_dir),
            roots=self.config.all_data_roots,
            max_pixels=self.config.max_image_pixels,
            filters=filters,
            progress=progress,
        )

    def import_labels(
        self, fmt: str, path: str | os.PathLike[str], *, dry_run: bool = False
    ) -> LabelImportReport:
        """Bring existing labels in (coco, yolo, labelme, png-masks, nifti) onto registered assets."""
        from app.exchange.importers import import_labels

        self.require(Action.IMPORT_LABELS)

        return import_labels(
            self.db,
            self.id,
            fmt,
            Path(path),
            user_id=self.user.id,
            roots=self.config.all_data_roots,
            max_pixels=self.config.max_image_pixels,
            dry_run=dry_run,
        )

    # --- people ---------------------------------------------------------------------------
    def set_member(self, name: str, role: Role | str) -> User:
        """Add ``name`` to this project with ``role`` (or change it); project admins and above."""
        self.require(Action.MANAGE_PEOPLE)
        wanted = Role(role)
        if wanted is Role.ADMIN:
            raise ValidationError(
                "admin is a site-wide role: use set_site_role (sitelabel users add --role admin)"
            )
        with self.db.unit_of_work() as uow:
            target = uow.users.ensure(name)
            uow.users.set_role(target.id, wanted, project_id=self.id)
            uow.audit.record(
                self.user.id,
                "user.project_role",
                "user",
                target.id,
                {"project": self.id, "role": wanted.value},
            )
            return target

    def users(self) -> list[tuple[User, Role | None]]:
        with self.db.unit_of_work() as uow:
            return [(u, uow.users.role_in(u.id, self.id)) for u in uow.users.list()]
