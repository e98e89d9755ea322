"""The image + label layers: GL and raster draw the reference ``compose`` picture; bbox uploads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot
from skimage import data
from test_canvas_support import COLORS, ct_slice, shown_canvas, two_class_labels

from app.core.annotations import Annotation, Kind
from app.core.commands import LabelDocument, UndoStack
from app.core.compose import compose
from app.core.raster import brush_dab
from app.core.tools import BrushTool, ToolContext
from app.editor.canvas import Canvas, create_canvas


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == np.uint8
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16)).max(axis=2)
    assert diff.max() <= 1
    assert (diff == 0).mean() >= 0.999


def check_layers(canvas: Canvas) -> None:
    frame = ct_slice()
    labels = two_class_labels(frame.shape)
    canvas.set_image(frame, window=(40, 400))
    canvas.set_labels(labels, COLORS)
    for outline in (False, True):
        canvas.set_label_style(opacity=0.45, outline=outline)
        want = compose(frame, (40, 400), labels=labels, colors=COLORS, opacity=0.45, outline=outline)
        assert_same(canvas.backend.render_layers(), want)
    canvas.set_colormap("hot")
    canvas.set_label_style(outline=False)
    want = compose(frame, (40, 400), colormap="hot", labels=labels, colors=COLORS, opacity=0.45)
    assert_same(canvas.backend.render_layers(), want)
    rgb = data.astronaut()
    canvas.set_image(rgb)
    canvas.set_labels(None, {})
    assert_same(canvas.backend.render_layers(), compose(rgb))


def test_raster_layers_equal_compose(qtbot: QtBot, raster_canvas: None) -> None:
    canvas = shown_canvas(qtbot)
    reason = canvas.backend.fallback_reason
    assert canvas.backend.name == "raster" and ("offscreen" in reason or "requested" in reason), reason
    check_layers(canvas)


@pytest.mark.gl
def test_gl_and_raster_layers_give_the_same_pixels(qtbot: QtBot) -> None:
    gl = shown_canvas(qtbot)
    assert gl.backend.name == "gl", gl.backend.fallback_reason
    raster = create_canvas(prefer_gl=False)
    qtbot.addWidget(raster)
    assert raster.backend.name == "raster"
    check_layers(gl)
    check_layers(raster)
    frame, labels = ct_slice(), two_class_labels((512, 512))
    for canvas in (gl, raster):
        canvas.set_image(frame, window=(40, 400))
        canvas.set_labels(labels, COLORS)
        canvas.set_label_style(opacity=0.5, outline=True)
    assert_same(gl.backend.render_layers(), raster.backend.render_layers())


def check_bbox_upload(canvas: Canvas, qtbot: QtBot) -> None:
    frame = ct_slice()
    labels = np.zeros(frame.shape, dtype=np.uint16)
    canvas.set_image(frame, window=(40, 400))
    canvas.set_labels(labels, COLORS)
    canvas.set_label_style(opacity=0.5, outline=False)
    canvas.grab()  # paints: builds the raster cache / the GL textures
    before = canvas.backend.uploaded_pixels
    y0, x0, bits = brush_dab((200.4, 210.6), 7.5, frame.shape)
    labels[y0 : y0 + bits.shape[0], x0 : x0 + bits.shape[1]][bits] = 2
    bbox = (x0, y0, x0 + bits.shape[1], y0 + bits.shape[0])
    canvas.labels_changed(bbox)
    assert canvas.backend.uploaded_pixels - before == bits.size  # the dab's bbox area, not the map
    canvas.grab()
    want = compose(frame, (40, 400), labels=labels, colors=COLORS, opacity=0.5)
    if canvas.backend.name == "raster":  # the cached buffer the widget shows, updated in place
        cache = canvas.backend.raster.cached_rgba
        assert cache is not None
        np.testing.assert_array_equal(cache, want)
    assert_same(canvas.backend.render_layers(), want)


def test_raster_labels_changed_recomposes_only_the_bbox(qtbot: QtBot) -> None:
    check_bbox_upload(shown_canvas(qtbot), qtbot)


@pytest.mark.gl
def test_gl_labels_changed_uploads_only_the_bbox(qtbot: QtBot) -> None:
    canvas = shown_canvas(qtbot)
    assert canvas.backend.name == "gl"
    check_bbox_upload(canvas, qtbot)


@pytest.mark.gl
def test_gl_screenshots_fit_and_pixel_grid(qtbot: QtBot, screenshot_dir: Path) -> None:
    canvas = shown_canvas(qtbot, (720, 600))
    assert canvas.backend.name == "gl"
    frame = ct_slice()
    canvas.set_image(frame, window=(40, 400))
    canvas.set_labels(two_class_labels(frame.shape), COLORS)
    canvas.set_label_style(opacity=0.45)
    box = Annotation(kind=Kind.BOX, label="lesion", box=(330.0, 330.0, 420.0, 400.0))
    poly = Annotation(
        kind=Kind.POLYGON, label="x", points=np.array([[80.0, 330.0], [180.0, 360.0], [120.0, 440.0]])
    )
    canvas.overlays.set_annotations([(box, "#ffd000", False), (poly, "#40a0ff", True)])
    ctx = ToolContext(LabelDocument(frame.shape), UndoStack(LabelDocument(frame.shape)))
    canvas.tool_slot.set_active(BrushTool(ctx, radius=20))
    qtbot.mouseMove(canvas, canvas.view.to_widget(250.0, 420.0).toPoint())
    canvas.backend.repaint_now()
    fit = canvas.grab().toImage()
    assert fit.save(os.fspath(screenshot_dir / "canvas_gl_fit.png"))
    canvas.set_label_style(outline=True)
    centre = canvas.view.to_widget(300.0, 254.0)
    canvas.view.zoom_by(16.0 / canvas.view.zoom, centre)
    assert canvas.view.zoom == pytest.approx(16.0)
    canvas.backend.repaint_now()
    zoomed = canvas.grab().toImage()
    assert zoomed.save(os.fspath(screenshot_dir / "canvas_gl_zoom16.png"))
    # A pixel centre on screen shows that image pixel's composed colour (grid lines are at borders).
    want = compose(frame, (40, 400), labels=two_class_labels(frame.shape), colors=COLORS, outline=True)
    dpr = zoomed.devicePixelRatio()
    for x, y in [(300, 254), (296, 250), (303, 258)]:
        p = canvas.view.to_widget(x + 0.5, y + 0.5)
        c = zoomed.pixelColor(int(p.x() * dpr), int(p.y() * dpr))
        assert (c.red(), c.green(), c.blue()) == tuple(int(v) for v in want[y, x, :3])
