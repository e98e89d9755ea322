"""Raster backend for the image + label layers: ``app.core.compose`` into a cached RGBA buffer.

Images up to ``FULL_LIMIT`` pixels keep one full-resolution composed buffer; a label change
recomposes only its bbox (plus one pixel of context for the outline). Larger images compose only
the visible region, subsampled (nearest) to about screen resolution, so a 16k x 16k image never
gets a full-size RGBA copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter, QTransform

from app.core.compose import blend_labels, compose, image_rgba
from app.editor.canvas.layers import LayerState

FULL_LIMIT = 4096 * 4096
PAD = 0.25  # extra visible-region margin composed for large images, so small pans reuse it


@dataclass
class _Cache:
    x0: int
    y0: int
    step: int
    rgba: npt.NDArray[np.uint8]  # (rows, cols, 4): pixel (i, j) is image (y0 + i*step, x0 + j*step)
    image: QImage  # wraps ``rgba`` without a copy


class RasterLayers:
    """Composes and draws the layers of ``state`` (the canvas's shared layer state)."""

    def __init__(self, state: LayerState) -> None:
        self.state = state
        self.uploaded_pixels = 0  # pixels recomposed so far (the raster twin of uploaded texels)
        self._cache: _Cache | None = None

    def invalidate(self) -> None:
        self._cache = None

    @property
    def full(self) -> bool:
        h, w = self.state.shape
        return h * w <= FULL_LIMIT

    # --- composing -------------------------------------------------------------------------------
    def _compose(self, ys: slice, xs: slice) -> npt.NDArray[np.uint8]:
        s = self.state
        assert s.frame is not None
        out = image_rgba(s.frame[ys, xs], s.window, invert=s.invert, colormap=s.colormap)
        if s.labels is not None and s.lut is not None:
            blend_labels(out, s.labels[ys, xs], s.lut, opacity=s.opacity, outline=s.outline)
        return out

    def _build(self, x0: int, y0: int, x1: int, y1: int, step: int) -> _Cache:
        rgba = np.ascontiguousarray(self._compose(slice(y0, y1, step), slice(x0, x1, step)))
        rows, cols = rgba.shape[:2]
        self.uploaded_pixels += rows * cols
        image = QImage(rgba.data, cols, rows, cols * 4, QImage.Format.Format_RGBA8888)
        return _Cache(x0, y0, step, rgba, image)

    def labels_changed(self, bbox: tuple[int, int, int, int] | None) -> None:
        c = self._cache
        if c is None:
            return
        if bbox is None:
            self._cache = None
            return
        rows, cols = c.rgba.shape[:2]
        bx0, by0, bx1, by1 = bbox
        # Cache indices whose image pixel lies in the bbox.
        i0, i1 = max(0, -(-(by0 - c.y0) // c.step)), min(rows, -(-(by1 - c.y0) // c.step))
        j0, j1 = max(0, -(-(bx0 - c.x0) // c.step)), min(cols, -(-(bx1 - c.x0) // c.step))
        if i1 <= i0 or j1 <= j0:
            return
        m = 1 if self.state.outline else 0  # a change flips the edge state of its 4-neighbours
        i0, i1, j0, j1 = max(0, i0 - m), min(rows, i1 + m), max(0, j0 - m), min(cols, j1 + m)
        ci0, ci1, cj0, cj1 = max(0, i0 - m), min(rows, i1 + m), max(0, j0 - m), min(cols, j1 + m)
        s, y, x = c.step, c.y0, c.x0
        part = self._compose(slice(y + ci0 * s, y + ci1 * s, s), slice(x + cj0 * s, x + cj1 * s, s))
        c.rgba[i0:i1, j0:j1] = part[i0 - ci0 : i1 - ci0, j0 - cj0 : j1 - cj0]
        self.uploaded_pixels += (i1 - i0) * (j1 - j0)

    def _ensure(self, visible: QRectF, zoom: float) -> _Cache | None:
        if self.state.frame is None:
            return None
        h, w = self.state.shape
        if self.full:
            if self._cache is None:
                self._cache = self._build(0, 0, w, h, 1)
            return self._cache
        step = max(1, math.floor(1.0 / max(zoom, 1e-9)))
        x0, x1 = max(0, math.floor(visible.left())), min(w, math.ceil(visible.right()))
        y0, y1 = max(0, math.floor(visible.top())), min(h, math.ceil(visible.bottom()))
        if x1 <= x0 or y1 <= y0:
            return None
        c = self._cache
        if c is not None and c.step == step:
            rows, cols = c.rgba.shape[:2]
            if c.x0 <= x0 and c.y0 <= y0 and c.x0 + cols * step >= x1 and c.y0 + rows * step >= y1:
                return c
        px, py = int((x1 - x0) * PAD), int((y1 - y0) * PAD)
        x0, y0 = max(0, x0 - px) // step * step, max(0, y0 - py) // step * step
        self._cache = self._build(x0, y0, min(w, x1 + px), min(h, y1 + py), step)
        return self._cache

    # --- drawing ---------------------------------------------------------------------------------
    def paint(self, p: QPainter, view: QTransform, visible: QRectF, zoom: float) -> None:
        c = self._ensure(visible, zoom)
        if c is None:
            return
        rows, cols = c.rgba.shape[:2]
        p.save()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # exact pixels when zoomed
        p.setTransform(view)
        p.drawImage(QRectF(c.x0, c.y0, cols * c.step, rows * c.step), c.image)
        p.restore()

    def render_layers(self) -> npt.NDArray[np.uint8]:
        s = self.state
        assert s.frame is not None
        return compose(
            s.frame,
            s.window,
            invert=s.invert,
            colormap=s.colormap,
            labels=s.labels,
            colors=s.colors,
            opacity=s.opacity,
            outline=s.outline,
        )
