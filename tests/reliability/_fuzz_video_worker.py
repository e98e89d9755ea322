"""Subprocess side of test_fuzz_video.py: opens and decodes the video files it is sent.

FFmpeg decodes in native code, where a malformed file could crash the process. The property runs
here, in a long-lived child, so that a segfault kills only this worker: the test sees the dead
process, fails with the input saved, and starts a new worker. Protocol: one file path per stdin
line; one JSON line per path on stdout, prefixed with ``RESULT `` (what native libraries print
goes to stderr). The worker caps its address space (``address_space_cap``) once its imports
are done.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
from _fuzz_support import address_space_cap

from app.core.errors import SitelabelError
from app.sources import SourceLimits, open_source

# the bound the reader must honour; small seeds, so any bigger frame is a header lie
LIMITS = SourceLimits(max_pixels=16_000_000, prefetch=0, cache_bytes=64 * 1024**2, decode_threads=1)
SLEEP_REQUEST = "__sleep__"  # a test hook: the worker sleeps, standing in for a stuck decoder


def exercise(path: Path) -> dict[str, object]:
    """Open, read frame_count, decode frames 0, middle and last, then seek back to the middle and 1."""
    with open_source(path, limits=LIMITS) as src:
        count = src.frame_count
        assert isinstance(count, int) and count > 0, count
        seen = []
        for index in dict.fromkeys([0, count // 2, count - 1, count // 2, 1 % count]):
            frame = src.frame(index)
            assert isinstance(frame, np.ndarray) and frame.shape[:2] == src.shape, (index, frame.shape)
            seen.append(index)
        return {"frames": count, "decoded": seen}


def run_one(path: Path) -> dict[str, object]:
    started = time.perf_counter()
    result = _verdict(path)
    result["seconds"] = round(time.perf_counter() - started, 4)  # for soak reports: the slowest input
    return result


def _verdict(path: Path) -> dict[str, object]:
    try:
        info = exercise(path)
    except SitelabelError as exc:
        text = str(exc).strip()
        if not text or "\n" in text:
            return {"outcome": "escape", "type": type(exc).__name__, "message": repr(str(exc)),
                    "why": "a SitelabelError message must be one non-empty line"}  # fmt: skip
        return {"outcome": "refused", "type": type(exc).__name__, "message": text}
    except BaseException as exc:  # the property: nothing else may come out of the reader
        return {"outcome": "escape", "type": type(exc).__name__, "message": str(exc)[:500],
                "traceback": traceback.format_exc()[-4000:]}  # fmt: skip
    return {"outcome": "ok", **info}


def main() -> None:
    import cv2

    cv2.setNumThreads(1)  # a shared 2-core machine; decoding threads only add noise here
    # the protocol gets its own copy of stdout; anything native code prints goes to the stderr log
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    # open a seed once so that FFmpeg's lazy set-up is inside the size the cap is measured from
    warmup = os.environ.get("SITELABEL_FUZZ_WARMUP")
    if warmup:
        run_one(Path(warmup))
    with address_space_cap():
        print("READY", file=protocol, flush=True)
        for line in sys.stdin:
            request = line.rstrip("\n")
            if request == SLEEP_REQUEST:  # test_fuzz_video's check of its crash and hang handling
                time.sleep(600)
            result = run_one(Path(request))
            print("RESULT " + json.dumps(result), file=protocol, flush=True)


if __name__ == "__main__":
    main()
