"""Frames read on workers and put on screen; a frame that could not be read shown as such.

An item that could not be opened shows an empty frame of its size under its own labels, with
drawing refused until its image loads; an unreachable data folder is marked in the asset list and
told once an outage. The main window owns one :class:`FrameLoader` and delegates to it.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QPlainTextEdit

from app.core.records import Asset
from app.editor.workers import ignore, submit

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.asset_list import AssetListPanel
    from app.editor.canvas import Canvas
    from app.editor.comments_panel import CommentsPanel
    from app.editor.editing_controller import EditingController
    from app.editor.status_messages import StatusMessages
    from app.sources import Source


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


def asset_name(asset: Asset) -> str:
    """What people know an asset by: its path under its data root (an archive member after "!")."""
    member = asset.member or ""
    return (asset.rel_path or asset.root) + (member if member.startswith("!") else "")


def _failure_details(asset: Asset, message: str, exc: BaseException, path: object) -> str:
    """The details pane's account of a failed read: what, where, the whole error chain, what next."""
    from app.core.errors import SitelabelError

    lines = [f"{asset.root}:{asset_name(asset)}"]
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


class FrameLoader(QObject):
    """Reads the frames the window asks for and shows them (or why not) on its widgets."""

    frame_shown = Signal(int, int)  # (asset id, frame index) handed to the canvas

    def __init__(
        self,
        project: Project,
        *,
        canvas: Canvas,
        editing: EditingController,
        assets: AssetListPanel,
        comments: CommentsPanel,
        info: QPlainTextEdit,
        frame_label: QLabel,
        status: StatusMessages,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.project = project
        self.canvas, self.editing, self.assets, self.comments = canvas, editing, assets, comments
        self.info, self.frame_label, self.status = info, frame_label, status
        self.current: LoadedFrame | None = None
        self.window_level: tuple[float, float] | None = None
        self._pending: object = None
        self._sources: dict[int, Source] = {}
        # a data folder gone (share unmounted): one message per asset and outage, retried on navigation
        self._told: dict[int, str] = {}  # asset id -> data root, told about in this outage
        self._lost_roots: set[str] = set()
        self._retry: Asset | None = None  # could not be opened: the next navigation opens it again
        self._failure: FrameFailed | None = None  # why the item chosen is not on screen
        # asset id -> why its last open failed, until its image loads (the queue refuses to submit it)
        self._unopened: dict[int, str] = {}
        self._details = ""  # the details pane's text about the item on screen, without failure notes

    # --- what the window asks ---------------------------------------------------------------
    def open(self, asset: Asset) -> None:
        """Read ``asset``'s first frame to show it (the window has opened its labels already)."""
        # the last image stays until this one is decoded: nothing drawn meanwhile may land on it
        name = asset_name(asset).rsplit("/", 1)[-1]
        self.canvas.tool_slot.lock(f"{name} is still opening: drawing starts when its image shows.")
        self._load(asset, 0, refit=True)

    def show_prepared(self, asset: Asset, source: Source, raw: npt.NDArray[Any]) -> None:
        """:meth:`open` for a frame decoded ahead: shown at once, with no worker round trip."""
        kept = self._sources.setdefault(asset.id, source)
        if kept is not source:  # the editor had it open already: keep that one
            submit(source.close, ignore, ignore)
        token = _Request(asset, 0, True)
        self._pending = token
        # decoded ahead, maybe before its data folder went: that proves nothing about the folder now
        self._loaded(token, LoadedFrame(asset, kept, 0, raw, root_ok=asset.root not in self._lost_roots))

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

    def data_unavailable(self, asset: Asset, message: str) -> None:
        """The queue could not decode ``asset`` ahead: its data folder is unreachable. The list
        marks the folder's assets and the user is told once per outage; the screen stays as it is."""
        if asset.root in self._lost_roots:
            return  # told already; the list is marked
        self._lost_roots.add(asset.root)
        self.assets.set_root_available(asset.root, False)
        folder = self.project.config.all_data_roots.get(asset.root)
        self.status.tell(f"{message}. Your labels are safe.", str(folder) if folder is not None else "")

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
            submit(source.close, ignore, ignore)

    def refused(self, why: str) -> None:
        """The canvas refused a stroke: say why, eliding the failed item's path if it is named."""
        self.status.tell(why, self._failure.path if self._failure is not None else "")

    def close(self) -> None:
        for source in self._sources.values():
            source.close()

    # --- reading (worker side) --------------------------------------------------------------
    def _load(self, asset: Asset, index: int, *, refit: bool) -> None:
        token = _Request(asset, index, refit)
        self._pending = token
        submit(lambda: self._read(asset, index), partial(self._loaded, token), partial(self._failed, token))

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
        name = asset_name(asset)
        what = f"frame {index + 1} of {name}" if opened and asset.frame_count > 1 else name
        verb = "read" if opened and asset.frame_count > 1 else "open"
        message = f"Could not {verb} {what}: {reason}"
        details = _failure_details(asset, message, exc, path)
        # the longest path the line names is elided first when it is too long for the status bar
        named = [text for text in (str(path or ""), name) if text and text in message]
        return FrameFailed(asset, index, message, details, reason, max(named, key=len, default=""))

    # --- showing (UI thread) ----------------------------------------------------------------
    def _loaded(self, token: _Request, result: LoadedFrame | FrameFailed) -> None:
        if token is not self._pending:
            return  # a newer request superseded this one
        self._pending = None
        if isinstance(result, FrameFailed):
            self._show_failure(result, token.opening)
            return
        self._retry, self._failure = None, None
        self._unopened.pop(result.asset.id, None)
        self.canvas.tool_slot.lock("")  # the item's own image is on screen
        if result.root_ok:
            self._reachable(result.asset)
        first = self.current is None or self.current.asset.id != result.asset.id
        self.current = result
        if first:
            self.window_level = result.source.window
        invert = str(result.source.metadata.get("photometric", "")) == "MONOCHROME1"
        self.canvas.set_image(result.raw, window=self.window_level, invert=invert, keep_view=not first)
        self.editing.show_frame(result.index, result.raw, self.window_level or self.canvas.window_level)
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
            self.canvas.overlays.set_image(None)
            self.editing.show_frame(0, blank, None)
            self.canvas.tool_slot.lock(  # the file's name: its whole path is in the details pane
                f"Drawing is off: {asset_name(asset).rsplit('/', 1)[-1]} could not be opened "
                f"({failed.reason}). Press Down to try again.",
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
        self.status.tell(failed.message, failed.path)

    def _reachable(self, asset: Asset) -> None:
        self._told.pop(asset.id, None)
        if asset.root in self._lost_roots:
            self._lost_roots.discard(asset.root)
            self._told = {a: root for a, root in self._told.items() if root != asset.root}
            self.assets.set_root_available(asset.root, True)
            folder = self.project.config.all_data_roots.get(asset.root, asset.root)
            self.status.tell(f"The data folder {folder} is reachable again.", str(folder), 10_000)

    def _failed(self, token: _Request, message: str) -> None:
        """The worker itself failed (``_read`` says what a read did): shown as a failed read."""
        if token is self._pending:
            self._pending = None
            name = asset_name(token.asset)
            text = f"Could not open {name}: {message}"
            details = f"{token.asset.root}:{name}\n\n{text}"
            self._show_failure(FrameFailed(token.asset, token.index, text, details, message), token.opening)

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
