"""The main window: wires the asset list, the canvas, the panels, the actions. It only wires."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QPlainTextEdit, QToolBar, QWidget

from app.config import user_config_dir
from app.core.records import Asset
from app.editor import actions
from app.editor.annotation_panel import AnnotationPanel
from app.editor.asset_list import AssetListPanel
from app.editor.canvas import create_canvas
from app.editor.class_panel import ClassPanel
from app.editor.editing_controller import EditingController
from app.editor.help_overlay import HelpOverlay
from app.editor.tool_registry import TOOLS
from app.editor.workers import submit

if TYPE_CHECKING:
    from app.api import Project
    from app.sources import Source
    from app.workflow.editing import EditSession
    from app.workflow.journal import Journal

WINDOW_PRESET_KEYS = ("lung", "mediastinum", "bone", "brain", "abdomen")


@dataclass
class LoadedFrame:
    asset: Asset
    source: Source
    index: int
    raw: npt.NDArray[Any]


class MainWindow(QMainWindow):
    def __init__(
        self, project: Project, parent: QWidget | None = None, *, journal: Journal | None = None
    ) -> None:
        super().__init__(parent)
        from app.workflow.journal import Journal

        self.project = project
        self.setWindowTitle(f"Sitelabel - {project.name}")
        self.resize(1500, 950)
        self._tokens = itertools.count()
        self._pending: object = None
        self.current: LoadedFrame | None = None
        self.window_level: tuple[float, float] | None = None
        self._sources: dict[int, Source] = {}

        self.canvas = create_canvas(self)
        self.setCentralWidget(self.canvas)
        self.editing = EditingController(project, self.canvas, self, journal or Journal())
        self.assets = AssetListPanel(self)
        self.classes = ClassPanel(self)
        self.annotation_panel = AnnotationPanel(self)
        self.info = QPlainTextEdit(self)
        self.info.setReadOnly(True)  # plain text only: tags from files are never rendered as rich text
        self._dock(self.assets, "Assets", Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock(self.classes, "Classes", Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock(self.annotation_panel, "Annotation", Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock(self.info, "Details", Qt.DockWidgetArea.RightDockWidgetArea)
        self.save_label, self.frame_label, self.position_label = QLabel(self), QLabel(self), QLabel(self)
        for label in (self.save_label, self.frame_label, self.position_label):
            self.statusBar().addPermanentWidget(label)
        self.statusBar().addWidget(QLabel(f"{project.user_name} @ {project.db.url}"))
        self.help = HelpOverlay(self.canvas)
        self.player = QTimer(self)
        self.player.timeout.connect(lambda: self.step_frame(1, wrap=True))

        self.assets.asset_chosen.connect(self.open_asset)
        self.classes.class_chosen.connect(self.editing.set_class)
        self.canvas.frame_step.connect(self.step_frame)
        self.canvas.hovered.connect(self._show_position)
        self.canvas.window_changed.connect(lambda c, w: self.set_window((c, w)))
        self.editing.status_changed.connect(self.save_label.setText)
        self.editing.session_opened.connect(self._session_opened)
        self.editing.selection_changed.connect(self.annotation_panel.show_attributes_of)
        self.canvas.pointer_pressed.connect(lambda _x, _y: self.editing.pointer_pressed())
        self.bindings = self._bindings()
        self.action_by_text = actions.install(self, self.bindings)
        self.help.set_entries(actions.help_entries(self.bindings))
        self.action_by_text["Brush"].setChecked(True)
        self._add_toolbar()
        self.classes.set_ontology(project.ontology)
        self._restore_layout()
        self.reload_assets()

    # --- set-up -----------------------------------------------------------------------------
    def _dock(self, widget: QWidget, title: str, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)

    def _bindings(self) -> list[actions.Binding]:
        b = actions.Binding
        table = [
            b("&File", "Save now", "Ctrl+S", self.editing.save),
            b("&File", "Export labels...", "Ctrl+E", self.export_labels),
            b("&Edit", "Undo", "Ctrl+Z", self.editing.undo),
            b("&Edit", "Redo", "Ctrl+Shift+Z or Ctrl+Y", self.editing.redo),
            b(
                "&Edit",
                "Convert selected: mask to polygons, polygon to mask",
                "Ctrl+M",
                self.editing.convert_selected,
            ),
            b(
                "&Edit",
                "Class pixels on this frame to polygons",
                "Ctrl+Shift+M",
                self.editing.class_pixels_to_polygons,
            ),
            b("&Navigate", "Next asset", "PgDown or Ctrl+Right", lambda: self.assets.step(1)),
            b("&Navigate", "Previous asset", "PgUp or Ctrl+Left", lambda: self.assets.step(-1)),
            b("&Navigate", "Next frame / slice", "Down or .", lambda: self.step_frame(1)),
            b("&Navigate", "Previous frame / slice", "Up or ,", lambda: self.step_frame(-1)),
            b("&Navigate", "Play / pause video", "K", self.toggle_play),
            b("&View", "Fit to window", "F", self.canvas.fit),
            b("&View", "Zoom in", "+ or =", lambda: self.canvas.zoom_by(1.25)),
            b("&View", "Zoom out", "-", lambda: self.canvas.zoom_by(0.8)),
            b("&View", "Rotate view", "Ctrl+R", self.canvas.rotate90),
            b("&View", "Flip view", "Ctrl+H", self.canvas.flip),
            b("&View", "Outline labels", "Ctrl+O", self._toggle_outline),
            b("&View", "Keyboard shortcuts", "F1 or ?", self.help.toggle),
        ]
        from app.sources import WINDOW_PRESETS

        for number, name in enumerate(WINDOW_PRESET_KEYS, start=1):
            if name in WINDOW_PRESETS:
                preset = WINDOW_PRESETS[name]
                table.append(
                    b("&Window", f"Window: {name}", f"Ctrl+{number}", partial(self.set_window, preset))
                )
        table.append(b("&Window", "Window: from file", "Ctrl+0", lambda: self.set_window(None)))
        for spec in TOOLS:
            table.append(
                b(
                    "&Tools",
                    spec.name.capitalize(),
                    spec.shortcut,
                    partial(self.editing.set_tool, spec.name),
                    checkable_group="tools",
                )
            )
        for cls in self.project.ontology.classes:
            if cls.hotkey:
                table.append(
                    b("&Classes", f"Class: {cls.name}", cls.hotkey, partial(self.classes.choose, cls.name))
                )
        return table

    def _add_toolbar(self) -> None:
        bar = QToolBar("Tools", self)
        bar.setObjectName("toolbar-tools")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for name in ("Undo", "Redo"):
            bar.addAction(self.action_by_text[name])
        bar.addSeparator()
        for spec in TOOLS:
            action = self.action_by_text[spec.name.capitalize()]
            action.setToolTip(f"{spec.help} ({spec.shortcut})")
            bar.addAction(action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)

    def export_labels(self) -> None:
        from app.editor.export_dialog import ExportDialog

        self.editing.save_now()  # what is on screen must be in the export
        ExportDialog(self.project, self).exec()

    def _session_opened(self, session: EditSession) -> None:
        self.annotation_panel.bind(self.project.ontology, session.doc, session.stack)
        session.stack.changed.append(self.annotation_panel.refresh)

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
        self.player.stop()
        self.editing.close_session()
        settings = self._settings()
        settings.setValue("geometry", self.saveGeometry())
        settings.setValue("state", self.saveState())
        for source in self._sources.values():
            source.close()
        super().closeEvent(event)

    # --- data -------------------------------------------------------------------------------
    def reload_assets(self) -> None:
        assets = self.project.assets()
        self.assets.set_assets(assets, self.project.open_thread_counts())
        if assets:
            self.assets.select_row(0)
        else:
            self.statusBar().showMessage("This project has no data yet: import some with `sitelabel import`.")

    def open_asset(self, asset: Asset) -> None:
        self.player.stop()
        self.editing.open_asset(asset)
        self._load(asset, 0, refit=True)

    def step_frame(self, delta: int, *, wrap: bool = False) -> None:
        if self.current is None:
            return
        count = self.current.source.frame_count
        index = self.current.index + delta
        if wrap:
            index %= count
        if 0 <= index < count and index != self.current.index:
            self._load(self.current.asset, index, refit=False)

    def toggle_play(self) -> None:
        if self.player.isActive() or self.current is None or self.current.source.frame_count < 2:
            self.player.stop()
            return
        fps = float(self.current.source.metadata.get("fps") or 10.0)
        self.player.start(max(1, int(1000 / fps)))

    def set_window(self, window: tuple[float, float] | None) -> None:
        if window is None and self.current is not None:
            window = self.current.source.window
        self.window_level = window
        if window is not None:
            self.canvas.set_window(*window)
            self.editing.set_window(window)

    def _toggle_outline(self) -> None:
        self.canvas.set_label_style(outline=not getattr(self.canvas, "outline", False))

    def _load(self, asset: Asset, index: int, *, refit: bool) -> None:
        token = (next(self._tokens), refit)
        self._pending = token
        submit(token, lambda: self._read(asset, index), self._loaded, self._failed)

    def _read(self, asset: Asset, index: int) -> LoadedFrame:
        """Runs on a worker thread: opening and decoding only; touches no widget."""
        source = self._sources.get(asset.id)
        if source is None:
            source = self.project.open_asset(asset)
            self._sources[asset.id] = source
        return LoadedFrame(asset, source, index, source.frame(index))

    def _loaded(self, token: object, result: object) -> None:
        if token is not self._pending or not isinstance(result, LoadedFrame):
            return  # a newer request superseded this one
        first = self.current is None or self.current.asset.id != result.asset.id
        self.current = result
        if first:
            self.window_level = result.source.window
        invert = str(result.source.metadata.get("photometric", "")) == "MONOCHROME1"
        self.canvas.set_image(result.raw, window=self.window_level, invert=invert, keep_view=not first)
        self.editing.show_frame(result.index, result.raw, self.window_level or self.canvas.window)
        count = result.source.frame_count
        self.frame_label.setText(f"frame {result.index + 1}/{count}" if count > 1 else "")
        if first:
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
