"""Benchmark: cost of one brush dab on the canvas, label-map write + texture/cache update.

Prints one JSON object: median ms per dab (label write + canvas.labels_changed, incl. glFinish on
GL) on 512^2 and 16384^2 masks, and the peer from the same run, a naive full-mask re-upload per
dab. The maps are written once before timing: a fresh np.zeros map is only reserved, so the first
write into each of its (2 MiB, numpy madvises huge pages) pages costs a kernel page fault + zeroing
(and sometimes compaction) - that "cold" figure is reported apart, as is one repaint (not per dab).
Starts Xvfb (scripts/xvfb.sh) when DISPLAY is unset so GL is real; QT_QPA_PLATFORM=offscreen
measures the raster backend.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS, DABS = 5, 40


def ensure_display() -> None:
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        return
    # measure the GL path even where the app would pick raster (a software renderer such as llvmpipe)
    os.environ.setdefault("SITELABEL_CANVAS", "gl")
    if os.environ.get("DISPLAY"):
        return
    pid = Path(tempfile.mkdtemp()) / "xvfb.pid"
    display = subprocess.run(
        [ROOT / "scripts/xvfb.sh", "start", pid], capture_output=True, text=True, check=True
    )
    os.environ["DISPLAY"] = display.stdout.strip()
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    import atexit

    atexit.register(lambda: subprocess.run([ROOT / "scripts/xvfb.sh", "stop", pid], check=False))


def main() -> None:
    ensure_display()
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from app.core.raster import brush_dab
    from app.editor.canvas import create_canvas

    app = QApplication.instance() or QApplication(sys.argv)
    canvas = create_canvas()
    canvas.resize(800, 600)
    canvas.show()
    app.processEvents()

    def finish() -> None:
        canvas.backend.finish()

    def repaint_ms() -> float:
        times = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            canvas.backend.repaint_now()
            app.processEvents()  # the GL widget paints (and is composed) from the event loop
            finish()
            times.append((time.perf_counter() - t0) * 1000)
        return round(statistics.median(times), 3)

    repaints: dict[int, float] = {}

    def per_dab(size: int, naive: bool, warm: bool = True) -> float:
        frame = np.zeros((size, size), dtype=np.uint8)
        labels = np.zeros((size, size), dtype=np.uint16)
        if warm:
            labels.fill(0)  # fault the pages in: measure the canvas, not the kernel's first touch
        canvas.set_image(frame)
        canvas.set_labels(labels, {1: (255, 0, 0)})
        canvas.view.zoom_by(4.0)
        canvas.grab()
        finish()
        rng = np.random.default_rng(1)
        centres = rng.uniform(size * 0.3, size * 0.7, (RUNS, DABS, 2))
        times = []
        for run in range(RUNS):
            t0 = time.perf_counter()
            for x, y in centres[run]:
                y0, x0, bits = brush_dab((x, y), 12.0, (size, size))
                labels[y0 : y0 + bits.shape[0], x0 : x0 + bits.shape[1]][bits] = 1
                canvas.labels_changed(None if naive else (x0, y0, x0 + bits.shape[1], y0 + bits.shape[0]))
            finish()
            times.append((time.perf_counter() - t0) / DABS * 1000)
        if not naive and warm:
            repaints[size] = repaint_ms()
        return round(statistics.median(times), 4)

    small, large = per_dab(512, False), per_dab(16384, False)
    cold_large = per_dab(16384, False, warm=False)
    naive_small = per_dab(512, True)
    # raster: the visible region only
    naive_large = per_dab(16384, True) if canvas.backend.name == "gl" else None
    result = {
        "benchmark": "brush dab: label write + texture/cache update",
        "backend": canvas.backend.name,
        "fallback_reason": canvas.backend.fallback_reason,
        "radius_px": 12,
        "ms_per_dab_512": small,
        "ms_per_dab_16384": large,
        "large_over_small": round(large / small, 3),
        "ms_per_dab_16384_cold_map": cold_large,
        "ms_per_repaint_512": repaints.get(512),
        "ms_per_repaint_16384": repaints.get(16384),
        "peer": "naive full-mask re-upload per dab",
        "peer_ms_per_dab_512": naive_small,
        "peer_ms_per_dab_16384": naive_large,
        "ratio_512": round(naive_small / small, 2),
        "ratio_16384": round(naive_large / large, 2) if naive_large else None,
        "goal": "< 2 ms per dab, large <= 1.5x small",
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
