"""The image canvas: GPU (QOpenGLWidget + shaders) with a raster fallback drawing the same picture.

``create_canvas`` picks the backend: GL unless the platform has no OpenGL (offscreen, minimal),
a 3.3 core / ES 3.0 context cannot be made, the shaders do not compile, or the OpenGL is a software
renderer (llvmpipe, softpipe, SwiftShader: measured slower than the raster path and holding every
texture in process memory, see bench/render.py and bench/memory.py); then raster, with the reason
in ``canvas.backend.fallback_reason``. ``SITELABEL_CANVAS=gl`` or ``=raster`` overrides the choice.
"""

from __future__ import annotations

import os

from PySide6.QtGui import QGuiApplication, QOffscreenSurface, QOpenGLContext
from PySide6.QtWidgets import QWidget

from app.editor.canvas.base import Canvas
from app.editor.canvas.gl_layers import build_program
from app.editor.canvas.gl_surface import surface_format

__all__ = ["Canvas", "create_canvas", "gl_unavailable_reason"]

_NO_GL_PLATFORMS = ("offscreen", "minimal")
_SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swiftshader", "software rasterizer", "swrast")
GL_RENDERER = 0x1F01
_probe: str | None = None  # cached result: "" when GL works


def gl_unavailable_reason() -> str:
    """Why the GL canvas cannot be used here ("" when it can); the probe runs once per process."""
    global _probe  # noqa: PLW0603 - one probe per process is the point
    if _probe is None:
        _probe = _probe_gl()
    return _probe


def _probe_gl() -> str:
    platform = QGuiApplication.platformName()
    if platform in _NO_GL_PLATFORMS:
        return f"the {platform!r} Qt platform has no OpenGL"
    ctx = QOpenGLContext()
    ctx.setFormat(surface_format())
    if not ctx.create():
        return "no OpenGL context could be created"
    fmt = ctx.format()
    if not ctx.isOpenGLES() and (fmt.majorVersion(), fmt.minorVersion()) < (3, 3):
        return f"OpenGL {fmt.majorVersion()}.{fmt.minorVersion()} is below 3.3"
    surface = QOffscreenSurface()
    surface.setFormat(fmt)
    surface.create()
    if not ctx.makeCurrent(surface):
        return "the OpenGL context could not be made current"
    try:
        program, log = build_program(ctx.isOpenGLES())
        if program is None:
            return f"GL shaders failed: {log.strip()}"
        renderer = str(ctx.functions().glGetString(GL_RENDERER) or "")
        if any(name in renderer.lower() for name in _SOFTWARE_RENDERERS):
            return f"OpenGL here is a software renderer ({renderer}); the raster path is faster"
        return ""
    finally:
        ctx.doneCurrent()


def create_canvas(parent: QWidget | None = None, *, prefer_gl: bool = True) -> Canvas:
    choice = os.environ.get("SITELABEL_CANVAS", "").lower()
    if choice == "raster" or not prefer_gl:
        reason = "raster requested"
    else:
        reason = gl_unavailable_reason()
        if choice == "gl" and reason.startswith("OpenGL here is a software renderer"):
            reason = ""  # asked for explicitly (tests of the GL path on Xvfb)
    canvas = Canvas(parent, use_gl=not reason)
    canvas.backend.fallback_reason = reason
    return canvas
