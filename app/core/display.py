"""Window/level: turning modality values (HU, 16-bit, float) into 8-bit display values.

The GPU canvas does the same in its shader; this is the reference and the raster fallback.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Window = tuple[float, float]  # (centre, width)


def auto_window(frame: npt.NDArray[np.generic]) -> Window:
    """A window spanning the 0.5-99.5 percentile of the frame (robust to a few hot pixels)."""
    values = np.asarray(frame)
    if values.ndim == 3:  # colour: window over the luminance-ish maximum channel
        values = values.max(axis=2)
    sample = values[:: max(1, values.shape[0] // 256), :: max(1, values.shape[1] // 256)]
    lo, hi = (float(v) for v in np.percentile(sample, (0.5, 99.5)))
    if hi <= lo:
        hi = lo + 1.0
    return ((lo + hi) / 2.0, hi - lo)


def apply_window(
    frame: npt.NDArray[np.generic], window: Window | None = None, invert: bool = False
) -> npt.NDArray[np.uint8]:
    """Map ``frame`` to uint8 with a linear window (DICOM PS3.3 C.11.2.1.2 style, without the -0.5 tweak).

    uint8 frames with no window pass through unchanged; colour frames keep their channels.
    """
    values = np.asarray(frame)
    if window is None:
        if values.dtype == np.uint8:
            out = values
            return (255 - out) if invert else out
        window = auto_window(values)
    centre, width = window
    width = max(float(width), 1e-6)
    lo = centre - width / 2.0
    scaled = (values.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / width)
    out = np.clip(scaled, 0, 255).astype(np.uint8)
    return (255 - out) if invert else out
