"""Shared set-up for the canvas tests (named test_* so pytest puts it on the path; holds no tests)."""

from __future__ import annotations

import numpy as np
from pytestqt.qtbot import QtBot
from support.windows import wait_exposed

from app import sample_data
from app.core.raster import brush_dab, rasterize_polygon
from app.editor.canvas import Canvas, create_canvas
from app.sources import open_source

COLORS = {1: (230, 60, 50), 2: (40, 200, 90)}


def ct_slice() -> np.ndarray:
    return np.asarray(open_source(sample_data.dicom_file("693_UNCI.dcm")).frame(0))


def two_class_labels(shape: tuple[int, int]) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.uint16)
    labels[rasterize_polygon([(120.3, 90.7), (330.2, 140.1), (260.8, 320.4), (140.5, 260.0)], shape)] = 1
    y0, x0, bits = brush_dab((300.2, 300.7), 45.3, shape)
    labels[y0 : y0 + bits.shape[0], x0 : x0 + bits.shape[1]][bits] = 2
    return labels


def shown_canvas(qtbot: QtBot, size: tuple[int, int] = (640, 520)) -> Canvas:
    canvas = create_canvas()
    qtbot.addWidget(canvas)
    canvas.resize(*size)
    wait_exposed(qtbot, canvas)
    return canvas
