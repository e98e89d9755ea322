"""What every tool shares: events, the context it edits, and the preview it hands the canvas.

Tools are Qt-free state machines. An adapter in ``app/editor`` converts Qt events to image
coordinates and calls ``press/move/release/double_click/key/wheel``; each returns True when the
tool consumed the event (Slicer's interaction-handler convention), so the adapter may pan/zoom
otherwise. Edits go through the ``UndoStack``; the canvas draws ``preview`` and listens to the
document for committed changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, Flag, auto

import numpy as np
import numpy.typing as npt

from app.core.commands import LabelDocument, Patch, UndoStack

FloatArray = npt.NDArray[np.float64]


class Button(Enum):
    LEFT = auto()
    RIGHT = auto()
    MIDDLE = auto()


class Modifiers(Flag):
    NONE = 0
    SHIFT = auto()
    CTRL = auto()
    ALT = auto()


@dataclass
class ToolContext:
    """Shared by all tools of one editor; the adapter updates it (frame, class, zoom)."""

    doc: LabelDocument
    stack: UndoStack
    frame: int = 0
    label: str = "label"  # class name for vector annotations
    class_index: int = 1  # value painted into the label map
    pixel_tolerance: float = 4.0  # screen hit tolerance converted to image units by the adapter


@dataclass(frozen=True)
class Preview:
    """What the canvas should draw now, on top of the committed document."""

    points: FloatArray | None = None  # vertices in progress (polygon, polyline) or edited shape
    closed: bool = False  # draw ``points`` as a closed ring
    rubber_band: tuple[float, float] | None = None  # pointer position the next segment goes to
    box: tuple[float, float, float, float] | None = None
    cursor: tuple[float, float, float] | None = None  # brush circle: x, y, radius
    patches: tuple[Patch, ...] = field(default=())  # stroke pixels so far, (y0, x0, bits) each
    value: int = 0  # label value the patches will get


EMPTY = Preview()


class Tool:
    """Base: ignores everything. Subclasses keep an explicit ``state`` enum."""

    name = "tool"

    def __init__(self, ctx: ToolContext) -> None:
        self.ctx = ctx

    @property
    def preview(self) -> Preview:
        return EMPTY

    def press(
        self, x: float, y: float, button: Button = Button.LEFT, modifiers: Modifiers = Modifiers.NONE
    ) -> bool:
        return False

    def move(self, x: float, y: float) -> bool:
        return False

    def release(self, x: float, y: float) -> bool:
        return False

    def double_click(self, x: float, y: float) -> bool:
        return False

    def key(self, name: str) -> bool:
        return False

    def wheel(self, steps: int) -> bool:
        return False

    def cancel(self) -> None:
        """Drop any gesture in progress (tool switch, frame change)."""


def as_points(points: list[tuple[float, float]]) -> FloatArray:
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)
