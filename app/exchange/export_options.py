"""How the label-map formats (NIfTI, png-masks) write classes that overlap, and instance maps.

A class-index map holds one class per pixel, so where classes overlap it keeps one of them: the
class with the higher priority. ``class_priority`` lists classes highest first; classes it does not
name rank below the named ones in the default order, which is the ontology's order reversed (a
class listed later in the ontology wins, so list enclosing structures such as organs before what
lies inside them). Every pixel where classes collide is counted per class pair and reported.

NIfTI modes: ``index`` (one class-index volume, collisions reported), ``per-class`` (one binary
volume per class: nothing is lost), ``one-hot`` (one 4-D volume, a binary channel per class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.errors import ValidationError

NIFTI_MODES = ("index", "per-class", "one-hot")


@dataclass(frozen=True)
class LabelMapOptions:
    """``nifti_mode``: one of :data:`NIFTI_MODES`; ``class_priority``: class names, highest first;
    ``instances``: png-masks also writes a 16-bit instance-id map and its JSON per frame."""

    nifti_mode: str = "index"
    class_priority: tuple[str, ...] = ()
    instances: bool = False

    def __post_init__(self) -> None:
        if self.nifti_mode not in NIFTI_MODES:
            raise ValidationError(
                f"unknown NIfTI mode {self.nifti_mode!r}; use one of {', '.join(NIFTI_MODES)}"
            )
        if len(set(self.class_priority)) != len(self.class_priority):
            raise ValidationError(f"the class priority names a class twice: {list(self.class_priority)}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "nifti_mode": self.nifti_mode,
            "class_priority": list(self.class_priority),
            "instances": self.instances,
        }
