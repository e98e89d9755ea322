"""The main window: wires the asset list, the canvas, the panels, the actions. It only wires."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QSizePolicy,
    QToolBar,
    QWidget,
)

from app.config import user_config_dir
from app.core.permissions import Action
from app.core.records import Asset
from app.editor import actions
from app.editor.activity_view import ActivityView
from app.editor.annotation_panel import AnnotationPanel
from app.editor.asset_list import AssetListPanel
from app.editor.canvas import create_canvas
from app.editor.class_panel import ClassPanel
from app.editor.comments_panel import CommentsPanel
from app.editor.editing_controller import OFFLINE_STYLE, EditingController
from app.editor.frame_loader import FrameLoader, LoadedFrame
from app.editor.help_overlay import HelpOverlay
from app.editor.models_panel import ModelsPanel
from app.editor.mpr_view import open_mpr_for
from app.editor.plain import plain_label, plain_tip
from app.editor.prelabel_panel import PrelabelPanel
from app.editor.project_settings_dialog import edit_project_settings
from app.editor.queue_panel import SKIP_KEYS, START_KEYS, SUBMIT_KEYS, QueuePanel
from app.editor.review_pane import ReviewPane
from app.editor.status_messages import StatusMessages
from app.editor.timeline import TrackPanel
from app.editor.tool_registry import TOOLS

if TYPE_CHECKING:
    from app.api import Project
    from app.sources import Source
    from app.workflow.editing import EditSession
    from app.workflow.journal import Journal

WINDOW_PRESET_KEYS = ("lung", "mediastinum", "bone", "brain", "abdomen")


class MainWindow(QMainWindow):
    frame_shown = Signal(int, int)  # (asset id, frame index) handed to the canvas

    def __init__(
        self, project: Project, parent: QWidget | None = None, *, journal: Journal | None = None
    ) -> None:
        super().__init__(parent)
        from app.workflow.journal import Journal

        self.project = project
        self.setWindowTitle(f"Sitelabel - {project.name}")
        self.resize(1500, 950)
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
        self.comments = CommentsPanel(project, self.canvas, self)
        self._dock(self.comments, "Comments", Qt.DockWidgetArea.LeftDockWidgetArea)
        self.queue = QueuePanel(project, self, self)
        self._dock(self.queue, "Queue", Qt.DockWidgetArea.LeftDockWidgetArea)
        # labeling from the queue or browsing the assets: one tab at a time, the queue raised on Start
        assets_dock, queue_dock = (self.findChild(QDockWidget, f"dock-{n}") for n in ("assets", "queue"))
        if assets_dock is not None and queue_dock is not None:
            self.tabifyDockWidget(assets_dock, queue_dock)
            assets_dock.raise_()
        self.queue.controller.notice.connect(lambda text: self.statusBar().showMessage(text, 20_000))
        self.review: ReviewPane | None = None
        if project.can(Action.REVIEW):  # reviewers and above (the API enforces it anyway)
            self.review = ReviewPane(project, self.canvas, self.editing, self)
            self._dock(self.review, "Review", Qt.DockWidgetArea.LeftDockWidgetArea)
            # a third work list beside the assets and the queue (the pane needs the height), in front
            review_dock = self.findChild(QDockWidget, "dock-review")
            if assets_dock is not None and review_dock is not None:
                self.tabifyDockWidget(assets_dock, review_dock)
                review_dock.raise_()
                self.resizeDocks([review_dock], [720], Qt.Orientation.Vertical)  # most of the column
            self.review.asset_requested.connect(lambda asset: self.open_asset_id(asset.id))
            self.frame_shown.connect(self.review.frame_shown)
        self.activity = ActivityView(project, self)  # loads when first shown
        self._dock(self.activity, "Activity", Qt.DockWidgetArea.BottomDockWidgetArea)
        activity_dock = self.findChild(QDockWidget, "dock-activity")
        if activity_dock is not None:
            activity_dock.hide()  # hidden by default (Ctrl+Shift+A); the saved layout may show it
        self.activity.asset_requested.connect(self.open_asset_id)
        # tracks timeline under the canvas: keyframes, track forward, slice interpolation
        self.tracks = TrackPanel(
            project,
            self.canvas,
            self.editing,
            lambda: (self.current.asset, self.current.source) if self.current else None,
        )
        self._dock(self.tracks, "Timeline", Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tracks.frame_requested.connect(self.show_frame)
        self.frame_shown.connect(self.tracks.frame_shown)
        # model-assisted labeling: the pre-labels of the item on screen, and the site's models
        self.prelabels = PrelabelPanel(  # review switches to the select tool (and checks its button)
            project,
            self.editing,
            self.canvas,
            self._use_select_tool,
            self,
        )
        self._dock(self.prelabels, "Pre-labels", Qt.DockWidgetArea.RightDockWidgetArea)
        self.models_panel = ModelsPanel(
            project,
            lambda: self.current.asset.id if self.current else None,
            self.editing.saves.save_now,
            self,
        )
        self._dock(self.models_panel, "Models", Qt.DockWidgetArea.RightDockWidgetArea)
        models_dock = self.findChild(QDockWidget, "dock-models")
        if models_dock is not None:  # the model list and quality load when the dock is first shown
            models_dock.visibilityChanged.connect(self.models_panel.visibility_changed)
        self.frame_shown.connect(self.prelabels.frame_shown)
        self.editing.session_opened.connect(self.prelabels.session_opened)
        self.editing.selection_changed.connect(self.prelabels.selection_changed)
        self.prelabels.notice.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        self.models_panel.notice.connect(lambda text: self.statusBar().showMessage(text, 20_000))
        self.models_panel.prelabels_changed.connect(self._reopen_current)
        self.models_panel.models_changed.connect(self.prelabels.load_thresholds)
        self.save_label, self.frame_label, self.position_label = QLabel(self), QLabel(self), QLabel(self)
        for label in (self.save_label, self.frame_label, self.position_label):
            self.statusBar().addPermanentWidget(label)
        where = plain_label(f"{project.user_name} @ {project.db.url}", self)  # a path may hold "<"
        where.setToolTip(plain_tip(where.text()))
        # the save state matters more: this label yields its room to a long "Offline, ..." message
        where.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.statusBar().addWidget(where, 1)
        # a long message keeps its end readable: a path in it is elided to the room left, whole in
        # the tooltip; fitted again when that room changes (a resize, a permanent label's new text)
        self.status_messages = StatusMessages(
            self.statusBar(), (self.save_label, self.frame_label, self.position_label), self
        )
        # reads frames on workers and shows them, or why not (an empty frame, drawing refused)
        self.loader = FrameLoader(
            project,
            canvas=self.canvas,
            editing=self.editing,
            assets=self.assets,
            comments=self.comments,
            info=self.info,
            frame_label=self.frame_label,
            status=self.status_messages,
            parent=self,
        )
        self.loader.frame_shown.connect(self.frame_shown)
        self.canvas.refused.connect(self.loader.refused)
        self.help = HelpOverlay(self.canvas)
        self.player = QTimer(self)
        self.player.timeout.connect(lambda: self.step_frame(1, wrap=True))

        self.assets.asset_chosen.connect(self.open_asset)
        self.classes.class_chosen.connect(self.editing.tools.set_class)
        self.canvas.frame_step.connect(self.step_frame)
        self.canvas.hovered.connect(self._show_position)
        self.canvas.window_changed.connect(lambda c, w: self.set_window((c, w)))
        self.editing.status_changed.connect(self._show_save_status)
        self.editing.session_opened.connect(self._session_opened)
        self.editing.selection_changed.connect(self.annotation_panel.show_attributes_of)
        self.canvas.pointer_pressed.connect(lambda _x, _y: self.editing.tools.pointer_pressed())
        self.comments.frame_requested.connect(self.show_frame)
        self.comments.threads_changed.connect(
            lambda _asset: self.assets.set_open_issues(self.project.open_thread_counts())
        )
        self.bindings = self._bindings()
        self.actions_by_id = actions.install(self, self.bindings)  # look actions up by id, never by text
        self.help.set_entries(
            actions.help_entries(self.bindings) + self.comments.help_entries() + self.prelabels.help_entries()
        )
        self.actions_by_id[actions.tool_action("brush")].setChecked(True)
        self._add_toolbar()
        self.classes.set_ontology(project.ontology)
        self._arrange_docks()
        self._restore_layout()
        self.reload_assets()

    # --- set-up -----------------------------------------------------------------------------
    def _arrange_docks(self) -> None:
        """The default layout leaves the canvas most of the window: the work lists share one tab
        group on the left, the item's details and model panels one on the right, and the timeline
        shows only for videos and series. A layout the user saved replaces this."""
        found = {d.objectName().removeprefix("dock-"): d for d in self.findChildren(QDockWidget)}
        for group in (("assets", "queue", "review", "comments"), ("details", "pre-labels", "models")):
            docks = [found[name] for name in group if name in found]
            for other in docks[1:]:
                self.tabifyDockWidget(docks[0], other)
        front = "review" if "review" in found else "assets"
        for name in (front, "details"):
            if name in found:
                found[name].raise_()
        left, right = [found[n] for n in ("assets", "classes") if n in found], 320
        self.resizeDocks(left, [300, right][: len(left)], Qt.Orientation.Horizontal)
        timeline = found.get("timeline")
        if timeline is not None:
            timeline.hide()
            self.editing.session_opened.connect(
                lambda session: timeline.setVisible(session.asset.frame_count > 1)
            )

    def _dock(self, widget: QWidget, title: str, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)

    def _bindings(self) -> list[actions.Binding]:
        b, s = actions.Binding, "sitelabel."
        table = [
            b(s + "file.save", "&File", "Save now", "Ctrl+S", self.editing.saves.save),
            b(s + "file.export", "&File", "Export labels...", "Ctrl+E", self.export_labels),
            b(
                s + "project.edit_ontology",
                "&Project",
                "Edit ontology...",
                "Ctrl+Shift+O",
                self.edit_ontology,
            ),
            b(
                s + "project.settings",
                "&Project",
                "Project settings...",
                "",
                partial(edit_project_settings, self.project, self),
            ),
            b(s + "edit.undo", "&Edit", "Undo", "Ctrl+Z", self.editing.undo),
            b(s + "edit.redo", "&Edit", "Redo", "Ctrl+Shift+Z or Ctrl+Y", self.editing.redo),
            b(
                s + "edit.convert_selected",
                "&Edit",
                "Convert selected: mask to polygons, polygon to mask",
                "Ctrl+M",
                self.editing.tools.convert_selected,
            ),
            b(
                s + "edit.class_pixels_to_polygons",
                "&Edit",
                "Class pixels on this frame to polygons",
                "Ctrl+Shift+M",
                self.editing.tools.class_pixels_to_polygons,
            ),
            b(s + "queue.start", "&Queue", "Start labeling (claim a batch)", START_KEYS, self.queue.start),
            b(s + "queue.submit", "&Queue", "Submit item and open the next", SUBMIT_KEYS, self.queue.submit),
            b(s + "queue.skip", "&Queue", "Skip item (optional reason)", SKIP_KEYS, self.queue.skip),
            b(
                s + "navigate.next_asset",
                "&Navigate",
                "Next asset",
                "PgDown or Ctrl+Right",
                lambda: self.assets.step(1),
            ),
            b(
                s + "navigate.previous_asset",
                "&Navigate",
                "Previous asset",
                "PgUp or Ctrl+Left",
                lambda: self.assets.step(-1),
            ),
            b(
                s + "navigate.next_frame",
                "&Navigate",
                "Next frame / slice",
                "Down or .",
                lambda: self.step_frame(1),
            ),
            b(
                s + "navigate.previous_frame",
                "&Navigate",
                "Previous frame / slice",
                "Up or ,",
                lambda: self.step_frame(-1),
            ),
            b(s + "navigate.play", "&Navigate", "Play / pause video", "K", self.toggle_play),
            b(s + "view.fit", "&View", "Fit to window", "F", self.canvas.view.fit),
            b(s + "view.zoom_in", "&View", "Zoom in", "+ or =", lambda: self.canvas.view.zoom_by(1.25)),
            b(s + "view.zoom_out", "&View", "Zoom out", "-", lambda: self.canvas.view.zoom_by(0.8)),
            b(s + "view.rotate", "&View", "Rotate view", "Ctrl+R", self.canvas.view.rotate90),
            b(s + "view.flip", "&View", "Flip view", "Ctrl+H", self.canvas.view.flip),
            b(s + "view.outline", "&View", "Outline labels", "Ctrl+O", self._toggle_outline),
            b(s + "view.shortcuts", "&View", "Keyboard shortcuts", "F1 or ?", self.help.toggle),
        ]
        from app.sources import WINDOW_PRESETS

        for number, name in enumerate(WINDOW_PRESET_KEYS, start=1):
            if name in WINDOW_PRESETS:
                preset = WINDOW_PRESETS[name]
                table.append(
                    b(
                        f"{s}window.{name}",
                        "&Window",
                        f"Window: {name}",
                        f"Ctrl+{number}",
                        partial(self.set_window, preset),
                    )
                )
        table.append(
            b(s + "window.from_file", "&Window", "Window: from file", "Ctrl+0", lambda: self.set_window(None))
        )
        table += self.comments.bindings()
        table += self.review.bindings() if self.review is not None else []
        table += self.activity.bindings()
        table += self.tracks.bindings()
        table += self.prelabels.bindings() + self.models_panel.bindings()
        table.append(
            b(
                s + "view.mpr",
                "&View",
                "Multi-planar views (DICOM series)",
                "Ctrl+Shift+P",
                partial(open_mpr_for, self, self),
            )
        )
        for spec in TOOLS:
            table.append(
                b(
                    actions.tool_action(spec.name),
                    "&Tools",
                    spec.name.capitalize(),
                    spec.shortcut,
                    partial(self.editing.tools.set_tool, spec.name),
                    checkable_group="tools",
                )
            )
        for cls in self.project.ontology.classes:
            if cls.hotkey:
                table.append(
                    b(
                        actions.class_action(cls.name),
                        "&Classes",
                        f"Class: {cls.name}",
                        cls.hotkey,
                        partial(self.classes.choose, cls.name),
                    )
                )
        return table

    def _add_toolbar(self) -> None:
        bar = QToolBar("Tools", self)
        bar.setObjectName("toolbar-tools")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for name in ("sitelabel.edit.undo", "sitelabel.edit.redo"):
            bar.addAction(self.actions_by_id[name])
        bar.addSeparator()
        for spec in TOOLS:
            action = self.actions_by_id[actions.tool_action(spec.name)]
            action.setToolTip(f"{spec.help} ({spec.shortcut})")
            bar.addAction(action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)

    def export_labels(self) -> None:
        from app.editor.export_dialog import ExportDialog

        self.editing.saves.save_now()  # what is on screen must be in the export
        ExportDialog(self.project, self).exec()

    def edit_ontology(self) -> None:
        """Project admins store a new ontology version; class hotkeys follow on the next start."""
        from app.editor.ontology_editor import edit_project_ontology

        stored = edit_project_ontology(self.project, self)
        if stored is not None:
            self.classes.set_ontology(stored)
            self.statusBar().showMessage(f"Ontology version {stored.version} saved (new hotkeys: restart).")

    def _use_select_tool(self) -> None:
        self.actions_by_id[actions.tool_action("select")].trigger()

    def _reopen_current(self) -> None:
        """After a pre-label pass: reload the item on screen, so its new pre-labels show."""
        frame = self.current
        if frame is not None:
            self.editing.open_asset(frame.asset)
            self.editing.show_frame(frame.index, frame.raw, self.window_level or self.canvas.window_level)

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
        self.queue.controller.close()
        self.editing.close_session()
        settings = self._settings()
        settings.setValue("geometry", self.saveGeometry())
        settings.setValue("state", self.saveState())
        self.loader.close()
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
        self.comments.set_asset(asset)
        self.loader.open(asset)

    def open_asset_id(self, asset_id: int) -> None:
        """Open an item by id (the activity view): selected in the asset list when listed there."""
        model, proxy = self.assets.model, self.assets.proxy
        for row in range(model.rowCount()):
            if model.asset_at(row).id == asset_id:
                index = proxy.mapFromSource(model.index(row, 0))
                if index.isValid() and index != self.assets.view.currentIndex():
                    self.assets.view.setCurrentIndex(index)  # opens it through asset_chosen
                    return
        if self.current is None or self.current.asset.id != asset_id:
            self.open_asset(self.project.asset(asset_id))

    def show_prepared(
        self, asset: Asset, source: Source, raw: npt.NDArray[Any], session: EditSession
    ) -> None:
        """open_asset for an item decoded ahead (the queue's next item): shown at once, with no
        worker round trip. Keep the two in step."""
        self.player.stop()
        self.editing.open_session(session)
        self.comments.set_asset(asset)
        self.loader.show_prepared(asset, source, raw)

    # the queue (QueueHost), the timeline and the comments ask these of the window
    @property
    def current(self) -> LoadedFrame | None:
        """The frame on screen; None before the first and while the item chosen could not be opened."""
        return self.loader.current

    @property
    def window_level(self) -> tuple[float, float] | None:
        return self.loader.window_level

    @window_level.setter
    def window_level(self, window: tuple[float, float] | None) -> None:
        self.loader.window_level = window

    def data_unavailable(self, asset: Asset, message: str) -> None:
        self.loader.data_unavailable(asset, message)

    def open_failure(self, asset_id: int) -> str | None:
        return self.loader.open_failure(asset_id)

    def is_opening(self, asset_id: int) -> bool:
        return self.loader.is_opening(asset_id)

    def forget_source(self, asset_id: int) -> None:
        self.loader.forget_source(asset_id)

    def step_frame(self, delta: int, *, wrap: bool = False) -> None:
        self.loader.step_frame(delta, wrap=wrap)

    def show_frame(self, index: int) -> None:
        self.loader.show_frame(index)

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
            self.editing.tools.set_window(window)

    def _toggle_outline(self) -> None:
        self.canvas.set_label_style(outline=not self.canvas.layers.outline)

    def _show_save_status(self, text: str) -> None:
        self.save_label.setText(text)
        self.save_label.setStyleSheet(OFFLINE_STYLE if self.editing.saves.offline else "")

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
