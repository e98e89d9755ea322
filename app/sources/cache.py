"""A byte-bounded LRU cache for decoded frames."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


class FrameCache:
    """LRU of frame index -> array, bounded by the total number of bytes held."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max(0, int(max_bytes))
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __contains__(self, index: object) -> bool:
        with self._lock:
            return index in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, index: int) -> np.ndarray | None:
        with self._lock:
            arr = self._items.get(index)
            if arr is not None:
                self._items.move_to_end(index)
            return arr

    def put(self, index: int, arr: np.ndarray) -> None:
        size = int(arr.nbytes)
        if size > self._max_bytes:
            return
        with self._lock:
            old = self._items.pop(index, None)
            if old is not None:
                self._bytes -= int(old.nbytes)
            self._items[index] = arr
            self._bytes += size
            while self._bytes > self._max_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= int(evicted.nbytes)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
