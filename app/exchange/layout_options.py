"""Options of the training layouts: which YOLO task, which kind of nnU-Net dataset.

* ``yolo_task``: ``detect`` (a box per object: ``class cx cy w h``) or ``segment`` (polygons:
  ``class x1 y1 x2 y2 ...``). None: ``detect`` when the ontology's shape classes allow only boxes,
  else ``segment``.
* ``nnunet_kind``: ``3d`` (DICOM series as NIfTI volumes) or ``2d`` (images and frames of videos as
  PNG). nnU-Net reads one file format per dataset, so an export holds one kind. None: the kind the
  selection holds; a selection holding both is refused with the counts of each (pass the kind;
  the other kind's items are then reported as not selected).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.annotations import Kind
from app.core.errors import ValidationError
from app.core.ontology import Ontology

YOLO_TASKS = ("detect", "segment")
NNUNET_KINDS = ("3d", "2d")


@dataclass(frozen=True)
class LayoutOptions:
    yolo_task: str | None = None
    nnunet_kind: str | None = None

    def __post_init__(self) -> None:
        if self.yolo_task is not None and self.yolo_task not in YOLO_TASKS:
            raise ValidationError(f"unknown YOLO task {self.yolo_task!r}; use one of {', '.join(YOLO_TASKS)}")
        if self.nnunet_kind is not None and self.nnunet_kind not in NNUNET_KINDS:
            raise ValidationError(
                f"unknown nnU-Net dataset kind {self.nnunet_kind!r}; use one of {', '.join(NNUNET_KINDS)}"
            )

    def task_for(self, ontology: Ontology) -> str:
        """The YOLO task: the option, else detect for a boxes-only ontology, else segment."""
        if self.yolo_task is not None:
            return self.yolo_task
        outlines = {Kind.POLYGON, Kind.MASK}
        return "segment" if any(outlines & set(c.kinds) for c in ontology.classes) else "detect"

    def as_dict(self) -> dict[str, Any]:
        return {"yolo_task": self.yolo_task, "nnunet_kind": self.nnunet_kind}
