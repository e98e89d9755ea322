"""Data roots: store asset paths relative to named roots, and notice moved or changed files.

``studies`` may be ``//nas/studies`` on one workstation and ``/mnt/studies`` on another;
the database keeps ``("studies", "ct/0001/slice.dcm")`` and each workstation resolves it.
Pure helpers: no database, no config reading.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from app.core.errors import ValidationError

_EDGE = 1024 * 1024  # bytes hashed at each end of a file

CheckResult = Literal["ok", "missing", "changed", "moved?"]


class DataRootError(ValidationError):
    """A path lies under no data root, or a relative path tries to leave its root."""


def _norm(path: str | os.PathLike[str]) -> Path:
    # abspath, not resolve(): keep mount points and UNC prefixes as the user configured them
    return Path(os.path.normpath(os.path.abspath(os.fspath(path))))  # noqa: PTH100


class DataRoots:
    """Named roots -> local folders, with longest-prefix matching."""

    def __init__(self, mapping: Mapping[str, str | os.PathLike[str]]) -> None:
        if not mapping:
            raise DataRootError("no data roots configured")
        self._roots = {name: _norm(path) for name, path in mapping.items()}

    @property
    def roots(self) -> dict[str, Path]:
        return dict(self._roots)

    def to_relative(self, path: str | os.PathLike[str]) -> tuple[str, str]:
        """(root name, POSIX path relative to that root) for the deepest root containing ``path``."""
        p = _norm(path)
        best: tuple[int, str, Path] | None = None
        for name, root in self._roots.items():
            if p == root or p.is_relative_to(root):
                depth = len(root.parts)
                if best is None or depth > best[0]:
                    best = (depth, name, root)
        if best is None:
            listing = ", ".join(f"{n}={r}" for n, r in self._roots.items())
            raise DataRootError(f"{p} is not under any data root ({listing})")
        _, name, root = best
        rel = p.relative_to(root)
        return name, PurePosixPath(*rel.parts).as_posix() if rel.parts else ""

    def resolve(self, root_name: str, rel: str) -> Path:
        """Local path of ``rel`` under root ``root_name`` on this workstation."""
        if root_name not in self._roots:
            raise DataRootError(f"unknown data root {root_name!r}")
        parts = PurePosixPath(rel.replace("\\", "/")).parts
        if rel.startswith(("/", "\\")) or any(p == ".." for p in parts) or (parts and ":" in parts[0]):
            raise DataRootError(
                f"refused path {rel!r} under data root {root_name!r}: a stored path must be relative "
                "and stay inside its root"
            )
        return self._roots[root_name].joinpath(*parts)


def root_reachable(root: str | os.PathLike[str]) -> bool:
    """False when a data-root folder is gone, unreadable, or an empty mount point (an unmounted share
    leaves its empty mount-point folder behind). May block on a hung network mount: call it off
    the UI thread."""
    try:
        with os.scandir(root) as entries:
            return next(entries, None) is not None
    except OSError:
        return False


@dataclass(frozen=True)
class FileFingerprint:
    """Cheap identity of a file: size, mtime and a hash of its first and last MiB plus its size."""

    size: int
    mtime_ns: int
    sha256: str


def fingerprint(path: str | os.PathLike[str]) -> FileFingerprint:
    p = Path(path)
    st = p.stat()
    h = hashlib.sha256()
    with p.open("rb") as fh:
        h.update(fh.read(_EDGE))
        if st.st_size > _EDGE:
            fh.seek(max(_EDGE, st.st_size - _EDGE))
            h.update(fh.read(_EDGE))
    h.update(str(st.st_size).encode())
    return FileFingerprint(st.st_size, st.st_mtime_ns, h.hexdigest())


def check(path: str | os.PathLike[str], expected: FileFingerprint) -> CheckResult:
    """'ok' unchanged; 'missing' gone; 'changed' other content; 'moved?' same content, new mtime
    (re-copied or moved back in place: worth a look, pixels are the same)."""
    p = Path(path)
    try:
        if not p.is_file():
            return "missing"
        st = p.stat()
    except OSError:
        return "missing"
    if st.st_size != expected.size:
        return "changed"
    if st.st_mtime_ns == expected.mtime_ns:
        return "ok"  # size and mtime agree: trust them without re-reading a network file
    try:
        now = fingerprint(p)
    except OSError:
        return "missing"
    return "moved?" if now.sha256 == expected.sha256 else "changed"


def find_moved(expected: FileFingerprint, candidates: Iterable[str | os.PathLike[str]]) -> Path | None:
    """The first candidate with the same size and content hash (for relinking a moved file)."""
    for c in candidates:
        p = Path(c)
        try:
            if p.is_file() and p.stat().st_size == expected.size and fingerprint(p).sha256 == expected.sha256:
                return p
        except OSError:
            continue
    return None
