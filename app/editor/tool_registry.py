"""The labeling tools the editor offers: name, shortcut, help text and how to build each one.

Tools are Qt-free state machines (app.core.tools); this table only says how the editor makes them
for the current frame (threshold and region tools need the frame's values).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.annotations import Kind
from app.core.tools import (
    BoxTool,
    BrushTool,
    EraserTool,
    FloodFillTool,
    MagicWandTool,
    PointTool,
    PolygonTool,
    PolylineTool,
    SelectTool,
    ThresholdBrush,
    Tool,
    ToolContext,
)
from app.core.tools.grabcut import GrabCutTool
from app.editor.canvas.pins import CommentTool


@dataclass(frozen=True)
class FrameInfo:
    """What value-aware tools need to know about the frame on screen."""

    values: npt.NDArray[Any] | None  # modality values (HU for CT); None before a frame is shown
    window: tuple[float, float] | None  # the displayed window: the threshold brush paints inside it


@dataclass(frozen=True)
class ToolSpec:
    name: str
    shortcut: str
    help: str
    build: Callable[[ToolContext, FrameInfo], Tool]
    makes: Kind | None = None  # what the tool creates, checked against the class's allowed kinds


def _grey(values: npt.NDArray[Any] | None) -> npt.NDArray[Any] | None:
    """Region tools compare single values: colour frames are compared on their mean."""
    if values is not None and values.ndim == 3:
        grey: npt.NDArray[Any] = np.asarray(values[..., :3], dtype=np.float32).mean(axis=2)
        return grey
    return values


def _threshold(ctx: ToolContext, info: FrameInfo) -> Tool:
    values = _grey(info.values)
    if values is None:
        values = np.zeros(ctx.doc.shape, dtype=np.float32)
    if info.window is not None:
        centre, width = info.window
        lo, hi = centre - width / 2.0, centre + width / 2.0
    else:
        lo, hi = float(np.min(values)), float(np.max(values))
    return ThresholdBrush(ctx, values, lo, hi)


MASK, POLYGON = Kind.MASK, Kind.POLYGON
TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("select", "V", "Select, move, reshape; Delete removes", lambda c, _i: SelectTool(c)),
    ToolSpec(
        "polygon",
        "P",
        "Polygon: click vertices, Enter or first vertex closes",
        lambda c, _i: PolygonTool(c),
        POLYGON,
    ),
    ToolSpec(
        "polyline",
        "L",
        "Polyline: click points, Enter finishes",
        lambda c, _i: PolylineTool(c),
        Kind.POLYLINE,
    ),
    ToolSpec("box", "R", "Box: drag; handles resize", lambda c, _i: BoxTool(c), Kind.BOX),
    ToolSpec("point", "O", "Point: click to place", lambda c, _i: PointTool(c), Kind.POINT),
    ToolSpec(
        "brush", "B", "Brush: paint the class; [ ] or Shift+wheel size", lambda c, _i: BrushTool(c), MASK
    ),
    ToolSpec("eraser", "E", "Eraser: [ ] or Shift+wheel size", lambda c, _i: EraserTool(c)),
    ToolSpec("threshold brush", "T", "Brush limited to the displayed window (HU range)", _threshold, MASK),
    ToolSpec(
        "flood fill",
        "G",
        "Fill the connected region; [ ] tolerance",
        lambda c, i: FloodFillTool(c, _grey(i.values)),
        MASK,
    ),
    ToolSpec(
        "grabcut",
        "C",
        "GrabCut: drag a box around an object, its foreground is painted",
        lambda c, i: GrabCutTool(c, i.values, i.window),
        MASK,
    ),
    ToolSpec(
        "magic wand",
        "W",
        "Region as a mask annotation; [ ] tolerance",
        lambda c, i: MagicWandTool(c, _grey(i.values)),
        MASK,
    ),
    ToolSpec(
        "comment",
        "N",
        "Comment: click the image to pin an issue there; type, Enter posts",
        lambda c, _i: CommentTool(c),
    ),
)

BY_NAME = {spec.name: spec for spec in TOOLS}
