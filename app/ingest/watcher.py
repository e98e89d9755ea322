"""Watch folders: report new files once they are complete, a folder (series) at a time.

A file is complete when its size and mtime have not changed for ``settle_seconds``; a
folder is reported only when every new file in it is complete and no event has arrived
for ``settle_seconds``, so a DICOM series still being copied is never reported half-way.
Registering the files in the database is the caller's job (``on_ready``).

inotify does not see changes made by other machines on a network share: use
``polling=True`` there (watchdog's PollingObserver).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".swp", "~")


@dataclass
class _FileState:
    size: int
    mtime_ns: int
    stable_since: float


@dataclass
class _Folder:
    last_event: float
    files: dict[Path, _FileState | None] = field(default_factory=dict)


def _ignored(path: Path) -> bool:
    return path.name.startswith(".") or path.name.lower().endswith(IGNORED_SUFFIXES)


class FolderWatcher:
    """Calls ``on_ready(files)`` from a worker thread, once per folder that has gone quiet."""

    def __init__(
        self,
        folder: str | Path,
        on_ready: Callable[[list[Path]], None],
        settle_seconds: float = 5.0,
        *,
        recursive: bool = True,
        polling: bool = False,
        report_existing: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise NotADirectoryError(f"{self.folder}: not a folder")
        self.on_ready = on_ready
        self.settle_seconds = float(settle_seconds)
        self.recursive = recursive
        self.polling = polling
        self._clock = clock
        self._pending: dict[Path, _Folder] = {}
        self._reported: set[Path] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._observer: Any = None
        self._thread: threading.Thread | None = None
        if report_existing:
            for p in self.folder.rglob("*") if recursive else self.folder.iterdir():
                if p.is_file():
                    self.notice(p)

    # -- event intake -----------------------------------------------------------------
    def notice(self, path: str | Path) -> None:
        """Record that ``path`` appeared or changed (called by watchdog; public for tests/rescans)."""
        p = Path(path)
        if _ignored(p):
            return
        now = self._clock()
        with self._lock:
            group = self._pending.setdefault(p.parent, _Folder(now))
            group.last_event = now
            group.files.setdefault(p, None)
            self._reported.discard(p)

    def _forget(self, path: str | Path) -> None:
        p = Path(path)
        with self._lock:
            group = self._pending.get(p.parent)
            if group is not None:
                group.files.pop(p, None)
                group.last_event = self._clock()

    # -- settling ---------------------------------------------------------------------
    def poll(self) -> list[list[Path]]:
        """One settling pass: stat pending files, return (and report) folders that are ready."""
        now = self._clock()
        ready: list[list[Path]] = []
        with self._lock:
            groups = list(self._pending.items())
        for folder, group in groups:
            all_stable = True
            for p, state in list(group.files.items()):
                try:
                    st = p.stat()
                except OSError:
                    with self._lock:
                        group.files.pop(p, None)
                    continue
                if not p.is_file():
                    with self._lock:
                        group.files.pop(p, None)
                    continue
                if state is None or (state.size, state.mtime_ns) != (st.st_size, st.st_mtime_ns):
                    group.files[p] = _FileState(st.st_size, st.st_mtime_ns, now)
                    all_stable = False
                elif now - state.stable_since < self.settle_seconds:
                    all_stable = False
            quiet = now - group.last_event >= self.settle_seconds
            if all_stable and quiet:
                with self._lock:
                    if self._pending.get(folder) is group:
                        del self._pending[folder]
                files = sorted(p for p in group.files if p not in self._reported)
                if files:
                    self._reported.update(files)
                    ready.append(files)
        for files in ready:
            try:
                self.on_ready(files)
            except Exception:
                log.exception(
                    "watch folder callback failed for %d file(s) in %s", len(files), files[0].parent
                )
        return ready

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(len(g.files) for g in self._pending.values())

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> FolderWatcher:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler

        observer_class: Any
        if self.polling:
            from watchdog.observers.polling import PollingObserver

            observer_class = PollingObserver
        else:
            from watchdog.observers import Observer

            observer_class = Observer

        watcher = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.is_directory:
                    return
                kind = event.event_type
                if kind == "deleted":
                    watcher._forget(str(event.src_path))
                elif kind == "moved":
                    watcher._forget(str(event.src_path))
                    watcher.notice(str(event.dest_path))
                elif kind in ("created", "modified", "closed"):
                    watcher.notice(str(event.src_path))

        self._observer = observer_class()
        self._observer.schedule(_Handler(), str(self.folder), recursive=self.recursive)
        self._observer.start()
        self._thread = threading.Thread(target=self._run, name="sitelabel-watch", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = max(0.05, min(1.0, self.settle_seconds / 4))
        while not self._stop.wait(interval):
            try:
                self.poll()
            except Exception:
                log.exception("watch folder pass failed")

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FolderWatcher:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
