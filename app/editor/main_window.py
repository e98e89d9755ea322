"""The main window: wires the asset list, the canvas, the panels, the actions. It only wires."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QFontMetrics
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QSizeGrip,
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
from app.editor.help_overlay import HelpOverlay
from app.editor.models_panel import ModelsPanel
from app.editor.mpr_view import open_mpr_for
from app.editor.plain import plain_label, plain_tip
from app.editor.prelabel_panel import PrelabelPanel
from app.editor.queue_panel import SKIP_KEYS, START_KEYS, SUBMIT_KEYS, QueuePanel
from app.editor.review_pane import ReviewPane
from app.editor.timeline import TrackPanel
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
    root_ok: bool = True  # False: shown from the cache while the asset's data folder is still gone


@dataclass
class FrameFailed:
    """A frame that could not be read: its data folder unmounted or offline, the file gone, corrupt
    or unsupported, or a decoder's bug."""

    asset: Asset
    index: int
    message: str  # one line for the status bar
    details: str  # the whole text, for the details pane
    reason: str  # why, in a few words ("its data folder is not reachable", "cannot decode PNG pixels: ...")
    path: str = ""  # the folder or file named in ``message``: elided first when the line is too long
    unreachable: bool = False  # the file or its data folder cannot be reached now (nothing is wrong with it)
    root_lost: bool = False  # the asset's whole data root is unreachable, not just this file


@dataclass(frozen=True, eq=False)
class _Request:
    """One frame asked of a worker; compared by identity (a newer request supersedes it)."""

    asset: Asset
    index: int
    opening: bool  # the asset is being opened, not stepped through: a failure must not leave the last image


def elide_path(text: str, path: str, metrics: QFontMetrics, width: int) -> str:
    """``text`` fitting ``width`` pixels by eliding ``path`` in it in the middle, so that the
    sentence's end (what to do, that the labels are safe) stays readable."""
    if not path or path not in text or metrics.horizontalAdvance(text) <= width:
        return text
    count = text.count(path)
    rest = metrics.horizontalAdvance(text.replace(path, ""))
    room = max((width - rest) // count, metrics.horizontalAdvance("/.../"))
    return text.replace(path, metrics.elidedText(path, Qt.TextElideMode.ElideMiddle, room))


def _name(asset: Asset) -> str:
    """What people know an asset by: its path under its data root (an archive member after "!")."""
    member = asset.member or ""
    return (asset.rel_path or asset.root) + (member if member.startswith("!") else "")


def _failure_details(asset: Asset, message: str, exc: BaseException, path: object) -> str:
    """The details pane's account of a failed read: what, where, the whole error chain, what next."""
    from app.core.errors import SitelabelError

    lines = [f"{asset.root}:{_name(asset)}"]
    if path is not None:
        lines.append(f"file: {path}")
    lines += ["", message, ""]
    if isinstance(exc, SitelabelError | OSError):
        seen: BaseException | None = exc
        while seen is not None and len(lines) < 40:
            lines.append(f"{type(seen).__name__}: {seen}")
            seen = seen.__cause__ or seen.__context__
    else:  # a bug: the traceback helps whoever reports it
        lines += "".join(traceback.format_exception(exc)).rstrip().splitlines()
    return "\n".join(lines)


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
        self._pending: object = None
        self.current: LoadedFrame | None = None
        self.window_level: tuple[float, float] | None = None
        self._sources: dict[int, Source] = {}
        # a data folder gone (share unmounted): one message per asset and outage, retried on navigation
        self._told: dict[int, str] = {}  # asset id -> data root, told about in this outage
        self._lost_roots: set[str] = set()
        self._retry: Asset | None = None  # could not be opened: the next navigation opens it again
        self._failure: FrameFailed | None = None  # why the item chosen is not on screen
        # asset id -> why its last open failed, until its image loads (the queue refuses to submit it)
        self._unopened: dict[int, str] = {}
        self._details = ""  # the details pane's text about the item on screen, without failure notes

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
            project, lambda: self.current.asset.id if self.current else None, self.editing.save_now, self
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
        self._status_full: tuple[str, str, str, int] | None = None  # (shown, whole text, path, timeout)
        self._status_fit = QTimer(self)
        self._status_fit.setSingleShot(True)
        self._status_fit.timeout.connect(self._refit_status)
        self.statusBar().messageChanged.connect(self._status_message_changed)
        self.statusBar().installEventFilter(self)
        self.canvas.refused.connect(
            lambda why: self._tell(why, self._failure.path if self._failure is not None else "")
        )
        self.help = HelpOverlay(self.canvas)
        self.player = QTimer(self)
        self.player.timeout.connect(lambda: self.step_frame(1, wrap=True))

        self.assets.asset_chosen.connect(self.open_asset)
        self.classes.class_chosen.connect(self.editing.set_class)
        self.canvas.frame_step.connect(self.step_frame)
        self.canvas.hovered.connect(self._show_position)
        self.canvas.window_changed.connect(lambda c, w: self.set_window((c, w)))
        self.editing.status_changed.connect(self._show_save_status)
        self.editing.session_opened.connect(self._session_opened)
        self.editing.selection_changed.connect(self.annotation_panel.show_attributes_of)
        self.canvas.pointer_pressed.connect(lambda _x, _y: self.editing.pointer_pressed())
        self.comments.frame_requested.connect(self.show_frame)
        self.comments.threads_changed.connect(
            lambda _asset: self.assets.set_open_issues(self.project.open_thread_counts())
        )
        self.bindings = self._bindings()
        self.action_by_text = actions.install(self, self.bindings)
        self.help.set_entries(
            actions.help_entries(self.bindings) + self.comments.help_entries() + self.prelabels.help_entries()
        )
        self.action_by_text["Brush"].setChecked(True)
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
        b = actions.Binding
        table = [
            b("&File", "Save now", "Ctrl+S", self.editing.save),
            b("&File", "Export labels...", "Ctrl+E", self.export_labels),
            b("&Project", "Edit ontology...", "Ctrl+Shift+O", self.edit_ontology),
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
            b("&Queue", "Start labeling (claim a batch)", START_KEYS, self.queue.start),
            b("&Queue", "Submit item and open the next", SUBMIT_KEYS, self.queue.submit),
            b("&Queue", "Skip item (optional reason)", SKIP_KEYS, self.queue.skip),
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
        table += self.comments.bindings()
        table += self.review.bindings() if self.review is not None else []
        table += self.activity.bindings()
        table += self.tracks.bindings()
        table += self.prelabels.bindings() + self.models_panel.bindings()
        table.append(
            b("&View", "Multi-planar views (DICOM series)", "Ctrl+Shift+P", partial(open_mpr_for, self))
        )
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

    def edit_ontology(self) -> None:
        """Project admins store a new ontology version; class hotkeys follow on the next start."""
        from app.editor.ontology_editor import edit_project_ontology

        stored = edit_project_ontology(self.project, self)
        if stored is not None:
            self.classes.set_ontology(stored)
            self.statusBar().showMessage(f"Ontology version {stored.version} saved (new hotkeys: restart).")

    def _use_select_tool(self) -> None:
        self.action_by_text["Select"].trigger()

    def _reopen_current(self) -> None:
        """After a pre-label pass: reload the item on screen, so its new pre-labels show."""
        frame = self.current
        if frame is not None:
            self.editing.open_asset(frame.asset)
            self.editing.show_frame(frame.index, frame.raw, self.window_level or self.canvas.window)

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
        self.comments.set_asset(asset)
        # the last image stays until this one is decoded: nothing drawn meanwhile may land on it
        name = _name(asset).rsplit("/", 1)[-1]
        self.canvas.lock_drawing(f"{name} is still opening: drawing starts when its image shows.")
        self._load(asset, 0, refit=True)

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
        kept = self._sources.setdefault(asset.id, source)
        if kept is not source:  # the editor had it open already: keep that one
            submit(None, source.close, lambda *_: None, lambda *_: None)
        token = _Request(asset, 0, True)
        self._pending = token
        # decoded ahead, maybe before its data folder went: that proves nothing about the folder now
        self._loaded(token, LoadedFrame(asset, kept, 0, raw, root_ok=asset.root not in self._lost_roots))

    def data_unavailable(self, asset: Asset, message: str) -> None:
        """The queue could not decode ``asset`` ahead: its data folder is unreachable. The list
        marks the folder's assets and the user is told once per outage; the screen stays as it is."""
        if asset.root in self._lost_roots:
            return  # told already; the list is marked
        self._lost_roots.add(asset.root)
        self.assets.set_root_available(asset.root, False)
        folder = self.project.config.all_data_roots.get(asset.root)
        self._tell(f"{message}. Your labels are safe.", str(folder) if folder is not None else "")

    def open_failure(self, asset_id: int) -> str | None:
        """Why the asset could not be opened, while its image has not loaded since (else None)."""
        return self._unopened.get(asset_id)

    def is_opening(self, asset_id: int) -> bool:
        """The asset's image is being read to be shown (the last image may still be on screen)."""
        pending = self._pending
        return isinstance(pending, _Request) and pending.opening and pending.asset.id == asset_id

    def forget_source(self, asset_id: int) -> None:
        """Close an asset's source once the queue moved past it (on a worker: closing waits for
        its decoding threads)."""
        if self.current is not None and self.current.asset.id == asset_id:
            return
        source = self._sources.pop(asset_id, None)
        if source is not None:
            submit(None, source.close, lambda *_: None, lambda *_: None)

    def step_frame(self, delta: int, *, wrap: bool = False) -> None:
        pending = self._pending
        if isinstance(pending, _Request) and pending.opening:
            return  # an asset is opening: a step now would show the last one under the new one's labels
        if self.current is None:
            if self._retry is not None:
                self._load(self._retry, 0, refit=True)
            return
        count = self.current.source.frame_count
        index = self.current.index + delta
        if wrap:
            index %= count
        if 0 <= index < count and index != self.current.index:
            self._load(self.current.asset, index, refit=False)

    def show_frame(self, index: int) -> None:
        if self.current is not None:
            self.step_frame(index - self.current.index)

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
        token = _Request(asset, index, refit)
        self._pending = token
        submit(token, lambda: self._read(asset, index), self._loaded, self._failed)

    def _read(self, asset: Asset, index: int) -> LoadedFrame | FrameFailed:
        """Runs on a worker thread: opening and decoding only; touches no widget."""
        from app.sources import SourceUnavailable

        source = self._sources.get(asset.id)
        opened = source is not None  # before this read
        try:
            if source is None:
                source = self.project.open_asset(asset)
                self._sources[asset.id] = source
            raw = source.frame(index)
        except SourceUnavailable as exc:
            where = exc.root if exc.root is not None else exc.path
            lost = exc.root is not None
            return FrameFailed(
                asset,
                index,
                f"{exc}. Your labels are safe.",
                _failure_details(asset, f"{exc}. Your labels are safe.", exc, exc.path),
                "its data folder is not reachable" if lost else "its file cannot be reached",
                str(where) if where is not None else "",
                unreachable=True,
                root_lost=lost,
            )
        except Exception as exc:  # corrupt, unsupported, a decoder's bug: said, never hidden
            if not opened and source is not None:  # the next try opens the file afresh (it may be fixed)
                self._sources.pop(asset.id, None)
                source.close()
            return self._describe_failure(asset, index, exc, opened=opened)
        # a frame from the cache proves nothing: while its root is lost, look at the folder itself
        root_ok = asset.root not in self._lost_roots or self.project.data_root_reachable(asset.root)
        return LoadedFrame(asset, source, index, raw, root_ok)

    def _describe_failure(self, asset: Asset, index: int, exc: Exception, *, opened: bool) -> FrameFailed:
        """Worker side: a failure other than an unreachable file, in one line and in full."""
        from app.core.errors import SitelabelError
        from app.sources.errors import one_line

        if not isinstance(exc, SitelabelError | OSError):
            traceback.print_exc()  # a bug: shown, logged, the app keeps working
        try:
            path = self.project.asset_path(asset)
        except Exception:  # an unknown root: the message says so already
            path = None
        if isinstance(exc, SitelabelError):
            reason = one_line(exc)
        elif isinstance(exc, OSError):
            reason = f"{exc.strerror or one_line(exc)}: {exc.filename or ''}".rstrip(": ")
        else:
            reason = f"{type(exc).__name__}: {one_line(exc)}"
        reason = reason.removeprefix(f"{path}: ") if path is not None else reason
        what = f"frame {index + 1} of {_name(asset)}" if opened and asset.frame_count > 1 else _name(asset)
        verb = "read" if opened and asset.frame_count > 1 else "open"
        message = f"Could not {verb} {what}: {reason}"
        details = _failure_details(asset, message, exc, path)
        # the longest path the line names is elided first when it is too long for the status bar
        named = [text for text in (str(path or ""), _name(asset)) if text and text in message]
        return FrameFailed(asset, index, message, details, reason, max(named, key=len, default=""))

    def _loaded(self, token: object, result: object) -> None:
        if token is not self._pending:
            return  # a newer request superseded this one
        self._pending = None
        if isinstance(result, FrameFailed):
            self._show_failure(result, isinstance(token, _Request) and token.opening)
        if not isinstance(result, LoadedFrame):
            return
        self._retry, self._failure = None, None
        self._unopened.pop(result.asset.id, None)
        self.canvas.lock_drawing("")  # the item's own image is on screen
        if result.root_ok:
            self._reachable(result.asset)
        first = self.current is None or self.current.asset.id != result.asset.id
        self.current = result
        if first:
            self.window_level = result.source.window
        invert = str(result.source.metadata.get("photometric", "")) == "MONOCHROME1"
        self.canvas.set_image(result.raw, window=self.window_level, invert=invert, keep_view=not first)
        self.editing.show_frame(result.index, result.raw, self.window_level or self.canvas.window)
        self.comments.set_frame(result.index)
        count = result.source.frame_count
        self.frame_label.setText(f"frame {result.index + 1}/{count}" if count > 1 else "")
        if first:
            self._show_details(result)
        elif result.root_ok and self.info.toPlainText() != self._details:
            self.info.setPlainText(self._details)  # a failure noted above the details is over
        self.frame_shown.emit(result.asset.id, result.index)

    def _show_failure(self, failed: FrameFailed, opening: bool) -> None:
        """An item that could not be opened shows an empty frame of its size under its own labels,
        never the last image, and takes no drawing until its image loads (the next navigation tries
        again); a frame of the item on screen that could not be read leaves that one where it is.
        The status bar says why; a lost data folder is marked in the list and told once an outage."""
        asset = failed.asset
        if failed.root_lost:
            self._lost_roots.add(asset.root)
            self.assets.set_root_available(asset.root, False)
        if opening or self.current is None or self.current.asset.id != asset.id:
            self.current, self._retry, self._failure = None, asset, failed
            self._unopened[asset.id] = failed.reason
            blank = np.zeros((max(1, asset.height), max(1, asset.width)), np.uint8)
            self.canvas.set_image(blank)
            self.canvas.set_overlay_image(None)
            self.editing.show_frame(0, blank, None)
            self.canvas.lock_drawing(  # the file's name: its whole path is in the details pane
                f"Drawing is off: {_name(asset).rsplit('/', 1)[-1]} could not be opened ({failed.reason}). "
                "Press Down to try again.",
                shown=True,
            )
            self.frame_label.setText("")
            then = "Drawing is off until its image loads: press Down to try again. Your labels are safe."
            self.info.setPlainText(f"{failed.details}\n\n{then}")
        else:
            then = "The frame on screen still takes labels; stepping to this one tries again."
            self.info.setPlainText(f"{failed.details}\n\n{then}\n\n{self._details}")
            if failed.unreachable and asset.id in self._told:
                return  # one message per asset and outage, not one per key press
        if failed.unreachable:
            self._told[asset.id] = asset.root
        self._tell(failed.message, failed.path)

    def _reachable(self, asset: Asset) -> None:
        self._told.pop(asset.id, None)
        if asset.root in self._lost_roots:
            self._lost_roots.discard(asset.root)
            self._told = {a: root for a, root in self._told.items() if root != asset.root}
            self.assets.set_root_available(asset.root, True)
            folder = self.project.config.all_data_roots.get(asset.root, asset.root)
            self._tell(f"The data folder {folder} is reachable again.", str(folder), 10_000)

    def _failed(self, token: object, message: str) -> None:
        """The worker itself failed (``_read`` says what a read did): shown as a failed read."""
        if token is self._pending and isinstance(token, _Request):
            self._pending = None
            name = _name(token.asset)
            text = f"Could not open {name}: {message}"
            details = f"{token.asset.root}:{name}\n\n{text}"
            self._show_failure(FrameFailed(token.asset, token.index, text, details, message), token.opening)

    # --- status bar -------------------------------------------------------------------------
    def _tell(self, text: str, path: str = "", timeout: int = 0) -> None:
        """Show ``text`` in the status bar; a long ``path`` in it is elided in the middle so that its
        end stays readable; the whole text is the tooltip."""
        bar = self.statusBar()
        shown = elide_path(text, path, bar.fontMetrics(), self._message_width())
        self._status_full = (shown, text, path, timeout)
        bar.setToolTip(plain_tip(text))
        bar.showMessage(shown, timeout)

    def _message_width(self) -> int:
        """The room QStatusBar gives a message: left of its permanent labels and the size grip."""
        bar = self.statusBar()
        right = bar.width() - 12
        grip = bar.findChild(QSizeGrip)
        if grip is not None and grip.isVisible():
            right = grip.x()
        labels = [w.x() for w in (self.save_label, self.frame_label, self.position_label) if w.isVisible()]
        if labels:
            right = min(right, min(labels) - 2)
        return max(80, right - 6 - 4)

    def _refit_status(self) -> None:
        kept = self._status_full
        if kept is None or self.statusBar().currentMessage() != kept[0]:
            return
        _shown, text, path, timeout = kept
        refitted = elide_path(text, path, self.statusBar().fontMetrics(), self._message_width())
        if refitted != kept[0]:
            self._tell(text, path, timeout)

    def _status_message_changed(self, text: str) -> None:
        if self._status_full is not None and text != self._status_full[0]:
            self._status_full = None  # another message (or none): its tooltip goes with it
            self.statusBar().setToolTip("")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        relaid = event.type() in (QEvent.Type.Resize, QEvent.Type.LayoutRequest)
        if relaid and self._status_full is not None and watched is self.statusBar():
            self._status_fit.start()  # once the bar has laid out its labels
        return super().eventFilter(watched, event)

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
        self._details = "\n".join(lines)
        self.info.setPlainText(self._details)

    def _show_save_status(self, text: str) -> None:
        self.save_label.setText(text)
        self.save_label.setStyleSheet(OFFLINE_STYLE if self.editing.offline else "")

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
