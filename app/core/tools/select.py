"""Select, move and delete annotations of any kind on the current frame.

A track's interpolated annotations are hit too (app.core.tracks.shown_annotations): a click on one
selects nothing (it is not stored), a drag stores it as a keyframe with the dragged shape."""

from __future__ import annotations

from dataclasses import replace
from enum import Enum, auto

from app.core.commands import RemoveAnnotation
from app.core.tools.base import Button, Modifiers, Tool, ToolContext
from app.core.tools.editing import ShapeEditor, delete_vertex
from app.core.tools.hittest import HitTarget, Part, hit_test
from app.core.tracks import is_interpolated_id, shown_annotations


class SelectState(Enum):
    IDLE = auto()
    DRAGGING = auto()


class SelectTool(Tool):
    """Click selects (vertex > edge > inside); drag edits or moves; Delete removes the vertex last
    pressed, or the selected annotation; Escape clears the selection."""

    name = "select"

    def __init__(self, ctx: ToolContext) -> None:
        super().__init__(ctx)
        self.state = SelectState.IDLE
        self.selected: int | None = None
        self.target: HitTarget | None = None
        self.editor = ShapeEditor(ctx)

    def press(
        self, x: float, y: float, button: Button = Button.LEFT, modifiers: Modifiers = Modifiers.NONE
    ) -> bool:
        if button is not Button.LEFT:
            return False
        shown = shown_annotations(self.ctx.doc, self.ctx.frame)
        hit = hit_test(shown, x, y, self.ctx.pixel_tolerance)
        self.target = hit
        virtual = hit is not None and is_interpolated_id(hit.annotation_id)
        interpolated = shown[hit.annotation_id] if hit is not None and virtual else None
        self.selected = None if hit is None or interpolated is not None else hit.annotation_id
        if hit is not None and self.editor.begin(hit, x, y, interpolated):
            self.state = SelectState.DRAGGING
            self._follow()
        return hit is not None

    def _follow(self) -> None:
        """Once a drag stored an interpolated annotation as a keyframe, select the keyframe."""
        aid, target = self.editor.aid, self.target
        if aid is not None and target is not None and is_interpolated_id(target.annotation_id):
            self.selected, self.target = aid, replace(target, annotation_id=aid)

    def move(self, x: float, y: float) -> bool:
        if self.state is not SelectState.DRAGGING:
            return False
        self.editor.drag(x, y)
        self._follow()
        return True

    def release(self, x: float, y: float) -> bool:
        if self.state is not SelectState.DRAGGING:
            return False
        self.editor.drag(x, y)
        self._follow()
        self.editor.end()
        self.state = SelectState.IDLE
        if self.target is not None and self.target.part is Part.EDGE:
            self.target = None  # the inserted vertex is now a vertex, not the old edge
        return True

    def key(self, name: str) -> bool:
        if name == "Escape":
            self.cancel()
            self.selected = self.target = None
            return True
        if name not in ("Delete", "Backspace") or self.selected is None:
            return False
        t = self.target
        vertex = t is not None and t.part is Part.VERTEX and t.index is not None
        if (
            vertex
            and t is not None
            and t.index is not None
            and delete_vertex(self.ctx, t.annotation_id, t.index)
        ):
            self.target = None
            return True
        self.ctx.stack.push(RemoveAnnotation(self.selected))
        self.selected = self.target = None
        return True

    def cancel(self) -> None:
        self.editor.end()
        self.state = SelectState.IDLE
