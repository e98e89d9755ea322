"""An item's status: the one vocabulary of the queue counts, the activity list, the export filter,
the review messages, the CLI and the editor.

An *item* is an asset of a project. Its status says where it is in the labeling queue and review;
exactly one word applies at a time (the first that matches, in this order):

``unqueued``
    The asset has no task in the labeling queue.
``leased``
    Queued and still open, and a labeler holds a running lease on it now (it is being labeled).
``in_progress``
    Queued and still open, some of the labelers it needs (a consensus item needs several) have
    submitted it, and nobody holds a lease on it now: it waits for its other labelers.
``new``
    Queued and still open, nobody has started it: no submission, no running lease (a lease that
    ran out, a skip and a requeue leave an item ``new``).
``submitted``
    Every labeler it needs has submitted it: it waits for review.
``rejected``
    A reviewer sent it back to a labeler, who corrects it.
``accepted``
    A reviewer accepted it (as it was, fixed, or by choosing or merging its consensus).

The queue counts (:func:`app.workflow.queue.queue_stats`) count items by these words (plus
``total``, the queued items), and the activity list shows the same word per item: the database
computes both from one expression (``app.storage.repo_activity.item_status``).

Other words are accepted where they name one status (``done`` is ``accepted``, the word the task
table stores; ``returned`` is ``rejected``; ``in progress`` and ``in-progress`` are
``in_progress``); a word that could mean several (``reviewed``, ``open``, ``finished``) or none is
refused with the valid words. ``any`` (or ``all``) means no status filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from app.core.errors import ValidationError
from app.core.records import TaskStatus


class ItemStatus(StrEnum):
    UNQUEUED = "unqueued"
    NEW = "new"
    LEASED = "leased"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    REJECTED = "rejected"
    ACCEPTED = "accepted"

    @property
    def label(self) -> str:
        """The word for people (``in progress``)."""
        return self.value.replace("_", " ")

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


#: one line per status, for help texts and tooltips
MEANINGS: Mapping[ItemStatus, str] = {
    ItemStatus.UNQUEUED: "not in the labeling queue",
    ItemStatus.NEW: "queued, nobody has started it",
    ItemStatus.LEASED: "a labeler holds a lease on it now",
    ItemStatus.IN_PROGRESS: "some of its labelers submitted it, the others have not started",
    ItemStatus.SUBMITTED: "every labeler it needs submitted it: waiting for review",
    ItemStatus.REJECTED: "review sent it back to a labeler",
    ItemStatus.ACCEPTED: "review accepted it",
}
#: the words in the order of the item's way through the queue (counts and filters list them so)
STATUSES: tuple[str, ...] = tuple(s.value for s in ItemStatus)
#: the statuses of items still in the labeling queue, in the order the queue counts show them
QUEUE_COUNTS: tuple[ItemStatus, ...] = (
    ItemStatus.NEW,
    ItemStatus.LEASED,
    ItemStatus.IN_PROGRESS,
    ItemStatus.SUBMITTED,
    ItemStatus.REJECTED,
    ItemStatus.ACCEPTED,
)
#: other words for one status
SYNONYMS: Mapping[str, ItemStatus] = {
    "done": ItemStatus.ACCEPTED,  # the word the task table stores for accepted items
    "returned": ItemStatus.REJECTED,
    "sent_back": ItemStatus.REJECTED,
    "claimed": ItemStatus.LEASED,
    "labeling": ItemStatus.LEASED,
    "partial": ItemStatus.IN_PROGRESS,
    "to_review": ItemStatus.SUBMITTED,
    "not_queued": ItemStatus.UNQUEUED,
}
#: words that could mean several statuses: refused, naming the candidates
AMBIGUOUS: Mapping[str, tuple[ItemStatus, ...]] = {
    "reviewed": (ItemStatus.ACCEPTED, ItemStatus.REJECTED),
    "open": (ItemStatus.NEW, ItemStatus.LEASED, ItemStatus.IN_PROGRESS),
    "queued": (ItemStatus.NEW, ItemStatus.LEASED, ItemStatus.IN_PROGRESS),
    "started": (ItemStatus.LEASED, ItemStatus.IN_PROGRESS),
    "finished": (ItemStatus.SUBMITTED, ItemStatus.ACCEPTED),
    "complete": (ItemStatus.SUBMITTED, ItemStatus.ACCEPTED),
    "completed": (ItemStatus.SUBMITTED, ItemStatus.ACCEPTED),
    "labeled": (ItemStatus.SUBMITTED, ItemStatus.ACCEPTED),
}
ANY = ("any", "all")
#: the stored task status of each status of a queued item
STORED: Mapping[ItemStatus, TaskStatus] = {
    ItemStatus.NEW: TaskStatus.NEW,
    ItemStatus.LEASED: TaskStatus.NEW,
    ItemStatus.IN_PROGRESS: TaskStatus.NEW,
    ItemStatus.SUBMITTED: TaskStatus.SUBMITTED,
    ItemStatus.REJECTED: TaskStatus.REJECTED,
    ItemStatus.ACCEPTED: TaskStatus.DONE,
}


def _valid() -> str:
    return ", ".join(STATUSES)


def _normal(word: str) -> str:
    return "_".join(word.strip().lower().replace("-", " ").split())


def parse_status(word: str) -> ItemStatus:
    """The status a word names (a status word or a synonym, any case, ``-``/space for ``_``);
    a ValidationError listing the valid words for an ambiguous or unknown one."""
    key = _normal(word)
    if key in STATUSES:
        return ItemStatus(key)
    if key in SYNONYMS:
        return SYNONYMS[key]
    if key in AMBIGUOUS:
        could = " or ".join(s.value for s in AMBIGUOUS[key])
        raise ValidationError(f"status {word!r} is ambiguous (it could mean {could}); use one of {_valid()}")
    raise ValidationError(f"unknown status {word!r}; use one of {_valid()} (or any)")


def parse_status_filter(word: str | None) -> ItemStatus | None:
    """A status filter: None, ``""``, ``any`` and ``all`` filter nothing (None)."""
    if word is None or not word.strip() or _normal(word) in ANY:
        return None
    return parse_status(word)


def stored_status_word(status: TaskStatus) -> str:
    """The vocabulary's word for a stored task status, where it decides one (``done`` is
    ``accepted``); an open task's word depends on its leases and submissions, so ``new`` here
    stands for "still being labeled"."""
    if status is TaskStatus.DONE:
        return ItemStatus.ACCEPTED.value
    return status.value


def status_help() -> str:
    """The status words with their meanings, for CLI help."""
    words = "; ".join(f"{s.value} ({MEANINGS[s]})" for s in ItemStatus)
    return f"{words}; also done (= accepted) and any (every item)"


def counts_line(counts: Mapping[str, int]) -> str:
    """``3 new · 1 leased · 2 in progress · ...``: the queue counts as the panel and the CLI show them."""
    return " · ".join(f"{int(counts.get(s.value, 0))} {s.label}" for s in QUEUE_COUNTS)
