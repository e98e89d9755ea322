"""Pixel tools that write the label map: brush, eraser, threshold brush, flood fill, magic wand.

A stroke is the union of ``raster.stroke_patch`` capsules of consecutive pointer positions, which
equals ``rasterize_stroke`` of the whole path exactly (same per-vertex and per-segment tests). The
map is untouched during the drag (the canvas draws ``preview.patches``); release pushes one
``PaintCommand`` that stores only the changed pixels.
"""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.commands import AddAnnotation, PaintCommand, Patch
from app.core.errors import ValidationError
from app.core.raster import stroke_patch
from app.core.tools.base import Button, Modifiers, Preview, Tool, ToolContext, as_points

MIN_RADIUS, MAX_RADIUS = 0.5, 512.0


class PaintState(Enum):
    IDLE = auto()
    PAINTING = auto()


class BrushTool(Tool):
    """Round brush of ``radius`` image pixels; ``[`` / ``]`` and the wheel change it by one pixel."""

    name = "brush"

    def __init__(self, ctx: ToolContext, radius: float = 5.0) -> None:
        super().__init__(ctx)
        self.radius = radius
        self.state = PaintState.IDLE
        self.patches: list[Patch] = []
        self.path: list[tuple[float, float]] = []
        self.pointer: tuple[float, float] | None = None

    @property
    def value(self) -> int:
        return self.ctx.class_index

    @property
    def preview(self) -> Preview:
        cursor = None if self.pointer is None else (*self.pointer, self.radius)
        return Preview(cursor=cursor, patches=tuple(self.patches), value=self.value)

    def _filter(self, patch: Patch) -> Patch:
        return patch  # ThresholdBrush keeps only in-range pixels

    def _segment(self, points: list[tuple[float, float]]) -> None:
        y0, x0, bits = self._filter(stroke_patch(as_points(points), self.radius, self.ctx.doc.shape))
        if bits.any():
            self.patches.append((y0, x0, bits))

    def press(
        self, x: float, y: float, button: Button = Button.LEFT, modifiers: Modifiers = Modifiers.NONE
    ) -> bool:
        if button is not Button.LEFT:
            return False
        self.state, self.patches, self.path, self.pointer = PaintState.PAINTING, [], [(x, y)], (x, y)
        self._segment([(x, y)])
        return True

    def move(self, x: float, y: float) -> bool:
        self.pointer = (x, y)
        if self.state is not PaintState.PAINTING:
            return False  # hover: only the cursor circle moves
        if self.path[-1] != (x, y):
            self._segment([self.path[-1], (x, y)])
            self.path.append((x, y))
        return True

    def release(self, x: float, y: float) -> bool:
        if self.state is not PaintState.PAINTING:
            return False
        self.move(x, y)
        patches, self.patches, self.state = self.patches, [], PaintState.IDLE
        if patches:
            self.ctx.stack.push(PaintCommand(self.ctx.frame, patches, self.value, text=f"{self.name} stroke"))
        return True

    def key(self, name: str) -> bool:
        if name in ("[", "]"):
            return self.wheel(1 if name == "]" else -1)
        if name == "Escape" and self.state is PaintState.PAINTING:
            self.cancel()
            return True
        return False

    def wheel(self, steps: int) -> bool:
        self.radius = float(np.clip(self.radius + steps, MIN_RADIUS, MAX_RADIUS))
        return True

    def cancel(self) -> None:
        self.state, self.patches, self.path = PaintState.IDLE, [], []


class EraserTool(BrushTool):
    """The brush writing 0 (background)."""

    name = "eraser"

    @property
    def value(self) -> int:
        return 0


class ThresholdBrush(BrushTool):
    """Paints only the pixels whose image value lies in ``[lo, hi]`` (e.g. HU for CT)."""

    name = "threshold brush"

    def __init__(
        self, ctx: ToolContext, values: npt.NDArray[Any], lo: float, hi: float, radius: float = 5.0
    ) -> None:
        super().__init__(ctx, radius)
        if values.shape != ctx.doc.shape:
            raise ValidationError(f"values {values.shape} do not match the frame {ctx.doc.shape}")
        self.values, self.lo, self.hi = values, lo, hi

    def _filter(self, patch: Patch) -> Patch:
        y0, x0, bits = patch
        crop = self.values[y0 : y0 + bits.shape[0], x0 : x0 + bits.shape[1]]
        return y0, x0, bits & (crop >= self.lo) & (crop <= self.hi)


def connected_region(values: npt.NDArray[Any], x: float, y: float, tolerance: float) -> MaskPatch | None:
    """4-connected pixels reachable from the pixel under (x, y) with |value - seed| <= tolerance."""
    h, w = values.shape[:2]
    c, r = int(np.floor(x)), int(np.floor(y))
    if not (0 <= c < w and 0 <= r < h):
        return None
    data = values.astype(np.float64, copy=False)
    near = np.abs(data - data[r, c]) <= tolerance
    labels, _ = ndimage.label(near)  # default structure: 4-connectivity in 2-D
    seed = int(labels[r, c])
    rows, cols = ndimage.find_objects(labels, max_label=seed)[seed - 1]
    bits = labels[rows, cols] == seed
    return MaskPatch(cols.start, rows.start, np.ascontiguousarray(bits), (h, w))


class _RegionTool(Tool):
    """Click to take the seed's connected region; ``[`` / ``]`` and the wheel change the tolerance."""

    def __init__(
        self, ctx: ToolContext, values: npt.NDArray[Any] | None = None, tolerance: float = 0.0
    ) -> None:
        super().__init__(ctx)
        self.values, self.tolerance, self.tolerance_step = values, tolerance, 1.0

    def region(self, x: float, y: float) -> MaskPatch | None:
        # Without image values, fill the label map's own region (paint-bucket on the labels).
        values = self.values if self.values is not None else self.ctx.doc.label_map(self.ctx.frame)
        return connected_region(values, x, y, self.tolerance)

    def key(self, name: str) -> bool:
        return name in ("[", "]") and self.wheel(1 if name == "]" else -1)

    def wheel(self, steps: int) -> bool:
        self.tolerance = max(0.0, self.tolerance + steps * self.tolerance_step)
        return True

    def press(
        self, x: float, y: float, button: Button = Button.LEFT, modifiers: Modifiers = Modifiers.NONE
    ) -> bool:
        mask = self.region(x, y) if button is Button.LEFT else None
        if mask is None:
            return False
        self.apply(mask)
        return True

    def apply(self, mask: MaskPatch) -> None:
        """Turn the clicked region into one undoable command."""
        raise NotImplementedError


class FloodFillTool(_RegionTool):
    """Paints the clicked region with the active class (one ``PaintCommand``)."""

    name = "flood fill"

    def apply(self, mask: MaskPatch) -> None:
        patch = (mask.y0, mask.x0, mask.bits)
        self.ctx.stack.push(PaintCommand(self.ctx.frame, [patch], self.ctx.class_index, text="Flood fill"))


class MagicWandTool(_RegionTool):
    """Adds the clicked region as a mask annotation of the active label."""

    name = "magic wand"

    def apply(self, mask: MaskPatch) -> None:
        ann = Annotation(kind=Kind.MASK, label=self.ctx.label, frame=self.ctx.frame, mask=mask)
        self.ctx.stack.push(AddAnnotation(ann, text="Magic wand"))
