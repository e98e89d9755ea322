"""What the editing controller's parts read and call on the controller, as a Protocol in a leaf.

``EditingTools`` (the active tool, the class, the selection) and ``SaveController`` (autosave,
retries, conflicts) are built by ``EditingController``; typing them against this Protocol keeps
both from importing the controller back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import SignalInstance

if TYPE_CHECKING:
    from app.workflow.editing import EditSession


class EditingHost(Protocol):
    @property
    def session(self) -> EditSession | None:
        """The session being edited (None when no asset is open)."""
        ...

    @property
    def selection_changed(self) -> SignalInstance:
        """Emitted with the local id of the annotation the select tool holds, or None."""
        ...

    def refresh_annotations(self) -> None:
        """Redraw the frame's annotations (the selected one highlighted)."""
        ...

    def emit_status(self, override: str | None = None) -> None:
        """Say ``override`` in the status bar, or the session's save state when None."""
        ...
