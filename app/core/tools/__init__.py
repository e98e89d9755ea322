"""Qt-free tool state machines; the editor's adapters feed them events in image coordinates."""

from app.core.tools.base import Button, Modifiers, Preview, Tool, ToolContext
from app.core.tools.hittest import HitTarget, Part, hit_test
from app.core.tools.paint import (
    BrushTool,
    EraserTool,
    FloodFillTool,
    MagicWandTool,
    ThresholdBrush,
    connected_region,
)
from app.core.tools.select import SelectTool
from app.core.tools.vector import BoxTool, PointTool, PolygonTool, PolylineTool

__all__ = [
    "BoxTool",
    "BrushTool",
    "Button",
    "EraserTool",
    "FloodFillTool",
    "HitTarget",
    "MagicWandTool",
    "Modifiers",
    "Part",
    "PointTool",
    "PolygonTool",
    "PolylineTool",
    "Preview",
    "SelectTool",
    "ThresholdBrush",
    "Tool",
    "ToolContext",
    "connected_region",
    "hit_test",
]
