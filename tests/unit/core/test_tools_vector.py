"""Vector tools driven by fake pointer events (no Qt)."""

from __future__ import annotations

import numpy as np

from app.core.annotations import Kind
from app.core.commands import LabelDocument, UndoStack
from app.core.raster import rasterize_annotation, rasterize_polygon
from app.core.tools import BoxTool, Button, Modifiers, PolygonTool, PolylineTool, SelectTool, ToolContext
from app.core.tools.hittest import Part, hit_test


def ctx() -> ToolContext:
    doc = LabelDocument((40, 50))
    return ToolContext(doc, UndoStack(doc), label="liver", pixel_tolerance=1.0)


def click(tool: PolygonTool | PolylineTool | BoxTool | SelectTool, x: float, y: float) -> None:
    tool.press(x, y)
    tool.release(x, y)


def test_polygon_clicks_close_on_first_vertex() -> None:
    c = ctx()
    tool = PolygonTool(c)
    pts = [(3.0, 4.0), (30.25, 6.5), (25.0, 33.0), (5.5, 20.0)]
    for p in pts:
        click(tool, *p)
    assert tool.preview.points is not None and len(tool.preview.points) == 4
    click(tool, 3.5, 4.5)  # within the tolerance of the first vertex: closes
    (ann,) = c.doc.annotations(0).values()
    assert ann.kind is Kind.POLYGON and ann.label == "liver"
    np.testing.assert_array_equal(rasterize_annotation(ann, c.doc.shape), rasterize_polygon(pts, c.doc.shape))
    c.stack.undo()
    assert not c.doc.annotations(0)


def test_polygon_keys_backspace_escape_enter() -> None:
    c = ctx()
    tool = PolygonTool(c)
    for p in [(1.0, 1.0), (10.0, 1.0), (10.0, 10.0), (20.0, 20.0)]:
        click(tool, *p)
    assert tool.key("Backspace")
    assert tool.key("Enter")
    (ann,) = c.doc.annotations(0).values()
    assert ann.points is not None and len(ann.points) == 3
    click(tool, 30.0, 30.0)
    assert tool.key("Escape") and tool.preview.points is None and len(c.doc.annotations(0)) == 1


def test_vertex_drag_is_one_undo_step_and_edge_insert() -> None:
    c = ctx()
    tool = PolygonTool(c)
    for p in [(5.0, 5.0), (25.0, 5.0), (25.0, 25.0)]:
        click(tool, *p)
    tool.key("Enter")
    (aid,) = c.doc.annotations(0)
    depth = len(c.stack)
    tool.press(25.0, 25.0)
    for k in range(10):
        tool.move(25.0 + k, 25.0 + k)
    tool.release(35.0, 36.0)
    assert len(c.stack) == depth + 1
    pts = c.doc.annotation(aid).points
    assert pts is not None and tuple(pts[2]) == (35.0, 36.0)
    tool.press(15.0, 5.0)  # on the top edge: inserts a vertex and drags it
    tool.release(15.0, 2.0)
    pts = c.doc.annotation(aid).points
    assert pts is not None and len(pts) == 4 and tuple(pts[1]) == (15.0, 2.0)
    assert len(c.stack) == depth + 2
    tool.press(15.0, 2.0, Button.RIGHT)  # right-click deletes a vertex
    assert len(c.doc.annotation(aid).points) == 3  # type: ignore[arg-type]
    tool.press(20.0, 10.0, Button.LEFT, Modifiers.SHIFT)  # shift-drag inside moves the polygon
    tool.release(21.0, 11.0)
    moved = c.doc.annotation(aid).points
    assert moved is not None and tuple(moved[0]) == (6.0, 6.0)
    c.stack.undo()
    c.stack.undo()
    c.stack.undo()
    c.stack.undo()
    assert tuple(c.doc.annotation(aid).points[2]) == (25.0, 25.0)  # type: ignore[index]


def test_box_normalised_and_resized() -> None:
    c = ctx()
    tool = BoxTool(c)
    tool.press(30.0, 20.0)
    tool.move(10.0, 25.0)
    assert tool.preview.box == (10.0, 20.0, 30.0, 25.0)
    tool.release(10.0, 5.0)
    (aid,) = c.doc.annotations(0)
    assert c.doc.annotation(aid).box == (10.0, 5.0, 30.0, 20.0)
    click(tool, 45.0, 35.0)  # a click without drag adds nothing
    assert len(c.doc.annotations(0)) == 1
    tool.press(30.0, 20.0)  # south-east corner handle, dragged past the west side
    tool.move(2.0, 22.0)
    tool.release(2.0, 22.0)
    assert c.doc.annotation(aid).box == (2.0, 5.0, 10.0, 22.0)


def test_polyline_double_click_finishes() -> None:
    c = ctx()
    tool = PolylineTool(c)
    click(tool, 1.0, 1.0)
    click(tool, 10.0, 2.0)
    assert tool.double_click(20.0, 3.0)
    (ann,) = c.doc.annotations(0).values()
    assert ann.kind is Kind.POLYLINE and ann.points is not None and len(ann.points) == 3


def test_hit_priorities_and_select_delete() -> None:
    c = ctx()
    poly = PolygonTool(c)
    for p in [(5.0, 5.0), (30.0, 5.0), (30.0, 30.0), (5.0, 30.0)]:
        click(poly, *p)
    poly.key("Enter")
    box = BoxTool(c)
    box.press(10.0, 10.0)
    box.release(20.0, 20.0)
    anns = c.doc.annotations(0)
    pid, bid = list(anns)
    assert hit_test(anns, 5.5, 5.5, 1.0) == hit_test(anns, 5.5, 5.5, 1.0)
    vertex = hit_test(anns, 5.5, 5.5, 1.0)
    assert vertex is not None and vertex.part is Part.VERTEX and vertex.annotation_id == pid
    edge = hit_test(anns, 30.5, 15.0, 1.0)
    assert edge is not None and edge.part is Part.EDGE and edge.index == 1
    inside_box = hit_test(anns, 15.0, 15.0, 1.0)
    assert inside_box is not None and inside_box.part is Part.INSIDE and inside_box.annotation_id == bid
    corner = hit_test(anns, 19.8, 10.1, 1.0)
    assert corner is not None and corner.handle == "ne"
    assert hit_test(anns, 45.0, 45.0, 1.0) is None
    sel = SelectTool(c)
    sel.press(15.0, 15.0)
    sel.move(16.0, 15.0)
    sel.release(17.0, 15.0)
    assert c.doc.annotation(bid).box == (12.0, 10.0, 22.0, 20.0)
    assert sel.key("Delete") and list(c.doc.annotations(0)) == [pid]
    c.stack.undo()
    assert list(c.doc.annotations(0)) == [pid, bid]
