"""Decoded frames of one source: a byte-bounded cache, one decode per frame however many threads
ask for it, a small decode pool, and background prefetch of the neighbours of what was asked.

Frames come back read-only because they are shared with the cache. A failed decode is never
cached: the next request tries again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from app.sources.cache import FrameCache
from app.sources.values import SourceLimits

if TYPE_CHECKING:  # numpy is imported lazily so `import app.sources` stays cheap
    import numpy as np

Decode = Callable[[int], "np.ndarray"]


class FrameStore:
    """Frames by index, decoded by ``decode`` on demand (see module doc)."""

    def __init__(self, decode: Decode, limits: SourceLimits, *, max_workers: int | None = None) -> None:
        self.limits = limits
        #: decoded frames; readers may look up or seed it (a first frame read while probing)
        self.cache = FrameCache(limits.cache_bytes)
        self._decode = decode
        self._workers = max_workers or max(1, limits.decode_threads)
        self._lock = threading.Lock()
        self._inflight: dict[int, Future[np.ndarray]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._generation = 0
        self._last_index = 0
        self._closed = False

    def get(self, index: int) -> np.ndarray:
        """Frame ``index`` (already range-checked): cached, or decoded once for all who wait on it."""
        cached = self.cache.get(index)
        if cached is not None:
            return cached
        with self._lock:
            cached = self.cache.get(index)
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
            arr = self._decode(index)
            arr.flags.writeable = False
            self.cache.put(index, arr)
            fut.set_result(arr)
            return arr
        except BaseException as exc:
            fut.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._inflight.pop(index, None)

    def executor(self) -> ThreadPoolExecutor:
        """The decode pool, started on first use."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="sitelabel-decode")
            return self._pool

    def prefetch(self, index: int, neighbours: Sequence[int]) -> None:
        """Queue the ``neighbours`` of the frame just asked for that are neither cached nor decoding."""
        if self.limits.prefetch <= 0 or self._closed:
            return
        todo = [j for j in neighbours if j not in self.cache and j not in self._inflight]
        if not todo:
            return
        with self._lock:
            self._generation += 1
            self._last_index = index
            generation = self._generation
        pool = self.executor()
        for j in todo:
            pool.submit(self._prefetch_one, j, generation)

    def _prefetch_one(self, index: int, generation: int) -> None:
        # A stale request (the user has moved far away since) is skipped, not decoded.
        if self._closed:
            return
        if generation != self._generation and abs(index - self._last_index) > 2 * self.limits.prefetch:
            return
        with contextlib.suppress(Exception):  # a failure resurfaces when frame() asks for it
            self.get(index)

    def close(self) -> None:
        """Stop prefetching, wait for running decodes, drop the cached frames."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self.cache.clear()
