"""The tool that edits the open session, the class it draws, and what the select tool holds.

The canvas hands pointer events to ``tool``; this object picks and rebuilds it (per frame, per
class, per window for the threshold brush), refuses a tool the class may not be drawn with, and
runs the conversions on the selected annotation. It sees its controller as an ``EditingHost``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.core.annotations import Kind
from app.core.conversions import labels_to_polygons, mask_annotation_to_polygons, polygon_to_labels
from app.core.errors import SitelabelError
from app.core.tools import SelectTool, Tool, ToolContext
from app.editor.editing_host import EditingHost
from app.editor.tool_registry import BY_NAME, FrameInfo

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.canvas import Canvas
    from app.workflow.editing import EditSession


class EditingTools:
    """``editing.tools``: ``tool_name`` stays chosen across sessions; ``ctx`` is the tools' context
    on the session's document and the frame shown, ``frame_info`` that frame's values and window."""

    def __init__(self, host: EditingHost, project: Project, canvas: Canvas) -> None:
        self.host = host
        self.project = project
        self.canvas = canvas
        self.ctx: ToolContext | None = None
        self.tool: Tool | None = None
        self.tool_name = "brush"
        self.label, self.class_index = "", 1
        self.frame_info = FrameInfo(None, None)

    # --- session and frame -------------------------------------------------------------------
    def start(self, session: EditSession) -> None:
        """Edit ``session``'s document from its first frame with the chosen tool and class."""
        self.ctx = ToolContext(session.doc, session.stack, 0, self.label, self.class_index)
        self.set_tool(self.tool_name)

    def cancel(self) -> None:
        """Drop the stroke or shape in progress."""
        if self.tool is not None:
            self.tool.cancel()

    def show_frame(self, index: int, info: FrameInfo) -> None:
        """Tools act on frame ``index`` now (rebuild them with ``set_tool`` once it is drawn)."""
        self.cancel()
        if self.ctx is not None:
            self.ctx.frame = index
        self.frame_info = info

    def set_window(self, window: tuple[float, float]) -> None:
        self.frame_info = FrameInfo(self.frame_info.values, window)
        if self.tool_name == "threshold brush":
            self.set_tool(self.tool_name)

    # --- tools and classes ----------------------------------------------------------------
    def set_tool(self, name: str) -> None:
        self.tool_name = name
        if self.ctx is None:
            return
        self.cancel()
        spec = BY_NAME[name]
        refusal = self._refusal(spec.makes)
        if refusal:  # the ontology decides what a class may be drawn as: never store what it forbids
            self.tool = None
            self.canvas.tool_slot.set_active(None)
            self.host.emit_status(refusal)
            return
        self.tool = spec.build(self.ctx, self.frame_info)
        self.canvas.tool_slot.set_active(self.tool)

    def _refusal(self, makes: Kind | None) -> str:
        if makes is None or not self.label:
            return ""
        try:
            allowed = self.project.ontology.get(self.label).kinds
        except SitelabelError:
            return ""
        if makes in allowed:
            return ""
        kinds = ", ".join(k.value for k in allowed)
        return f"class '{self.label}' is drawn as {kinds}, not {makes.value}: pick another tool or class"

    def set_class(self, name: str, index: int) -> None:
        self.label, self.class_index = name, index
        if self.ctx is not None:
            self.ctx.label, self.ctx.class_index = name, index
            self.set_tool(self.tool_name)  # the class may not allow what the current tool makes

    # --- the selection --------------------------------------------------------------------
    def pointer_pressed(self) -> None:
        """After the canvas handed a press to the tool: report what the select tool picked."""
        if isinstance(self.tool, SelectTool):
            self.host.selection_changed.emit(self.tool.selected)
            self.host.refresh_annotations()  # the selection is drawn highlighted

    @property
    def selected_id(self) -> int | None:
        """Local id of the annotation the select tool holds, or None."""
        return self.tool.selected if isinstance(self.tool, SelectTool) else None

    def select(self, aid: int | None) -> None:
        """Select an annotation as a click with the select tool would (the select tool must be on:
        pre-label review switches to it first), so Delete, drags and Ctrl+M act on it."""
        if not isinstance(self.tool, SelectTool):
            return
        self.tool.cancel()
        self.tool.selected, self.tool.target = aid, None
        self.host.selection_changed.emit(aid)
        self.host.refresh_annotations()

    def convert_selected(self) -> None:
        """Selected mask -> polygons; selected polygon or box -> painted into the label map."""
        session = self.host.session
        if session is None or not isinstance(self.tool, SelectTool) or self.tool.selected is None:
            self.host.emit_status("select an annotation first (V, then click it)")
            return
        doc, aid = session.doc, self.tool.selected
        try:
            annotation = doc.annotation(aid)
            if annotation.kind is Kind.MASK:
                command = mask_annotation_to_polygons(doc, aid)
            else:
                command = polygon_to_labels(doc, aid, self.project.ontology.index_of(annotation.label))
            self.tool.selected = None
            session.stack.push(command)
        except SitelabelError as exc:
            self.host.emit_status(str(exc))

    def class_pixels_to_polygons(self) -> None:
        """The active class's painted pixels on this frame become polygons (one undo step)."""
        session = self.host.session
        if session is None or self.ctx is None or not self.label:
            return
        try:
            command = labels_to_polygons(session.doc, self.ctx.frame, self.class_index, self.label)
            session.stack.push(command)
        except SitelabelError as exc:
            self.host.emit_status(str(exc))
