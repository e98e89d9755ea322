"""Comment pins without a display: screen placement, hit testing, the Comment tool, @mention runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.core.commands import LabelDocument, UndoStack
from app.core.tools import Button, SelectTool, ToolContext
from app.core.tools.paint import BrushTool
from app.editor.canvas.pins import (
    BUBBLE_RADIUS,
    TAIL,
    CommentState,
    CommentTool,
    Pin,
    pin_at,
    place,
    takes_pin_clicks,
)
from app.editor.comments_logic import split_mentions, when


def _zoomed(zoom: float, dx: float = 0.0, dy: float = 0.0):  # type: ignore[no-untyped-def]
    return lambda x, y: (x * zoom + dx, y * zoom + dy)


def test_a_bubble_sits_above_its_anchor_at_one_size_for_every_zoom() -> None:
    pin = Pin(7, 1, 10.5, 20.25)
    for zoom in (0.5, 1.0, 4.0, 32.0):
        (spot,) = place([pin], _zoomed(zoom, 100, 50))
        assert spot.anchor == (10.5 * zoom + 100, 20.25 * zoom + 50)
        assert spot.centre == (spot.anchor[0], spot.anchor[1] - TAIL - BUBBLE_RADIUS)


def test_hits_on_the_bubble_and_the_tail_miss_beside_it() -> None:
    spots = place([Pin(1, 1, 50, 50)], _zoomed(1.0))
    (cx, cy), (ax, ay) = spots[0].centre, spots[0].anchor
    assert pin_at(spots, cx, cy) is not None
    assert pin_at(spots, cx + BUBBLE_RADIUS, cy) is not None  # on the rim
    assert pin_at(spots, ax, ay) is not None  # the tip of the tail
    assert pin_at(spots, cx + BUBBLE_RADIUS + 5, cy) is None
    assert pin_at(spots, ax, ay + 10) is None  # below the point: the image, not the pin
    assert pin_at([], cx, cy) is None


def test_the_topmost_of_overlapping_pins_wins() -> None:
    pins = [Pin(1, 1, 50, 50), Pin(2, 2, 53, 50)]
    spots = place(pins, _zoomed(1.0))
    hit = pin_at(spots, 51.5, spots[0].centre[1])
    assert hit is not None and hit.thread_id == 2  # drawn last, so on top


def test_only_the_comment_and_select_tools_let_pins_take_clicks() -> None:
    doc = LabelDocument((40, 60))
    ctx = ToolContext(doc, UndoStack(doc))
    assert takes_pin_clicks(CommentTool(ctx)) and takes_pin_clicks(SelectTool(ctx))
    assert takes_pin_clicks(None)
    assert not takes_pin_clicks(BrushTool(ctx))  # a stroke starting on a marker still paints


def test_the_comment_tool_places_one_point_inside_the_image() -> None:
    doc = LabelDocument((40, 60))  # 40 rows, 60 columns
    tool = CommentTool(ToolContext(doc, UndoStack(doc)))
    assert not tool.press(60.0, 10.0)  # right of the last column
    assert not tool.press(-0.01, 10.0)
    assert not tool.press(10.0, 10.0, Button.RIGHT)  # right-drag stays window/level
    assert tool.press(59.99, 39.5)
    assert tool.state is CommentState.PLACED
    assert tool.take() == (59.99, 39.5)
    assert tool.take() is None and tool.state is CommentState.IDLE
    assert tool.press(3.0, 4.0) and tool.key("Escape")
    assert tool.take() is None


def test_mentions_split_into_runs_without_markup() -> None:
    body = "ask @rey and @rey.s, not a@rey or @reynolds; <b>@kim</b>"
    runs = split_mentions(body, ("rey", "kim", "rey.s"))
    assert "".join(text for text, _ in runs) == body
    assert [(t, n) for t, n in runs if n] == [("@rey", "rey"), ("@rey.s", "rey.s"), ("@kim", "kim")]
    assert split_mentions("plain", ()) == [("plain", None)]


def test_list_times_are_short_and_naive_database_times_are_utc() -> None:
    now = datetime(2025, 6, 1, 6, 10, tzinfo=UTC)
    naive = datetime(2025, 6, 1, 6, 0)  # SQLite hands back naive UTC
    assert when(naive) == when(naive.replace(tzinfo=UTC))
    assert when(naive, short=True, now=now) == naive.replace(tzinfo=UTC).astimezone().strftime("%H:%M")
    old = now - timedelta(days=400)
    assert when(old, short=True, now=now) == old.astimezone().strftime("%Y-%m-%d")
    assert when(None) == ""
