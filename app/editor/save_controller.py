"""Saving the session being edited: autosave, retries while offline, and the conflicts found.

An autosave flushes the session's pending edits on the thread pool (one flush at a time). While
the database is unreachable the edits wait in the local journal and a retry comes sooner than the
next autosave (1 s, 2 s, 4 s ...). A stale save comes back as conflicts, asked about one by one.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QWidget

from app.editor.conflict_dialog import ConflictDialog
from app.editor.editing_host import EditingHost
from app.editor.workers import submit
from app.workflow.editing import Conflict, EditSession, SaveResult, SaveState

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.editing_tools import EditingTools


class SaveController(QObject):
    """``editing.saves``: saves what the controller (an ``EditingHost``) has open; the conflict
    dialog draws both versions over the frame the ``tools`` act on."""

    def __init__(
        self, host: EditingHost, tools: EditingTools, project: Project, parent_widget: QWidget
    ) -> None:
        super().__init__(parent_widget)
        self.host = host
        self.tools = tools
        self.project = project
        self.parent_widget = parent_widget
        self._saving = False
        self.autosave = QTimer(self)
        self.autosave.setInterval(int(project.config.autosave_seconds * 1000))
        self.autosave.timeout.connect(self.save)
        self.autosave.start()
        # while the database is unreachable: retry sooner than the next autosave (1 s, 2 s, 4 s ...)
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.timeout.connect(self.save)

    def save(self) -> None:
        """Autosave: flush pending edits on the thread pool (one flush at a time)."""
        session = self.host.session
        if session is None or self._saving or session.pending_count == 0:
            return
        self._saving = True
        if not self.offline:  # a retry while offline keeps saying offline, it does not flicker
            self.host.emit_status("saving...")
        submit(session.flush, partial(self._saved, session), self._save_failed)

    def save_now(self) -> None:
        """Flush on this thread (before an export reads the database); conflicts are asked about."""
        session = self.host.session
        if session is None or session.pending_count == 0:
            return
        self._saved(session, session.flush())

    @property
    def offline(self) -> bool:
        """The session's last save found the database unreachable (its edits wait in the journal)."""
        session = self.host.session
        return session is not None and session.status is SaveState.OFFLINE

    def _retry_soon(self) -> None:
        session = self.host.session
        if session is not None and self.offline:
            interval = self.autosave.interval() / 1000
            self._retry.start(int(session.retry_delay(interval) * 1000))

    def _saved(self, session: EditSession, result: SaveResult) -> None:
        self._saving = False
        if session is not self.host.session:
            return
        for conflict in result.conflicts:
            self.ask_about(conflict)
        self.host.emit_status()
        self._retry_soon()

    def _save_failed(self, message: str) -> None:
        self._saving = False
        self.host.emit_status(f"not saved: {message} (kept locally, retrying)")
        self._retry_soon()

    # --- conflicts --------------------------------------------------------------------------
    def show_conflicts(self, session: EditSession) -> int:
        """After a flush run elsewhere (the queue's Submit): ask about each open conflict of
        ``session`` as an autosave does; returns how many there were."""
        conflicts = session.conflicts if session is self.host.session else []
        for conflict in conflicts:
            self.ask_about(conflict)
        self.host.emit_status()
        return len(conflicts)

    def ask_about(self, conflict: Conflict) -> None:
        """Show one conflict; the user's choice is applied, closing the dialog leaves it open."""
        choice = ConflictDialog.ask(
            conflict.mine, conflict.theirs, self.parent_widget, **self._pictures(conflict)
        )
        session = self.host.session
        if choice in ("mine", "theirs") and session is not None:
            session.resolve(conflict, choice)  # type: ignore[arg-type]

    def _pictures(self, conflict: Conflict) -> dict[str, npt.NDArray[np.uint8]]:
        """Both versions drawn over the frame on screen, for the dialog's "View both"."""
        from app.exchange.render import render_annotations

        info, ctx = self.tools.frame_info, self.tools.ctx
        shown = conflict.mine or conflict.theirs
        if info.values is None or ctx is None or shown is None or shown.frame != ctx.frame:
            return {}
        ontology = self.project.ontology
        pictures = {}
        for name, annotation in (("mine_picture", conflict.mine), ("theirs_picture", conflict.theirs)):
            drawn = [annotation] if annotation is not None else []
            pictures[name] = render_annotations(info.values, info.window, False, drawn, ontology)[..., :3]
        return pictures
