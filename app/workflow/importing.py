"""Register data in a project: scan files/folders/archives, store each source's location relative
to a data root plus its fingerprint. Pixels are never copied."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.records import AssetKind

if TYPE_CHECKING:
    from app.sources import SourceRef
    from app.storage import Database

Progress = Callable[[int, int], bool | None]


@dataclass(frozen=True)
class Found:
    """A source the scan found, as a report names it."""

    path: str  # the file, ``folder#series=UID`` or ``archive!member``
    kind: str  # image, dicom, video
    frames: int
    shape: tuple[int, int]  # (height, width)


@dataclass
class ImportReport:
    """What an import registered (or, in a dry run, would register) and what it left, and why.

    Every ``(path, why)`` names the path once: ``why`` never repeats it.
    """

    asset_ids: list[int] = field(default_factory=list)  # empty in a dry run
    new: list[Found] = field(default_factory=list)  # registered now (dry run: would be)
    known: list[str] = field(default_factory=list)  # registered before: left as they are
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, why it cannot be registered)
    ignored: list[str] = field(default_factory=list)  # files no reader claims (README.txt, ...)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (path, what the reader noticed)
    cancelled: bool = False
    dry_run: bool = False

    @property
    def skipped(self) -> int:
        """How many were registered already."""
        return len(self.known)


@dataclass(frozen=True)
class Location:
    path: Path  # a file, or the folder of a multi-file DICOM series
    member: str | None  # archive member, or SeriesInstanceUID for a series folder


def location_of(ref: SourceRef) -> Location:
    """Where a scanned source lives: a file, an archive member, or a series inside a folder.

    The member keeps the reader's own address syntax (``series=UID[&part=N]`` after ``#``,
    an archive member after ``!``) so the source can be opened again from root + path + member.
    """
    from app.sources.opening import ARCHIVE_MARK, SERIES_MARK

    series_key = SERIES_MARK.lstrip("#")
    if SERIES_MARK in ref.uri:
        folder, _, rest = ref.uri.partition(SERIES_MARK)
        return Location(Path(folder), f"{series_key}{rest}")
    if ARCHIVE_MARK in ref.uri and not Path(ref.uri).exists():
        archive, _, member = ref.uri.partition(ARCHIVE_MARK)
        return Location(Path(archive), f"{ARCHIVE_MARK}{member}")
    return Location(Path(ref.uri), None)


def _asset_kind(ref: SourceRef) -> AssetKind:
    return AssetKind.DICOM_SERIES if ref.kind == "dicom" else AssetKind(ref.kind)


def _fingerprint(ref: SourceRef, location: Location) -> tuple[int, int, str]:
    """(size, mtime_ns, hash) to notice moved or changed files later."""
    from app.sources.dataroots import fingerprint

    if location.path.is_file():
        fp = fingerprint(location.path)
        return fp.size, fp.mtime_ns, fp.sha256
    return _files_signature(ref.files)


def _files_signature(files: Sequence[Path]) -> tuple[int, int, str]:
    """A series' signature: names and sizes of its files (reading every slice would defeat lazy opening)."""
    digest = hashlib.sha256()
    size, mtime = 0, 0
    for file in sorted(files):
        stat = file.stat()
        size += stat.st_size
        mtime = max(mtime, stat.st_mtime_ns)
        digest.update(f"{file.name}\0{stat.st_size}\0".encode())
    return size, mtime, "files:" + digest.hexdigest()


def location_fingerprint(folder: Path, member: str | None) -> tuple[int, int, str] | None:
    """The signature of the series ``member`` inside ``folder`` as it is now (None when it is gone)."""
    from app.sources import scan

    for ref in scan([folder]).items:
        found = location_of(ref)
        if found.path == folder and found.member == member:
            return _files_signature(ref.files)
    return None


def import_paths(
    db: Database,
    project_id: int,
    paths: Sequence[Path],
    *,
    dataset: str,
    roots: Mapping[str, Path],
    user_id: int | None,
    max_pixels: int,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Register what ``paths`` hold (see the module doc); ``dry_run`` reports the same without
    writing anything (no asset, dataset, data root or audit row)."""
    from app.sources import SourceLimits, scan
    from app.sources.dataroots import DataRoots
    from app.sources.errors import without_path

    report = ImportReport(dry_run=dry_run)
    missing = [p for p in paths if not Path(p).exists()]
    report.errors += [(str(p), "no such file or folder") for p in missing]
    found = scan(
        [Path(p) for p in paths if p not in missing],
        limits=SourceLimits(max_pixels=max_pixels),
        progress=progress,
    )
    report.errors += [(str(path), message) for path, message in found.errors]
    report.ignored += [str(path) for path in found.skipped]
    report.cancelled = found.cancelled
    data_roots = DataRoots(dict(roots))
    with db.unit_of_work(readonly=dry_run) as uow:
        dataset_id = None if dry_run else uow.datasets.ensure(project_id, dataset).id
        for ref in found.items:
            location = location_of(ref)
            try:
                root, rel = data_roots.to_relative(location.path)
            except Exception as exc:  # a path outside every data root: reported, others go on
                report.errors.append((str(location.path), without_path(location.path, str(exc))))
                continue
            if uow.assets.find(project_id, root, rel, location.member) is not None:
                report.known.append(ref.uri)
                continue
            report.new.append(Found(ref.uri, ref.kind, ref.frame_count, ref.shape))
            report.warnings += [(ref.uri, warning) for warning in ref.warnings]
            if dataset_id is None:
                continue
            uow.data_roots.ensure(root)
            size, mtime_ns, digest = _fingerprint(ref, location)
            height, width = ref.shape
            asset = uow.assets.add(
                project_id,
                dataset_id,
                kind=_asset_kind(ref),
                root=root,
                rel_path=rel,
                member=location.member,
                size=size,
                mtime_ns=mtime_ns,
                content_hash=digest,
                frame_count=ref.frame_count,
                width=width,
                height=height,
                metadata=dict(ref.metadata),
            )
            report.asset_ids.append(asset.id)
        if report.asset_ids:
            uow.audit.record(
                user_id,
                "data.import",
                "project",
                project_id,
                {"assets": len(report.asset_ids), "dataset": dataset, "errors": len(report.errors)},
            )
    return report
