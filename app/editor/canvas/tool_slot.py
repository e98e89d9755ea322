"""The tool the canvas hands pointer events to, and the lock that keeps it from drawing."""

from __future__ import annotations

from app.core.tools.base import Preview, Tool
from app.editor.canvas.overlay_stack import OverlayStack
from app.editor.canvas.view import CanvasView

TOLERANCE_PX = 6.0  # hit tolerance in screen pixels, handed to tools in image units


class ToolSlot:
    """The canvas's active tool (``canvas.tool_slot``). While ``locked`` says why (the frame on
    screen is not the image of the item being edited: still opening, or it could not be opened),
    the tool takes no input; the view (pan, zoom, frame steps) keeps working."""

    def __init__(self, view: CanvasView, overlays: OverlayStack) -> None:
        self._view = view
        self._overlays = overlays
        self._tool: Tool | None = None
        self.locked = ""  # why tools take no input ("" when they do)

    @property
    def active(self) -> Tool | None:
        return self._tool

    def set_active(self, tool: Tool | None) -> None:
        """Hand events to ``tool`` (None: to no tool); a different previous tool is cancelled."""
        if self._tool is not None and self._tool is not tool:
            self._tool.cancel()
        self._tool = tool
        self.match_zoom()
        self.refresh()

    def lock(self, reason: str, *, shown: bool = False) -> None:
        """Tools take no input while ``reason`` is set ("" unlocks). A press says ``reason`` through
        the canvas's ``refused``; ``shown`` also writes it over the frame."""
        if reason and self._tool is not None:
            self._tool.cancel()  # a stroke in progress must not end on another image
        self.locked = reason
        self._overlays.notice = reason if shown else ""
        self.refresh()

    def refresh(self) -> None:
        """Redraw the tool's preview after it took an event."""
        self._overlays.set_preview(self._tool.preview if self._tool is not None else Preview())

    def match_zoom(self) -> None:
        """Hand the tool its hit tolerance in image pixels at the current zoom."""
        if self._tool is not None:
            self._tool.ctx.pixel_tolerance = TOLERANCE_PX / self._view.zoom
