"""Which backend draws the canvas's image + label layers, and the one place told what changed.

GL: a ``GLSurface`` child widget filling the canvas. Raster: ``RasterLayers``, painted by the canvas
in its own ``paintEvent``. A GL canvas whose context or shaders fail after all falls back to the
raster path for good. Both read the same ``LayerState``; the canvas changes it, then says what
changed here, so only the touched part is re-uploaded (GL) or recomposed (raster).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QWidget

from app.core.errors import ValidationError
from app.editor.canvas.gl_surface import GLSurface
from app.editor.canvas.host import SurfaceHost
from app.editor.canvas.raster_layers import RasterLayers

Bbox = tuple[int, int, int, int]


class CanvasBackend:
    """The backend of one canvas (``canvas.backend``): ``name`` is "gl" or "raster", and
    ``fallback_reason`` says why the raster path draws ("" when GL does or raster was asked for by
    the code). Each change below also schedules a repaint."""

    def __init__(self, canvas: QWidget, host: SurfaceHost, *, use_gl: bool) -> None:
        self._canvas = canvas
        self._layers = host.layers
        self.raster = RasterLayers(host.layers)
        self._surface: GLSurface | None = GLSurface(host, self._fall_back, canvas) if use_gl else None
        self.fallback_reason = ""

    @property
    def name(self) -> str:
        return "gl" if self._surface is not None else "raster"

    def _fall_back(self, reason: str) -> None:
        """The GL context or shaders failed after all: draw with the raster path from now on."""
        if self._surface is None:
            return
        self._surface.hide()
        self._surface.deleteLater()
        self._surface = None
        self.fallback_reason = reason
        self.raster.invalidate()
        self._canvas.update()

    # --- repainting ---------------------------------------------------------------------------------
    def repaint(self) -> None:
        """Schedule a repaint (Qt merges several into one)."""
        if self._surface is not None:
            self._surface.update()
        else:
            self._canvas.update()

    def repaint_now(self) -> None:
        """Synchronous repaint (benchmarks, screenshots)."""
        if self._surface is not None:
            self._surface.repaint()
        else:
            self._canvas.repaint()

    def finish(self) -> None:
        """Wait until the GPU has drawn what it was given, so a benchmark times whole frames
        (nothing to wait for on the raster path, which draws on this thread)."""
        surface = self._surface
        if surface is not None and surface.layers is not None:
            surface.makeCurrent()
            surface.layers.gl.glFinish()
            surface.doneCurrent()

    def resize(self, rect: QRect) -> None:
        """The canvas's new geometry: the GL child keeps covering it."""
        if self._surface is not None:
            self._surface.setGeometry(rect)

    # --- what changed in the layer state --------------------------------------------------------------
    def image_changed(self) -> None:
        self.raster.invalidate()
        if self._surface is not None:
            self._surface.image_changed()
        self.repaint()

    def colormap_changed(self) -> None:
        self.raster.invalidate()
        if self._surface is not None:
            self._surface.colormap_changed()
        self.repaint()

    def style_changed(self) -> None:
        """Window, opacity or outline: uniforms on GL, a recomposition on the raster path."""
        self.raster.invalidate()
        self.repaint()

    def labels_replaced(self) -> None:
        """A new label map (or none) and its colours."""
        self.raster.invalidate()
        if self._surface is not None:
            self._surface.labels_replaced()
        self.repaint()

    def labels_changed(self, bbox: Bbox | None) -> None:
        """Pixels of the same label map changed inside ``bbox`` (None: anywhere)."""
        if self._surface is not None:
            self._surface.labels_changed(bbox)
        else:
            self.raster.labels_changed(bbox)
        self.repaint()

    # --- reading back -------------------------------------------------------------------------------
    @property
    def uploaded_pixels(self) -> int:
        """Label texels uploaded (GL) or pixels recomposed (raster) since creation."""
        return self._surface.uploaded_texels if self._surface is not None else self.raster.uploaded_pixels

    def render_layers(self) -> npt.NDArray[np.uint8]:
        """RGBA (H, W, 4) of the image + label layers at 1:1, as this backend draws them."""
        if self._layers.frame is None:
            raise ValidationError("the canvas has no image")
        if self._surface is not None:
            return self._surface.render_layers()
        return self.raster.render_layers()
