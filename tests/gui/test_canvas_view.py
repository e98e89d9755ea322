"""View transform: mapping round trips through zoom, pan, rotation and flips; zoom limits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from pytestqt.qtbot import QtBot
from test_canvas_support import shown_canvas

from app.editor.canvas.view import MAX_ZOOM


def test_round_trips_and_fit(qtbot: QtBot) -> None:
    canvas = shown_canvas(qtbot, (640, 480))
    canvas.set_image(np.zeros((300, 500), dtype=np.uint16))
    assert canvas.view.zoom == pytest.approx(min(640 / 500, 480 / 300))
    centre = canvas.view.to_widget(250, 150)
    assert (centre.x(), centre.y()) == pytest.approx((320, 240))
    points = [(0.0, 0.0), (12.25, 7.5), (499.0, 299.5), (250.0, 150.0)]
    for rotations, fh, fv in itertools.product(range(4), (False, True), (False, True)):
        canvas.view.reset()
        for _ in range(rotations):
            canvas.view.rotate90()
        if fh:
            canvas.view.flip(horizontal=True)
        if fv:
            canvas.view.flip(horizontal=False)
        canvas.view.zoom_by(2.5)
        canvas.view.pan(13.0, -7.0)
        for x, y in points:
            assert canvas.view.to_image(canvas.view.to_widget(x, y)) == pytest.approx((x, y), abs=1e-9)
    canvas.view.reset()
    canvas.view.rotate90()  # 90 deg clockwise: the image's top-left corner goes to the top-right
    tl, br = canvas.view.to_widget(0, 0), canvas.view.to_widget(500, 300)
    assert tl.x() > br.x() and tl.y() < br.y()
    assert canvas.view.zoom == pytest.approx(min(640 / 300, 480 / 500))  # refit for the turned image
    canvas.view.reset()
    canvas.view.flip(horizontal=True)
    tl, br = canvas.view.to_widget(0, 0), canvas.view.to_widget(500, 300)
    assert tl.x() > br.x() and tl.y() < br.y()
    canvas.view.rotate90()  # still clockwise on screen after a flip
    p = canvas.view.to_widget(0, 0)
    assert p.x() > 320 and p.y() > 240


def test_zoom_is_clamped(qtbot: QtBot) -> None:
    canvas = shown_canvas(qtbot, (400, 400))
    canvas.set_image(np.zeros((100, 100), dtype=np.float32))
    fit = canvas.view.zoom
    for _ in range(40):
        canvas.view.zoom_by(2.0)
    assert canvas.view.zoom == MAX_ZOOM == 64.0
    for _ in range(40):
        canvas.view.zoom_by(0.5)
    assert canvas.view.zoom == pytest.approx(fit / 4)
    canvas.view.fit()
    assert canvas.view.zoom == pytest.approx(fit)
    anchor = canvas.view.to_image(QPointF(0, 0))
    canvas.set_image(np.ones((100, 100), dtype=np.float32), keep_view=True)  # slice scrolling
    assert canvas.view.to_image(QPointF(0, 0)) == pytest.approx(anchor)


@pytest.mark.gl
def test_a_software_opengl_gets_the_faster_raster_canvas_unless_gl_is_asked_for(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QOffscreenSurface, QOpenGLContext

    from app.editor.canvas import create_canvas

    ctx = QOpenGLContext()
    assert ctx.create()
    surface = QOffscreenSurface()
    surface.create()
    assert ctx.makeCurrent(surface)
    renderer = str(ctx.functions().glGetString(0x1F01)).lower()
    ctx.doneCurrent()
    monkeypatch.delenv("SITELABEL_CANVAS", raising=False)
    chosen = create_canvas()
    if "llvmpipe" in renderer or "softpipe" in renderer:
        assert chosen.backend.name == "raster" and "software renderer" in chosen.backend.fallback_reason
    else:
        assert chosen.backend.name == "gl"
    monkeypatch.setenv("SITELABEL_CANVAS", "gl")
    assert create_canvas().backend.name == "gl"
    monkeypatch.setenv("SITELABEL_CANVAS", "raster")
    assert create_canvas().backend.name == "raster"
