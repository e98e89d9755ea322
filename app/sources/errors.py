"""Errors raised by the readers. Every message is one line a user can read."""

from __future__ import annotations

from app.core.errors import SitelabelError


class SourceError(SitelabelError):
    """A source could not be opened or read."""


class UnsupportedFormat(SourceError):
    """No reader handles this file (or this variant of a format)."""


class CorruptFile(SourceError):
    """The file claims a format but its content is truncated or malformed."""


class DecompressionBomb(SourceError):
    """A header or archive claims far more data than the configured limits allow."""


class UnsafeArchive(SourceError):
    """An archive member would escape the extraction folder or is a link/device."""


class SourceNotFound(SourceError, FileNotFoundError):
    """The path does not exist or cannot be opened as a file."""
