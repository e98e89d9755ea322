"""The main window: wires the asset list, the frame view and the info panels. It only wires."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QPlainTextEdit, QWidget

from app.config import user_config_dir
from app.core.annotations import Annotation
from app.core.display import apply_window
from app.core.records import Asset
from app.editor.asset_list import AssetListPanel
from app.editor.frame_view import FrameView
from app.editor.workers import submit

if TYPE_CHECKING:
    from app.api import Project
    from app.sources import Source


@dataclass
class LoadedFrame:
    asset: Asset
    source: Source
    index: int
    raw: npt.NDArray[Any]
    display: npt.NDArray[np.uint8]
    annotations: list[Annotation]


class MainWindow(QMainWindow):
    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.setWindowTitle(f"Sitelabel - {project.name}")
        self.resize(1400, 900)
        self._tokens = itertools.count()
        self._pending: object = None
        self.current: LoadedFrame | None = None
        self._sources: dict[int, Source] = {}
        self._colors = {c.name: c.color for c in project.ontology.classes}

        self.view = FrameView(self)
        self.setCentralWidget(self.view)
        self.assets = AssetListPanel(self)
        self.info = QPlainTextEdit(self)
        self.info.setReadOnly(True)  # plain text only: tags from files are never rendered as rich text
        self._dock(self.assets, "Assets", Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock(self.info, "Details", Qt.DockWidgetArea.RightDockWidgetArea)
        self.position_label = QLabel(self)
        self.frame_label = QLabel(self)
        self.statusBar().addPermanentWidget(self.frame_label)
        self.statusBar().addPermanentWidget(self.position_label)
        self.statusBar().addWidget(QLabel(f"{project.user_name} @ {project.db.url}"))

        self.assets.asset_chosen.connect(self.open_asset)
        self.view.frame_step.connect(self.step_frame)
        self.view.cursor_moved.connect(self._show_position)
        self._add_actions()
        self._restore_layout()
        self.reload_assets()

    # --- set-up -----------------------------------------------------------------------------
    def _dock(self, widget: QWidget, title: str, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)

    def _add_actions(self) -> None:
        bindings = [
            ("Next asset", "PgDown", lambda: self.assets.step(1)),
            ("Previous asset", "PgUp", lambda: self.assets.step(-1)),
            ("Next frame", "Down", lambda: self.step_frame(1)),
            ("Previous frame", "Up", lambda: self.step_frame(-1)),
            ("Fit to window", "F", self.view.fit),
            ("Zoom in", "+", lambda: self.view.zoom(1.25)),
            ("Zoom out", "-", lambda: self.view.zoom(0.8)),
        ]
        menu = self.menuBar().addMenu("&View")
        for text, keys, slot in bindings:
            action = QAction(text, self)
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(slot)
            menu.addAction(action)
            self.addAction(action)

    def _settings(self) -> QSettings:
        return QSettings(str(user_config_dir() / "layout.ini"), QSettings.Format.IniFormat)

    def _restore_layout(self) -> None:
        settings = self._settings()
        geometry, state = settings.value("geometry"), settings.value("state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:
        settings = self._settings()
        settings.setValue("geometry", self.saveGeometry())
        settings.setValue("state", self.saveState())
        for source in self._sources.values():
            source.close()
        super().closeEvent(event)

    # --- data -------------------------------------------------------------------------------
    def reload_assets(self) -> None:
        assets = self.project.assets()
        self.assets.set_assets(assets)
        if assets:
            self.assets.select_row(0)
        else:
            self.statusBar().showMessage("This project has no data yet: import some with `sitelabel import`.")

    def open_asset(self, asset: Asset) -> None:
        self._load(asset, 0, refit=True)

    def step_frame(self, delta: int) -> None:
        if self.current is None:
            return
        index = self.current.index + delta
        if 0 <= index < self.current.source.frame_count:
            self._load(self.current.asset, index, refit=False)

    def _load(self, asset: Asset, index: int, *, refit: bool) -> None:
        token = (next(self._tokens), refit)
        self._pending = token
        self.statusBar().showMessage(f"loading {asset.rel_path} frame {index + 1}...")
        submit(token, lambda: self._read(asset, index), self._loaded, self._failed)

    def _read(self, asset: Asset, index: int) -> LoadedFrame:
        """Runs on a worker thread: decode + window + annotations; touches no widget."""
        source = self._sources.get(asset.id)
        if source is None:
            source = self.project.open_asset(asset)
            self._sources[asset.id] = source
        raw = source.frame(index)
        invert = str(source.metadata.get("PhotometricInterpretation", "")) == "MONOCHROME1"
        display = apply_window(raw, source.window, invert=invert)
        annotations = self.project.annotation_objects(asset.id, frame=index)
        return LoadedFrame(asset, source, index, raw, display, annotations)

    def _loaded(self, token: object, result: object) -> None:
        if token is not self._pending or not isinstance(result, LoadedFrame):
            return  # a newer request superseded this one
        self.current = result
        refit = bool(token[1]) if isinstance(token, tuple) else False
        self.view.show_frame(result.display, refit=refit)
        self.view.show_annotations(result.annotations, self._colors)
        count = result.source.frame_count
        self.frame_label.setText(f"frame {result.index + 1}/{count}" if count > 1 else "")
        self.statusBar().clearMessage()
        self._show_details(result)

    def _failed(self, token: object, message: str) -> None:
        if token is self._pending:
            self.statusBar().showMessage(f"Could not open this asset: {message}")
            self.info.setPlainText(f"Could not open this asset:\n{message}")

    def _show_details(self, frame: LoadedFrame) -> None:
        a, s = frame.asset, frame.source
        lines = [f"{a.root}:{a.rel_path}", f"{s.kind}, {a.width} x {a.height}, {s.frame_count} frame(s)"]
        if s.spacing:
            lines.append("spacing (z, y, x) mm: " + ", ".join(f"{v:.3g}" for v in s.spacing))
        if s.window:
            lines.append(f"window C/W: {s.window[0]:.0f} / {s.window[1]:.0f}")
        lines += [f"warning: {w}" for w in s.warnings]
        lines.append(f"annotations on this frame: {len(frame.annotations)}")
        lines.append("")
        lines += [f"{k}: {v}" for k, v in sorted(s.metadata.items())]
        self.info.setPlainText("\n".join(lines))

    def _show_position(self, x: float, y: float) -> None:
        frame = self.current
        if frame is None:
            return
        col, row = int(np.floor(x)), int(np.floor(y))
        h, w = frame.raw.shape[:2]
        if 0 <= col < w and 0 <= row < h:
            value = frame.raw[row, col]
            unit = " HU" if frame.source.metadata.get("Modality") == "CT" else ""
            shown = value.tolist() if hasattr(value, "tolist") else value
            self.position_label.setText(f"x {col}  y {row}  value {shown}{unit}")
        else:
            self.position_label.setText("")
