"""Safe export writes: stage every file, then swap them into place, manifest last.

``ExportTransaction(out_dir)`` is a context manager. Files are written into a hidden staging folder
inside ``out_dir`` (same file system, so renames are atomic), each through a temporary name and
fsync. ``commit()`` compares every file's sha256 with the previous ``manifest.json``: unchanged
files are not rewritten (incremental), changed or new ones are renamed into place, files of the
previous export that are no longer produced are removed, and the new manifest is written LAST.

Every file replaced or removed during the commit is first moved aside into the staging folder, so
a failure in the middle of the commit (full disk, target unmounted) is rolled back: the previous
files and manifest come back. Outside ``commit()`` nothing in ``out_dir`` is touched at all. Only
a crash of the whole machine during the few renames of a commit can leave a mix; the manifest then
still describes the previous export, and the next export repairs the folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, BinaryIO

from app.core.errors import SitelabelError

MANIFEST = "manifest.json"
STAGING_PREFIX = ".sitelabel-staging-"
_STALE_SECONDS = 24 * 3600  # staging folders of killed exports older than this are swept
_CHUNK = 1 << 20


class ExportError(SitelabelError):
    """The export could not be written; the message says why and that nothing was changed."""


class ExportCancelled(SitelabelError):
    """The user cancelled the export; the previous export is intact."""


@dataclass(frozen=True)
class CommitResult:
    written: int
    unchanged: int
    removed: int


def os_error_message(exc: OSError, out_dir: Path) -> str:
    """A clear sentence for an OSError met while writing an export into ``out_dir``."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"the export target {out_dir} is full (no space left on the device): nothing was changed"
    if code == errno.EROFS:
        return f"the export target {out_dir} is read-only: nothing was changed"
    if code in (errno.EACCES, errno.EPERM):
        return f"no permission to write in the export target {out_dir}: nothing was changed"
    if code in (errno.ENOENT, errno.ESTALE, errno.ENOTDIR, errno.ENODEV):
        return (
            f"the export target {out_dir} disappeared during the export (deleted, moved or unmounted): "
            "nothing was written"
        )
    return f"cannot write the export to {out_dir}: {exc.strerror or exc}: nothing was changed"


def _fsync_dir(path: Path) -> None:
    # Makes renames durable on POSIX; directories cannot be opened this way on Windows.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_files(paths: list[Path]) -> None:
    """fsync many files at once: concurrent fsyncs share the file system's journal commits."""

    def one(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    if not paths:
        return
    with ThreadPoolExecutor(min(32, len(paths)), thread_name_prefix="sitelabel-fsync") as pool:
        list(pool.map(one, paths))


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name in the same folder, fsynced."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def check_relative(name: str) -> PurePosixPath:
    """A safe posix path inside the export (no absolute path, no '..', not the manifest)."""
    rel = PurePosixPath(name.replace("\\", "/"))
    if (
        not rel.parts
        or rel.is_absolute()
        or ".." in rel.parts
        or str(rel) == MANIFEST
        or rel.parts[0].startswith(STAGING_PREFIX)
        or (rel.parts and ":" in rel.parts[0])
    ):
        raise ValueError(f"bad export file name {name!r}")
    return rel


def _file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _copy_file(source: Path, target: Path) -> None:
    """Copy through a temporary name in the target's folder, fsynced, then rename."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        with source.open("rb") as src, tmp.open("xb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what goes through it."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self._raw.write(view)
        self.size += view.nbytes
        return view.nbytes


class ExportTransaction:
    """Stage files for ``out_dir`` and swap them in on ``commit()``; see the module docstring."""

    def __init__(self, out_dir: Path, *, fmt: str, filters: Mapping[str, Any] | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.fmt = fmt
        self.filters = dict(filters or {})
        self.files: dict[str, tuple[str, int]] = {}  # rel -> (sha256, size), all produced files
        # what the export reports beside its files (skips by reason, label overlaps): the
        # manifest's "summary", so a consumer reading the manifest first learns what was left out
        self.summary: dict[str, Any] = {}
        self._staged: set[str] = set()  # files physically written to staging (new or changed)
        self._previous: dict[str, tuple[str, int]] = {}
        self._staging: Path | None = None
        self._dir_fd: int | None = None
        self.result: CommitResult | None = None
        self._lock = threading.Lock()  # files / staged, written from the frame writer's threads
        self._unsynced: list[Path] = []  # staged files to fsync at commit
        self._folders: set[Path] = set()  # staging folders made so far

    # --- context --------------------------------------------------------------------------------
    def __enter__(self) -> ExportTransaction:
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._sweep_stale()
            self._previous = self._read_manifest()
            staging = self.out_dir / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
            staging.mkdir()
            self._staging = staging
            if os.name == "posix" and shutil.rmtree.avoids_symlink_attacks:
                # A handle on the folder itself: cleanup still finds the staging folder if the
                # target is renamed or moved away mid-export.
                self._dir_fd = os.open(self.out_dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise ExportError(os_error_message(exc, self.out_dir)) from exc
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._discard()
        if isinstance(exc, OSError):
            raise ExportError(os_error_message(exc, self.out_dir)) from exc

    def _discard(self) -> None:
        if self._staging is not None:
            # Best effort: the target may be gone.
            if self._dir_fd is not None:
                shutil.rmtree(self._staging.name, ignore_errors=True, dir_fd=self._dir_fd)
            else:
                shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def _sweep_stale(self) -> None:
        now = time.time()
        for entry in self.out_dir.glob(f"{STAGING_PREFIX}*"):
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime > _STALE_SECONDS:
                    shutil.rmtree(entry, ignore_errors=True)

    def _read_manifest(self) -> dict[str, tuple[str, int]]:
        path = self.out_dir / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return {str(k): (str(v["sha256"]), int(v["size"])) for k, v in data["files"].items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, AttributeError):
            return {}  # a damaged manifest: treat every file as changed, remove nothing we don't know

    @property
    def staging(self) -> Path:
        if self._staging is None:
            raise RuntimeError("the export transaction is not open")
        return self._staging

    # --- writing --------------------------------------------------------------------------------
    def write_bytes(self, name: str, data: bytes, *, sync_now: bool = True) -> None:
        """Stage one file. Identical to the previous export's file: nothing is written at all.

        Safe to call from several threads (the frame writer's pool) for different names.
        ``sync_now=False`` (thousands of frames): the file is fsynced at commit, with the others in
        parallel, instead of one fsync (~10 ms on ext4) per file while writing.
        """
        rel = str(check_relative(name))
        digest = hashlib.sha256(data).hexdigest()
        if not self._record(rel, digest, len(data)):
            return
        target = self._live_staging() / rel
        if target.parent not in self._folders:  # one mkdir per folder, not per file
            target.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(target.parent)
        if sync_now:
            _write_file(target, data)
        else:  # the staging folder is private: no temporary name needed, fsynced at commit
            with target.open("xb") as handle:
                handle.write(data)
        with self._lock:
            self._staged.add(rel)
            if not sync_now:
                self._unsynced.append(target)

    def _record(self, rel: str, digest: str, size: int) -> bool:
        """Note a produced file; False when the previous export already holds it unchanged."""
        with self._lock:
            if rel in self.files:
                raise ValueError(f"the export wrote {rel!r} twice")
            self.files[rel] = (digest, size)
        return not (self._previous.get(rel) == (digest, size) and self._intact(rel, size))

    def add_file(self, name: str, source: Path, *, link: bool = True) -> None:
        """Stage an existing file as ``name``: a hard link to ``source`` (``link``, falling back to a
        copy where the file systems differ or links are refused) or a copy. Never a symlink: the
        export holds the file itself. Unchanged since the previous export: nothing is done."""
        rel = str(check_relative(name))
        digest, size = _file_digest(source)
        if not self._record(rel, digest, size):
            return
        target = self._live_staging() / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        linked = False
        if link:
            try:
                os.link(source, target)
                linked = True
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    raise
                # EXDEV (another file system), EPERM/EACCES/ENOTSUP/EMLINK: copy instead
        if not linked:
            _copy_file(source, target)
        with self._lock:
            self._staged.add(rel)

    @contextlib.contextmanager
    def stream(self, name: str) -> Iterator[io.RawIOBase]:
        """Stage a file written piece by piece (a large JSON), hashed as it is written; memory stays
        flat. Identical to the previous export's file: the staged copy is dropped."""
        rel = str(check_relative(name))
        target = self._live_staging() / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            with tmp.open("xb") as raw:
                handle = _HashingWriter(raw)
                yield handle
                raw.flush()
                os.fsync(raw.fileno())
            digest, size = handle.digest.hexdigest(), handle.size
            if self._record(rel, digest, size):
                tmp.replace(target)
                with self._lock:
                    self._staged.add(rel)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def write_json(self, name: str, data: Any, *, indent: int | None = None) -> None:
        text = json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False, sort_keys=False)
        self.write_text(name, text + "\n")

    def _live_staging(self) -> Path:
        # Never let mkdir(parents=True) re-create a target folder that vanished mid-export.
        staging = self.staging
        if not staging.is_dir():
            raise FileNotFoundError(errno.ENOENT, "the staging folder vanished", str(staging))
        return staging

    def _intact(self, rel: str, size: int) -> bool:
        try:
            return (self.out_dir / rel).stat().st_size == size
        except OSError:
            return False

    # --- commit ---------------------------------------------------------------------------------
    def commit(self) -> CommitResult:
        """Swap staged files in, remove obsolete ones, write the manifest last; roll back on failure."""
        staging = self._live_staging()
        _fsync_files(self._unsynced)  # before anything moves: the new files are on disk
        backup = staging / ".previous"
        undo: list[tuple[str, bool]] = []  # (rel, had a previous file moved to backup)
        obsolete = sorted(set(self._previous) - set(self.files))
        try:
            for rel in sorted(self._staged):
                had_old = self._move_aside(rel, backup)
                undo.append((rel, had_old))
                target = self.out_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                (staging / rel).replace(target)
            removed = 0
            for rel in obsolete:
                if self._move_aside(rel, backup):
                    undo.append((rel, True))
                    removed += 1
            self._write_manifest()
        except BaseException:
            self._roll_back(undo, backup)
            raise
        for rel in obsolete:
            self._prune_empty_dirs(self.out_dir / rel)
        self.result = CommitResult(len(self._staged), len(self.files) - len(self._staged), removed)
        return self.result

    def _move_aside(self, rel: str, backup: Path) -> bool:
        current = self.out_dir / rel
        if not current.exists():
            return False
        aside = backup / rel
        aside.parent.mkdir(parents=True, exist_ok=True)
        current.replace(aside)
        return True

    def _roll_back(self, undo: list[tuple[str, bool]], backup: Path) -> None:
        for rel, had_old in reversed(undo):
            with contextlib.suppress(OSError):  # best effort: the target may have vanished
                target = self.out_dir / rel
                if had_old:
                    (backup / rel).replace(target)
                else:
                    target.unlink(missing_ok=True)
                    self._prune_empty_dirs(target)

    def _prune_empty_dirs(self, removed_file: Path) -> None:
        parent = removed_file.parent
        while parent != self.out_dir and self.out_dir in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                return
            parent = parent.parent

    def _write_manifest(self) -> None:
        manifest: dict[str, Any] = {
            "format": self.fmt,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "filters": self.filters,
            "files": {rel: {"sha256": sha, "size": size} for rel, (sha, size) in sorted(self.files.items())},
        }
        if self.summary:
            manifest["summary"] = self.summary
        data = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
        _write_file(self.out_dir / MANIFEST, data)
        _fsync_dir(self.out_dir)
