"""Background work for the UI: file decoding never runs on the UI thread.

Workers never touch widgets. Their results reach the UI thread through one long-lived dispatcher
object that lives there: a queued call is tied to the object it is posted to, and a per-job
QObject could be deleted (on the pool's thread, or while Qt still holds an event for it) before
the call arrives, which either dropped results or crashed. The dispatcher never goes away, so
every result arrives, on the UI thread, in order.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

T = TypeVar("T")


class _Dispatcher(QObject):
    """Runs the callables posted to it on the thread it lives in (the UI thread)."""

    posted = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.posted.connect(self._run, Qt.ConnectionType.QueuedConnection)

    @Slot(object)
    def _run(self, call: Callable[[], object]) -> None:
        call()


_DISPATCHER: list[_Dispatcher] = []  # the one instance, made on first use


def _dispatcher() -> _Dispatcher:
    """Made on first use, from the UI thread (every job is created there)."""
    if not _DISPATCHER:
        _DISPATCHER.append(_Dispatcher())
    return _DISPATCHER[0]


def on_ui_thread(call: Callable[[], object]) -> None:
    """Run ``call`` on the UI thread at its next turn of the event loop (safe from any thread)."""
    _dispatcher().posted.emit(call)


def _message(exc: BaseException) -> str:
    from app.core.errors import SitelabelError

    if isinstance(exc, SitelabelError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    traceback.print_exc()  # a bug: shown, logged, the app keeps working
    return f"{type(exc).__name__}: {exc}"


class Job(QRunnable):
    """One call of :func:`submit` on the shared thread pool."""

    def __init__(self, work: Callable[[], None]) -> None:
        super().__init__()
        _dispatcher()
        self.work = work

    def run(self) -> None:
        self.work()


def submit(fn: Callable[[], T], on_done: Callable[[T], object], on_failed: Callable[[str], object]) -> Job:
    """Run ``fn`` on the pool; ``on_done(result)`` or ``on_failed(message)`` is then called on the UI
    thread. What a callback needs to know about its job (which item, which request) is bound into
    it, e.g. with functools.partial: the dispatcher keeps every posted call alive until it ran."""

    def work() -> None:
        try:
            result = fn()
        except Exception as exc:  # shown to the user; the app keeps working
            on_ui_thread(partial(on_failed, _message(exc)))
        else:
            on_ui_thread(partial(on_done, result))

    job = Job(work)
    QThreadPool.globalInstance().start(job)
    return job


def ignore(*_args: object) -> None:
    """A job callback for results nobody needs (closing a source, say)."""


class _ProgressSignals(QObject):
    progressed = Signal(int, int)
    done = Signal(object)
    failed = Signal(str)


#: signal objects of long jobs, kept for the life of the app: they are few (one per user action),
#: and one dropped by reference counting while Qt still delivers to it could crash
_KEPT: list[_ProgressSignals] = []


class ProgressJob(QRunnable):
    """Long work with a progress bar and cancel: ``fn(progress)`` runs on the pool; ``progress(done,
    total)`` reports to the UI thread and returns False once the user cancelled. ``signals`` are
    emitted on the worker thread, so connections to them are queued to the UI thread (a blocking
    queued connection can make the worker wait for the UI)."""

    def __init__(self, fn: Callable[[Callable[[int, int], bool]], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _ProgressSignals()
        _KEPT.append(self.signals)
        self.cancelled = False  # set from the UI thread; read by the worker between steps

    def progress(self, done: int, total: int) -> bool:
        self.signals.progressed.emit(done, total)
        return not self.cancelled

    def run(self) -> None:
        try:
            result = self.fn(self.progress)
        except Exception as exc:
            self.signals.failed.emit(_message(exc))
        else:
            self.signals.done.emit(result)
