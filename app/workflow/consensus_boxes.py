"""Box consensus: match the labelers' boxes of one class on one frame, keep the objects a majority of
labelers boxed, and give each the per-coordinate median of its boxes.

Chosen here (relied on by :mod:`app.workflow.consensus` and documented in ``sitelabel consensus``):

* **Matching.** Greedy complete linkage on analytic IoU (:func:`app.workflow.agreement.box_iou`, the
  IoU of the box agreement score). Every pair of boxes from two different labelers with
  ``IoU >= 0.5`` is a candidate; candidates are taken highest IoU first (exact ties in input order)
  and join their two groups when the union still holds at most one box per labeler and every two
  boxes in it have ``IoU >= 0.5``. Each box ends in exactly one group (a lone box is a group of
  one). The agreement score's pairwise Hungarian matching does not extend to three or more
  labelers without picking an order of labelers; this rule needs none.
* **Majority.** A group is kept when MORE than half of the labelers are in it, the rule of the
  pixel majority vote: one box of two labelers is not a majority.
* **The box.** The median of each coordinate (x0, y0, x1, y1) over the group's boxes; with an even
  count the mean of the middle two. One outlying labeler cannot drag it.
* **Other shapes.** A polygon or polyline counts by the bounding box of its vertices, a mask by the
  bounding box of each of its 4-connected regions (a class that became box-only after people drew
  other shapes). A shape without area has no box.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from app.core.annotations import Annotation, Kind
from app.core.conversions import patch_polygons
from app.core.errors import ValidationError
from app.core.geometry import bbox
from app.workflow.agreement import Box, box_iou

MATCH_IOU = 0.5

__all__ = ["MATCH_IOU", "Marked", "box_consensus", "boxes_of", "match_boxes", "median_box"]


@dataclass(frozen=True, slots=True)
class Marked:
    """One labeler's box and the annotation it came from."""

    labeler: str
    box: Box
    annotation: Annotation


def boxes_of(annotation: Annotation) -> list[Box]:
    """The boxes an annotation stands for in a box consensus (see the module doc)."""
    found: list[Box]
    if annotation.kind is Kind.BOX and annotation.box is not None:
        found = [annotation.box]
    elif annotation.kind in (Kind.POLYGON, Kind.POLYLINE) and annotation.points is not None:
        found = [bbox(annotation.points)]
    elif annotation.kind is Kind.MASK and annotation.mask is not None:
        found = [bbox(ring) for ring in patch_polygons(annotation.mask)]
    else:
        found = []
    return [b for b in found if b[2] > b[0] and b[3] > b[1]]


def match_boxes(marks: Sequence[Marked], *, iou: float = MATCH_IOU) -> list[list[Marked]]:
    """Group the boxes of one frame by greedy complete linkage (module doc), in input order."""
    if not 0.0 < iou <= 1.0:
        raise ValidationError(f"the IoU threshold must be in (0, 1], got {iou}")
    n = len(marks)
    ious = np.zeros((n, n))
    pairs: list[tuple[float, int, int]] = []
    for i in range(n):
        for j in range(i + 1, n):
            ious[i, j] = ious[j, i] = box_iou(marks[i].box, marks[j].box)
            if marks[i].labeler != marks[j].labeler and ious[i, j] >= iou:
                pairs.append((-ious[i, j], i, j))
    group = list(range(n))  # box index -> its group's id
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    for _, i, j in sorted(pairs):
        a, b = group[i], group[j]
        if a == b:
            continue
        union = members[a] + members[b]
        if len({marks[k].labeler for k in union}) < len(union):
            continue  # two boxes of one labeler are two objects
        if any(ious[p, q] < iou for p in members[a] for q in members[b]):
            continue
        for k in members[b]:
            group[k] = a
        members[a] = sorted(union)
        del members[b]
    return [[marks[k] for k in ks] for _, ks in sorted(members.items(), key=lambda kv: kv[1][0])]


def median_box(boxes: Sequence[Box]) -> Box:
    """The per-coordinate median of ``boxes``."""
    if not boxes:
        raise ValidationError("a median box needs at least one box")
    x0, y0, x1, y1 = (float(v) for v in np.median(np.asarray(boxes, dtype=np.float64), axis=0))
    return (x0, y0, x1, y1)


def box_consensus(
    annotations_by_labeler: Mapping[str, Sequence[Annotation]], label: str, frame: int
) -> list[tuple[Box, list[Annotation]]]:
    """The consensus boxes of class ``label`` on ``frame``, each with the annotations it merged.

    Every labeler in ``annotations_by_labeler`` counts toward the majority, also one who boxed
    nothing there (a vote that nothing is there).
    """
    marks = [
        Marked(name, b, a)
        for name, anns in annotations_by_labeler.items()
        for a in anns
        if a.label == label and a.frame == frame
        for b in boxes_of(a)
    ]
    voters = len(annotations_by_labeler)
    out: list[tuple[Box, list[Annotation]]] = []
    for group in match_boxes(marks):
        if 2 * len(group) > voters:  # one box per labeler in a group: its size is its votes
            out.append((median_box([m.box for m in group]), [m.annotation for m in group]))
    return out
