"""What both backends draw for the image + label layers (plain state; no Qt)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from app.core.compose import label_lut
from app.core.display import Window


@dataclass
class LayerState:
    """The frame is held by reference (no copy); ``window`` is already resolved (None: uint8 passthrough)."""

    frame: npt.NDArray[np.generic] | None = None
    window: Window | None = None
    invert: bool = False
    colormap: str = "grey"
    labels: npt.NDArray[np.uint16] | None = None
    colors: Mapping[int, tuple[int, int, int]] = field(default_factory=dict)
    lut: npt.NDArray[np.uint8] | None = None  # label_lut(colors), None when there are no colours
    opacity: float = 0.5
    outline: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        if self.frame is None:
            return (1, 1)
        return int(self.frame.shape[0]), int(self.frame.shape[1])

    @property
    def colour(self) -> bool:
        return self.frame is not None and self.frame.ndim == 3

    def set_colors(self, colors: Mapping[int, tuple[int, int, int]]) -> None:
        self.colors = dict(colors)
        self.lut = label_lut(self.colors) if self.colors else None

    def pixel_value(self, x: float, y: float) -> float | tuple[int, ...] | None:
        """The raw value under image point (x, y) (HU for CT), or None outside the image."""
        frame = self.frame
        c, r = int(np.floor(x)), int(np.floor(y))
        if frame is None or not (0 <= r < frame.shape[0] and 0 <= c < frame.shape[1]):
            return None
        value = frame[r, c]
        return tuple(int(v) for v in value) if frame.ndim == 3 else float(value)
