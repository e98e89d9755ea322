"""Undo model without Qt: a label document, diff-storing commands and an undo stack.

Commands change the ``LabelDocument`` only; views follow the document's ``on_change(frame, bbox)``
callbacks, so a canvas re-uploads only the changed region. ``UndoStack.push`` performs the command
and merges consecutive commands with the same ``id`` (Qt's ``QUndoCommand.mergeWith`` model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation, BoolMask, Kind
from app.core.errors import NotFoundError, ValidationError

Bbox = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, half-open
LabelMap = npt.NDArray[np.uint16]
Patch = tuple[int, int, BoolMask]  # (y0, x0, bits), as in app.core.raster
ChangeListener = Callable[[int, Bbox | None], None]

NO_MERGE = -1
REPLACE_ANNOTATION_ID = 1


class LabelDocument:
    """Per frame: a lazily allocated uint16 class-index map (H, W) and vector annotations by id."""

    def __init__(self, shape: Sequence[int], frame_count: int = 1) -> None:
        if len(shape) != 2 or int(shape[0]) <= 0 or int(shape[1]) <= 0 or frame_count <= 0:
            raise ValidationError(f"a document needs a (height, width) > 0 and frames, got {shape}")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.frame_count = frame_count
        self._maps: dict[int, LabelMap] = {}
        self._annotations: dict[int, dict[int, Annotation]] = {}
        self._frame_of: dict[int, int] = {}
        self._next_id = 1
        self.listeners: list[ChangeListener] = []

    # --- reading ----------------------------------------------------------------------------------
    def _check_frame(self, frame: int) -> None:
        if not 0 <= frame < self.frame_count:
            raise ValidationError(f"frame {frame} is outside 0..{self.frame_count - 1}")

    def has_label_map(self, frame: int) -> bool:
        return frame in self._maps

    def label_map(self, frame: int) -> LabelMap:
        """The frame's map, allocated on first use (np.zeros: the OS hands out pages lazily)."""
        self._check_frame(frame)
        if frame not in self._maps:
            self._maps[frame] = np.zeros(self.shape, dtype=np.uint16)
        return self._maps[frame]

    def annotations(self, frame: int) -> Mapping[int, Annotation]:
        """Local id -> annotation, in drawing order (later ones on top)."""
        return self._annotations.get(frame, {})

    def all_annotations(self) -> list[tuple[int, Annotation]]:
        """(local id, annotation) of every frame, by frame then drawing order (tracks need them all)."""
        return [
            (aid, ann) for frame in sorted(self._annotations) for aid, ann in self._annotations[frame].items()
        ]

    def annotation(self, aid: int) -> Annotation:
        if aid not in self._frame_of:
            raise NotFoundError(f"no annotation with local id {aid}")
        return self._annotations[self._frame_of[aid]][aid]

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    # --- writing (commands only) --------------------------------------------------------------------
    def emit(self, frame: int, bbox: Bbox | None) -> None:
        for listener in list(self.listeners):
            listener(frame, bbox)

    def put_annotation(self, aid: int, annotation: Annotation, index: int | None = None) -> None:
        """Insert or replace; ``index`` restores the drawing order when undoing a removal."""
        self._check_frame(annotation.frame)
        old = self._frame_of.get(aid)
        if old is not None and old != annotation.frame:
            self.pop_annotation(aid)
        per_frame = self._annotations.setdefault(annotation.frame, {})
        if index is not None and aid not in per_frame:
            items = list(per_frame.items())
            items.insert(index, (aid, annotation))
            per_frame.clear()
            per_frame.update(items)
        else:
            per_frame[aid] = annotation
        self._frame_of[aid] = annotation.frame
        self.emit(annotation.frame, annotation_bbox(annotation, self.shape))

    def pop_annotation(self, aid: int) -> tuple[Annotation, int]:
        """Remove and return the annotation and its position in the drawing order."""
        annotation = self.annotation(aid)
        per_frame = self._annotations[annotation.frame]
        index = list(per_frame).index(aid)
        del per_frame[aid]
        del self._frame_of[aid]
        self.emit(annotation.frame, annotation_bbox(annotation, self.shape))
        return annotation, index


def annotation_bbox(annotation: Annotation, shape: tuple[int, int]) -> Bbox | None:
    """Pixels an annotation may touch, clipped to the frame (None: nothing drawn)."""
    if annotation.mask is not None:
        m = annotation.mask
        x0, y0, x1, y1 = m.x0, m.y0, m.x0 + m.bits.shape[1], m.y0 + m.bits.shape[0]
    elif annotation.box is not None:
        bx0, by0, bx1, by1 = annotation.box
        x0, y0, x1, y1 = math.floor(bx0), math.floor(by0), math.ceil(bx1), math.ceil(by1)
    elif annotation.points is not None and len(annotation.points):
        lo, hi = annotation.points.min(axis=0), annotation.points.max(axis=0)
        pad = 1 if annotation.kind is Kind.POLYLINE else 0  # a polyline is 0.5 px wide each side
        x0, y0 = math.floor(lo[0]) - pad, math.floor(lo[1]) - pad
        x1, y1 = math.floor(hi[0]) + 1 + pad, math.floor(hi[1]) + 1 + pad
    else:
        return None
    h, w = shape
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


# --- commands -----------------------------------------------------------------------------------
@runtime_checkable
class Command(Protocol):
    """``do`` must be repeatable after ``undo`` (redo calls ``do`` again)."""

    @property
    def text(self) -> str: ...

    @property
    def id(self) -> int: ...

    @property
    def obsolete(self) -> bool: ...

    def do(self, doc: LabelDocument) -> None: ...

    def undo(self, doc: LabelDocument) -> None: ...

    def merge_with(self, other: Command) -> bool: ...


class PaintCommand:
    """Write ``value`` into one frame's label map where the patches are set; one per stroke.

    The first ``do`` records only the pixels that actually change: their coordinates (or, when
    smaller, a bit-packed mask of their bounding box) and their old values. Memory is therefore
    O(changed pixels), never a copy of the map. The patches are dropped after the first ``do``.
    """

    id = NO_MERGE

    def __init__(self, frame: int, patches: Sequence[Patch], value: int, text: str = "Paint") -> None:
        if not 0 <= value <= np.iinfo(np.uint16).max:
            raise ValidationError(f"class index {value} does not fit a 16-bit label map")
        self.frame, self.value, self.text = frame, int(value), text
        self._patches: list[Patch] | None = list(patches)
        self._ys = np.zeros(0, dtype=np.int32)
        self._xs = np.zeros(0, dtype=np.int32)
        self._packed: tuple[Bbox, npt.NDArray[np.uint8]] | None = None
        self._old = np.zeros(0, dtype=np.uint16)
        self.bbox: Bbox | None = None

    @property
    def changed_count(self) -> int:
        return int(self._old.size)

    @property
    def obsolete(self) -> bool:
        return self._patches is None and self.changed_count == 0

    @property
    def nbytes(self) -> int:
        packed = self._packed[1].nbytes if self._packed is not None else 0
        return int(self._ys.nbytes + self._xs.nbytes + self._old.nbytes + packed)

    def _record(self, labels: LabelMap, patches: Sequence[Patch]) -> None:
        ys: list[npt.NDArray[np.int32]] = []
        xs: list[npt.NDArray[np.int32]] = []
        olds: list[LabelMap] = []
        for y0, x0, bits in patches:
            crop = labels[y0 : y0 + bits.shape[0], x0 : x0 + bits.shape[1]]
            # Writing as we go makes overlapping patches record each pixel once.
            r, c = np.nonzero(bits & (crop != self.value))
            ys.append((r + y0).astype(np.int32))
            xs.append((c + x0).astype(np.int32))
            olds.append(crop[r, c])
            crop[r, c] = self.value
        if not ys or not sum(a.size for a in ys):
            return
        y, x, old = np.concatenate(ys), np.concatenate(xs), np.concatenate(olds)
        order = np.lexsort((x, y))  # row-major, the order a boolean crop index uses
        y, x, self._old = y[order], x[order], old[order]
        bx0, by0, bx1, by1 = int(x.min()), int(y.min()), int(x.max()) + 1, int(y.max()) + 1
        self.bbox = (bx0, by0, bx1, by1)
        if (bx1 - bx0) * (by1 - by0) // 8 + 1 < y.nbytes + x.nbytes:
            mask = np.zeros((by1 - by0, bx1 - bx0), dtype=bool)
            mask[y - by0, x - bx0] = True
            self._packed = (self.bbox, np.packbits(mask))
        else:
            self._ys, self._xs = y, x

    def _write(self, labels: LabelMap, values: LabelMap | int) -> None:
        if self._packed is not None:
            (x0, y0, x1, y1), bits = self._packed
            mask = np.unpackbits(bits, count=(x1 - x0) * (y1 - y0)).reshape(y1 - y0, x1 - x0)
            labels[y0:y1, x0:x1][mask.astype(bool)] = values
        else:
            labels[self._ys, self._xs] = values

    def do(self, doc: LabelDocument) -> None:
        labels = doc.label_map(self.frame)
        if self._patches is not None:
            patches, self._patches = self._patches, None
            self._record(labels, patches)
        else:
            self._write(labels, self.value)
        if self.bbox is not None:
            doc.emit(self.frame, self.bbox)

    def undo(self, doc: LabelDocument) -> None:
        self._write(doc.label_map(self.frame), self._old)
        if self.bbox is not None:
            doc.emit(self.frame, self.bbox)

    def merge_with(self, other: Command) -> bool:
        return False


class AddAnnotation:
    """Add a vector annotation; ``aid`` is assigned on the first ``do`` unless given."""

    id = NO_MERGE
    obsolete = False

    def __init__(self, annotation: Annotation, aid: int | None = None, text: str = "") -> None:
        self.annotation, self.aid = annotation, aid
        self.text = text or f"Add {annotation.kind}"

    def do(self, doc: LabelDocument) -> None:
        if self.aid is None:
            self.aid = doc.new_id()
        doc.put_annotation(self.aid, self.annotation)

    def undo(self, doc: LabelDocument) -> None:
        assert self.aid is not None
        doc.pop_annotation(self.aid)

    def merge_with(self, other: Command) -> bool:
        return False


class RemoveAnnotation:
    id = NO_MERGE
    obsolete = False

    def __init__(self, aid: int, text: str = "Delete annotation") -> None:
        self.aid, self.text = aid, text
        self._removed: tuple[Annotation, int] | None = None

    def do(self, doc: LabelDocument) -> None:
        self._removed = doc.pop_annotation(self.aid)

    def undo(self, doc: LabelDocument) -> None:
        assert self._removed is not None
        annotation, index = self._removed
        doc.put_annotation(self.aid, annotation, index)

    def merge_with(self, other: Command) -> bool:
        return False


class ReplaceAnnotation:
    """A geometry (or label) edit. Commands of one drag share a ``gesture`` token and merge."""

    id = REPLACE_ANNOTATION_ID

    def __init__(
        self, aid: int, before: Annotation, after: Annotation, gesture: int | None = None, text: str = ""
    ) -> None:
        self.aid, self.before, self.after, self.gesture = aid, before, after, gesture
        self.text = text or f"Edit {after.kind}"

    @property
    def obsolete(self) -> bool:
        return self.before.same_content(self.after)

    def do(self, doc: LabelDocument) -> None:
        doc.put_annotation(self.aid, self.after)

    def undo(self, doc: LabelDocument) -> None:
        doc.put_annotation(self.aid, self.before)

    def merge_with(self, other: Command) -> bool:
        if (
            not isinstance(other, ReplaceAnnotation)
            or other.aid != self.aid
            or self.gesture is None
            or other.gesture != self.gesture
        ):
            return False
        self.after = other.after
        return True


# --- the stack ----------------------------------------------------------------------------------
class UndoStack:
    """One per asset. ``index`` is the number of commands currently applied."""

    def __init__(self, doc: LabelDocument, max_depth: int = 200) -> None:
        if max_depth < 1:
            raise ValidationError("an undo stack needs a depth of at least 1")
        self.doc, self.max_depth = doc, max_depth
        self._commands: list[Command] = []
        self.index = 0
        self.clean_index: int | None = 0  # None: the clean state fell off the stack
        self.changed: list[Callable[[], None]] = []

    def _notify(self) -> None:
        for callback in list(self.changed):
            callback()

    def __len__(self) -> int:
        return len(self._commands)

    def command(self, i: int) -> Command:
        return self._commands[i]

    def push(self, command: Command) -> None:
        """Perform ``command``; merge it into the top one when both agree (never into a clean top)."""
        command.do(self.doc)
        del self._commands[self.index :]
        if self.clean_index is not None and self.clean_index > self.index:
            self.clean_index = None
        top = self._commands[-1] if self._commands else None
        if (
            top is not None
            and command.id != NO_MERGE
            and command.id == top.id
            and self.index != self.clean_index
            and top.merge_with(command)
        ):
            if top.obsolete:  # e.g. a drag back to the start: the step disappears
                self._commands.pop()
                self.index -= 1
        elif not command.obsolete:
            self._commands.append(command)
            self.index += 1
            if len(self._commands) > self.max_depth:
                del self._commands[0]
                self.index -= 1
                if self.clean_index is not None:
                    self.clean_index = self.clean_index - 1 if self.clean_index > 0 else None
        self._notify()

    @property
    def can_undo(self) -> bool:
        return self.index > 0

    @property
    def can_redo(self) -> bool:
        return self.index < len(self._commands)

    @property
    def undo_text(self) -> str:
        return self._commands[self.index - 1].text if self.can_undo else ""

    @property
    def redo_text(self) -> str:
        return self._commands[self.index].text if self.can_redo else ""

    def undo(self) -> None:
        if self.can_undo:
            self.index -= 1
            self._commands[self.index].undo(self.doc)
            self._notify()

    def redo(self) -> None:
        if self.can_redo:
            self._commands[self.index].do(self.doc)
            self.index += 1
            self._notify()

    def set_clean(self) -> None:
        self.clean_index = self.index
        self._notify()

    @property
    def is_clean(self) -> bool:
        return self.clean_index == self.index

    def clear(self) -> None:
        self._commands.clear()
        self.index, self.clean_index = 0, 0
        self._notify()
