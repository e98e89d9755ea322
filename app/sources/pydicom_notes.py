"""pydicom's warnings as notes on the file being read, instead of raw warnings on the console.

pydicom reports every oddity of a file twice (``pydicom.misc.warn_and_log``): a record on its
``pydicom`` logger and a Python warning, which the console shows as two lines naming pydicom's
source and not the file. Here the warning is dropped (the record carries the same text) and the
record is routed: while :func:`pydicom_notes` is collecting on this thread (the DICOM scan reads
each header inside one) it becomes a note of that file, reported with it (``SourceRef.warnings``,
the import report, one CLI line per file); otherwise it goes to the ``app.sources.dicom`` logger,
one line with the ``pydicom:`` prefix. Errors are untouched: they are exceptions, not warnings.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_PYDICOM = logging.getLogger("pydicom")
_LOG = logging.getLogger("app.sources.dicom")
_local = threading.local()


class _Router(logging.Handler):
    """Sends pydicom's warning records to the notes being collected on this thread, else to our log."""

    def emit(self, record: logging.LogRecord) -> None:
        notes: list[str] | None = getattr(_local, "notes", None)
        message = " ".join(record.getMessage().split())
        if notes is None:
            _LOG.warning("pydicom: %s", message)
        elif message not in notes:  # pydicom repeats a note for each pass over the file
            notes.append(message)


_ROUTER = _Router(logging.WARNING)


def route_pydicom_warnings() -> None:
    """Route pydicom's warnings (see the module doc). Idempotent; call it on the main thread before
    reading DICOM (it puts the warning filter first again, should a caller have reset them)."""
    if _ROUTER not in _PYDICOM.handlers:
        _PYDICOM.addHandler(_ROUTER)
    # every pydicom warning is also a record on its logger, so ignoring the warning loses nothing
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")


@contextmanager
def pydicom_notes() -> Iterator[list[str]]:
    """Collect pydicom's warnings raised on this thread while the block runs, as one-line texts."""
    outer = getattr(_local, "notes", None)
    notes: list[str] = []
    _local.notes = notes
    try:
        yield notes
    finally:
        _local.notes = outer
