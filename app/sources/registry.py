"""Registry of readers keyed by file-name patterns and content sniffing.

A reader module declares itself with ``@register_reader(...)`` on its opener. Content
sniffing wins over the file name (a PNG saved as ``.jpg`` opens as PNG); the name
pattern is the fallback, so a broken ``x.dcm`` still reaches the DICOM reader and gets
a DICOM-specific error instead of "unsupported".
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from app.sources.base import ScanResult, Source
    from app.sources.values import SourceLimits

ReaderKind = Literal["image", "dicom", "video", "archive"]
Sniffer = Callable[[bytes], bool]
Opener = Callable[[Path, "SourceLimits"], "Source"]
Progress = Callable[[int], bool]
#: Readers whose files are grouped (DICOM series) get all their files at once.
BatchScanner = Callable[[list[Path], "SourceLimits", Progress], "ScanResult"]
#: Containers (archives) register their extractor as the opener: (archive, limits, cache folder)
#: -> (extraction folder, member names); ``app.sources.opening`` opens or scans the members.
Extractor = Callable[[Path, "SourceLimits | None", Path | None], tuple[Path, list[str]]]

HEAD_BYTES = 512

#: Modules that register readers; imported on first use so ``import app.sources`` stays cheap.
READER_MODULES = ("app.sources.images", "app.sources.dicom", "app.sources.video", "app.sources.archives")


@dataclass(frozen=True)
class ReaderSpec:
    name: str
    kind: ReaderKind
    patterns: tuple[str, ...]
    sniff: Sniffer | None
    opener: Callable[..., object]
    priority: int = 0
    batch: BatchScanner | None = None

    def matches_name(self, path: Path) -> bool:
        name = path.name.lower()
        return any(fnmatch.fnmatchcase(name, pat) for pat in self.patterns)


_READERS: list[ReaderSpec] = []
_loaded = False


def register_reader(
    *,
    name: str,
    kind: ReaderKind,
    patterns: tuple[str, ...] | list[str],
    sniff: Sniffer | None = None,
    priority: int = 0,
    batch: BatchScanner | None = None,
) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Register the decorated opener ``(path, limits) -> Source`` (an archive's: its ``Extractor``)."""

    def deco(fn: Callable[..., object]) -> Callable[..., object]:
        spec = ReaderSpec(name, kind, tuple(p.lower() for p in patterns), sniff, fn, priority, batch)
        _READERS[:] = [r for r in _READERS if r.name != name]
        _READERS.append(spec)
        _READERS.sort(key=lambda r: -r.priority)
        return fn

    return deco


def load_readers() -> None:
    global _loaded  # noqa: PLW0603 - one-time lazy import of the reader modules
    if _loaded:
        return
    for mod in READER_MODULES:
        importlib.import_module(mod)
    _loaded = True


def readers() -> list[ReaderSpec]:
    load_readers()
    return list(_READERS)


def reader_named(name: str) -> ReaderSpec:
    for spec in readers():
        if spec.name == name:
            return spec
    raise KeyError(name)


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    with path.open("rb") as fh:
        return fh.read(size)


def find_reader(path: Path, head: bytes | None) -> ReaderSpec | None:
    """The reader for ``path``: content sniffing first, then the file-name pattern."""
    specs = readers()
    if head:
        for spec in specs:
            if spec.sniff is not None and spec.sniff(head):
                return spec
    for spec in specs:
        if spec.matches_name(path):
            return spec
    return None
