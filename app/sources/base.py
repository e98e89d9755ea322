"""The Source contract every reader implements, plus what ``scan`` finds (refs and results).

Plain values (limits, geometry, origin) live in the leaf ``app.sources.values``.

A source is opened by reading headers only. ``frame(i)`` decodes on demand, keeps the
result in a byte-bounded LRU cache and queues the neighbours of ``i`` on a small
background pool so that scrolling or playing finds them ready (``app.sources.frame_store``).
Frames come back read-only because they are shared with the cache: copy before changing them.

Data folders come and go (a share unmounted, a network drop): a frame whose file cannot be
reached raises ``SourceUnavailable`` with one line naming the file and, when the source knows
its ``origin``, the data folder. Decoded frames stay usable, failures are never cached, and a
reader that keeps a file open (TIFF, video) checks the path before each read and reopens the
file when it was replaced (the share mounted again), so it never reads through a dead handle
(``app.sources.file_guard``).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from app.sources.errors import SourceError
from app.sources.file_guard import FileGuard
from app.sources.frame_store import FrameStore
from app.sources.values import SourceKind, SourceLimits, SourceOrigin, VolumeGeometry

if TYPE_CHECKING:  # numpy is imported lazily so `import app.sources` stays cheap
    import numpy as np

#: Opens a ref: installed by ``app.sources.opening`` when it loads (always, as the package imports
#: it), so that this module need not import the dispatcher that imports every reader (a cycle).
RefOpener = Callable[["SourceRef", "SourceLimits | None"], "Source"]
_ref_opener: list[RefOpener] = []


def install_ref_opener(opener: RefOpener) -> None:
    """Make ``SourceRef.open`` use ``opener`` (called once, by ``app.sources.opening``)."""
    _ref_opener[:] = [opener]


@dataclass(frozen=True)
class SourceRef:
    """One openable item found by ``scan``: its uri plus what the headers said."""

    uri: str
    kind: SourceKind
    files: tuple[Path, ...]
    frame_count: int
    shape: tuple[int, int]
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    #: reader-private data (e.g. parsed DICOM headers) so open() need not re-read them
    payload: Any = field(default=None, compare=False, repr=False)

    def open(self, *, limits: SourceLimits | None = None) -> Source:
        if not _ref_opener:
            raise SourceError(f"{self.uri}: no opener installed (import app.sources first)")
        return _ref_opener[0](self, limits)


def clip_region(shape: tuple[int, int], x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, int, int]:
    """The region ``[y0:y1, x0:x1]`` clipped to a frame of ``shape`` (H, W), corners ordered."""
    h, w = shape
    x0, x1 = sorted((max(0, min(w, int(x0))), max(0, min(w, int(x1)))))
    y0, y1 = sorted((max(0, min(h, int(y0))), max(0, min(h, int(y1)))))
    return x0, y0, x1, y1


@dataclass
class ScanResult:
    items: list[SourceRef] = field(default_factory=list)
    errors: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # files no reader claims (README.txt, ...)
    cancelled: bool = False


class Source(ABC):
    """A lazily decoded stack of 2-D frames (image pages, DICOM slices, video frames)."""

    kind: SourceKind
    uri: str
    shape: tuple[int, int]
    channels: int
    dtype: np.dtype
    frame_count: int
    spacing: tuple[float, float, float] | None = None
    geometry: VolumeGeometry | None = None
    window: tuple[float, float] | None = None
    metadata: dict[str, Any]
    warnings: list[str]

    #: 1 keeps decoding ordered (video); readers safe to decode in parallel leave it None.
    _max_workers: int | None = None
    #: set by whoever opened the source for an asset; makes unreachable-file messages name the data folder
    origin: SourceOrigin | None = None
    #: True for readers that keep a file open between frames (they implement ``_reopen``)
    _keeps_handle = False
    #: what one frame is called in messages ("slice 7 of ...")
    _frame_noun = "frame"

    def __init__(self, limits: SourceLimits | None = None) -> None:
        self.limits = limits or SourceLimits()
        self.metadata = {}
        self.warnings = []
        self._lock = threading.Lock()  # close() against a reopen of the file
        self._closed = False
        #: the files behind the frames (unreachable files, replaced handles)
        self._files = FileGuard(
            self,
            decode=self._decode,
            files_of=self._files_of,
            reopen=self._reopen if self._keeps_handle else None,
            lock=self._lock,
            frame_noun=self._frame_noun,
        )
        #: decoded frames: cache, one decode per frame, decode pool and prefetch
        self._frames = FrameStore(self._files.decode, self.limits, max_workers=self._max_workers)

    # -- reader hooks -----------------------------------------------------------------
    @abstractmethod
    def _decode(self, index: int) -> np.ndarray:
        """Decode frame ``index`` (already range-checked). Called from several threads."""

    def _release(self) -> None:  # noqa: B027 - optional hook
        """Free file handles; called once by close()."""

    def _reopen(self) -> None:
        """Readers with ``_keeps_handle``: drop the open file and open the path again."""
        raise NotImplementedError

    def _files_of(self, index: int) -> tuple[Path, ...]:
        """The files frame ``index`` is read from (checked when a read fails)."""
        path = getattr(self, "path", None)
        return (path,) if isinstance(path, Path) else ()

    def _neighbours(self, index: int) -> list[int]:
        out: list[int] = []
        for step in range(1, self.limits.prefetch + 1):
            for j in (index + step, index - step):
                if 0 <= j < self.frame_count:
                    out.append(j)
        return out

    # -- public API -------------------------------------------------------------------
    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as (H, W) or (H, W, C); cached and read-only."""
        index = self._check_index(index)
        arr = self._frames.get(index)
        if not self._closed:
            self._frames.prefetch(index, self._neighbours(index))
        return arr

    def frame_once(self, index: int) -> np.ndarray:
        """Frame ``index`` for a caller that reads each frame once, in order (an export writing every
        labelled frame): decoded directly, neither cached nor read ahead, so memory stays flat and a
        video decodes forward without the cache's bookkeeping (~3x less overhead per frame)."""
        index = self._check_index(index)
        cached = self._frames.cache.get(index)
        if cached is not None:
            return cached
        arr = self._files.decode(index)
        arr.flags.writeable = False
        return arr

    def read_region(self, frame: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Pixels ``[y0:y1, x0:x1]`` of a frame; tiled readers decode only the tiles needed."""
        x0, y0, x1, y1 = clip_region(self.shape, x0, y0, x1, y1)
        return self.frame(frame)[y0:y1, x0:x1]

    def volume(self) -> np.ndarray:
        """All frames as (Z, H, W[, C]), decoded in parallel."""
        import numpy as np

        self._check_open()
        first = self._frames.get(0)
        out = np.empty((self.frame_count, *first.shape), dtype=first.dtype)
        out[0] = first
        if self.frame_count > 1:
            pool = self._frames.executor()
            futures = {i: pool.submit(self._frames.get, i) for i in range(1, self.frame_count)}
            for i, fut in futures.items():
                out[i] = fut.result()
        return out

    def iter_frames(self) -> Iterator[np.ndarray]:
        for i in range(self.frame_count):
            yield self.frame(i)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._frames.close()
        self._release()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def reopened(self) -> int:
        """How many times a replaced or dead file handle was reopened (diagnostics)."""
        return self._files.reopens

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.kind} {self.uri!r} frames={self.frame_count} "
            f"shape={self.shape} channels={self.channels} dtype={self.dtype}>"
        )

    # -- checks -----------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise SourceError(f"{self.uri}: source is closed")

    def _check_index(self, index: int) -> int:
        self._check_open()
        i = int(index)
        if i < 0:
            i += self.frame_count
        if not 0 <= i < self.frame_count:
            raise IndexError(f"{self.uri}: frame {index} out of range 0..{self.frame_count - 1}")
        return i


def run_parallel(fn: Callable[[Any], Any], items: Sequence[Any], workers: int) -> list[Any]:
    """Map ``fn`` over ``items`` on a thread pool, preserving order."""
    if len(items) <= 1 or workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="sitelabel-scan") as pool:
        return list(pool.map(fn, items))
