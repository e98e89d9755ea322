"""GL textures and drawing for the image + label layers (needs a current context).

The image is cut into tiles of at most ``min(GL_MAX_TEXTURE_SIZE - 2, 4096)`` pixels; each tile
has an image texture (R32F grey or RGBA8 colour) and an R16UI label texture with a one-pixel
apron so the outline test can read neighbours across tile borders. Uploads go straight from row
slices of the numpy arrays (unpack row length / skip pixels), so no full-size CPU copy is made.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PySide6.QtGui import QOpenGLContext, QOpenGLFunctions, QTransform
from PySide6.QtOpenGL import (
    QOpenGLFramebufferObject,
    QOpenGLShader,
    QOpenGLShaderProgram,
    QOpenGLTexture,
    QOpenGLVertexArrayObject,
)

from app.core.compose import COLORMAPS
from app.editor.canvas.gl_shaders import sources
from app.editor.canvas.layers import LayerState

GL_TEXTURE_2D = 0x0DE1
GL_MAX_TEXTURE_SIZE = 0x0D33
GL_UNPACK_ALIGNMENT, GL_UNPACK_ROW_LENGTH, GL_UNPACK_SKIP_PIXELS = 0x0CF5, 0x0CF2, 0x0CF4
GL_PACK_ALIGNMENT = 0x0D05
GL_RED, GL_RGB, GL_RGBA, GL_RED_INTEGER = 0x1903, 0x1907, 0x1908, 0x8D94
GL_FLOAT, GL_UNSIGNED_BYTE, GL_UNSIGNED_SHORT = 0x1406, 0x1401, 0x1403
GL_TRIANGLE_STRIP, GL_COLOR_BUFFER_BIT = 0x0005, 0x4000
TF = QOpenGLTexture.TextureFormat
MAX_TILE = 4096


def build_program(es: bool) -> tuple[QOpenGLShaderProgram | None, str]:
    """Compile and link the layer program in the current context; (None, log) on failure."""
    vertex, fragment = sources(es)
    program = QOpenGLShaderProgram()
    ok = program.addShaderFromSourceCode(QOpenGLShader.ShaderTypeBit.Vertex, vertex)
    ok = ok and program.addShaderFromSourceCode(QOpenGLShader.ShaderTypeBit.Fragment, fragment)
    ok = ok and program.link()
    return (program, "") if ok else (None, program.log() or "shader compilation failed")


_UINT, _INT, _PTR = ctypes.c_uint, ctypes.c_int, ctypes.c_void_p
_TEX_SUB_IMAGE = ctypes.CFUNCTYPE(None, _UINT, _INT, _INT, _INT, _INT, _INT, _UINT, _UINT, _PTR)
_READ_PIXELS = ctypes.CFUNCTYPE(None, _INT, _INT, _INT, _INT, _UINT, _UINT, _PTR)


def _entry(context: QOpenGLContext, name: str, proto: type) -> Callable[..., None]:
    """A GL entry point called through ctypes with a raw pointer.

    PySide6 6.12's QOpenGLFunctions.glTexSubImage2D/glReadPixels with a buffer argument drop a
    reference to None per call (the interpreter aborts after some thousand calls), and their
    pointer overload only takes 32-bit ints; ctypes avoids both.
    """
    address = context.getProcAddress(name.encode())
    if not address:
        raise RuntimeError(f"no GL entry point {name}")
    return proto(address)  # type: ignore[no-any-return]


def _texture(fmt: QOpenGLTexture.TextureFormat, w: int, h: int) -> QOpenGLTexture:
    tex = QOpenGLTexture(QOpenGLTexture.Target.Target2D)
    tex.setFormat(fmt)
    tex.setSize(w, h)
    tex.setMinMagFilters(QOpenGLTexture.Filter.Nearest, QOpenGLTexture.Filter.Nearest)
    tex.setWrapMode(QOpenGLTexture.WrapMode.ClampToEdge)
    tex.allocateStorage()
    return tex


@dataclass
class _Tile:
    x0: int
    y0: int
    x1: int
    y1: int
    lx0: int  # label texture covers [lx0, lx1) x [ly0, ly1): the tile plus a one-pixel apron
    ly0: int
    lx1: int
    ly1: int
    image: QOpenGLTexture
    labels: QOpenGLTexture | None = None


class GLLayers:
    """Owns the textures and the program of one context; every method needs it current."""

    def __init__(self, state: LayerState, program: QOpenGLShaderProgram, gl: QOpenGLFunctions) -> None:
        self.state, self.program, self.gl = state, program, gl
        context = QOpenGLContext.currentContext()
        self._tex_sub_image = _entry(context, "glTexSubImage2D", _TEX_SUB_IMAGE)
        self._read_pixels = _entry(context, "glReadPixels", _READ_PIXELS)
        max_size = gl.glGetIntegerv(GL_MAX_TEXTURE_SIZE)
        self.tile = min(int(max_size) - 2, MAX_TILE)  # type: ignore[arg-type]
        self.tiles: list[_Tile] = []
        self._loc: dict[str, int] = {}
        self.uploaded_texels = 0  # label texels uploaded so far (tests check the bbox-only upload)
        self._key: tuple[object, ...] | None = None
        self.vao = QOpenGLVertexArrayObject()
        self.vao.create()
        self.cmap = _texture(TF.RGBA8_UNorm, 256, 1)
        self.ctab = _texture(TF.RGBA8_UNorm, 256, 1)
        self.ctab_size = 1
        self.set_colormap()
        self.set_colors()

    def _set(self, name: str, *values: float) -> None:
        """Python ints set int uniforms (glUniform1i), floats set float ones."""
        location = self._loc.get(name)
        if location is None:
            location = self._loc[name] = self.program.uniformLocation(name)
        p = self.program
        if len(values) == 1 and isinstance(values[0], int):
            p.setUniformValue1i(location, values[0])
        elif len(values) == 1:  # explicit: the plain overload may pick an unsigned variant
            p.setUniformValue1f(location, float(values[0]))
        else:
            p.setUniformValue(location, *(float(v) for v in values))

    def destroy(self) -> None:
        for t in self.tiles:
            t.image.destroy()
            if t.labels is not None:
                t.labels.destroy()
        self.tiles = []
        self.cmap.destroy()
        self.ctab.destroy()
        self.vao.destroy()

    # --- uploads ---------------------------------------------------------------------------------
    def _sub_image(  # noqa: PLR0917 - mirrors glTexSubImage2D
        self,
        tex: QOpenGLTexture,
        x: int,
        y: int,
        w: int,
        h: int,
        fmt: int,
        typ: int,
        rows: npt.NDArray[np.generic],
        skip: int,
        row_length: int,
    ) -> None:
        """glTexSubImage2D from the C-contiguous ``rows`` starting ``skip`` pixels into each row."""
        gl = self.gl
        tex.bind()
        gl.glPixelStorei(GL_UNPACK_ALIGNMENT, 1)
        gl.glPixelStorei(GL_UNPACK_ROW_LENGTH, row_length)
        gl.glPixelStorei(GL_UNPACK_SKIP_PIXELS, skip)
        assert rows.flags.c_contiguous
        self._tex_sub_image(GL_TEXTURE_2D, 0, x, y, w, h, fmt, typ, rows.ctypes.data)
        gl.glPixelStorei(GL_UNPACK_ROW_LENGTH, 0)
        gl.glPixelStorei(GL_UNPACK_SKIP_PIXELS, 0)
        tex.release()

    def set_colormap(self) -> None:
        lut = np.empty((256, 4), dtype=np.uint8)
        lut[:, :3], lut[:, 3] = COLORMAPS[self.state.colormap], 255
        self._sub_image(self.cmap, 0, 0, 256, 1, GL_RGBA, GL_UNSIGNED_BYTE, lut, 0, 256)

    def set_colors(self) -> None:
        lut = self.state.lut if self.state.lut is not None else np.zeros((1, 4), dtype=np.uint8)
        n = len(lut)
        rows = -(-n // 256)
        table = np.zeros((rows * 256, 4), dtype=np.uint8)
        table[:n] = lut
        if self.ctab.height() != rows:
            self.ctab.destroy()
            self.ctab = _texture(TF.RGBA8_UNorm, 256, rows)
        self._sub_image(self.ctab, 0, 0, 256, rows, GL_RGBA, GL_UNSIGNED_BYTE, table, 0, 256)
        self.ctab_size = n

    def _make_tiles(self) -> None:
        for t in self.tiles:
            t.image.destroy()
            if t.labels is not None:
                t.labels.destroy()
        self.tiles = []
        h, w = self.state.shape
        fmt = TF.RGBA8_UNorm if self.state.colour else TF.R32F
        for y0 in range(0, h, self.tile):
            for x0 in range(0, w, self.tile):
                x1, y1 = min(w, x0 + self.tile), min(h, y0 + self.tile)
                lx0, ly0, lx1, ly1 = max(0, x0 - 1), max(0, y0 - 1), min(w, x1 + 1), min(h, y1 + 1)
                self.tiles.append(_Tile(x0, y0, x1, y1, lx0, ly0, lx1, ly1, _texture(fmt, x1 - x0, y1 - y0)))

    def set_image(self) -> None:
        """Upload the frame; textures are reused when the size and kind match (slice scrolling)."""
        frame = self.state.frame
        assert frame is not None
        key = (frame.shape, self.state.colour)
        if key != self._key:
            self._make_tiles()
            self._key = key
            self.labels_changed(None)
        w = frame.shape[1]
        for t in self.tiles:
            if self.state.colour:
                rows = np.ascontiguousarray(frame[t.y0 : t.y1])
                fmt = GL_RGB if frame.shape[2] == 3 else GL_RGBA
                self._sub_image(t.image, 0, 0, t.x1 - t.x0, t.y1 - t.y0, fmt, GL_UNSIGNED_BYTE, rows, t.x0, w)
            else:  # float32 per tile: compose also windows in float32
                values = np.ascontiguousarray(frame[t.y0 : t.y1, t.x0 : t.x1], dtype=np.float32)
                tw = t.x1 - t.x0
                self._sub_image(t.image, 0, 0, tw, t.y1 - t.y0, GL_RED, GL_FLOAT, values, 0, tw)

    def labels_changed(self, bbox: tuple[int, int, int, int] | None) -> None:
        labels = self.state.labels
        if labels is None:
            return
        h, w = labels.shape
        for t in self.tiles:
            bx0, by0, bx1, by1 = bbox if bbox is not None else (0, 0, w, h)
            if t.labels is None:
                t.labels = _texture(TF.R16U, t.lx1 - t.lx0, t.ly1 - t.ly0)
                bx0, by0, bx1, by1 = 0, 0, w, h  # a new texture needs all of its texels
            x0, y0, x1, y1 = max(bx0, t.lx0), max(by0, t.ly0), min(bx1, t.lx1), min(by1, t.ly1)
            if x1 <= x0 or y1 <= y0:
                continue
            rows = labels[y0:y1]
            self._sub_image(
                t.labels,
                x0 - t.lx0,
                y0 - t.ly0,
                x1 - x0,
                y1 - y0,
                GL_RED_INTEGER,
                GL_UNSIGNED_SHORT,
                rows,
                x0,
                w,
            )
            self.uploaded_texels += (x1 - x0) * (y1 - y0)

    def drop_labels(self) -> None:
        for t in self.tiles:
            if t.labels is not None:
                t.labels.destroy()
                t.labels = None

    # --- drawing ---------------------------------------------------------------------------------
    def draw(self, to_ndc: QTransform, visible: tuple[float, float, float, float] | None = None) -> None:
        """Draw the tiles through ``to_ndc`` (image -> NDC) into the bound framebuffer."""
        s, p, gl = self.state, self.program, self.gl
        if s.frame is None or not self.tiles:
            return
        p.bind()
        self.vao.bind()
        t = to_ndc
        self._set("row0", t.m11(), t.m12(), t.m13())
        self._set("row1", t.m21(), t.m22(), t.m23())
        self._set("row2", t.m31(), t.m32(), t.m33())
        h, w = s.shape
        self._set("imageSize", float(w), float(h))
        win = s.window
        self._set("windowOn", int(win is not None))
        if win is not None:  # the same float32 constants as app.core.display.apply_window
            width = max(float(win[1]), 1e-6)
            self._set("lo", float(np.float32(win[0] - width / 2.0)))
            self._set("scale", float(np.float32(255.0 / width)))
        self._set("invert", int(s.invert))
        self._set("colourImage", int(s.colour))
        labels_on = s.labels is not None and s.lut is not None
        self._set("labelsOn", int(labels_on))
        self._set("outline", int(s.outline))
        self._set("opacity", float(np.float32(s.opacity)))
        self._set("ctabSize", self.ctab_size)
        for unit, name in enumerate(("image", "cmap", "labels", "ctab")):
            self._set(name, unit)
        self.cmap.bind(1)
        self.ctab.bind(3)
        for tile in self.tiles:
            if visible is not None and (
                tile.x1 < visible[0] or tile.x0 > visible[2] or tile.y1 < visible[1] or tile.y0 > visible[3]
            ):
                continue
            tile.image.bind(0)
            if labels_on and tile.labels is not None:
                tile.labels.bind(2)
            self._set("rect", float(tile.x0), float(tile.y0), float(tile.x1), float(tile.y1))
            self._set("tileOrigin", float(tile.x0), float(tile.y0))
            self._set("labOrigin", float(tile.lx0), float(tile.ly0))
            gl.glDrawArrays(GL_TRIANGLE_STRIP, 0, 4)
        for unit in range(4):
            gl.glActiveTexture(0x84C0 + unit)
            gl.glBindTexture(GL_TEXTURE_2D, 0)
        gl.glActiveTexture(0x84C0)
        self.vao.release()
        p.release()

    def render_layers(self, context: QOpenGLContext) -> npt.NDArray[np.uint8]:
        """Each tile drawn 1:1 into an FBO of its size and read back with glReadPixels."""
        h, w = self.state.shape
        out = np.empty((h, w, 4), dtype=np.uint8)
        gl = self.gl
        for tile in self.tiles:
            tw, th = tile.x1 - tile.x0, tile.y1 - tile.y0
            fbo = QOpenGLFramebufferObject(tw, th)
            fbo.bind()
            gl.glViewport(0, 0, tw, th)
            gl.glClearColor(0.0, 0.0, 0.0, 1.0)
            gl.glClear(GL_COLOR_BUFFER_BIT)
            ndc = QTransform.fromTranslate(-tile.x0, -tile.y0)
            ndc *= QTransform.fromScale(2.0 / tw, -2.0 / th)
            ndc *= QTransform.fromTranslate(-1.0, 1.0)
            self.draw(ndc, (tile.x0 + 0.5, tile.y0 + 0.5, tile.x1 - 0.5, tile.y1 - 0.5))
            buf = np.empty((th, tw, 4), dtype=np.uint8)
            gl.glPixelStorei(GL_PACK_ALIGNMENT, 1)
            self._read_pixels(0, 0, tw, th, GL_RGBA, GL_UNSIGNED_BYTE, buf.ctypes.data)
            out[tile.y0 : tile.y1, tile.x0 : tile.x1] = buf[::-1]  # GL rows go bottom-up
            fbo.release()
            del fbo
        gl.glBindFramebuffer(0x8D40, context.defaultFramebufferObject())
        return out
