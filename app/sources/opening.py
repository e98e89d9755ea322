"""open_source() and scan(): dispatch paths, folders, series URIs and archive members to readers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from app.sources.base import ScanResult, Source, SourceRef, install_ref_opener
from app.sources.errors import CorruptFile, SourceError, SourceNotFound, UnsupportedFormat, without_path
from app.sources.registry import ReaderSpec, find_reader, read_head, readers
from app.sources.values import SourceLimits

SERIES_MARK = "#series="
ARCHIVE_MARK = "!"


def _missing(path: Path) -> SourceNotFound:
    if path.is_symlink():
        return SourceNotFound(f"{path}: dangling symbolic link")
    return SourceNotFound(f"{path}: no such file or folder")


def _split_archive(uri: str) -> tuple[Path, str] | None:
    """'a.zip!dir/x.dcm' -> (Path('a.zip'), 'dir/x.dcm') when a.zip is a file."""
    start = 0
    while (k := uri.find(ARCHIVE_MARK, start)) != -1:
        head = Path(uri[:k])
        if head.is_file():
            return head, uri[k + 1 :]
        start = k + 1
    return None


def _spec_for(path: Path) -> ReaderSpec:
    try:
        head = read_head(path)
    except IsADirectoryError as exc:
        raise SourceNotFound(f"{path}: is a folder where a file was expected") from exc
    except FileNotFoundError as exc:  # the walk found it: a link to nothing, or it just went away
        raise _missing(path) from exc
    except OSError as exc:
        raise SourceNotFound(f"{path}: cannot open: {exc.strerror or exc}") from exc
    spec = find_reader(path, head)
    if spec is None:
        if not head:
            raise CorruptFile(f"{path}: empty file (0 bytes)")
        raise UnsupportedFormat(f"{path}: unsupported file type (no reader recognises its content or name)")
    if not head:
        raise CorruptFile(f"{path}: empty file (0 bytes)")
    return spec


def open_ref(ref: SourceRef, *, limits: SourceLimits | None = None) -> Source:
    if ref.kind == "dicom" and ref.payload:
        from app.sources.dicom import source_from_headers

        return source_from_headers(list(ref.payload), ref.uri, limits)
    return open_source(ref.uri, limits=limits)


install_ref_opener(lambda ref, limits: open_ref(ref, limits=limits))


def open_source(
    path: str | os.PathLike[str], *, limits: SourceLimits | None = None, cache_dir: Path | None = None
) -> Source:
    """Open a file, a one-series folder, 'folder#series=UID' or 'archive.zip!member'; headers only."""
    limits = limits or SourceLimits()
    uri = os.fspath(path)
    series_uid: str | None = None
    if SERIES_MARK in uri:
        uri, _, series_uid = uri.partition(SERIES_MARK)
    archive = None if Path(uri).exists() else _split_archive(uri)
    if archive is not None:
        from app.sources.archives import extract_member

        arc_path, member = archive
        local = extract_member(arc_path, member, limits, cache_dir)
        src = open_source(str(local) + (SERIES_MARK + series_uid if series_uid else ""), limits=limits)
        src.uri = f"{arc_path}{ARCHIVE_MARK}{member}" + (f"{SERIES_MARK}{series_uid}" if series_uid else "")
        return src
    p = Path(uri)
    if not p.exists():
        raise _missing(p)
    if p.is_dir() or series_uid is not None:
        return _open_from_folder(p, series_uid, limits, cache_dir)
    spec = _spec_for(p)
    if spec.kind == "archive":
        return open_single_member(p, limits, cache_dir)
    result = spec.opener(p, limits)
    assert isinstance(result, Source)
    return result


def open_single_member(
    path: Path, limits: SourceLimits | None = None, cache_dir: Path | None = None
) -> Source:
    """The one file inside an archive; an archive of several files must be opened as 'archive!member'."""
    from app.sources.archives import extract_all

    root, members = extract_all(path, limits, cache_dir)
    if len(members) != 1:
        raise UnsupportedFormat(
            f"{path}: archive holds {len(members)} files; open 'archive!member' or use scan()"
        )
    src = open_source(root / members[0], limits=limits)
    src.uri = f"{path}{ARCHIVE_MARK}{members[0]}"
    return src


def _open_from_folder(
    folder: Path, series_uid: str | None, limits: SourceLimits, cache_dir: Path | None
) -> Source:
    result = scan([folder], limits=limits, cache_dir=cache_dir)
    items = result.items
    if series_uid is not None:
        uid, _, part = series_uid.partition("&part=")
        items = [r for r in items if r.metadata.get("SeriesInstanceUID") == uid]
        if part:
            items = [r for r in items if r.uri.endswith(f"&part={part}")]
        elif len(items) > 1:
            items = [r for r in items if "&part=" not in r.uri]
    if len(items) == 1:
        return items[0].open(limits=limits)
    if not items:
        detail = f"; first error: {result.errors[0][0]}: {result.errors[0][1]}" if result.errors else ""
        what = f"series {series_uid}" if series_uid else "readable images, series or videos"
        raise UnsupportedFormat(f"{folder}: no {what} found{detail}")
    listing = ", ".join(r.uri for r in items[:3])
    raise UnsupportedFormat(f"{folder}: holds {len(items)} sources ({listing}, ...); open one of them")


def _walk(paths: Iterable[Path], errors: list[tuple[Path, str]]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for root, dirs, names in os.walk(p, onerror=lambda e: errors.append((Path(e.filename), str(e)))):
                dirs.sort()
                files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
        elif p.exists() or p.is_symlink():
            files.append(p)
        else:
            errors.append((p, f"{p}: no such file or folder"))
    return files


def scan(
    paths: Iterable[Path],
    *,
    limits: SourceLimits | None = None,
    progress: Callable[[int, int], bool | None] | None = None,
    cache_dir: Path | None = None,
) -> ScanResult:
    """Walk files/folders/archives; group DICOM into series; one error per bad file, never an abort.

    ``progress(done, total)`` is called as files are classified and headers read; returning
    False cancels (``result.cancelled`` is set and the partial result returned). Errors are
    ``(path, reason)``: the reason does not name the path again.
    """
    result = _scan(paths, limits or SourceLimits(), progress, cache_dir)
    result.errors = [(path, without_path(path, why)) for path, why in result.errors]
    return result


def _scan(
    paths: Iterable[Path],
    limits: SourceLimits,
    progress: Callable[[int, int], bool | None] | None,
    cache_dir: Path | None,
) -> ScanResult:
    result = ScanResult()
    files = _walk(paths, result.errors)
    total = len(files)
    done = 0

    def tick(n: int = 1) -> bool:
        nonlocal done
        done += n
        if progress is not None and progress(done, total) is False:
            result.cancelled = True
            return False
        return True

    batches: dict[str, tuple[ReaderSpec, list[Path]]] = {}
    singles: list[tuple[ReaderSpec, Path]] = []
    for f in files:
        if result.cancelled:
            return result
        try:
            spec = _spec_for(f)
        except UnsupportedFormat:
            result.skipped.append(f)
            tick()
            continue
        except SourceError as exc:
            result.errors.append((f, str(exc)))
            tick()
            continue
        if spec.name == "dicom" and f.name.upper() == "DICOMDIR" and len(files) > 1:
            tick()  # the walk finds the referenced files itself
            continue
        if spec.batch is not None:
            batches.setdefault(spec.name, (spec, []))[1].append(f)
        else:
            singles.append((spec, f))
    for spec, f in singles:
        if result.cancelled:
            return result
        if spec.kind == "archive":
            _scan_archive(f, limits, cache_dir, result)
        else:
            _scan_single(spec, f, limits, result)
        tick()
    for spec, group in batches.values():
        assert spec.batch is not None
        sub = spec.batch(group, limits, tick)
        result.items.extend(sub.items)
        result.errors.extend(sub.errors)
    return result


def _scan_single(spec: ReaderSpec, f: Path, limits: SourceLimits, result: ScanResult) -> None:
    try:
        src = spec.opener(f, limits)
        assert isinstance(src, Source)
    except SourceError as exc:
        result.errors.append((f, str(exc)))
        return
    except Exception as exc:
        result.errors.append((f, f"{f}: cannot read: {type(exc).__name__}: {exc}"))
        return
    with src:
        meta = dict(src.metadata)
        result.items.append(
            SourceRef(src.uri, src.kind, (f,), src.frame_count, src.shape, meta, tuple(src.warnings))
        )


def _scan_archive(f: Path, limits: SourceLimits, cache_dir: Path | None, result: ScanResult) -> None:
    from app.sources.archives import extract_all

    try:
        root, members = extract_all(f, limits, cache_dir)
    except SourceError as exc:
        result.errors.append((f, str(exc)))
        return
    sub = scan([root / m for m in members], limits=limits, cache_dir=cache_dir)

    def rewrite(text: str) -> str:
        prefix = str(root) + os.sep
        return text.replace(prefix, f"{f}{ARCHIVE_MARK}").replace(str(root), f"{f}{ARCHIVE_MARK}")

    for ref in sub.items:
        result.items.append(
            SourceRef(rewrite(ref.uri), ref.kind, ref.files, ref.frame_count, ref.shape, ref.metadata,
                      ref.warnings, ref.payload)
        )  # fmt: skip
    result.errors.extend((Path(rewrite(str(p))), rewrite(msg)) for p, msg in sub.errors)
    result.skipped.extend(Path(rewrite(str(p))) for p in sub.skipped)


def supported_patterns() -> list[str]:
    return sorted({pat for spec in readers() for pat in spec.patterns})
