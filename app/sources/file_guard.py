"""The files behind a source's frames: vanished files and dead handles.

Data folders come and go (a share unmounted, a network drop). A frame whose file cannot be
reached raises ``SourceUnavailable`` with one line naming the file and, when the source knows
its ``origin``, the data folder. A reader that keeps a file open (TIFF, video) has the path
checked before each read and the file reopened when it was replaced (the share mounted again),
so it never reads through a dead handle.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.sources.errors import SourceError, SourceUnavailable, one_line
from app.sources.values import SourceOrigin

if TYPE_CHECKING:  # numpy is imported lazily so `import app.sources` stays cheap
    import numpy as np

#: errors of a file handle whose file system went away or was replaced (worth one reopen)
_DEAD_HANDLE = frozenset(
    {errno.EIO, errno.ESTALE, errno.ENOTCONN, errno.EBADF, errno.ENXIO, errno.ENODEV, errno.ENOENT}
)


def dead_handle(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is the error of a handle whose file went away."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _DEAD_HANDLE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def file_identity(path: Path) -> tuple[int, int]:
    """(st_dev, st_ino): changes when the file is replaced, as by a share mounted again."""
    st = path.stat()
    return st.st_dev, st.st_ino


class GuardedSource(Protocol):
    """What the messages name (``Source`` is one)."""

    uri: str
    frame_count: int
    origin: SourceOrigin | None

    @property
    def closed(self) -> bool: ...


class FileGuard:
    """Decodes frames of ``source`` through ``decode``, turning an unreachable file into
    ``SourceUnavailable`` and, with ``reopen`` (readers that keep a handle), reopening a file that
    was replaced or whose handle died. ``lock`` is the source's: no reopen after it closed."""

    def __init__(
        self,
        source: GuardedSource,
        *,
        decode: Callable[[int], np.ndarray],
        files_of: Callable[[int], tuple[Path, ...]],
        reopen: Callable[[], None] | None,
        lock: threading.Lock,
        frame_noun: str = "frame",
    ) -> None:
        self._source = source
        self._decode = decode
        self._files_of = files_of
        self._reopen = reopen
        self._lock = lock
        self._frame_noun = frame_noun
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file a handle is open on
        self._reopens = 0

    @property
    def reopens(self) -> int:
        """How many times a replaced or dead file handle was reopened (diagnostics)."""
        return self._reopens

    def note_reopen(self) -> None:
        """A reader reopened its handle itself (a failed read it retried)."""
        self._reopens += 1

    def remember(self, path: Path) -> None:
        """Readers that keep a handle call this once their file is open."""
        self._identity = file_identity(path)

    def decode(self, index: int) -> np.ndarray:
        """``decode`` that turns a vanished file into ``SourceUnavailable`` and reopens a file
        replaced since it was opened, instead of reading through a dead handle."""
        if self._reopen is not None:
            self.check(index)
        try:
            return self._decode(index)
        except SourceUnavailable:
            raise
        except Exception as exc:
            gone = self.unreachable(index)
            if gone is not None:
                raise self.unavailable(index, *gone) from exc
            if not (self._reopen is not None and dead_handle(exc)):
                raise
            self._reopen_handle(index)  # the handle died but the file is there: one fresh try
            return self._decode(index)

    def check(self, index: int) -> None:
        """Before reading through a kept handle: the file still there, reopened if replaced."""
        files = self._files_of(index)
        if not files or self._identity is None:
            return
        try:
            now = file_identity(files[0])
        except OSError as exc:
            raise self.unavailable(index, files[0], exc) from exc
        if now != self._identity:
            self._reopen_handle(index, now)

    def _reopen_handle(self, index: int, replaced_by: tuple[int, int] | None = None) -> None:
        files = self._files_of(index)
        with self._lock:
            if self._source.closed:
                raise SourceError(f"{self._source.uri}: source is closed")
            if replaced_by is not None and self._identity == replaced_by:
                return  # another thread reopened it meanwhile
            try:
                if self._reopen is None:
                    raise NotImplementedError
                self._reopen()
                if files:
                    self._identity = file_identity(files[0])
            except OSError as exc:
                raise self.unavailable(index, files[0] if files else Path(self._source.uri), exc) from exc
            self._reopens += 1

    def unreachable(self, index: int) -> tuple[Path, OSError] | None:
        """The first file of frame ``index`` that cannot be reached, with the error; None if all are."""
        for path in self._files_of(index):
            try:
                path.stat()
            except OSError as exc:
                return path, exc
        return None

    def unavailable(self, index: int, path: Path, exc: BaseException | None) -> SourceUnavailable:
        """The one-line error for frame ``index``: names the data folder when that is what went away."""
        from app.sources.dataroots import root_reachable

        source = self._source
        name = source.origin.name if source.origin is not None else source.uri
        what = f"{self._frame_noun} {index + 1} of {name}" if source.frame_count > 1 else name
        root = source.origin.root if source.origin is not None else None
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
