"""Mask <-> polygon conversions as undoable commands (one undo step each).

mask -> polygons: exact pixel-boundary rings (``mask_to_polygons``); holes are kept only as part of
an exact even-odd pair, so each outer ring becomes one polygon and its holes are painted back as
background if the user converts back. polygons -> label map: the rasteriser's pixels, painted with
the class index. Both directions keep DESIGN's pixel rules, so mask -> polygon -> mask is exact for
masks without holes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.commands import (
    NO_MERGE,
    AddAnnotation,
    Command,
    LabelDocument,
    PaintCommand,
    RemoveAnnotation,
)
from app.core.errors import ValidationError
from app.core.geometry import FloatArray, mask_to_polygons, signed_area
from app.core.raster import polygon_mask_in_bbox


class MacroCommand:
    """Several commands done and undone as one step."""

    id = NO_MERGE
    obsolete = False

    def __init__(self, commands: Sequence[Command], text: str) -> None:
        self.commands, self.text = list(commands), text

    def do(self, doc: LabelDocument) -> None:
        for command in self.commands:
            command.do(doc)

    def undo(self, doc: LabelDocument) -> None:
        for command in reversed(self.commands):
            command.undo(doc)

    def merge_with(self, other: Command) -> bool:
        return False


def _in_frame(ring: FloatArray, patch: MaskPatch) -> FloatArray:
    """Ring vertices from crop coordinates to frame coordinates."""
    return ring + np.array([patch.x0, patch.y0], dtype=np.float64)


def patch_polygons(patch: MaskPatch) -> list[FloatArray]:
    """The outer boundary rings of a mask crop in frame coordinates, one per 4-connected region
    (holes dropped): each rasterises back to its region's pixels, holes filled."""
    return [_in_frame(r, patch) for r in mask_to_polygons(patch.bits) if signed_area(r) > 0]


def mask_annotation_to_polygons(doc: LabelDocument, aid: int) -> MacroCommand:
    """Replace a mask annotation by one polygon per outer boundary ring (holes are dropped)."""
    annotation = doc.annotation(aid)
    if annotation.kind is not Kind.MASK or annotation.mask is None:
        raise ValidationError("only a mask annotation can be turned into polygons")
    rings = patch_polygons(annotation.mask)
    if not rings:
        raise ValidationError("the mask is empty: there is nothing to outline")
    commands: list[Command] = [RemoveAnnotation(aid)]
    for points in rings:
        commands.append(
            AddAnnotation(annotation.evolve(kind=Kind.POLYGON, mask=None, points=points, id=None, version=0))
        )
    return MacroCommand(commands, f"Mask to {len(rings)} polygon(s)")


def labels_to_polygons(doc: LabelDocument, frame: int, class_index: int, label: str) -> MacroCommand:
    """Outline one class of the label map as polygons and clear it from the map (one step)."""
    labels = doc.label_map(frame)
    patch = MaskPatch.from_full(labels == class_index)
    if patch.area == 0:
        raise ValidationError(f"class {label!r} has no painted pixels on this frame")
    commands: list[Command] = [PaintCommand(frame, [(patch.y0, patch.x0, patch.bits)], 0, text="Clear")]
    for points in patch_polygons(patch):
        commands.append(AddAnnotation(Annotation(kind=Kind.POLYGON, label=label, frame=frame, points=points)))
    return MacroCommand(commands, f"{label} pixels to polygons")


def polygon_to_labels(doc: LabelDocument, aid: int, class_index: int) -> MacroCommand:
    """Paint a polygon (or box) into the label map with its class and remove the vector (one step)."""
    annotation = doc.annotation(aid)
    if annotation.kind is Kind.POLYGON and annotation.points is not None:
        patch = polygon_mask_in_bbox(annotation.points, doc.shape)
    elif annotation.kind is Kind.BOX and annotation.box is not None:
        x0, y0, x1, y1 = annotation.box
        patch = polygon_mask_in_bbox([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], doc.shape)
    else:
        raise ValidationError("only a polygon or a box can be painted into the label map")
    paint = PaintCommand(annotation.frame, [(patch.y0, patch.x0, patch.bits)], class_index, text="Paint")
    return MacroCommand([paint, RemoveAnnotation(aid)], f"{annotation.kind.value} to mask")
