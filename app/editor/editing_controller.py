"""Joins the canvas, the current asset's edit session and the active tool.

The session (app.workflow.editing) owns the document, the undo stack, the local journal and the
saves; this controller opens and closes sessions, shows their frames, and keeps the canvas in
step with document changes. Its parts: ``tools`` (``EditingTools``: the active tool, the class,
the selection) and ``saves`` (``SaveController``: autosave on the thread pool, retries, conflicts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from app.core.compose import hex_to_rgb
from app.core.records import Asset
from app.core.tracks import is_interpolated_id, shown_annotations
from app.editor.editing_tools import EditingTools
from app.editor.plain import plain_tip
from app.editor.save_controller import SaveController
from app.editor.tool_registry import FrameInfo
from app.workflow.editing import EditSession

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
        self._colors = {c.name: c.color for c in project.ontology.classes}
        self._index_colors = {i + 1: hex_to_rgb(c.color) for i, c in enumerate(project.ontology.classes)}
        self.tools = EditingTools(self, project, canvas)
        self.saves = SaveController(self, self.tools, project, parent_widget)

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
        session.doc.listeners.append(self._document_changed)
        session.stack.changed.append(self.emit_status)
        self.tools.start(session)
        self.session_opened.emit(session)
        self.emit_status()

    def show_frame(self, index: int, values: npt.NDArray[Any], window: tuple[float, float] | None) -> None:
        if self.session is None or self.tools.ctx is None:
            return
        self.tools.show_frame(index, FrameInfo(values, window))
        self.canvas.set_labels(self.session.doc.label_map(index), self._index_colors)
        self.refresh_annotations()
        self.tools.set_tool(self.tools.tool_name)  # value-aware tools follow the frame

    def close_session(self) -> None:
        """Save what is pending (synchronously: leaving an asset must not lose edits) and close."""
        session, self.session = self.session, None
        if session is None:
            return
        self.tools.cancel()
        try:
            session.close()
        except Exception as exc:  # the journal still holds the edits; tell the user, go on
            self.emit_status(f"not saved: {exc} (kept locally)")

    def frame_labels(self) -> npt.NDArray[np.uint16] | None:
        """The label map of the frame shown (by reference), or None when nothing is open."""
        ctx = self.tools.ctx
        if self.session is None or ctx is None:
            return None
        labels: npt.NDArray[np.uint16] = self.session.doc.label_map(ctx.frame)
        return labels

    def undo(self) -> None:
        if self.session is not None:
            self.session.stack.undo()

    def redo(self) -> None:
        if self.session is not None:
            self.session.stack.redo()

    # --- document -> canvas ---------------------------------------------------------------
    def _document_changed(self, frame: int, bbox: tuple[int, int, int, int] | None) -> None:
        ctx = self.tools.ctx
        if ctx is None or frame != ctx.frame:
            return
        self.canvas.labels_changed(bbox)
        self.refresh_annotations()
        self.emit_status()

    def refresh_annotations(self) -> None:
        """Redraw the frame's annotations (the track panel calls it when a change elsewhere moves
        this frame's interpolated ones; the tools when the selection changes)."""
        ctx = self.tools.ctx
        if self.session is None or ctx is None:
            return
        # what the tools can hit: stored ones, then the tracks' interpolated ones (drawn dotted)
        annotations = shown_annotations(self.session.doc, ctx.frame).items()
        chosen = self.tools.selected_id
        self.canvas.overlays.set_annotations(
            [(a, self._colors.get(a.label, "#ffcc00"), aid == chosen) for aid, a in annotations],
            [a for aid, a in annotations if is_interpolated_id(aid)],
        )

    def emit_status(self, override: str | None = None) -> None:
        """Say ``override`` in the status bar, or the session's save state when None."""
        if override is not None:
            self.status_changed.emit(override)
        elif self.session is not None:
            self.status_changed.emit(self.session.status_text)
