"""Benchmark: cost of one brush dab on the canvas, label-map write + texture/cache update.

Prints one JSON object: median ms per dab (incl. glFinish on GL) on 512^2 and 16384^2 masks, and
the peer from the same run, a naive full-mask re-upload per dab. Starts Xvfb (scripts/xvfb.sh)
when DISPLAY is unset so GL is real; QT_QPA_PLATFORM=offscreen measures the raster backend.
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
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen" or os.environ.get("DISPLAY"):
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
        surface = canvas._surface
        if surface is not None and surface.layers is not None:
            surface.makeCurrent()
            surface.layers.gl.glFinish()
            surface.doneCurrent()

    def per_dab(size: int, naive: bool) -> float:
        frame = np.zeros((size, size), dtype=np.uint8)
        labels = np.zeros((size, size), dtype=np.uint16)
        canvas.set_image(frame)
        canvas.set_labels(labels, {1: (255, 0, 0)})
        canvas.zoom_by(4.0)
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
        return round(statistics.median(times), 4)

    small, large = per_dab(512, False), per_dab(16384, False)
    naive_small = per_dab(512, True)
    naive_large = per_dab(16384, True) if canvas.backend == "gl" else None  # raster: the visible region only
    result = {
        "benchmark": "brush dab: label write + texture/cache update",
        "backend": canvas.backend,
        "fallback_reason": canvas.fallback_reason,
        "radius_px": 12,
        "ms_per_dab_512": small,
        "ms_per_dab_16384": large,
        "large_over_small": round(large / small, 3),
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
