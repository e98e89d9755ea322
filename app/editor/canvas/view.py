"""The view transform: image coordinates -> widget coordinates (logical pixels).

One ``QTransform`` serves drawing (both backends) and mouse mapping, so what is drawn under the
pointer is exactly the pixel a tool receives. Order: image point - centre, rotate (multiple of
90 degrees), flip in screen space, scale by the zoom, move to the widget centre.

``ViewState`` is the transform's state and arithmetic; ``CanvasView`` is the canvas's view as the
user and the canvas change it (``canvas.view``): refit on resize, and each change announced once.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QTransform

MAX_ZOOM = 64.0


class ViewState:
    """Zoom (screen px per image px), the image point at the widget centre, rotation and flips."""

    def __init__(self) -> None:
        self.image_size = (1, 1)  # (width, height) in image pixels
        self.widget_size = (1.0, 1.0)  # logical pixels
        self.zoom = 1.0
        self.centre = (0.5, 0.5)
        self.rotation = 0  # degrees clockwise on screen, 0/90/180/270
        self.flip_h = False
        self.flip_v = False
        self._transform: QTransform | None = None

    # --- the transform ---------------------------------------------------------------------------
    def transform(self) -> QTransform:
        if self._transform is None:
            w, h = self.widget_size
            t = QTransform.fromTranslate(-self.centre[0], -self.centre[1])
            t *= QTransform().rotate(self.rotation)
            t *= QTransform.fromScale(-1.0 if self.flip_h else 1.0, -1.0 if self.flip_v else 1.0)
            t *= QTransform.fromScale(self.zoom, self.zoom)
            t *= QTransform.fromTranslate(w / 2.0, h / 2.0)
            self._transform = t
        return self._transform

    def _changed(self) -> None:
        self._transform = None

    def to_widget(self, x: float, y: float) -> QPointF:
        return self.transform().map(QPointF(x, y))

    def to_image(self, pos: QPointF) -> tuple[float, float]:
        inverse, _ok = self.transform().inverted()
        p = inverse.map(QPointF(pos))
        return p.x(), p.y()

    def visible_image_rect(self) -> QRectF:
        """The image-space rectangle covering the widget (not clipped to the image)."""
        inverse, _ok = self.transform().inverted()
        return inverse.mapRect(QRectF(0.0, 0.0, *self.widget_size))

    # --- changes ---------------------------------------------------------------------------------
    def fit_zoom(self) -> float:
        iw, ih = self.image_size
        if self.rotation % 180:
            iw, ih = ih, iw
        ww, wh = self.widget_size
        return max(min(ww / iw, wh / ih), 1e-6)

    def clamp_zoom(self, zoom: float) -> float:
        return min(max(zoom, min(self.fit_zoom() / 4.0, MAX_ZOOM)), MAX_ZOOM)

    def set_image_size(self, width: int, height: int) -> None:
        self.image_size = (max(int(width), 1), max(int(height), 1))
        self._changed()

    def set_widget_size(self, width: float, height: float) -> None:
        self.widget_size = (max(float(width), 1.0), max(float(height), 1.0))
        self._changed()

    def fit(self) -> None:
        self.zoom = self.fit_zoom()
        self.centre = (self.image_size[0] / 2.0, self.image_size[1] / 2.0)
        self._changed()

    def reset(self) -> None:
        self.rotation, self.flip_h, self.flip_v = 0, False, False
        self.fit()

    def zoom_at(self, factor: float, anchor: QPointF | None = None) -> None:
        """Multiply the zoom, keeping the image point under ``anchor`` (widget coords) in place."""
        if anchor is None:
            anchor = QPointF(self.widget_size[0] / 2.0, self.widget_size[1] / 2.0)
        fixed = self.to_image(anchor)
        self.zoom = self.clamp_zoom(self.zoom * factor)
        self._changed()
        moved = self.to_widget(*fixed)
        self.pan(anchor.x() - moved.x(), anchor.y() - moved.y())

    def pan(self, dx: float, dy: float) -> None:
        """Move the picture by (dx, dy) widget pixels."""
        w, h = self.widget_size
        self.centre = self.to_image(QPointF(w / 2.0 - dx, h / 2.0 - dy))
        self._changed()

    def rotate90(self, clockwise: bool = True) -> None:
        # The flip acts after the rotation, so one flip mirrors the sense of rotation on screen.
        step = 90 if clockwise != (self.flip_h != self.flip_v) else -90
        self.rotation = (self.rotation + step) % 360
        self._changed()

    def flip(self, horizontal: bool = True) -> None:
        if horizontal:
            self.flip_h = not self.flip_h
        else:
            self.flip_v = not self.flip_v
        self._changed()


class CanvasView:
    """The canvas's view: the transform (``state``), the refit on resize until the user moves the
    view, and one ``changed`` call per change (the canvas then repaints, hands the tool its hit
    tolerance at the new zoom and emits ``view_changed``). No widget: the canvas feeds it sizes."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self.state = ViewState()
        self.auto_fit = True  # refit on resize until the user changes the view
        self._changed = changed

    # --- reading ---------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.state.zoom

    def transform(self) -> QTransform:
        return self.state.transform()

    def to_image(self, pos: QPointF) -> tuple[float, float]:
        """The image point under widget position ``pos``."""
        return self.state.to_image(QPointF(pos))

    def to_widget(self, x: float, y: float) -> QPointF:
        """The widget position of image point (x, y)."""
        return self.state.to_widget(x, y)

    # --- the user's changes ----------------------------------------------------------------------
    def fit(self) -> None:
        self.state.fit()
        self.auto_fit = True
        self.refresh(user=False)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Multiply the zoom, keeping the image point under ``anchor`` (widget coordinates, the
        widget centre when None) in place."""
        self.state.zoom_at(factor, anchor)
        self.refresh()

    def pan(self, dx: float, dy: float) -> None:
        """Move the picture by (dx, dy) widget pixels."""
        self.state.pan(dx, dy)
        self.refresh()

    def rotate90(self, clockwise: bool = True) -> None:
        self.state.rotate90(clockwise)
        if self.auto_fit:
            self.state.fit()
        self.refresh(user=False)

    def flip(self, horizontal: bool = True) -> None:
        self.state.flip(horizontal)
        self.refresh(user=False)

    def reset(self) -> None:
        """No rotation or flips, fitted to the widget."""
        self.state.reset()
        self.auto_fit = True
        self.refresh(user=False)

    def centre_on(self, x: float, y: float) -> None:
        """Scroll so image point (x, y) is at the widget centre (zoom unchanged)."""
        target = self.state.to_widget(x, y)
        w, h = self.state.widget_size
        self.state.pan(w / 2.0 - target.x(), h / 2.0 - target.y())
        self.refresh()

    def refresh(self, user: bool = True) -> None:
        """Announce a change; ``user`` changes stop the refit on resize."""
        if user:
            self.auto_fit = False
        self._changed()

    # --- the canvas's changes (it repaints for them itself) ----------------------------------------
    def resize(self, width: float, height: float) -> None:
        """The widget's new size: refitted while the user has not changed the view."""
        self.state.set_widget_size(width, height)
        if self.auto_fit:
            self.state.fit()

    def show_image(self, width: int, height: int, *, keep: bool) -> None:
        """A new frame of ``width`` x ``height`` pixels: the view is kept when ``keep``, else refitted."""
        self.state.set_image_size(width, height)
        if not keep:
            self.auto_fit = True
            self.state.fit()
