"""Real mouse events through the canvas give exactly the pixels ``app.core.raster`` defines."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from pytestqt.qtbot import QtBot
from test_canvas_support import COLORS, shown_canvas

from app.core.annotations import Kind
from app.core.commands import LabelDocument, UndoStack
from app.core.compose import compose
from app.core.raster import rasterize_annotation, rasterize_polygon, stroke_patch
from app.core.tools import BrushTool, PolygonTool, ToolContext
from app.editor.canvas import Canvas

SIZE = 2048


def prepared(qtbot: QtBot) -> tuple[Canvas, LabelDocument, UndoStack, np.ndarray]:
    canvas = shown_canvas(qtbot, (700, 560))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    frame = ((xx * 7 + yy * 3) % 1000 - 200).astype(np.int16)
    doc = LabelDocument((SIZE, SIZE))
    stack = UndoStack(doc)
    labels = doc.label_map(0)
    canvas.set_image(frame, window=(300, 1000))
    canvas.set_labels(labels, COLORS)
    doc.listeners.append(lambda frame_index, bbox: canvas.labels_changed(bbox))
    canvas.view.zoom_by(3.7)  # a non-trivial zoom and pan, plus a rotation and a flip
    canvas.view.pan(-37.3, 21.9)
    canvas.view.rotate90()
    canvas.view.flip(horizontal=True)
    return canvas, doc, stack, frame


def run_brush_and_polygon(qtbot: QtBot) -> Canvas:
    canvas, doc, stack, frame = prepared(qtbot)
    ctx = ToolContext(doc, stack, class_index=2)
    brush = BrushTool(ctx, radius=9.5)
    canvas.tool_slot.set_active(brush)
    path = [QPoint(301, 222), QPoint(317, 240), QPoint(352, 251), QPoint(390, 300)]
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=path[0])
    for p in path[1:]:
        qtbot.mouseMove(canvas, p)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=path[-1])
    pts = [canvas.view.to_image(QPointF(p)) for p in path]
    y0, x0, bits = stroke_patch(pts, 9.5, (SIZE, SIZE))
    want = np.zeros((SIZE, SIZE), dtype=bool)
    want[y0 : y0 + bits.shape[0], x0 : x0 + bits.shape[1]] = bits
    np.testing.assert_array_equal(doc.label_map(0) == 2, want)
    assert stack.index == 1

    poly = PolygonTool(ToolContext(doc, stack, label="liver"))
    canvas.tool_slot.set_active(poly)
    assert poly.ctx.pixel_tolerance == pytest.approx(6.0 / canvas.view.zoom)
    clicks = [QPoint(150, 120), QPoint(260, 131), QPoint(233, 260), QPoint(140, 222)]
    for p in clicks:
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=p)
    assert poly.preview.points is not None and len(poly.preview.points) == 4
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPoint(152, 121))  # on the first vertex: close
    (annotation,) = doc.annotations(0).values()
    assert annotation.kind is Kind.POLYGON
    vertices = [canvas.view.to_image(QPointF(p)) for p in clicks]
    np.testing.assert_array_equal(annotation.points, np.array(vertices))
    np.testing.assert_array_equal(
        rasterize_annotation(annotation, (SIZE, SIZE)), rasterize_polygon(vertices, (SIZE, SIZE))
    )
    # The shown layers follow the document through the bbox-only updates.
    canvas.grab()
    got = canvas.backend.render_layers()[::8, ::8]
    ref = compose(frame, (300, 1000), labels=doc.label_map(0), colors=COLORS)[::8, ::8]
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1
    return canvas


def test_mouse_tools_offscreen_raster(qtbot: QtBot, raster_canvas: None) -> None:
    assert run_brush_and_polygon(qtbot).backend.name == "raster"


@pytest.mark.gl
def test_mouse_tools_gl(qtbot: QtBot) -> None:
    assert run_brush_and_polygon(qtbot).backend.name == "gl"


def test_view_gestures_and_signals(qtbot: QtBot) -> None:
    canvas, _doc, _stack, _frame = prepared(qtbot)
    canvas.tool_slot.set_active(None)
    with qtbot.waitSignal(canvas.frame_step) as step:
        from PySide6.QtGui import QWheelEvent
        from PySide6.QtWidgets import QApplication

        event = QWheelEvent(
            QPointF(200, 200),
            QPointF(canvas.mapToGlobal(QPoint(200, 200))),
            QPoint(),
            QPoint(0, -120),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(canvas, event)
    assert step.args == [1]
    at = canvas.view.to_image(QPointF(200, 200))
    zoom = canvas.view.zoom
    event = QWheelEvent(
        QPointF(200, 200),
        QPointF(canvas.mapToGlobal(QPoint(200, 200))),
        QPoint(),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas, event)
    assert canvas.view.zoom == pytest.approx(zoom * 1.25)
    assert canvas.view.to_image(QPointF(200, 200)) == pytest.approx(at)  # zoom about the cursor
    before = canvas.view.to_image(QPointF(100, 100))
    qtbot.mousePress(canvas, Qt.MouseButton.MiddleButton, pos=QPoint(300, 300))
    qtbot.mouseMove(canvas, QPoint(340, 280))
    qtbot.mouseRelease(canvas, Qt.MouseButton.MiddleButton, pos=QPoint(340, 280))
    assert canvas.view.to_image(QPointF(140, 80)) == pytest.approx(before)  # the picture moved with it
    with qtbot.waitSignal(canvas.window_changed) as changed:
        qtbot.mousePress(canvas, Qt.MouseButton.RightButton, pos=QPoint(300, 300))
        qtbot.mouseMove(canvas, QPoint(350, 300))
    qtbot.mouseRelease(canvas, Qt.MouseButton.RightButton, pos=QPoint(350, 300))
    centre, width = changed.args
    assert centre == pytest.approx(300) and width > 1000
    assert canvas.window_level == pytest.approx((centre, width))


def _wheel(canvas: Canvas, dy: int, modifiers: Qt.KeyboardModifier) -> None:
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    event = QWheelEvent(
        QPointF(200, 200),
        QPointF(canvas.mapToGlobal(QPoint(200, 200))),
        QPoint(),
        QPoint(0, dy),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas, event)


def test_the_wheel_scrolls_slices_while_brushing_and_shift_wheel_sizes_the_brush(qtbot: QtBot) -> None:
    canvas, doc, stack, _frame = prepared(qtbot)
    brush = BrushTool(ToolContext(doc, stack), radius=5.0)
    canvas.tool_slot.set_active(brush)
    with qtbot.waitSignal(canvas.frame_step) as step:
        _wheel(canvas, -120, Qt.KeyboardModifier.NoModifier)
    assert step.args == [1] and brush.radius == 5.0
    _wheel(canvas, 120, Qt.KeyboardModifier.ShiftModifier)
    assert brush.radius == 6.0
