"""Raster backend for the image + label layers: ``app.core.compose`` into a cached RGBA buffer.

Images up to ``FULL_LIMIT`` pixels keep one full-resolution composed buffer; a label change
recomposes only its bbox (plus one pixel of context for the outline). Larger images compose only
the visible region, subsampled (nearest) to about screen resolution, so a 16k x 16k image never
gets a full-size RGBA copy.

Composing is exact to ``app.core.compose`` but table driven where that is cheaper: 8/16-bit grey
frames go through a per-(dtype, window, invert, colour map) RGBA lookup table (built by calling
``image_rgba`` on every possible value, so it is the same function), and the label blend runs only
on the labelled pixels through a 256 x 256 (base, colour) table computed with the same float32
arithmetic as ``blend_labels``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter, QTransform

from app.core.compose import blend_labels, compose, image_rgba, label_edges
from app.core.display import Window
from app.editor.canvas.layers import LayerState

FULL_LIMIT = 4096 * 4096
PAD = 0.25  # extra visible-region margin composed for large images, so small pans reuse it


_LUT_KINDS = "iu"  # 8/16-bit integer grey frames: a lookup table of at most 65536 entries


def _image_lut(
    dtype: np.dtype[np.generic], window: Window | None, invert: bool, colormap: str
) -> npt.NDArray[np.uint32]:
    """RGBA (packed as uint32) of every value of ``dtype``, indexed by the value's unsigned bits."""
    unsigned = np.dtype(f"u{dtype.itemsize}")
    domain = np.arange(1 << (8 * dtype.itemsize), dtype=unsigned).view(dtype)
    rgba = image_rgba(domain[None, :], window, invert=invert, colormap=colormap)
    return np.ascontiguousarray(rgba).view(np.uint32).reshape(-1)


def _mix_table(alpha: np.float32) -> npt.NDArray[np.uint8]:
    """``blend_labels``' float32 mix for one alpha: table[base, colour] (both 0..255), the same
    float32 operations in the same order, so every entry equals what it computes per pixel."""
    base = np.arange(256, dtype=np.float32)[:, None]
    colour = np.arange(256, dtype=np.float32)[None, :]
    mixed = base + (colour - base) * alpha
    return np.floor(mixed + 0.5).astype(np.uint8)


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
        self._lut_key: tuple[object, ...] | None = None
        self._lut: npt.NDArray[np.uint32] | None = None
        self._mix: dict[float, npt.NDArray[np.uint8]] = {}

    def invalidate(self) -> None:
        self._cache = None

    @property
    def cached_rgba(self) -> npt.NDArray[np.uint8] | None:
        """The composed pixels the widget shows (None until painted, or after a full change)."""
        return None if self._cache is None else self._cache.rgba

    @property
    def full(self) -> bool:
        h, w = self.state.shape
        return h * w <= FULL_LIMIT

    # --- composing -------------------------------------------------------------------------------
    def _compose(self, ys: slice, xs: slice) -> npt.NDArray[np.uint8]:
        s = self.state
        assert s.frame is not None
        out = self._image(s.frame[ys, xs])
        if s.labels is not None and s.lut is not None:
            self._blend(out, s.labels[ys, xs], s.lut)
        return out

    def _image(self, frame: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
        """``image_rgba`` of the region; one table gather instead of float32 windowing when exact."""
        s = self.state
        dtype = frame.dtype
        # window None means uint8 passthrough here (the canvas resolves other dtypes' windows)
        if frame.ndim != 2 or dtype.kind not in _LUT_KINDS or dtype.itemsize > 2:
            return image_rgba(frame, s.window, invert=s.invert, colormap=s.colormap)
        if s.window is None and dtype != np.uint8:
            return image_rgba(frame, s.window, invert=s.invert, colormap=s.colormap)
        key = (dtype.str, s.window, s.invert, s.colormap)
        if self._lut is None or key != self._lut_key:
            self._lut, self._lut_key = _image_lut(dtype, s.window, s.invert, s.colormap), key
        packed = self._lut[frame.view(np.dtype(f"u{dtype.itemsize}"))]
        out: npt.NDArray[np.uint8] = packed.view(np.uint8).reshape(*frame.shape, 4)
        return out

    def _blend(
        self, base: npt.NDArray[np.uint8], labels: npt.NDArray[np.uint16], lut: npt.NDArray[np.uint8]
    ) -> None:
        """``blend_labels`` in place, touching only the pixels it changes (alpha > 0)."""
        s = self.state
        if not base.flags.c_contiguous:
            blend_labels(base, labels, lut, opacity=s.opacity, outline=s.outline)
            return
        coloured = lut[:, 3] > 0
        if not coloured[0] and coloured[1:].all():  # the usual table: every non-zero label shows
            chosen = labels != 0
        else:
            chosen = np.take(coloured, np.minimum(labels, len(lut) - 1))
        if s.outline:
            chosen &= label_edges(labels)
        alpha = np.float32(1.0 if s.outline else s.opacity)
        index = np.flatnonzero(chosen)
        if index.size == 0 or alpha == 0:
            return
        table = self._mix.get(float(alpha))
        if table is None:
            table = self._mix[float(alpha)] = _mix_table(alpha).reshape(-1)
        # Work on packed RGBA words: one gather and one scatter per pixel instead of per channel.
        packed = base.reshape(-1).view(np.uint32)
        pixels = np.take(packed, index).view(np.uint8).reshape(-1, 4)
        classes = np.minimum(np.take(np.ravel(labels), index), len(lut) - 1)
        colours = np.take(np.ascontiguousarray(lut).view(np.uint32).reshape(-1), classes)
        colours_rgba = colours.view(np.uint8).reshape(-1, 4)
        pixels[:, :3] = np.take(table, (pixels[:, :3].astype(np.uint16) << 8) | colours_rgba[:, :3])
        packed[index] = pixels.view(np.uint32).reshape(-1)

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
