"""Video through OpenCV (FFmpeg backend): frame-accurate random access and read-ahead.

One ``cv2.VideoCapture`` per source, used by one decoder thread at a time. Short forward
jumps are decoded sequentially (grab), long jumps seek with CAP_PROP_POS_FRAMES (frame
accurate on the H.264/MP4 clips we test; the test compares every checked index with a
sequential decode). While playing, the next ``2 * limits.prefetch`` frames are decoded
ahead into the LRU cache.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from app.sources.base import Source
from app.sources.errors import CorruptFile, DecompressionBomb, SourceNotFound
from app.sources.registry import register_reader
from app.sources.values import SourceLimits

_SEQUENTIAL_WINDOW = 48  # a forward jump shorter than this is decoded, not seeked
_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"}


def sniff_video(head: bytes) -> bool:
    if len(head) >= 12 and head[4:8] in _MP4_BOXES:
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    return head[:4] == b"\x1a\x45\xdf\xa3"  # Matroska / WebM (EBML)


class VideoSource(Source):
    kind = "video"
    _max_workers = 1  # decoding is sequential by nature; one worker keeps read-ahead in order
    _keeps_handle = True  # one capture stays open: checked and reopened when its share comes back

    def __init__(self, path: Path, limits: SourceLimits | None = None) -> None:
        super().__init__(limits)
        import cv2

        self.path = path
        self.uri = str(path)
        if not path.is_file():
            raise SourceNotFound(f"{path}: not a readable file")
        self._cap_lock = threading.Lock()
        self._cap: Any = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            raise CorruptFile(f"{path}: cannot open video (unknown codec or corrupt container)")
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(self._cap.get(cv2.CAP_PROP_FPS))
        if count <= 0 or width <= 0 or height <= 0:
            self._cap.release()
            raise CorruptFile(f"{path}: video reports no frames or no size (corrupt or truncated)")
        size = path.stat().st_size
        if count > size:  # found by fuzzing: a lying header (stts, avih) made 10^9 frames of 6 KB
            self._cap.release()
            raise CorruptFile(f"{path}: the header declares {count} frames in {size} bytes (corrupt header)")
        if width * height > self.limits.max_pixels:
            self._cap.release()
            raise DecompressionBomb(f"{path}: {width} x {height} video frames exceed the pixel limit")
        self._pos = 0
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise CorruptFile(f"{path}: cannot decode the first video frame (corrupt stream)")
        self._pos = 1
        self.shape = (int(first.shape[0]), int(first.shape[1]))
        self.channels = 3
        self.dtype = np.dtype(np.uint8)
        self.frame_count = count
        fourcc = int(self._cap.get(cv2.CAP_PROP_FOURCC))
        codec = "".join(chr((fourcc >> (8 * k)) & 0xFF) for k in range(4)).strip("\x00")
        self.metadata = {"fps": fps, "frame_count": count, "width": width, "height": height, "codec": codec,
                         "duration_s": count / fps if fps > 0 else None}  # fmt: skip
        self._frames.cache.put(0, self._rgb(first))
        self._files.remember(path)

    def _reopen(self) -> None:
        """The file was replaced (a share mounted again) or its handle died: a fresh capture."""
        with self._cap_lock:
            self._reopen_locked()

    def _reopen_locked(self) -> None:
        import cv2

        self._cap.release()
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        self._pos = -(10**9)  # force a seek on the next read
        if not self._cap.isOpened():
            raise CorruptFile(f"{self.path}: cannot open the video again")

    @staticmethod
    def _rgb(bgr: np.ndarray) -> np.ndarray:
        import cv2

        arr = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        arr.flags.writeable = False
        return arr

    def _neighbours(self, index: int) -> list[int]:
        ahead = range(index + 1, min(self.frame_count, index + 1 + 2 * self.limits.prefetch))
        return [*ahead, *([index - 1] if index > 0 else [])]

    def _decode(self, index: int) -> np.ndarray:
        import cv2

        with self._cap_lock:
            if self.closed:
                raise CorruptFile(f"{self.uri}: source is closed")
            if not self._pos <= index < self._pos + _SEQUENTIAL_WINDOW:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
                self._pos = index
            ok, bgr = True, None
            while ok and self._pos < index:
                ok = bool(self._cap.grab())
                self._pos += 1
            if ok:
                ok, bgr = self._cap.read()
            if not ok or bgr is None:
                ok, bgr = self._read_again(index)
            if not ok or bgr is None:
                self._pos = -(10**9)  # force a seek next time
                raise CorruptFile(
                    f"{self.uri}: cannot decode frame {index} of {self.frame_count} "
                    "(stream ends or is corrupt)"
                )
            self._pos = index + 1
        return self._rgb(bgr)

    def _read_again(self, index: int) -> tuple[bool, Any]:
        """One more try on a fresh capture: FFmpeg reports a dead handle (EIO, ESTALE after a
        share came back) only as a failed read. The file vanishing is reported by Source."""
        import cv2

        if not self.path.is_file():
            return False, None
        self._reopen_locked()
        self._files.note_reopen()
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = self._cap.read()
        return bool(ok), bgr

    def volume(self) -> np.ndarray:
        """All frames in order (a sequential decode, not parallel: codecs are sequential)."""
        self._check_open()
        out = np.empty((self.frame_count, *self.shape, 3), dtype=np.uint8)
        for i in range(self.frame_count):
            out[i] = self._frames.get(i)
        return out

    def _release(self) -> None:
        with self._cap_lock:
            self._cap.release()


@register_reader(
    name="video", kind="video", patterns=("*.mp4", "*.m4v", "*.mov", "*.avi", "*.mkv", "*.webm"),
    sniff=sniff_video, priority=5,
)  # fmt: skip
def open_video(path: Path, limits: SourceLimits | None = None) -> Source:
    return VideoSource(path, limits)
