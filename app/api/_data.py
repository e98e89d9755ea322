"""Registering data in place and keeping the queue fed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.api._project import Progress, ProjectBase
from app.core.errors import NotFoundError
from app.core.permissions import Action
from app.core.records import Asset

if TYPE_CHECKING:
    from app.ingest.watcher import FolderWatcher
    from app.sources import Source
    from app.workflow.importing import ImportReport


class DataMixin(ProjectBase):
    def import_data(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        dataset: str = "default",
        progress: Progress | None = None,
        dry_run: bool = False,
    ) -> list[int]:
        """Register files, folders, archives, DICOM folders and videos in place; returns new asset ids.

        Files already registered are skipped. Unreadable files are reported in
        :attr:`last_import_errors` and do not stop the rest. :attr:`last_import` holds the whole
        report: what was registered, what was known, ignored or unreadable and why, and what the
        readers warned about per file. ``dry_run=True`` fills that report and writes nothing
        (returns ``[]``).
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
            dry_run=dry_run,
        )
        self.last_import: ImportReport = report
        self.last_import_errors: list[tuple[str, str]] = report.errors
        self.last_import_skipped: int = report.skipped
        self._enqueue(report.asset_ids)
        return report.asset_ids

    def open_asset(self, asset: Asset | int) -> Source:
        """The source (image, DICOM series, video) of an asset, opened in place.

        When the asset's data folder is unreachable (a share unmounted or offline) this raises
        :class:`app.sources.SourceUnavailable` naming the asset and the folder; the returned
        source raises the same for frames it cannot read later, and reads again once the
        folder is back. Annotations never depend on it. A stored path that would leave its data
        root is refused with :class:`app.sources.DataRootError`.
        """
        from app.sources import SourceError, SourceUnavailable, asset_path, open_asset
        from app.sources.assets import asset_name
        from app.sources.dataroots import root_reachable

        # looked up again even when given a record: it may come from another project (or be made up)
        record = self.asset(asset.id if isinstance(asset, Asset) else asset)
        roots = self.config.all_data_roots
        try:
            return open_asset(record, roots, max_pixels=self.config.max_image_pixels)
        except SourceUnavailable:
            raise
        except (NotFoundError, SourceError, OSError) as exc:
            root = roots.get(record.root)
            if root is not None and not root_reachable(root):
                raise SourceUnavailable(
                    f"Cannot open {asset_name(record)}: the data folder {root} is not reachable "
                    "(unmounted or offline?)",
                    path=asset_path(record, roots),
                    root=root,
                ) from exc
            raise

    def data_root_reachable(self, name: str) -> bool:
        """Whether data root ``name`` can be read on this workstation now (False for an unmounted or
        offline share, or a root not configured here). May block on a hung network mount: call it
        off the UI thread."""
        from app.sources.dataroots import root_reachable

        root = self.config.all_data_roots.get(name)
        return root is not None and root_reachable(root)

    def assets(self, dataset: str | None = None, *, limit: int | None = None, offset: int = 0) -> list[Asset]:
        self.require(Action.VIEW)
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
            settings = self.settings  # read now: an admin may have changed it since the open
            enqueue_with_consensus(
                self.db, self.id, asset_ids, share=settings.consensus_share, count=settings.consensus_count
            )
