"""Benchmark: slice scrolling, 512x512 int16 CT with W/L (40, 400) and a two-class mask overlay.

Prints one JSON object: median and p95 ms from setting a slice's data (image + uint16 label map)
to the frame being drawn and flushed, for our canvas and for pyqtgraph's ImageItem (a second
ImageItem with a lookup table and opacity for the mask, levels (-160, 240)), both 800x800 in the
same process on the same 100 slices (built from pydicom-data's real 693_UNCI.dcm slice with
np.roll) x 3 runs. GL is real under Xvfb (started when DISPLAY is unset); under
QT_QPA_PLATFORM=offscreen our canvas reports backend 'raster'.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from brush import ensure_display  # noqa: E402 - needs bench/ on sys.path

SLICES, RUNS, SIZE = 100, 3, 800
WINDOW = (40.0, 400.0)  # centre, width -> levels (-160, 240)
COLORS = {1: (255, 0, 0), 2: (0, 200, 255)}
OPACITY = 0.5


def _volume() -> tuple[list[Any], list[Any]]:
    import numpy as np

    from app.sample_data import dicom_file
    from app.sources import open_source

    base = np.asarray(open_source(dicom_file("693_UNCI.dcm")).frame(0)).astype(np.int16)
    yy, xx = np.mgrid[:512, :512]
    slices, masks = [], []
    for k in range(SLICES):
        img = np.ascontiguousarray(np.roll(base, (k * 3, k * 2), axis=(0, 1)))
        mask = np.zeros(img.shape, dtype=np.uint16)
        mask[img > 300] = 2  # "bone"
        r = 60 + (k % 20) * 3  # a moving disc: "lesion"
        mask[(yy - 256) ** 2 + (xx - 256 - k) ** 2 < r * r] = 1
        slices.append(img)
        masks.append(mask)
    return slices, masks


def _stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(times) * 1000, 3), "p95_ms": round(p95 * 1000, 3)}


def _measure(show: Callable[[int], None], finish: Callable[[], None]) -> list[float]:
    from PySide6.QtWidgets import QApplication

    for k in range(5):  # warm-up (first textures, caches)
        show(k)
        finish()
    QApplication.processEvents()
    times = []
    for _ in range(RUNS):
        for k in range(SLICES):
            t0 = time.perf_counter()
            show(k)
            finish()
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ensure_display()
    os.environ["QT_API"] = "pyside6"
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from app.editor.canvas import create_canvas

    app = QApplication.instance() or QApplication(sys.argv)
    slices, masks = _volume()

    # --- ours ---------------------------------------------------------------------------------
    canvas = create_canvas()
    canvas.resize(SIZE, SIZE)
    canvas.show()
    canvas.set_image(slices[0], window=WINDOW)
    canvas.set_label_style(opacity=OPACITY)
    app.processEvents()

    def ours(k: int) -> None:
        canvas.set_image(slices[k], window=WINDOW, keep_view=True)
        canvas.set_labels(masks[k], COLORS)
        canvas.backend.repaint_now()

    def ours_finish() -> None:
        canvas.backend.finish()
        app.processEvents()

    ours_times = _measure(ours, ours_finish)
    backend, reason = canvas.backend.name, canvas.backend.fallback_reason
    canvas.close()
    app.processEvents()

    # --- pyqtgraph ----------------------------------------------------------------------------
    view = pg.GraphicsView()
    view.resize(SIZE, SIZE)
    box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
    view.setCentralItem(box)
    lo, hi = WINDOW[0] - WINDOW[1] / 2, WINDOW[0] + WINDOW[1] / 2
    image = pg.ImageItem(axisOrder="row-major")
    mask_item = pg.ImageItem(axisOrder="row-major")
    lut = np.zeros((3, 4), dtype=np.uint8)
    for index, rgb in COLORS.items():
        lut[index] = (*rgb, 255)
    mask_item.setOpacity(OPACITY)
    box.addItem(image)
    box.addItem(mask_item)
    view.show()
    image.setImage(slices[0], levels=(lo, hi), autoLevels=False)
    mask_item.setImage(masks[0], lut=lut, levels=(0, 2), autoLevels=False)
    box.autoRange(padding=0)
    app.processEvents()

    def peer(k: int) -> None:
        image.setImage(slices[k], levels=(lo, hi), autoLevels=False)
        mask_item.setImage(masks[k], lut=lut, levels=(0, 2), autoLevels=False)
        view.repaint()

    peer_times = _measure(peer, app.processEvents)
    view.close()

    ours_s, peer_s = _stats(ours_times), _stats(peer_times)
    result = {
        "benchmark": "slice scrolling: 512x512 int16 CT, W/L (40, 400), two-class mask overlay, 800x800",
        "backend": backend,
        "fallback_reason": reason,
        "qpa": QApplication.platformName(),
        "frames": len(ours_times),
        "ms_per_frame_median": ours_s["median_ms"],
        "ms_per_frame_p95": ours_s["p95_ms"],
        "peer": f"pyqtgraph {pg.__version__} ImageItem + mask ImageItem (lut, opacity)",
        "peer_ms_per_frame_median": peer_s["median_ms"],
        "peer_ms_per_frame_p95": peer_s["p95_ms"],
        "ratio_median": round(peer_s["median_ms"] / ours_s["median_ms"], 2),  # > 1: we are faster
        "ratio_p95": round(peer_s["p95_ms"] / ours_s["p95_ms"], 2),
        "goal": "faster than pyqtgraph (ratio > 1)",
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
