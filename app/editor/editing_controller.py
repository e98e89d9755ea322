"""Joins the canvas, the current asset's edit session and the active tool.

The session (app.workflow.editing) owns the document, the undo stack, the local journal and the
saves; this controller feeds it the user's tool events through the canvas, keeps the canvas in
step with document changes, and runs autosaves on the thread pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from app.core.annotations import Kind
from app.core.compose import hex_to_rgb
from app.core.conversions import labels_to_polygons, mask_annotation_to_polygons, polygon_to_labels
from app.core.errors import SitelabelError
from app.core.records import Asset
from app.core.tools import SelectTool, Tool, ToolContext
from app.core.tracks import is_interpolated_id, shown_annotations
from app.editor.conflict_dialog import ConflictDialog
from app.editor.plain import plain_tip
from app.editor.tool_registry import BY_NAME, FrameInfo
from app.editor.workers import submit
from app.workflow.editing import Conflict, EditSession, SaveResult, SaveState

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.canvas import Canvas
    from app.workflow.journal import Journal

# the status-bar label while the database is unreachable: amber, readable in a dark room
OFFLINE_STYLE = "QLabel { background: #8a5a00; color: #fff4d6; font-weight: bold; padding: 1px 6px; }"


class EditingController(QObject):
    status_changed = Signal(str)
    session_opened = Signal(object)  # the EditSession now being edited
    selection_changed = Signal(object)  # local id of the annotation the select tool picked, or None

    def __init__(self, project: Project, canvas: Canvas, parent_widget: QWidget, journal: Journal) -> None:
        super().__init__(parent_widget)
        self.project = project
        self.canvas = canvas
        self.parent_widget = parent_widget
        self.journal = journal
        self.session: EditSession | None = None
        self.ctx: ToolContext | None = None
        self.tool: Tool | None = None
        self.tool_name = "brush"
        self.label, self.class_index = "", 1
        self._frame_info = FrameInfo(None, None)
        self._saving = False
        self._colors = {c.name: c.color for c in project.ontology.classes}
        self._index_colors = {i + 1: hex_to_rgb(c.color) for i, c in enumerate(project.ontology.classes)}
        self.autosave = QTimer(self)
        self.autosave.setInterval(int(project.config.autosave_seconds * 1000))
        self.autosave.timeout.connect(self.save)
        self.autosave.start()
        # while the database is unreachable: retry sooner than the next autosave (1 s, 2 s, 4 s ...)
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.timeout.connect(self.save)

    # --- asset and frame ------------------------------------------------------------------
    def open_asset(self, asset: Asset) -> None:
        """Start editing ``asset``: the previous session is saved and closed first."""
        self.close_session()
        self.open_session(self.load_session(asset))

    def load_session(self, asset: Asset) -> EditSession:
        """A session with the user's annotations of ``asset`` loaded, not shown yet. Touches no
        widget, so the queue can load the next item on a worker thread while the user labels."""
        session = EditSession(
            self.project.db,
            self.project.id,
            asset,
            self.project.user,
            self.project.ontology,
            journal=self.journal,
        )
        return session.load()

    def open_session(self, session: EditSession) -> None:
        """Edit a session from :meth:`load_session`: the previous session is saved and closed first."""
        self.close_session()
        asset = session.asset
        if session.recoverable():
            answer = QMessageBox.question(
                self.parent_widget,
                "Recover unsaved work",
                plain_tip(
                    f"Sitelabel found edits to {asset.rel_path.rsplit('/', 1)[-1]} that were not saved to "
                    "the database (the program was closed unexpectedly). Recover them?"
                ),
            )
            if answer == QMessageBox.StandardButton.Yes:
                session.recover()
            else:
                session.discard_recovery()
        self.session = session
        self.ctx = ToolContext(session.doc, session.stack, 0, self.label, self.class_index)
        session.doc.listeners.append(self._document_changed)
        session.stack.changed.append(self._emit_status)
        self.set_tool(self.tool_name)
        self.session_opened.emit(session)
        self._emit_status()

    def show_frame(self, index: int, values: npt.NDArray[Any], window: tuple[float, float] | None) -> None:
        if self.session is None or self.ctx is None:
            return
        if self.tool is not None:
            self.tool.cancel()
        self.ctx.frame = index
        self._frame_info = FrameInfo(values, window)
        self.canvas.set_labels(self.session.doc.label_map(index), self._index_colors)
        self._refresh_annotations()
        self.set_tool(self.tool_name)  # value-aware tools follow the frame

    def set_window(self, window: tuple[float, float]) -> None:
        self._frame_info = FrameInfo(self._frame_info.values, window)
        if self.tool_name == "threshold brush":
            self.set_tool(self.tool_name)

    # --- tools and classes ----------------------------------------------------------------
    def set_tool(self, name: str) -> None:
        self.tool_name = name
        if self.ctx is None:
            return
        if self.tool is not None:
            self.tool.cancel()
        spec = BY_NAME[name]
        refusal = self._refusal(spec.makes)
        if refusal:  # the ontology decides what a class may be drawn as: never store what it forbids
            self.tool = None
            self.canvas.tool_slot.set_active(None)
            self._emit_status(refusal)
            return
        self.tool = spec.build(self.ctx, self._frame_info)
        self.canvas.tool_slot.set_active(self.tool)

    def _refusal(self, makes: Kind | None) -> str:
        if makes is None or not self.label:
            return ""
        try:
            allowed = self.project.ontology.get(self.label).kinds
        except SitelabelError:
            return ""
        if makes in allowed:
            return ""
        kinds = ", ".join(k.value for k in allowed)
        return f"class '{self.label}' is drawn as {kinds}, not {makes.value}: pick another tool or class"

    def set_class(self, name: str, index: int) -> None:
        self.label, self.class_index = name, index
        if self.ctx is not None:
            self.ctx.label, self.ctx.class_index = name, index
            self.set_tool(self.tool_name)  # the class may not allow what the current tool makes

    def pointer_pressed(self) -> None:
        """After the canvas handed a press to the tool: report what the select tool picked."""
        if isinstance(self.tool, SelectTool):
            self.selection_changed.emit(self.tool.selected)
            self._refresh_annotations()  # the selection is drawn highlighted

    @property
    def selected_id(self) -> int | None:
        """Local id of the annotation the select tool holds, or None."""
        return self.tool.selected if isinstance(self.tool, SelectTool) else None

    def select(self, aid: int | None) -> None:
        """Select an annotation as a click with the select tool would (the select tool must be on:
        pre-label review switches to it first), so Delete, drags and Ctrl+M act on it."""
        if not isinstance(self.tool, SelectTool):
            return
        self.tool.cancel()
        self.tool.selected, self.tool.target = aid, None
        self.selection_changed.emit(aid)
        self._refresh_annotations()

    def convert_selected(self) -> None:
        """Selected mask -> polygons; selected polygon or box -> painted into the label map."""
        if self.session is None or not isinstance(self.tool, SelectTool) or self.tool.selected is None:
            self._emit_status("select an annotation first (V, then click it)")
            return
        doc, aid = self.session.doc, self.tool.selected
        try:
            annotation = doc.annotation(aid)
            if annotation.kind is Kind.MASK:
                command = mask_annotation_to_polygons(doc, aid)
            else:
                command = polygon_to_labels(doc, aid, self.project.ontology.index_of(annotation.label))
            self.tool.selected = None
            self.session.stack.push(command)
        except SitelabelError as exc:
            self._emit_status(str(exc))

    def class_pixels_to_polygons(self) -> None:
        """The active class's painted pixels on this frame become polygons (one undo step)."""
        if self.session is None or self.ctx is None or not self.label:
            return
        try:
            command = labels_to_polygons(self.session.doc, self.ctx.frame, self.class_index, self.label)
            self.session.stack.push(command)
        except SitelabelError as exc:
            self._emit_status(str(exc))

    def undo(self) -> None:
        if self.session is not None:
            self.session.stack.undo()

    def redo(self) -> None:
        if self.session is not None:
            self.session.stack.redo()

    # --- document -> canvas ---------------------------------------------------------------
    def _document_changed(self, frame: int, bbox: tuple[int, int, int, int] | None) -> None:
        if self.ctx is None or frame != self.ctx.frame:
            return
        self.canvas.labels_changed(bbox)
        self._refresh_annotations()
        self._emit_status()

    def refresh_annotations(self) -> None:
        """Redraw the frame's annotations (the track panel calls it when a change elsewhere moves
        this frame's interpolated ones)."""
        self._refresh_annotations()

    def _refresh_annotations(self) -> None:
        if self.session is None or self.ctx is None:
            return
        # what the tools can hit: stored ones, then the tracks' interpolated ones (drawn dotted)
        annotations = shown_annotations(self.session.doc, self.ctx.frame).items()
        chosen = self.selected_id
        self.canvas.overlays.set_annotations(
            [(a, self._colors.get(a.label, "#ffcc00"), aid == chosen) for aid, a in annotations],
            [a for aid, a in annotations if is_interpolated_id(aid)],
        )

    # --- saving ---------------------------------------------------------------------------
    def save(self) -> None:
        """Autosave: flush pending edits on the thread pool (one flush at a time)."""
        session = self.session
        if session is None or self._saving or session.pending_count == 0:
            return
        self._saving = True
        if not self.offline:  # a retry while offline keeps saying offline, it does not flicker
            self._emit_status("saving...")
        submit(session, session.flush, self._saved, self._save_failed)

    @property
    def offline(self) -> bool:
        """The session's last save found the database unreachable (its edits wait in the journal)."""
        return self.session is not None and self.session.status is SaveState.OFFLINE

    def _retry_soon(self) -> None:
        if self.session is not None and self.offline:
            interval = self.autosave.interval() / 1000
            self._retry.start(int(self.session.retry_delay(interval) * 1000))

    def _saved(self, session: object, result: object) -> None:
        self._saving = False
        if session is not self.session:
            return
        if isinstance(result, SaveResult):
            for conflict in result.conflicts:
                self.ask_about(conflict)
        self._emit_status()
        self._retry_soon()

    def ask_about(self, conflict: Conflict) -> None:
        """Show one conflict; the user's choice is applied, closing the dialog leaves it open."""
        choice = ConflictDialog.ask(
            conflict.mine, conflict.theirs, self.parent_widget, **self._pictures(conflict)
        )
        if choice in ("mine", "theirs") and self.session is not None:
            self.session.resolve(conflict, choice)  # type: ignore[arg-type]

    def _pictures(self, conflict: Conflict) -> dict[str, npt.NDArray[np.uint8]]:
        """Both versions drawn over the frame on screen, for the dialog's "View both"."""
        from app.exchange.render import render_annotations

        values, shown = self._frame_info.values, conflict.mine or conflict.theirs
        if values is None or self.ctx is None or shown is None or shown.frame != self.ctx.frame:
            return {}
        ontology = self.project.ontology
        pictures = {}
        for name, annotation in (("mine_picture", conflict.mine), ("theirs_picture", conflict.theirs)):
            drawn = [annotation] if annotation is not None else []
            pictures[name] = render_annotations(values, self._frame_info.window, False, drawn, ontology)[
                ..., :3
            ]
        return pictures

    def _save_failed(self, session: object, message: str) -> None:
        self._saving = False
        self._emit_status(f"not saved: {message} (kept locally, retrying)")
        self._retry_soon()

    def save_now(self) -> None:
        """Flush on this thread (before an export reads the database); conflicts are asked about."""
        session = self.session
        if session is None or session.pending_count == 0:
            return
        self._saved(session, session.flush())

    def show_conflicts(self, session: EditSession) -> int:
        """After a flush run elsewhere (the queue's Submit): ask about each open conflict of
        ``session`` as an autosave does; returns how many there were."""
        conflicts = session.conflicts if session is self.session else []
        for conflict in conflicts:
            self.ask_about(conflict)
        self._emit_status()
        return len(conflicts)

    def close_session(self) -> None:
        """Save what is pending (synchronously: leaving an asset must not lose edits) and close."""
        session, self.session = self.session, None
        if session is None:
            return
        if self.tool is not None:
            self.tool.cancel()
        try:
            session.close()
        except Exception as exc:  # the journal still holds the edits; tell the user, go on
            self._emit_status(f"not saved: {exc} (kept locally)")

    def _emit_status(self, override: str | None = None) -> None:
        if override is not None:
            self.status_changed.emit(override)
        elif self.session is not None:
            self.status_changed.emit(self.session.status_text)

    def frame_labels(self) -> npt.NDArray[np.uint16] | None:
        if self.session is None or self.ctx is None:
            return None
        labels: npt.NDArray[np.uint16] = self.session.doc.label_map(self.ctx.frame)
        return labels
