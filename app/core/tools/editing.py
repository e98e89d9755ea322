"""Editing an existing annotation by dragging: a vertex, a new vertex on an edge, a box handle, or
the whole shape. Every drag is one undo step: its ``ReplaceAnnotation`` commands share a gesture
token, so the stack merges them (Qt's mergeWith for vertex drags).

An edited frame of an object track is a keyframe: a drag on a track's interpolated annotation (shown,
not stored: app.core.tracks.shown_annotations) stores it as a keyframe at the first change, and the
rest of the drag merges into that step; an edited tracked frame becomes a keyframe too."""

from __future__ import annotations

import itertools
from enum import Enum, auto

import numpy as np

from app.core.annotations import Annotation, Kind
from app.core.commands import RemoveAnnotation, ReplaceAnnotation
from app.core.tools.base import ToolContext
from app.core.tools.hittest import HitTarget, Part
from app.core.tracks import keyframe_command

_gestures = itertools.count(1)
MIN_VERTICES = {Kind.POLYGON: 3, Kind.POLYLINE: 2}


class EditMode(Enum):
    IDLE = auto()
    VERTEX = auto()
    RESIZE = auto()
    MOVE = auto()


def normalised_box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def moved(ann: Annotation, dx: float, dy: float) -> Annotation:
    if ann.box is not None:
        x0, y0, x1, y1 = ann.box
        return ann.evolve(box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy))
    if ann.points is not None:
        return ann.evolve(points=ann.points + np.array([dx, dy]))
    return ann  # masks move in the paint tools, not here


def resized(box: tuple[float, float, float, float], handle: str, x: float, y: float) -> tuple[float, ...]:
    x0, y0, x1, y1 = box
    if "w" in handle:
        x0 = x
    if "e" in handle:
        x1 = x
    if "n" in handle:
        y0 = y
    if "s" in handle:
        y1 = y
    return normalised_box(x0, y0, x1, y1)  # dragging past the opposite side flips, like most editors


class ShapeEditor:
    def __init__(self, ctx: ToolContext) -> None:
        self.ctx = ctx
        self.mode = EditMode.IDLE
        self.aid: int | None = None
        self.index = 0
        self.handle = ""
        self._start: Annotation | None = None
        self._origin = (0.0, 0.0)
        self._gesture = 0
        self._interpolated: Annotation | None = None  # shown, not stored: the first change stores it

    @property
    def active(self) -> bool:
        return self.mode is not EditMode.IDLE

    def _current(self) -> Annotation:
        if self._interpolated is not None:
            return self._interpolated
        assert self.aid is not None
        return self.ctx.doc.annotation(self.aid)

    def _replace(self, after: Annotation) -> None:
        if self._interpolated is not None:  # first change of an interpolated frame: a new keyframe
            command = keyframe_command(self.ctx.doc, self._interpolated, after, None, self._gesture)
            self.ctx.stack.push(command)
            self.aid, self._interpolated = command.aid, None
            return
        assert self.aid is not None
        before = self.ctx.doc.annotation(self.aid)
        if after.track_id is not None and not after.keyframe:
            after = after.evolve(keyframe=True)  # an edited frame of a track is a keyframe
        self.ctx.stack.push(ReplaceAnnotation(self.aid, before, after, self._gesture))

    def begin(self, hit: HitTarget, x: float, y: float, interpolated: Annotation | None = None) -> bool:
        """Start a drag on ``hit``; an edge hit inserts a vertex there first. ``interpolated`` is the
        hit annotation when it is a track's interpolated one (not in the document)."""
        ann = interpolated if interpolated is not None else self.ctx.doc.annotation(hit.annotation_id)
        self.aid = None if interpolated is not None else hit.annotation_id
        self._interpolated, self._start, self._origin = interpolated, ann, (x, y)
        self._gesture = next(_gestures)
        if hit.part is Part.VERTEX and hit.index is not None:
            self.mode, self.index = EditMode.VERTEX, hit.index
        elif hit.part is Part.EDGE and hit.index is not None and ann.points is not None:
            self.mode, self.index = EditMode.VERTEX, hit.index + 1
            self._replace(ann.evolve(points=np.insert(ann.points, self.index, [x, y], axis=0)))
        elif hit.part in (Part.HANDLE_CORNER, Part.HANDLE_SIDE) and hit.handle:
            self.mode, self.handle = EditMode.RESIZE, hit.handle
        elif hit.part is Part.INSIDE and (ann.points is not None or ann.box is not None):
            self.mode = EditMode.MOVE
        else:
            self.mode = EditMode.IDLE
        return self.active

    def drag(self, x: float, y: float) -> None:
        if self._start is None:
            return
        current = self._current()
        if self.mode is EditMode.VERTEX and current.points is not None:
            pts = current.points.copy()
            pts[self.index] = (x, y)
            self._replace(current.evolve(points=pts))
        elif self.mode is EditMode.RESIZE and self._start.box is not None:
            # From the box at the press, so crossing the opposite side just flips it back.
            box = resized(self._start.box, self.handle, x, y)
            if box[2] > box[0] and box[3] > box[1]:
                self._replace(current.evolve(box=box))
        elif self.mode is EditMode.MOVE:
            self._replace(moved(self._start, x - self._origin[0], y - self._origin[1]))

    def end(self) -> None:
        self.mode, self.aid, self._start, self._interpolated = EditMode.IDLE, None, None, None


def delete_vertex(ctx: ToolContext, aid: int, index: int) -> bool:
    """Remove one vertex; a shape that would drop below its minimum is deleted instead."""
    ann = ctx.doc.annotation(aid)
    if ann.points is None or ann.kind not in MIN_VERTICES:
        return False
    if len(ann.points) - 1 < MIN_VERTICES[ann.kind]:
        ctx.stack.push(RemoveAnnotation(aid))
    else:
        after = ann.evolve(points=np.delete(ann.points, index, axis=0))
        ctx.stack.push(ReplaceAnnotation(aid, ann, after, text="Delete vertex"))
    return True
