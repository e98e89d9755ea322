"""Comment pins on the canvas: what a pin is, where its marker sits on screen, and what a click hits.

Plain Python (no Qt), so the geometry and the hit test are tested without a display. A pin's anchor
is a point in image coordinates (DESIGN pixel conventions); its marker is drawn in screen space —
a numbered bubble above the anchor with a short tail down to it — so it keeps one size at any zoom
and never hides the very pixel it points at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, auto

from app.core.tools.base import Button, Modifiers, Tool, ToolContext
from app.core.tools.select import SelectTool

BUBBLE_RADIUS = 10.0  # screen pixels
TAIL = 8.0  # screen pixels between the anchor and the bubble's lower edge
HIT_SLACK = 2.0  # a click this close to the bubble's edge still counts
DRAFT = 0  # the number of a pin still being written (drawn as "+")

ToScreen = Callable[[float, float], tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Pin:
    """One thread's marker: ``number`` is its 1-based place in the asset's thread list."""

    thread_id: int
    number: int
    x: float  # image coordinates of the point the thread is about
    y: float
    open: bool = True
    selected: bool = False


@dataclass(frozen=True, slots=True)
class PinSpot:
    """A pin placed on screen: the anchor (the point itself) and the bubble's centre, in widget px."""

    pin: Pin
    anchor: tuple[float, float]
    centre: tuple[float, float]


def place(pins: Iterable[Pin], to_screen: ToScreen) -> list[PinSpot]:
    """Screen positions of the pins, in drawing order (later ones are drawn on top)."""
    spots = []
    for pin in pins:
        ax, ay = to_screen(pin.x, pin.y)
        spots.append(PinSpot(pin, (ax, ay), (ax, ay - TAIL - BUBBLE_RADIUS)))
    return spots


def pin_at(spots: Sequence[PinSpot], x: float, y: float) -> Pin | None:
    """The topmost pin whose bubble or anchor is under the widget point (x, y), if any."""
    reach = (BUBBLE_RADIUS + HIT_SLACK) ** 2
    for spot in reversed(spots):  # the last drawn is on top
        cx, cy = spot.centre
        ax, ay = spot.anchor
        on_bubble = (x - cx) ** 2 + (y - cy) ** 2 <= reach
        on_tail = abs(x - ax) <= BUBBLE_RADIUS / 2 and cy <= y <= ay + HIT_SLACK
        if on_bubble or on_tail:
            return spot.pin
    return None


def takes_pin_clicks(tool: Tool | None) -> bool:
    """Pins catch left clicks with the comment and select tools only: a brush stroke or a polygon
    vertex that starts on a marker must still reach its tool."""
    return tool is None or isinstance(tool, CommentTool | SelectTool)


class CommentState(Enum):
    IDLE = auto()
    PLACED = auto()  # a point was clicked; the editor asks for the first comment


class CommentTool(Tool):
    """A left click on the image places a new comment pin there (the editor then asks for the text).

    Clicks outside the image are not consumed (the canvas pans / windows instead); Escape or a
    tool switch drops the point.
    """

    name = "comment"

    def __init__(self, ctx: ToolContext) -> None:
        super().__init__(ctx)
        self.state = CommentState.IDLE
        self.placed: tuple[float, float] | None = None

    def press(
        self, x: float, y: float, button: Button = Button.LEFT, modifiers: Modifiers = Modifiers.NONE
    ) -> bool:
        h, w = self.ctx.doc.shape
        if button is not Button.LEFT or not (0.0 <= x < w and 0.0 <= y < h):
            return False
        self.placed, self.state = (x, y), CommentState.PLACED
        return True

    def take(self) -> tuple[float, float] | None:
        """The placed point, once: the editor opens one composer per click."""
        placed, self.placed, self.state = self.placed, None, CommentState.IDLE
        return placed

    def key(self, name: str) -> bool:
        if name == "Escape" and self.state is CommentState.PLACED:
            self.cancel()
            return True
        return False

    def cancel(self) -> None:
        self.placed, self.state = None, CommentState.IDLE
