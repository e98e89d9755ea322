"""Benchmark: memory for a 16384 x 16384 RGB uint8 image with a 16384 x 16384 uint16 mask on the canvas.

Prints one JSON object: process RSS increase (VmRSS after gc, before building the arrays -> after
set_image + set_labels + show + one repaint) and the peak (VmHWM) against the bytes of the image
+ mask, for the raster canvas (QT_QPA_PLATFORM=offscreen), the GL canvas (Xvfb, started when
DISPLAY is unset) and the peer, pyqtgraph's ImageItem + a mask ImageItem (lut, opacity) on the
same arrays. Each case runs in a fresh child process so baselines do not mix. Under llvmpipe the
GL textures live in process memory (a GPU would hold them in VRAM): the GL figure shows that copy.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from brush import ensure_display  # noqa: E402 - needs bench/ on sys.path

SIDE = 16384
GOAL = 1.25  # RSS increase <= (image + mask bytes) * 1.25
MiB = 1 << 20


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _rss() -> int:
    gc.collect()
    return _status("VmRSS")


def child(kind: str) -> dict[str, object]:
    """One case in this (fresh) process: 'canvas' (backend from the platform) or 'pyqtgraph'."""
    os.environ["QT_API"] = "pyside6"
    import numpy as np
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    if kind == "pyqtgraph":
        import pyqtgraph as pg

        view = pg.GraphicsView()
        box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        view.setCentralItem(box)
        image_item, mask_item = pg.ImageItem(axisOrder="row-major"), pg.ImageItem(axisOrder="row-major")
        mask_item.setOpacity(0.5)
        box.addItem(image_item)
        box.addItem(mask_item)
        widget = view
    else:
        from app.editor.canvas import create_canvas

        canvas = create_canvas()
        widget = canvas
    widget.resize(800, 800)
    widget.show()
    app.processEvents()
    before, hwm_before = _rss(), _status("VmHWM")

    # Every page written, so the arrays themselves are resident (np.zeros alone would not be).
    image = np.empty((SIDE, SIDE, 3), dtype=np.uint8)
    ramp = (np.arange(SIDE) % 256).astype(np.uint8)
    image[..., 0] = ramp[None, :]
    image[..., 1] = ramp[:, None]
    image[..., 2] = 128
    mask = np.empty((SIDE, SIDE), dtype=np.uint16)
    mask[:] = (np.arange(SIDE) // 4096 % 3).astype(np.uint16)[None, :]
    data_bytes = image.nbytes + mask.nbytes
    arrays = _rss() - before

    colors = {1: (255, 0, 0), 2: (0, 200, 255)}
    if kind == "pyqtgraph":
        lut = np.zeros((3, 4), dtype=np.uint8)
        for index, rgb in colors.items():
            lut[index] = (*rgb, 255)
        image_item.setImage(image, autoLevels=False, levels=(0, 255))
        mask_item.setImage(mask, lut=lut, levels=(0, 2), autoLevels=False)
        box.autoRange(padding=0)
        widget.repaint()
        backend = "pyqtgraph"
    else:
        canvas.set_image(image)
        canvas.set_labels(mask, colors)
        canvas.backend.repaint_now()
        backend = canvas.backend.name
    app.processEvents()
    increase = _rss() - before
    peak = _status("VmHWM") - hwm_before
    return {
        "backend": backend,
        "qpa": QApplication.platformName(),
        "data_mib": round(data_bytes / MiB),
        "arrays_rss_mib": round(arrays / MiB),
        "rss_increase_mib": round(increase / MiB),
        "rss_peak_increase_mib": round(max(peak, 0) / MiB),
        "over_data": round(increase / data_bytes, 3),
        "within_goal": increase <= data_bytes * GOAL,
    }


def _run(kind: str, platform: str) -> dict[str, object]:
    env = dict(os.environ, QT_QPA_PLATFORM=platform)
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:] or [f"exit {out.returncode}"]}
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])), flush=True)
        return
    ensure_display()
    raster = _run("canvas", "offscreen")
    gl = _run("canvas", os.environ.get("QT_QPA_PLATFORM", "xcb"))
    if gl.get("backend") != "gl":  # offscreen (or a GL failure): no GL figure to report
        gl = {"skipped": f"GL canvas unavailable ({gl.get('backend', gl.get('error'))})"}
    peer = _run("pyqtgraph", "offscreen")
    result = {
        "benchmark": "memory: 16384^2 RGB uint8 image + 16384^2 uint16 mask on the canvas",
        "goal": f"RSS increase <= (image + mask bytes) x {GOAL}",
        "raster": raster,
        "gl": gl,
        "gl_caveat": "llvmpipe keeps the GL textures (RGBA8 image tiles, R16UI label tiles) in process "
        "memory; on a GPU they live in VRAM",
        "peer": "pyqtgraph ImageItem + mask ImageItem (lut, opacity), offscreen",
        "peer_result": peer,
        "ratio_raster": round(float(peer["rss_increase_mib"]) / float(raster["rss_increase_mib"]), 2)  # type: ignore[arg-type]
        if "rss_increase_mib" in peer and "rss_increase_mib" in raster
        else None,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
