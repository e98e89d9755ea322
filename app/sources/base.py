"""The Source contract every reader implements, plus what ``scan`` finds (refs and results).

Plain values (limits, geometry, origin) live in the leaf ``app.sources.values``.

A source is opened by reading headers only. ``frame(i)`` decodes on demand, keeps the
result in a byte-bounded LRU cache and queues the neighbours of ``i`` on a small
background pool so that scrolling or playing finds them ready. Frames come back
read-only because they are shared with the cache: copy before changing them.

Data folders come and go (a share unmounted, a network drop): a frame whose file cannot be
reached raises ``SourceUnavailable`` with one line naming the file and, when the source knows
its ``origin``, the data folder. Decoded frames stay usable, failures are never cached, and a
reader that keeps a file open (TIFF, video) checks the path before each read and reopens the
file when it was replaced (the share mounted again), so it never reads through a dead handle.
"""

from __future__ import annotations

import contextlib
import errno
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from app.sources.cache import FrameCache
from app.sources.errors import SourceError, SourceUnavailable, one_line
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


#: errors of a file handle whose file system went away or was replaced (worth one reopen)
_DEAD_HANDLE = frozenset(
    {errno.EIO, errno.ESTALE, errno.ENOTCONN, errno.EBADF, errno.ENXIO, errno.ENODEV, errno.ENOENT}
)


def _dead_handle(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _DEAD_HANDLE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _file_identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


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
        self._cache = FrameCache(self.limits.cache_bytes)
        self._lock = threading.Lock()
        self._inflight: dict[int, Future[np.ndarray]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._generation = 0
        self._last_index = 0
        self._closed = False
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file a handle is open on
        self._reopens = 0

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
        arr = self._get(index)
        self._prefetch(index)
        return arr

    def read_region(self, frame: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Pixels ``[y0:y1, x0:x1]`` of a frame; tiled readers decode only the tiles needed."""
        x0, y0, x1, y1 = self._clip_region(x0, y0, x1, y1)
        return self.frame(frame)[y0:y1, x0:x1]

    def volume(self) -> np.ndarray:
        """All frames as (Z, H, W[, C]), decoded in parallel."""
        import numpy as np

        self._check_open()
        first = self._get(0)
        out = np.empty((self.frame_count, *first.shape), dtype=first.dtype)
        out[0] = first
        if self.frame_count > 1:
            pool = self._executor()
            futures = {i: pool.submit(self._get, i) for i in range(1, self.frame_count)}
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
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._cache.clear()
        self._release()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def reopened(self) -> int:
        """How many times a replaced or dead file handle was reopened (diagnostics)."""
        return self._reopens

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

    # -- machinery --------------------------------------------------------------------
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

    def _clip_region(self, x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, int, int]:
        h, w = self.shape
        x0, x1 = sorted((max(0, min(w, int(x0))), max(0, min(w, int(x1)))))
        y0, y1 = sorted((max(0, min(h, int(y0))), max(0, min(h, int(y1)))))
        return x0, y0, x1, y1

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                workers = self._max_workers or max(1, self.limits.decode_threads)
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sitelabel-decode")
            return self._pool

    def _get(self, index: int) -> np.ndarray:
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None:
                return cached
            fut = self._inflight.get(index)
            owner = fut is None
            if fut is None:
                fut = Future()
                self._inflight[index] = fut
        if not owner:
            return fut.result()
        try:
            arr = self._decode_guarded(index)
            arr.flags.writeable = False
            self._cache.put(index, arr)
            fut.set_result(arr)
            return arr
        except BaseException as exc:
            fut.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._inflight.pop(index, None)

    # -- vanished files and dead handles ----------------------------------------------
    def _remember_file(self, path: Path) -> None:
        """Readers with ``_keeps_handle`` call this once their file is open."""
        self._identity = _file_identity(path)

    def _decode_guarded(self, index: int) -> np.ndarray:
        """``_decode`` that turns a vanished file into ``SourceUnavailable`` and reopens a file
        replaced since it was opened, instead of reading through a dead handle."""
        if self._keeps_handle:
            self._check_handle(index)
        try:
            return self._decode(index)
        except SourceUnavailable:
            raise
        except Exception as exc:
            gone = self._unreachable_file(index)
            if gone is not None:
                raise self._unavailable(index, *gone) from exc
            if not (self._keeps_handle and _dead_handle(exc)):
                raise
            self._reopen_handle(index)  # the handle died but the file is there: one fresh try
            return self._decode(index)

    def _check_handle(self, index: int) -> None:
        files = self._files_of(index)
        if not files or self._identity is None:
            return
        try:
            now = _file_identity(files[0])
        except OSError as exc:
            raise self._unavailable(index, files[0], exc) from exc
        if now != self._identity:
            self._reopen_handle(index, now)

    def _reopen_handle(self, index: int, replaced_by: tuple[int, int] | None = None) -> None:
        files = self._files_of(index)
        with self._lock:
            if self._closed:
                raise SourceError(f"{self.uri}: source is closed")
            if replaced_by is not None and self._identity == replaced_by:
                return  # another thread reopened it meanwhile
            try:
                self._reopen()
                if files:
                    self._identity = _file_identity(files[0])
            except OSError as exc:
                raise self._unavailable(index, files[0] if files else Path(self.uri), exc) from exc
            self._reopens += 1

    def _unreachable_file(self, index: int) -> tuple[Path, OSError] | None:
        for path in self._files_of(index):
            try:
                path.stat()
            except OSError as exc:
                return path, exc
        return None

    def _unavailable(self, index: int, path: Path, exc: BaseException | None) -> SourceUnavailable:
        from app.sources.dataroots import root_reachable

        name = self.origin.name if self.origin is not None else self.uri
        what = f"{self._frame_noun} {index + 1} of {name}" if self.frame_count > 1 else name
        root = self.origin.root if self.origin is not None else None
        if root is not None and not root_reachable(root):
            return SourceUnavailable(
                f"Cannot read {what}: the data folder {root} is not reachable (unmounted or offline?)",
                path=path,
                root=root,
            )
        reason = (exc.strerror if isinstance(exc, OSError) else None) or (one_line(exc) if exc else "gone")
        return SourceUnavailable(
            f"Cannot read {what}: {path} is not reachable ({reason}; moved, deleted or its share offline?)",
            path=path,
        )

    def _prefetch(self, index: int) -> None:
        if self.limits.prefetch <= 0 or self._closed:
            return
        todo = [j for j in self._neighbours(index) if j not in self._cache and j not in self._inflight]
        if not todo:
            return
        with self._lock:
            self._generation += 1
            self._last_index = index
            generation = self._generation
        pool = self._executor()
        for j in todo:
            pool.submit(self._prefetch_one, j, generation)

    def _prefetch_one(self, index: int, generation: int) -> None:
        # A stale request (the user has moved far away since) is skipped, not decoded.
        if self._closed:
            return
        if generation != self._generation and abs(index - self._last_index) > 2 * self.limits.prefetch:
            return
        with contextlib.suppress(Exception):  # a failure resurfaces when frame() asks for it
            self._get(index)


def run_parallel(fn: Callable[[Any], Any], items: Sequence[Any], workers: int) -> list[Any]:
    """Map ``fn`` over ``items`` on a thread pool, preserving order."""
    if len(items) <= 1 or workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="sitelabel-scan") as pool:
        return list(pool.map(fn, items))
