"""Background work for the UI: file decoding never runs on the UI thread.

Workers never touch widgets; they emit signals the window connects to.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Signals(QObject):
    done = Signal(object, object)  # (token, result)
    failed = Signal(object, str)  # (token, message)


class Job(QRunnable):
    """Run ``fn`` on the shared thread pool; ``token`` lets the receiver drop stale results."""

    def __init__(self, token: object, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.token = token
        self.fn = fn
        self.signals = _Signals()

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # shown to the user; the app keeps working
            from app.core.errors import SitelabelError

            message = str(exc) if isinstance(exc, SitelabelError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, SitelabelError | OSError):
                traceback.print_exc()
            self.signals.failed.emit(self.token, message)
        else:
            self.signals.done.emit(self.token, result)


def submit(
    token: object,
    fn: Callable[[], Any],
    on_done: Callable[[object, object], None],
    on_failed: Callable[[object, str], None],
) -> Job:
    job = Job(token, fn)
    job.signals.done.connect(on_done)
    job.signals.failed.connect(on_failed)
    QThreadPool.globalInstance().start(job)
    return job
