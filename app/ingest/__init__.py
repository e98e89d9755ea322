"""Watch folders that report new, completely copied files and series to a callback."""

from __future__ import annotations

from app.ingest.watcher import FolderWatcher

__all__ = ["FolderWatcher"]
