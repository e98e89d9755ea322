"""Errors raised by the readers. Every message is one line a user can read."""

from __future__ import annotations

import os
from pathlib import Path

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


class SourceUnavailable(SourceError):
    """The file behind an open source cannot be reached right now: its data folder was unmounted,
    the network share went offline, or the file vanished. Nothing is wrong with the data; reading
    again once the folder is back works (the source reopens its files).

    ``path`` is the file that could not be read; ``root`` the data folder found unreachable, or
    None when only the file itself is missing.
    """

    def __init__(self, message: str, *, path: Path | None = None, root: Path | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.root = root


def one_line(exc: BaseException) -> str:
    """A library's error text on one line (decoder plugins report one reason per line)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def shown(value: object, limit: int = 64) -> str:
    """A value read from a file, safe to put in a one-line message: printable and short."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def without_path(path: str | os.PathLike[str], message: str) -> str:
    """``message`` without a leading mention of ``path`` (``"PATH: why"`` -> ``"why"``).

    Reader errors name their file so they read on their own; a report that pairs each path with
    its reason (scan results, import reports) keeps the reason only, so every line names the file
    once.
    """
    text = str(path)
    if not message.startswith(text):
        return message
    rest = message[len(text) :]
    if rest[:1] not in (":", " "):  # "a.png.bak: ..." is not about "a.png"
        return message
    return rest.lstrip(": ").strip() or message
