"""Decoding ahead for queue mode: while the user labels item k, item k+1 is prepared on a worker
(its source opened, the frame the editor shows first decoded, the user's annotations loaded into an
edit session). Submit then hands the prepared item to the window, which shows it without another
round trip to a worker.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from app.core.records import Asset
from app.editor.queue_items import Prepared, QueueHost, QueueItem, RootLost
from app.editor.workers import ignore, submit

if TYPE_CHECKING:
    from app.api import Project
    from app.sources import Source


class Prefetcher(QObject):
    """Decodes the item after the current one on a worker and shows items from that cache.

    ``next_item`` tells which item comes next; a decode that finishes after the batch moved on
    is thrown away and the right one started.
    """

    changed = Signal()  # an item is ready
    settled = Signal()  # an awaited item was shown

    def __init__(
        self,
        project: Project,
        host: QueueHost,
        next_item: Callable[[], QueueItem | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.project, self.host, self._next_item = project, host, next_item
        self.prepared: Prepared | None = None
        self._preparing: set[int] = set()  # keys of the items being decoded
        self._awaited: QueueItem | None = None  # shown as soon as it is decoded
        self._failed: set[int] = set()  # decoding ahead failed: open these the plain way
        self._closed = False
        host.editing.session_opened.connect(self._session_opened)

    @property
    def opening(self) -> bool:
        return self._awaited is not None

    @property
    def running(self) -> bool:
        """A decode is running."""
        return bool(self._preparing)

    def show(self, item: QueueItem) -> None:
        """Show ``item``: at once when it is ready, else as soon as its decode (started if need be) ends."""
        self._awaited = None
        prepared = self.prepared
        if prepared is not None and prepared.key == item.key:
            self.prepared = None
            self._show(prepared)
        elif item.key in self._failed:
            self.host.open_asset(item.asset)  # the window says why it cannot be opened
        else:
            self._awaited = item
            if item.key not in self._preparing:
                self._prepare(item)

    def fill(self) -> None:
        """Decode the next item, unless it is ready or a decode is running (its end calls this)."""
        item = self._next_item()
        if item is None or self._preparing or item.key in self._failed:
            return
        if self.prepared is None or self.prepared.key != item.key:
            self._prepare(item)

    def cancel(self) -> None:
        """Show nothing when the decode running ends (another item was opened)."""
        self._awaited = None

    def close(self) -> None:
        """Free the prepared item, and every one still decoding when it ends."""
        self._closed = True
        self._awaited = None
        self.drop(None)

    def drop(self, key: int | None) -> None:
        """Free the prepared item if it is ``key`` (any item when None): its lease is gone."""
        if self.prepared is not None and key in (None, self.prepared.key):
            self._discard(self.prepared)
            self.prepared = None

    def _show(self, prepared: Prepared) -> None:
        session = prepared.session
        editing = self.host.editing
        same = editing.session is not None and editing.session.asset.id == prepared.asset.id
        if prepared.stale or same:  # loaded before the editor's last save of this asset: reload
            session.close()
            editing.close_session()
            session = editing.load_session(prepared.asset)
        self.host.show_prepared(prepared.asset, prepared.source, prepared.raw, session)

    def _prepare(self, item: QueueItem) -> None:
        self._preparing.add(item.key)
        job = partial(self._prepare_job, item.key, item.asset)
        submit(job, self._prepared, partial(self._prepare_failed, item.key))

    def _prepare_job(self, key: int, asset: Asset) -> Prepared | RootLost:
        """Worker: open the source, decode the frame the editor shows first, load the annotations."""
        from app.sources import SourceUnavailable

        source: Source | None = None
        try:
            source = self.project.open_asset(asset)
            raw = source.frame(0)
            session = self.host.editing.load_session(asset)
        except SourceUnavailable as exc:
            if source is not None:
                source.close()
            if exc.root is None:
                raise
            return RootLost(key, asset, str(exc))
        except BaseException:
            if source is not None:
                source.close()
            raise
        return Prepared(key, asset, source, raw, session)

    def _prepared(self, result: Prepared | RootLost) -> None:
        if isinstance(result, RootLost):  # told as opening it by hand would; opened that way when due
            if not self._closed:
                self.host.data_unavailable(result.asset, result.message)
            self._prepare_failed(result.key, result.message)
            return
        self._preparing.discard(result.key)
        if self._closed:
            self._discard(result)
        elif self._awaited is not None and self._awaited.key == result.key:
            self._awaited = None
            self._show(result)
            self.settled.emit()  # the controller starts the next decode once this one is drawn
        elif (nxt := self._next_item()) is not None and nxt.key == result.key:
            self.drop(None)
            self.prepared = result
            self.changed.emit()
        else:  # the batch moved on while it decoded
            self._discard(result)
            self.fill()

    def _prepare_failed(self, key: int, _message: str) -> None:
        self._preparing.discard(key)
        self._failed.add(key)
        if self._awaited is not None and self._awaited.key == key:
            item, self._awaited = self._awaited, None
            self.host.open_asset(item.asset)  # the window says why it cannot be opened
            self.settled.emit()
        self.fill()

    def _discard(self, prepared: Prepared) -> None:
        prepared.session.close()
        submit(prepared.source.close, ignore, ignore)

    def _session_opened(self, session: object) -> None:
        """The editor opened an asset: a prepared copy of it holds annotations from before."""
        prepared = self.prepared
        if prepared is not None and session is not prepared.session:
            asset = getattr(session, "asset", None)
            if asset is not None and asset.id == prepared.asset.id:
                prepared.stale = True
