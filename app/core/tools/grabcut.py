"""GrabCut from a box (OpenCV): drag a box around an object, its foreground is painted with the class.

Runs on the frame as displayed (windowed to 8 bit) so CT objects separate the way the reader sees
them. OpenCV is imported on first use to keep start-up light.
"""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.commands import PaintCommand
from app.core.display import Window, apply_window
from app.core.tools.base import Button, Modifiers, Preview, Tool, ToolContext
from app.core.tools.editing import normalised_box

MIN_SIDE = 4  # GrabCut needs some background around and inside the box


class GrabState(Enum):
    IDLE = auto()
    DRAGGING = auto()


def grabcut_box(
    values: npt.NDArray[Any],
    box: tuple[float, float, float, float],
    window: Window | None = None,
    iterations: int = 4,
) -> tuple[int, int, npt.NDArray[np.bool_]]:
    """Foreground pixels of the object inside ``box``: (y0, x0, bits) cropped to the box.

    Only a margin around the box is handed to OpenCV, so a box on a 16k image costs its own size.
    """
    import cv2

    h, w = values.shape[:2]
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x1 - x0 < MIN_SIDE or y1 - y0 < MIN_SIDE:
        return y0, x0, np.zeros((max(0, y1 - y0), max(0, x1 - x0)), dtype=bool)
    margin = max(8, (x1 - x0 + y1 - y0) // 8)
    cx0, cy0, cx1, cy1 = max(0, x0 - margin), max(0, y0 - margin), min(w, x1 + margin), min(h, y1 + margin)
    crop = apply_window(values[cy0:cy1, cx0:cx1], window)
    rgb = np.ascontiguousarray(np.repeat(crop[..., None], 3, axis=2) if crop.ndim == 2 else crop[..., :3])
    mask = np.zeros(rgb.shape[:2], dtype=np.uint8)
    rect = (x0 - cx0, y0 - cy0, x1 - x0, y1 - y0)
    background = np.zeros((1, 65), dtype=np.float64)
    foreground = np.zeros((1, 65), dtype=np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means starts from the global RNG: same box, same answer
    cv2.grabCut(rgb, mask, rect, background, foreground, iterations, cv2.GC_INIT_WITH_RECT)
    fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return y0, x0, fg[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0].copy()


class GrabCutTool(Tool):
    """Drag a box; on release the object inside is segmented and painted (one undo step)."""

    name = "grabcut"

    def __init__(
        self, ctx: ToolContext, values: npt.NDArray[Any] | None, window: Window | None = None
    ) -> None:
        super().__init__(ctx)
        self.values, self.window = values, window
        self.state = GrabState.IDLE
        self._anchor = self._corner = (0.0, 0.0)

    @property
    def preview(self) -> Preview:
        if self.state is GrabState.DRAGGING:
            return Preview(box=normalised_box(*self._anchor, *self._corner))
        return Preview()

    def press(
        self, x: float, y: float, button: Button = Button.LEFT, modifiers: Modifiers = Modifiers.NONE
    ) -> bool:
        if button is not Button.LEFT or self.values is None:
            return False
        self.state, self._anchor, self._corner = GrabState.DRAGGING, (x, y), (x, y)
        return True

    def move(self, x: float, y: float) -> bool:
        if self.state is GrabState.DRAGGING:
            self._corner = (x, y)
            return True
        return False

    def release(self, x: float, y: float) -> bool:
        if self.state is not GrabState.DRAGGING or self.values is None:
            return False
        self.state = GrabState.IDLE
        y0, x0, bits = grabcut_box(self.values, normalised_box(*self._anchor, x, y), self.window)
        if bits.any():
            self.ctx.stack.push(
                PaintCommand(self.ctx.frame, [(y0, x0, bits)], self.ctx.class_index, "GrabCut")
            )
        return True

    def cancel(self) -> None:
        self.state = GrabState.IDLE
