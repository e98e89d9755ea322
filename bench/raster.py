"""Benchmark: our polygon rasteriser against skimage.draw.polygon2mask and cv2.fillPoly.

Prints one JSON object. Times are medians of several runs in milliseconds; ``ratio_*`` is
peer time / our time (above 1: we are faster). The peers treat integer coordinates as pixel
centres, so vertices are shifted by -0.5 for them; the remaining pixel disagreements come from
their different edge rules (cv2 also rounds vertices to 1/256 px and draws the outline in).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from skimage.draw import polygon2mask

from app.core.raster import polygon_mask_in_bbox, rasterize_polygon

RUNS = 7


def star_polygon(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A concave star-shaped polygon of n vertices filling most of a size x size frame."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = size * 0.45 * rng.uniform(0.5, 1.0, n)
    return np.column_stack([size / 2 + radii * np.cos(angles), size / 2 + radii * np.sin(angles)])


def median_ms(fn: Callable[[], object], runs: int = RUNS, warm_up: bool = True) -> float:
    if warm_up:
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 4)


def case(n: int, size: int, rng: np.random.Generator) -> dict[str, Any]:
    pts = star_polygon(n, size, rng)
    shape = (size, size)
    ours = rasterize_polygon(pts, shape)
    sk = polygon2mask(shape, pts[:, ::-1] - 0.5)
    fixed = np.round((pts - 0.5) * 256).astype(np.int32)

    def cv() -> np.ndarray:
        img = np.zeros(shape, dtype=np.uint8)
        cv2.fillPoly(img, [fixed], 1, lineType=cv2.LINE_8, shift=8)
        return img

    cvm = cv().astype(bool)
    t_ours = median_ms(lambda: rasterize_polygon(pts, shape))
    t_patch = median_ms(lambda: polygon_mask_in_bbox(pts, shape))
    # skimage takes seconds per call at 4096^2: three runs, no warm-up (it was just run above).
    slow = size > 1024
    t_sk = median_ms(lambda: polygon2mask(shape, pts[:, ::-1] - 0.5), 3 if slow else RUNS, not slow)
    t_cv = median_ms(cv)
    return {
        "vertices": n,
        "frame": f"{size}x{size}",
        "pixels_in": int(ours.sum()),
        "ours_ms": t_ours,
        "ours_bbox_patch_ms": t_patch,
        "skimage_polygon2mask_ms": t_sk,
        "cv2_fillPoly_ms": t_cv,
        "ratio_skimage_over_ours": round(t_sk / t_ours, 2),
        "ratio_cv2_over_ours": round(t_cv / t_ours, 2),
        "pixels_differing_skimage": int(np.count_nonzero(sk != ours)),
        "pixels_differing_cv2": int(np.count_nonzero(cvm != ours)),
        "cv2_extra_pixels": int(np.count_nonzero(cvm & ~ours)),
    }


def main() -> None:
    rng = np.random.default_rng(20240601)
    cases = [case(n, size, rng) for size in (512, 4096) for n in (50, 500)]
    print(
        json.dumps(
            {
                "benchmark": "polygon rasterisation (full-frame bool mask)",
                "runs_per_median": RUNS,
                "skimage_runs_per_median_at_4096": 3,
                "python": platform.python_version(),
                "numpy": np.__version__,
                "opencv": cv2.__version__,
                "cases": cases,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
