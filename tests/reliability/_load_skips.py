"""The load test's check of the skip rule (app.workflow.queue): a skipped item goes to the other
labelers first, and comes back to its skipper only when no other active labeler could take it and
the skipper had no other item.

For each item that came back to its skipper (claim ``y``), at ``y``'s claim time: no item may have
been free (one whose first claim came later, or never), and no other labeler may have been able to
take it -- active (a lease of theirs started or ended well inside the lease period before, or ran
across that moment) without having skipped the item before ``y`` or holding it then. Audit ids order
the claims and skips of one item (the test's _lock_order); the margin keeps clock readings taken at
a transaction's start from deciding anything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MARGIN = timedelta(seconds=2)


@dataclass(frozen=True)
class SkipOrder:
    claimed_at: dict[int, int]  # assignment id -> audit id of its claim
    skipped_at: dict[int, int]  # assignment id -> audit id of its skip
    held: Callable[[Any, Any], bool]  # whether assignment x held its slot when y was claimed
    lease: timedelta


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _active(a: Any, at: datetime, lease: timedelta) -> bool:
    """Assignment ``a`` shows its labeler at work around ``at`` (well inside the lease period)."""
    start, end = at - lease + MARGIN, at - MARGIN
    leased = _aware(a.leased_at)
    if start < leased < end or (a.finished_at is not None and start < _aware(a.finished_at) < end):
        return True
    return leased < end and _aware(a.lease_expires_at) > at + MARGIN


def check_skips(
    assignments: list[Any], order: SkipOrder, *, never_claimed: int
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """(figures, problems) of the skip rule over the run's assignments (see the module doc)."""
    per_task: dict[int, list[Any]] = defaultdict(list)
    for a in sorted(assignments, key=lambda r: r.id):
        per_task[int(a.task_id)].append(a)
    first_claims = sorted(_aware(items[0].leased_at) for items in per_task.values())
    problems: list[dict[str, Any]] = []
    back = taken_by_others = 0
    for task_id, items in per_task.items():
        skippers = {int(a.user_id) for a in items if a.status == "skipped"}
        if skippers and any(int(a.user_id) not in skippers for a in items):
            taken_by_others += 1
        for y in items:
            user = int(y.user_id)
            if not any(x.id < y.id and int(x.user_id) == user and x.status == "skipped" for x in items):
                continue
            back += 1
            at = _aware(y.leased_at)
            free = sum(1 for t in first_claims if t > at + MARGIN) + never_claimed
            active = {
                int(a.user_id) for a in assignments if int(a.user_id) != user and _active(a, at, order.lease)
            }
            claim = order.claimed_at.get(int(y.id), 0)
            unable = {
                int(x.user_id)
                for x in items
                if x.id != y.id
                and (
                    (x.status == "skipped" and order.skipped_at.get(int(x.id), 0) < claim) or order.held(x, y)
                )
            }
            able = sorted(active - unable)
            if free or able:
                problems.append(
                    {"user": user, "task": task_id, "claim": int(y.id), "free_items": free, "able": able}
                )
    figures = {
        "skipped_items": sum(1 for items in per_task.values() if any(a.status == "skipped" for a in items)),
        "skipped_items_taken_by_others": taken_by_others,
        "skipped_items_back_to_skipper": back,
    }
    return figures, problems
