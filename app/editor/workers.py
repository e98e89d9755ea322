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


class _ProgressSignals(QObject):
    progressed = Signal(int, int)
    done = Signal(object)
    failed = Signal(str)


class ProgressJob(QRunnable):
    """Long work with a progress bar and cancel: ``fn(progress)`` runs on the pool; ``progress(done,
    total)`` reports to the UI thread and returns False once the user cancelled."""

    def __init__(self, fn: Callable[[Callable[[int, int], bool]], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _ProgressSignals()
        self.cancelled = False  # set from the UI thread; read by the worker between steps

    def progress(self, done: int, total: int) -> bool:
        self.signals.progressed.emit(done, total)
        return not self.cancelled

    def run(self) -> None:
        from app.core.errors import SitelabelError

        try:
            result = self.fn(self.progress)
        except SitelabelError as exc:
            self.signals.failed.emit(str(exc))
        except OSError as exc:
            self.signals.failed.emit(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        except Exception as exc:  # a bug: shown, logged, the app keeps working
            traceback.print_exc()
            self.signals.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.signals.done.emit(result)
