"""Vector tools: polygon, polyline, point and box. Each creates annotations via ``AddAnnotation``
and edits existing ones of its kind through ``ShapeEditor`` (vertex/edge/handle hits; Shift-drag
inside moves the shape, so a plain click inside another shape still starts a new one). A track's
interpolated annotations can be dragged too: that stores a keyframe (app.core.tools.editing)."""

from __future__ import annotations

from enum import Enum, auto

import numpy as np

from app.core.annotations import Annotation, Kind
from app.core.commands import AddAnnotation, RemoveAnnotation
from app.core.tools.base import Button, Modifiers, Preview, Tool, ToolContext, as_points
from app.core.tools.editing import ShapeEditor, delete_vertex, normalised_box
from app.core.tools.hittest import HitTarget, Part, hit_test
from app.core.tracks import is_interpolated_id, shown_annotations

ENTER_KEYS = ("Enter", "Return")
DELETE_KEYS = ("Delete", "Backspace")


class DrawState(Enum):
    IDLE = auto()
    DRAWING = auto()
    EDITING = auto()


class _VectorTool(Tool):
    kind = Kind.POLYGON

    def __init__(self, ctx: ToolContext) -> None:
        super().__init__(ctx)
        self.state = DrawState.IDLE
        self.editor = ShapeEditor(ctx)
        self.last_added: int | None = None  # local id of the last annotation this tool created

    def _own(self) -> dict[int, Annotation]:
        """This kind's annotations the frame shows (interpolated ones under negative ids)."""
        shown = shown_annotations(self.ctx.doc, self.ctx.frame)
        return {k: a for k, a in shown.items() if a.kind is self.kind}

    def _begin(self, hit: HitTarget, x: float, y: float, own: dict[int, Annotation]) -> bool:
        interpolated = own[hit.annotation_id] if is_interpolated_id(hit.annotation_id) else None
        return self.editor.begin(hit, x, y, interpolated)

    def _try_edit(self, x: float, y: float, button: Button, modifiers: Modifiers) -> bool:
        """Right-click on a vertex deletes it; a vertex/edge/handle drag (or Shift-drag inside) edits."""
        own = self._own()
        hit = hit_test(own, x, y, self.ctx.pixel_tolerance)
        if hit is None or (hit.part is Part.INSIDE and Modifiers.SHIFT not in modifiers):
            return False
        if button is Button.RIGHT:
            return (
                hit.part is Part.VERTEX
                and not is_interpolated_id(hit.annotation_id)
                and hit.index is not None
                and delete_vertex(self.ctx, hit.annotation_id, hit.index)
            )
        if button is Button.LEFT and self._begin(hit, x, y, own):
            self.state = DrawState.EDITING
            return True
        return False

    def _add(self, annotation: Annotation) -> None:
        command = AddAnnotation(annotation)
        self.ctx.stack.push(command)
        self.last_added = command.aid

    def move(self, x: float, y: float) -> bool:
        if self.state is DrawState.EDITING:
            self.editor.drag(x, y)
            return True
        return False

    def release(self, x: float, y: float) -> bool:
        if self.state is DrawState.EDITING:
            self.editor.drag(x, y)
            self.editor.end()
            self.state = DrawState.IDLE
            return True
        return False

    def cancel(self) -> None:
        self.editor.end()
        self.state = DrawState.IDLE


class _PathTool(_VectorTool):
    """Click vertices; Backspace drops the last one, Escape cancels, Enter finishes."""

    minimum = 3

    def __init__(self, ctx: ToolContext) -> None:
        super().__init__(ctx)
        self.vertices: list[tuple[float, float]] = []
        self.pointer: tuple[float, float] | None = None

    @property
    def preview(self) -> Preview:
        if self.state is not DrawState.DRAWING:
            return Preview()
        return Preview(points=as_points(self.vertices), rubber_band=self.pointer)

    def _add_vertex(self, x: float, y: float) -> None:
        if not self.vertices or self.vertices[-1] != (x, y):
            self.vertices.append((x, y))

    def finish(self) -> bool:
        if len(self.vertices) < self.minimum:
            return False
        pts = as_points(self.vertices)
        self.cancel()
        self._add(Annotation(kind=self.kind, label=self.ctx.label, frame=self.ctx.frame, points=pts))
        return True

    def press(
        self, x: float, y: float, button: Button = Button.LEFT, modifiers: Modifiers = Modifiers.NONE
    ) -> bool:
        if self.state is DrawState.IDLE and self._try_edit(x, y, button, modifiers):
            return True
        if button is not Button.LEFT or self.state is DrawState.EDITING:
            return False
        self.state = DrawState.DRAWING
        self._add_vertex(x, y)
        self.pointer = (x, y)
        return True

    def move(self, x: float, y: float) -> bool:
        if self.state is DrawState.DRAWING:
            self.pointer = (x, y)
            return True
        return super().move(x, y)

    def release(self, x: float, y: float) -> bool:
        return self.state is DrawState.DRAWING or super().release(x, y)

    def double_click(self, x: float, y: float) -> bool:
        if self.state is not DrawState.DRAWING:
            return False
        self._add_vertex(x, y)
        return self.finish()

    def key(self, name: str) -> bool:
        if self.state is not DrawState.DRAWING:
            return False
        if name in ENTER_KEYS:
            return self.finish()
        if name == "Backspace":
            self.vertices.pop()
            if not self.vertices:
                self.cancel()
            return True
        if name == "Escape":
            self.cancel()
            return True
        return False

    def cancel(self) -> None:
        super().cancel()
        self.vertices, self.pointer = [], None


class PolygonTool(_PathTool):
    """Closes on a click within ``pixel_tolerance`` of the first vertex, on Enter or double-click."""

    name = "polygon"
    kind = Kind.POLYGON
    minimum = 3

    def press(
        self, x: float, y: float, button: Button = Button.LEFT, modifiers: Modifiers = Modifiers.NONE
    ) -> bool:
        if self.state is DrawState.DRAWING and button is Button.LEFT and len(self.vertices) >= self.minimum:
            fx, fy = self.vertices[0]
            if float(np.hypot(x - fx, y - fy)) <= self.ctx.pixel_tolerance:
                return self.finish()
        return super().press(x, y, button, modifiers)


class PolylineTool(_PathTool):
    """Finishes on Enter or double-click (at least two points)."""

    name = "polyline"
    kind = Kind.POLYLINE
    minimum = 2


class PointTool(_VectorTool):
    """A click adds a point; pressing on an existing point drags it; right-click deletes it."""

    name = "point"
    kind = Kind.POINT

    def press(
        self, x: float, y: float, button: Button = Button.LEFT, modifiers: Modifiers = Modifiers.NONE
    ) -> bool:
        own = self._own()
        hit = hit_test(own, x, y, self.ctx.pixel_tolerance)
        if hit is not None and button is Button.RIGHT and not is_interpolated_id(hit.annotation_id):
            self.ctx.stack.push(RemoveAnnotation(hit.annotation_id))
            return True
        if hit is not None and button is Button.LEFT and self._begin(hit, x, y, own):
            self.state = DrawState.EDITING
            return True
        if button is not Button.LEFT:
            return False
        self._add(
            Annotation(
                kind=Kind.POINT, label=self.ctx.label, frame=self.ctx.frame, points=as_points([(x, y)])
            )
        )
        return True


class BoxTool(_VectorTool):
    """Drag to create (corners normalised so x0 < x1, y0 < y1); drag handles to resize."""

    name = "box"
    kind = Kind.BOX

    def __init__(self, ctx: ToolContext) -> None:
        super().__init__(ctx)
        self._anchor = (0.0, 0.0)
        self._corner = (0.0, 0.0)

    @property
    def preview(self) -> Preview:
        if self.state is not DrawState.DRAWING:
            return Preview()
        return Preview(box=normalised_box(*self._anchor, *self._corner))

    def press(
        self, x: float, y: float, button: Button = Button.LEFT, modifiers: Modifiers = Modifiers.NONE
    ) -> bool:
        if self.state is DrawState.IDLE and self._try_edit(x, y, button, modifiers):
            return True
        if button is not Button.LEFT or self.state is not DrawState.IDLE:
            return False
        self.state, self._anchor, self._corner = DrawState.DRAWING, (x, y), (x, y)
        return True

    def move(self, x: float, y: float) -> bool:
        if self.state is DrawState.DRAWING:
            self._corner = (x, y)
            return True
        return super().move(x, y)

    def release(self, x: float, y: float) -> bool:
        if self.state is not DrawState.DRAWING:
            return super().release(x, y)
        self.state = DrawState.IDLE
        box = normalised_box(*self._anchor, x, y)
        if box[2] > box[0] and box[3] > box[1]:  # a click without a drag makes nothing
            self._add(Annotation(kind=Kind.BOX, label=self.ctx.label, frame=self.ctx.frame, box=box))
        return True

    def key(self, name: str) -> bool:
        if self.state is DrawState.DRAWING and name == "Escape":
            self.cancel()
            return True
        return False
