"""Multi-planar views of a DICOM series: axial, coronal and sagittal, linked by a crosshair.

Each view keeps the true physical aspect: a displayed pixel is ``spacing`` millimetres wide and tall
(``Source.spacing`` is (z, y, x) mm), so a coronal or sagittal view of 2.5-mm slices is not squashed.
Coronal and sagittal views show the slice index growing upwards (the series is sorted along its
normal, which for axial CT runs feet to head).

The label "volume" is the edit session's LabelDocument itself: frame k's label map is axial slice k.
A brush stroke in any view (Shift + drag) becomes ONE undoable command of per-slice PaintCommands
writing exactly the voxels under the brush (a disc of ``radius_mm`` in the view's plane), so the other
two views, the canvas and the saved annotations all follow the same document.

Click or drag (no Shift) moves the crosshair; the wheel steps through the view's own axis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QWheelEvent
from PySide6.QtWidgets import QDialog, QGridLayout, QLabel, QStatusBar, QWidget

from app.core.commands import Command, LabelDocument, PaintCommand, UndoStack
from app.core.conversions import MacroCommand

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.editing_controller import EditingController
    from app.editor.frame_loader import LoadedFrame

Plane = Literal["axial", "coronal", "sagittal"]
Array = npt.NDArray[np.generic]
PLANES: tuple[Plane, ...] = ("axial", "coronal", "sagittal")
_LINE = {"axial": "#ffd24d", "coronal": "#4fd2ff", "sagittal": "#ff6bd0"}  # each plane's colour


def hex_rgb(color: str) -> tuple[int, int, int]:
    c = QColor(color)
    return c.red(), c.green(), c.blue()


class MprModel:
    """The volume, its spacing, the crosshair (k, j, i) and the plane <-> voxel mapping."""

    def __init__(
        self,
        volume: npt.NDArray[np.generic],
        spacing: tuple[float, float, float] | None,
        doc: LabelDocument,
        stack: UndoStack,
        window: tuple[float, float] | None = None,
    ) -> None:
        if volume.ndim != 3 or tuple(volume.shape[1:]) != doc.shape or volume.shape[0] != doc.frame_count:
            raise ValueError("the volume and the label document differ in shape")
        self.volume, self.doc, self.stack = volume, doc, stack
        self.spacing = tuple(float(s) for s in (spacing or (1.0, 1.0, 1.0)))
        if window is None:
            values = np.asarray(volume, dtype=np.float32)
            lo, hi = float(np.percentile(values, 1)), float(np.percentile(values, 99))
            window = ((lo + hi) / 2, max(hi - lo, 1.0))
        self.window = window
        z, y, x = volume.shape
        self.cross = [z // 2, y // 2, x // 2]

    # --- geometry ----------------------------------------------------------------------------------
    def shape_of(self, plane: Plane) -> tuple[int, int]:
        """(rows, cols) of a plane's image."""
        z, y, x = self.volume.shape
        return {"axial": (y, x), "coronal": (z, x), "sagittal": (z, y)}[plane]

    def pixel_mm(self, plane: Plane) -> tuple[float, float]:
        """(row height, column width) in mm."""
        sz, sy, sx = self.spacing
        return {"axial": (sy, sx), "coronal": (sz, sx), "sagittal": (sz, sy)}[plane]

    def to_voxel(self, plane: Plane, row: int, col: int) -> tuple[int, int, int]:
        k, j, i = self.cross
        z = self.volume.shape[0]
        if plane == "axial":
            return k, row, col
        if plane == "coronal":
            return z - 1 - row, j, col
        return z - 1 - row, col, i

    def to_plane(self, plane: Plane) -> tuple[int, int]:
        """(row, col) of the crosshair in a plane's image."""
        k, j, i = self.cross
        z = self.volume.shape[0]
        return {"axial": (j, i), "coronal": (z - 1 - k, i), "sagittal": (z - 1 - k, j)}[plane]

    def move(self, plane: Plane, row: int, col: int) -> None:
        rows, cols = self.shape_of(plane)
        row, col = min(max(row, 0), rows - 1), min(max(col, 0), cols - 1)
        self.cross = list(self.to_voxel(plane, row, col))

    def step(self, plane: Plane, delta: int) -> None:
        axis = PLANES.index(plane)  # axial moves k, coronal j, sagittal i
        self.cross[axis] = min(max(self.cross[axis] + delta, 0), self.volume.shape[axis] - 1)

    # --- pixels ----------------------------------------------------------------------------------
    def _plane(self, array_of: Callable[[int], Array], plane: Plane) -> Array:
        k, j, i = self.cross
        if plane == "axial":
            return array_of(k)
        rows = [
            array_of(kk)[j, :] if plane == "coronal" else array_of(kk)[:, i]
            for kk in range(self.doc.frame_count)
        ]
        return np.stack(rows[::-1])  # fmt: skip

    def grey(self, plane: Plane) -> npt.NDArray[np.uint8]:
        c, w = self.window
        values = self._plane(lambda kk: self.volume[kk], plane).astype(np.float32)
        return np.ascontiguousarray(np.clip((values - (c - w / 2)) * (255.0 / w), 0, 255).astype(np.uint8))

    def labels(self, plane: Plane) -> npt.NDArray[np.uint16]:
        empty = np.zeros(self.doc.shape, dtype=np.uint16)

        def of(kk: int) -> npt.NDArray[np.uint16]:
            return self.doc.label_map(kk) if self.doc.has_label_map(kk) else empty

        return np.asarray(self._plane(of, plane), dtype=np.uint16)

    # --- painting ----------------------------------------------------------------------------------
    def brush(self, plane: Plane, row: float, col: float, radius_mm: float) -> npt.NDArray[np.bool_]:
        """The plane pixels whose centre is within ``radius_mm`` of (row, col) (image coords)."""
        rows, cols = self.shape_of(plane)
        rmm, cmm = self.pixel_mm(plane)
        rr, cc = np.mgrid[0:rows, 0:cols]
        return np.asarray(((rr + 0.5 - row) * rmm) ** 2 + ((cc + 0.5 - col) * cmm) ** 2 <= radius_mm**2)

    def paint_command(self, plane: Plane, stroke: npt.NDArray[np.bool_], value: int) -> Command | None:
        """One undo step writing ``value`` into the voxels of ``stroke`` (a mask of the plane image)."""
        k, j, i = self.cross
        z = self.volume.shape[0]
        commands: list[Command] = []
        if plane == "axial":
            if stroke.any():
                commands.append(PaintCommand(k, [(0, 0, stroke)], value, text="Paint (axial)"))
        else:
            for row in np.flatnonzero(stroke.any(axis=1)):
                line = stroke[row]
                frame = z - 1 - int(row)
                patch = (j, 0, line[None, :]) if plane == "coronal" else (0, i, line[:, None])
                commands.append(PaintCommand(frame, [patch], value, text=f"Paint ({plane})"))
        if not commands:
            return None
        return MacroCommand(commands, f"Paint in the {plane} view")


class PlaneView(QWidget):
    """One plane: the picture at its physical aspect, the labels, the crosshair; mouse and wheel."""

    changed = Signal()

    def __init__(
        self, model: MprModel, plane: Plane, colors: Mapping[int, str], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.model, self.plane, self.colors = model, plane, dict(colors)
        self.value, self.radius_mm = 1, 5.0
        self._stroke: npt.NDArray[np.bool_] | None = None
        self.setMinimumSize(160, 120)
        self.setMouseTracking(False)

    def image_rect(self) -> QRectF:
        """Where the plane image is drawn: centred, largest size with the physical aspect."""
        rows, cols = self.model.shape_of(self.plane)
        rmm, cmm = self.model.pixel_mm(self.plane)
        width_mm, height_mm = cols * cmm, rows * rmm
        scale = min(self.width() / width_mm, self.height() / height_mm)
        w, h = width_mm * scale, height_mm * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def to_image(self, pos: QPointF) -> tuple[float, float]:
        rect = self.image_rect()
        rows, cols = self.model.shape_of(self.plane)
        return (pos.y() - rect.top()) * rows / rect.height(), (pos.x() - rect.left()) * cols / rect.width()

    def _overlay(self, grey: npt.NDArray[np.uint8]) -> QImage:
        labels = self.model.labels(self.plane)
        rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
        if self._stroke is not None:
            labels = np.where(self._stroke, self.value, labels)
        for index, color in self.colors.items():
            hit = labels == index
            if hit.any():
                rgb[hit] = 0.55 * rgb[hit] + 0.45 * np.asarray(hex_rgb(color), dtype=np.float32)
        data = np.ascontiguousarray(rgb.astype(np.uint8))
        h, w = data.shape[:2]
        return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#0d0d0f"))
        rect = self.image_rect()
        p.drawImage(rect, self._overlay(self.model.grey(self.plane)))
        rows, cols = self.model.shape_of(self.plane)
        row, col = self.model.to_plane(self.plane)
        x = rect.left() + (col + 0.5) * rect.width() / cols
        y = rect.top() + (row + 0.5) * rect.height() / rows
        others = [q for q in PLANES if q != self.plane]
        vertical = {"axial": "sagittal", "coronal": "sagittal", "sagittal": "coronal"}[self.plane]
        horizontal = next(q for q in others if q != vertical)
        p.setPen(QPen(QColor(_LINE[vertical]), 1))
        p.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        p.setPen(QPen(QColor(_LINE[horizontal]), 1))
        p.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
        p.setPen(QColor(_LINE[self.plane]))
        k, j, i = self.model.cross
        p.drawText(QPointF(6, 16), f"{self.plane}  (slice {k + 1}, row {j}, col {i})")
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._stroke = np.zeros(self.model.shape_of(self.plane), dtype=bool)
            self._dab(event.position())
        else:
            self._move(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if not event.buttons() & Qt.MouseButton.LeftButton:
            return
        if self._stroke is not None:
            self._dab(event.position())
        else:
            self._move(event.position())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        stroke, self._stroke = self._stroke, None
        if stroke is not None:
            command = self.model.paint_command(self.plane, stroke, self.value)
            if command is not None:
                self.model.stack.push(command)  # the document tells every view to repaint
            self.changed.emit()

    def _move(self, pos: QPointF) -> None:
        row, col = self.to_image(pos)
        self.model.move(self.plane, int(np.floor(row)), int(np.floor(col)))
        self.changed.emit()

    def _dab(self, pos: QPointF) -> None:
        assert self._stroke is not None
        row, col = self.to_image(pos)
        self._stroke |= self.model.brush(self.plane, row, col, self.radius_mm)
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.model.step(self.plane, 1 if event.angleDelta().y() > 0 else -1)
        self.changed.emit()


class MprView(QWidget):
    """The three planes side by side, repainting together whenever the crosshair or labels change."""

    def __init__(self, model: MprModel, colors: Mapping[int, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.views = {plane: PlaneView(model, plane, colors, self) for plane in PLANES}
        self.help = QLabel(
            "click: move the crosshair   Shift+drag: paint the class   wheel: step through", self
        )
        layout = QGridLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.views["axial"], 0, 0, 2, 1)
        layout.addWidget(self.views["coronal"], 0, 1)
        layout.addWidget(self.views["sagittal"], 1, 1)
        layout.addWidget(self.help, 2, 0, 1, 2)
        layout.setColumnStretch(0, 3)
        layout.setColumnStretch(1, 2)
        layout.setRowStretch(0, 1)
        layout.setRowStretch(1, 1)
        layout.setRowStretch(2, 0)
        for view in self.views.values():
            view.changed.connect(self.refresh)
        model.doc.listeners.append(self._document_changed)

    def set_brush(self, value: int, radius_mm: float) -> None:
        for view in self.views.values():
            view.value, view.radius_mm = value, radius_mm

    def _document_changed(self, frame: int, bbox: object) -> None:
        self.refresh()

    def refresh(self) -> None:
        for view in self.views.values():
            view.update()

    def detach(self) -> None:
        if self._document_changed in self.model.doc.listeners:
            self.model.doc.listeners.remove(self._document_changed)


class MprHost(Protocol):
    """What View > Multi-planar views needs from the main window."""

    @property
    def project(self) -> Project: ...

    @property
    def editing(self) -> EditingController: ...

    @property
    def current(self) -> LoadedFrame | None: ...

    @property
    def window_level(self) -> tuple[float, float] | None: ...

    def statusBar(self) -> QStatusBar: ...  # QMainWindow's


def open_mpr_for(window: MprHost, parent: QWidget) -> None:
    """View > Multi-planar views: the current series' volume is decoded on a worker, then shown
    in a dialog over ``parent`` (the window itself)."""
    from app.editor.workers import submit

    current, session = window.current, window.editing.session
    if current is None or session is None or current.source.kind != "dicom" or current.source.frame_count < 2:
        window.statusBar().showMessage("Multi-planar views need a DICOM series (more than one slice).", 8000)
        return
    source, doc, stack = current.source, session.doc, session.stack
    colors = {i + 1: c.color for i, c in enumerate(window.project.ontology.classes)}

    def shown(volume: np.ndarray) -> None:
        if window.editing.session is not session:
            return  # the user moved on meanwhile
        model = MprModel(np.asarray(volume), source.spacing, doc, stack, window.window_level)
        model.cross[0] = current.index
        dialog = QDialog(parent)
        dialog.setWindowTitle(f"Multi-planar views - {current.asset.rel_path}")
        view = MprView(model, colors, dialog)
        view.set_brush(window.editing.tools.class_index, 4.0)
        QGridLayout(dialog).addWidget(view, 0, 0)
        dialog.finished.connect(lambda _result: view.detach())
        dialog.resize(1200, 800)
        dialog.show()

    def failed(message: str) -> None:
        window.statusBar().showMessage(f"Could not build the volume: {message}", 10_000)

    submit(source.volume, shown, failed)
