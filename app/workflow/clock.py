"""The clock the workflow reads: injectable, so tests and simulations can move time.

A leaf module: the queue, review and activity views all take a ``now: Clock`` argument.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def now_utc(clock: Clock) -> datetime:
    """The clock's time in UTC: SQLite stores naive UTC text, so a local zone must never get in."""
    return clock().astimezone(UTC)
