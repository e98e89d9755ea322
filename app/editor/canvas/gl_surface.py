"""The GL backend: a QOpenGLWidget child filling the canvas; the canvas keeps events and state.

It sees the canvas as a ``SurfaceHost`` (the layers, the view, the overlay painter), so this
module does not import the canvas that builds it.

Layer drawing is ``GLLayers``; vectors are drawn afterwards with QPainter on the same widget by
the shared ``OverlayPainter``. Uploads happen at once (``makeCurrent``) so a brush dab's cost
includes its texture update.
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtGui import QOpenGLContext, QPainter, QSurfaceFormat, QTransform
from PySide6.QtOpenGL import QOpenGLPaintDevice
from PySide6.QtOpenGLWidgets import QOpenGLWidget
from PySide6.QtWidgets import QWidget

from app.editor.canvas.gl_layers import GL_COLOR_BUFFER_BIT, GLLayers, build_program
from app.editor.canvas.host import SurfaceHost

BACKGROUND = (11 / 255, 11 / 255, 13 / 255)

# Textures are Python-owned QOpenGLTexture objects: their destructor needs their context alive.
# Qt does not reliably deliver aboutToBeDestroyed to a Python slot while widgets are torn down,
# so every live surface releases its GL objects when the application quits or Python exits,
# while the contexts still exist (otherwise ~QOpenGLTexture touches a freed context: SIGSEGV).
_LIVE: weakref.WeakSet[GLSurface] = weakref.WeakSet()
_hooked = False


def release_all() -> None:
    for surface in list(_LIVE):
        surface.release()


def _hook_shutdown() -> None:
    global _hooked  # noqa: PLW0603 - one-time registration
    if _hooked:
        return
    _hooked = True
    atexit.register(release_all)
    app = QCoreApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(release_all)


def surface_format() -> QSurfaceFormat:
    """3.3 core on desktop GL, 3.0 on GLES."""
    fmt = QSurfaceFormat.defaultFormat()
    if QOpenGLContext.openGLModuleType() == QOpenGLContext.OpenGLModuleType.LibGLES:
        fmt.setRenderableType(QSurfaceFormat.RenderableType.OpenGLES)
        fmt.setVersion(3, 0)
    else:
        fmt.setRenderableType(QSurfaceFormat.RenderableType.OpenGL)
        fmt.setVersion(3, 3)
        fmt.setProfile(QSurfaceFormat.OpenGLContextProfile.CoreProfile)
    return fmt


class _Resources:
    """Holds a surface's GL objects apart from the widget wrapper, so the context's
    aboutToBeDestroyed can free them even while the widget itself is being destroyed."""

    def __init__(self) -> None:
        self.layers: GLLayers | None = None

    def free(self) -> None:
        """Called with the context current (QOpenGLWidget makes it current before deleting it)."""
        if self.layers is not None:
            self.layers.destroy()
            self.layers = None  # drop the Python wrappers while the context is still alive


class GLSurface(QOpenGLWidget):
    def __init__(self, host: SurfaceHost, on_failure: Callable[[str], None], parent: QWidget) -> None:
        super().__init__(parent)
        self.host = host
        self._on_failure = on_failure
        self._resources = _Resources()
        self.failed = ""
        self.setFormat(surface_format())
        # Mouse, wheel and keys go to the canvas underneath (one event path for both backends).
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        _LIVE.add(self)
        _hook_shutdown()

    # --- QOpenGLWidget -------------------------------------------------------------------------
    def initializeGL(self) -> None:
        ctx = self.context()
        gl = ctx.functions()
        gl.initializeOpenGLFunctions()
        program, log = build_program(ctx.isOpenGLES())
        if program is None:
            self.failed = f"GL shaders failed: {log.strip()}"
            QTimer.singleShot(0, lambda: self._on_failure(self.failed))  # not while painting
            return
        self.layers = GLLayers(self.host.layers, program, gl)
        # a plain object's method: Qt still calls it while the widget wrapper is going away
        ctx.aboutToBeDestroyed.connect(self._resources.free, Qt.ConnectionType.DirectConnection)
        if self.host.layers.frame is not None:
            self.layers.set_image()
        self.layers.labels_changed(None)

    @property
    def layers(self) -> GLLayers | None:
        return self._resources.layers

    @layers.setter
    def layers(self, value: GLLayers | None) -> None:
        self._resources.layers = value

    def release(self) -> None:
        """Free the textures and program now, with their context current (idempotent)."""
        if self._resources.layers is not None and self.context() is not None:
            self.makeCurrent()
            self._resources.free()
            self.doneCurrent()

    def paintGL(self) -> None:
        # QPainter first, native GL inside begin/endNativePainting: the painter then restores
        # the GL state it needs for the overlays drawn afterwards. It paints on a GL paint device
        # for the bound framebuffer, not on ``self``: QWidget.grab() redirects painters on the
        # widget into its pixmap, under the framebuffer image, which would hide the overlays.
        dpr = self.devicePixelRatioF()
        device = QOpenGLPaintDevice(round(self.width() * dpr), round(self.height() * dpr))
        device.setDevicePixelRatio(dpr)
        painter = QPainter(device)
        painter.beginNativePainting()
        gl = self.context().functions()
        gl.glClearColor(*BACKGROUND, 1.0)
        gl.glClear(GL_COLOR_BUFFER_BIT)
        if self.layers is not None:
            view = self.host.view.state
            w, h = view.widget_size
            ndc = view.transform() * QTransform.fromScale(2.0 / w, -2.0 / h) * QTransform.fromTranslate(-1, 1)
            r = view.visible_image_rect()
            self.layers.draw(ndc, (r.left(), r.top(), r.right(), r.bottom()))
        painter.endNativePainting()
        if self.layers is not None:
            self.host.paint_overlays(painter)
        painter.end()

    # --- called by the canvas ------------------------------------------------------------------
    def _with_context(self, work: Callable[[GLLayers], None]) -> None:
        if self.layers is None:
            return  # initializeGL uploads everything when the widget first shows
        self.makeCurrent()
        try:
            work(self.layers)
        finally:
            self.doneCurrent()

    def image_changed(self) -> None:
        self._with_context(lambda lay: lay.set_image())

    def labels_changed(self, bbox: tuple[int, int, int, int] | None) -> None:
        self._with_context(lambda lay: lay.labels_changed(bbox))

    def labels_replaced(self) -> None:
        def work(lay: GLLayers) -> None:
            if self.host.layers.labels is None:
                lay.drop_labels()  # free the textures; a new map of the same size reuses them
            lay.set_colors()
            lay.labels_changed(None)

        self._with_context(work)

    def colors_changed(self) -> None:
        self._with_context(lambda lay: lay.set_colors())

    def colormap_changed(self) -> None:
        self._with_context(lambda lay: lay.set_colormap())

    @property
    def uploaded_texels(self) -> int:
        return 0 if self.layers is None else self.layers.uploaded_texels

    def render_layers(self) -> npt.NDArray[np.uint8]:
        if self.layers is None:
            raise RuntimeError(self.failed or "the GL canvas is not initialised yet (show it first)")
        self.makeCurrent()
        try:
            return self.layers.render_layers(self.context())
        finally:
            self.doneCurrent()
