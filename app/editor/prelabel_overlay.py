"""The low-confidence heat of pre-labels as a canvas overlay image (plain numpy; no widgets).

``project.low_confidence_map`` gives 0 (the model was sure) .. 1 (a coin toss) per pixel. The
overlay shows only the unsure part, from sky blue to bright aqua with growing opacity, one
256-entry table lookup per pixel (as the review overlays do): cool colours that stand out on grey
CT/MR and on the warm tones of fundus and skin photos, and that differ from the shipped classes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

HEAT_FLOOR = 0.25  # below this the model was sure enough: nothing is drawn
HEAT_MIN_ALPHA = 120
HEAT_MAX_ALPHA = 235
LOW = (90, 150, 255)  # sky blue: a little unsure
HIGH = (0, 255, 235)  # bright aqua: a coin toss


def heat_lut() -> npt.NDArray[np.uint8]:
    """(256, 4) premultiplied RGBA for the uncertainty quantised to 0..255."""
    u = np.arange(256, dtype=np.float32) / 255.0
    t = np.clip((u - HEAT_FLOOR) / (1.0 - HEAT_FLOOR), 0.0, 1.0)
    alpha = np.where(u >= HEAT_FLOOR, HEAT_MIN_ALPHA + (HEAT_MAX_ALPHA - HEAT_MIN_ALPHA) * t, 0.0)
    rgb = (1.0 - t)[:, None] * np.asarray(LOW, np.float32) + t[:, None] * np.asarray(HIGH, np.float32)
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[:, :3] = np.floor(rgb * alpha[:, None] / 255.0 + 0.5).astype(np.uint8)
    lut[:, 3] = np.floor(alpha + 0.5).astype(np.uint8)
    return lut


_LUT = heat_lut()


def combine(maps: Iterable[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32] | None:
    """The pixelwise maximum of several pre-labels' maps (None when there are none)."""
    out: npt.NDArray[np.float32] | None = None
    for m in maps:
        out = np.asarray(m, dtype=np.float32).copy() if out is None else np.maximum(out, m, out=out)
    return out


def heat_rgba(uncertainty: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """(H, W, 4) premultiplied RGBA for ``OverlayStack.set_image`` (``canvas.overlays``)."""
    index = np.clip(np.nan_to_num(uncertainty, nan=0.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgba: npt.NDArray[np.uint8] = _LUT[index]
    return rgba


def legend_html() -> str:
    """One line for the panel: what the colours mean (built from numbers only)."""
    low, high = (f"rgb({r},{g},{b})" for r, g, b in (LOW, HIGH))
    return (
        f'Model unsure: <span style="color: {low}">&#9632;</span> somewhat '
        f'<span style="color: {high}">&#9632;</span> a coin toss'
    )
