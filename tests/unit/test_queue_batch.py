"""The labeler's queue batch as plain state, without Qt or a database: claiming, renewal, expiry,
Submit and Skip while the database is unreachable, and answers that arrive after the batch moved on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.core.records import Asset, AssetKind
from app.workflow.queue import Lease
from app.workflow.queue_batch import (
    NOTHING_LEFT,
    Answer,
    BatchState,
    ItemState,
    LeaseAnswer,
    QueueBatch,
    QueueItem,
    expired_message,
    skipped_line,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STATS = {"new": 3, "leased": 3, "submitted": 0}
DONE = LeaseAnswer(Answer.DONE, stats={"new": 2, "leased": 3, "submitted": 1})
OFFLINE = LeaseAnswer(Answer.OFFLINE, "database unreachable")


def _lease(n: int, *, required: int = 1, note: str | None = None, expires: datetime = T0) -> Lease:
    return Lease(100 + n, 200 + n, n, 7, expires, note, required)


def _item(n: int, **lease: object) -> QueueItem:
    asset = Asset(n, 1, 1, AssetKind.IMAGE, "data", f"scans/item{n}.png", None, 1, 1, "h", 1, 8, 6)
    return QueueItem(_lease(n, **lease), asset, issues=0)  # type: ignore[arg-type]


def _started(*numbers: int, size: int = 3) -> tuple[QueueBatch, list[QueueItem]]:
    """A started batch holding these items, the first one current."""
    batch = QueueBatch(size)
    assert batch.start()
    assert batch.begin_claim() is not None
    items = [_item(n) for n in numbers]
    step = batch.claimed(items, STATS)
    assert step.advance and step.renewing
    assert batch.advance() is items[0]
    return batch, items


def test_claim_fills_the_batch_then_tops_it_up_with_returned_work_next() -> None:
    batch = QueueBatch(3)
    assert batch.state is BatchState.IDLE and batch.start()
    first = batch.begin_claim()
    assert first is not None and first.known == frozenset() and first.size is None  # the project's size
    assert batch.begin_claim() is None  # one claim at a time
    a, b, c = _item(1), _item(2), _item(3)
    batch.claimed([a, b, c], STATS)
    assert batch.stats == STATS and not batch.claiming
    assert batch.advance() is a
    assert (batch.state, a.state, b.state, batch.current) == (
        BatchState.HOLDING,
        ItemState.CURRENT,
        ItemState.WAITING,
        0,
    )
    # two left after the current one: a refill asks for a batch on top of the leases held
    refill = batch.begin_claim(refill=True)
    assert refill is not None and refill.known == {101, 102, 103} and refill.size == 3 + 3 - 2
    back, d = _item(4, note="the lesion is missing"), _item(5)
    step = batch.claimed([d, back], STATS)
    assert step.prefetch and not step.advance
    assert batch.items == [a, back, b, c, d]  # work a reviewer sent back comes next
    assert batch.begin_claim(refill=True) is None  # enough left now
    batch.begin_claim()
    assert batch.claimed([], STATS).notice is None and batch.exhausted  # topping up found nothing


def test_a_claim_that_finds_nothing_says_so_and_a_failed_claim_can_be_retried() -> None:
    batch = QueueBatch(3)
    batch.start()
    batch.begin_claim()
    assert batch.claim_failed("connection refused").notice == (
        "Could not claim items from the queue: connection refused"
    )
    assert batch.begin_claim() is not None
    step = batch.claimed([], {})
    assert step.notice == NOTHING_LEFT and not step.advance and batch.exhausted
    assert batch.advance() is None and batch.state is BatchState.IDLE


def test_renewal_replaces_the_leases_held_and_runs_one_at_a_time() -> None:
    batch, (a, b, c) = _started(1, 2, 3)
    held = batch.begin_renew()
    assert held == [(a.key, a.lease), (b.key, b.lease), (c.key, c.lease)]
    assert batch.begin_renew() is None  # a renewal is running
    later = T0 + timedelta(minutes=5)
    renewed = {
        key: _lease(n, expires=later, required=2 if n == 2 else 1) for n, (key, _) in enumerate(held, 1)
    }
    step = batch.renewed(renewed, STATS)
    assert not step.advance and step.prefetch and step.notice is None and step.dropped == ()
    assert [item.lease.expires_at for item in (a, b, c)] == [later] * 3
    assert b.required == 2  # the queue's count as of the renewal (set_required meanwhile)
    assert batch.renew_failed("timeout").notice is not None and batch.begin_renew() is not None


def test_renewal_with_nothing_held_stops() -> None:
    batch, (a,) = _started(1, size=1)
    a.state = ItemState.SUBMITTED
    assert batch.begin_renew() == []


def test_an_expired_lease_on_the_current_item_moves_on_and_frees_its_prefetch() -> None:
    batch, (a, b, c) = _started(1, 2, 3)
    held = batch.begin_renew()
    assert held is not None
    step = batch.renewed({a.key: None, b.key: None, c.key: c.lease}, STATS)
    assert (a.state, b.state, c.state) == (ItemState.EXPIRED, ItemState.EXPIRED, ItemState.WAITING)
    assert step.advance and not step.prefetch and step.dropped == (a.key, b.key)
    assert step.notice == expired_message([a.name, b.name])
    assert batch.advance() is c and batch.state is BatchState.HOLDING


def test_an_expired_waiting_item_does_not_move_the_labeler_on() -> None:
    batch, (a, b) = _started(1, 2)
    batch.begin_renew()
    step = batch.renewed({a.key: a.lease, b.key: None}, STATS)
    assert not step.advance and step.dropped == (b.key,) and batch.item is a


def test_submit_offline_keeps_the_item_and_submit_works_again() -> None:
    batch, (a, b) = _started(1, 2)
    assert batch.begin_submit(save=False) is a
    assert batch.state is BatchState.SUBMITTING and batch.waiting and a.state is ItemState.SUBMITTING
    assert batch.open_item(1) is None  # no jumping while the answer is awaited
    step = batch.submit_answered(a.key, OFFLINE)
    assert step.offline == "Submit" and step.renewing and not step.advance
    assert batch.state is BatchState.OFFLINE and not batch.waiting
    assert batch.item is a and a.state is ItemState.CURRENT  # it stays on screen, its lease renewed
    assert batch.begin_renew() == [(a.key, a.lease), (b.key, b.lease)]
    batch.renewed({a.key: a.lease, b.key: b.lease}, STATS)
    batch.begin_submit(save=False)  # the database is back
    step = batch.submit_answered(a.key, DONE)
    assert step.advance and a.state is ItemState.SUBMITTED and batch.stats["submitted"] == 1


def test_a_submit_after_a_save_that_finds_the_database_gone_marks_the_item_not_submitted() -> None:
    batch, (a, b) = _started(1, 2)
    batch.begin_submit(save=True)
    assert batch.state is BatchState.SAVING and a.state is ItemState.CURRENT
    assert batch.saved(a.key) is a and a.state is ItemState.SUBMITTING
    assert batch.advance() is b  # the next item shows while the submit runs in the background
    step = batch.submit_answered(a.key, OFFLINE)
    assert a.state is ItemState.FAILED and not step.advance and batch.item is b
    assert step.notice is not None and step.notice.startswith(
        f"Could not submit {a.name}: database unreachable"
    )
    assert batch.state is BatchState.HOLDING
    assert batch.open_item(0) is a and b.state is ItemState.WAITING  # open it again to resubmit


def test_a_save_refused_offline_keeps_the_item() -> None:
    batch, (a,) = _started(1, size=1)
    batch.begin_submit(save=True)
    batch.save_refused(offline=True)
    assert batch.state is BatchState.OFFLINE and batch.item is a and a.state is ItemState.CURRENT


def test_skip_offline_keeps_the_item_and_skip_works_again() -> None:
    batch, (a, b) = _started(1, 2)
    assert batch.begin_skip() is a and batch.state is BatchState.SKIPPING
    step = batch.skip_answered(a.key, OFFLINE)
    assert step.offline == "Skip" and not step.advance and step.notice is None
    assert batch.state is BatchState.OFFLINE and batch.item is a and a.state is ItemState.CURRENT
    batch.begin_skip()
    step = batch.skip_answered(a.key, DONE)
    assert step.advance and a.state is ItemState.SKIPPED
    assert batch.advance() is b


def test_a_skip_whose_lease_had_expired_tells_so() -> None:
    batch, (a, _b) = _started(1, 2)
    batch.begin_skip()
    step = batch.skip_answered(a.key, LeaseAnswer(Answer.EXPIRED, "too late", STATS))
    assert a.state is ItemState.EXPIRED and step.advance and step.notice == expired_message([a.name])


def test_a_skip_answer_after_the_item_expired_leaves_the_next_item_alone() -> None:
    batch, (a, b, _c) = _started(1, 2, 3)
    batch.begin_skip()
    batch.begin_renew()
    assert batch.renewed({a.key: None}, STATS).advance  # the lease ran out meanwhile: moved on
    assert batch.advance() is b and batch.state is BatchState.SKIPPING  # still awaiting a's answer
    step = batch.skip_answered(a.key, DONE)
    assert not step.advance and step.notice is None
    assert a.state is ItemState.EXPIRED and b.state is ItemState.CURRENT and batch.item is b
    assert batch.state is BatchState.HOLDING


def test_a_save_answer_after_the_item_expired_does_not_submit_the_next_item() -> None:
    batch, (a, b) = _started(1, 2)
    batch.begin_submit(save=True)
    batch.begin_renew()
    batch.renewed({a.key: None, b.key: b.lease}, STATS)
    assert batch.advance() is b
    assert batch.saved(a.key) is None
    assert b.state is ItemState.CURRENT and batch.state is BatchState.HOLDING


def test_a_renewal_answer_after_a_submit_does_not_expire_the_submitted_item() -> None:
    batch, (a, b) = _started(1, 2)
    assert batch.begin_renew() is not None  # a's lease is among those being renewed
    batch.begin_submit(save=True)
    batch.saved(a.key)
    batch.advance()
    step = batch.renewed({a.key: None, b.key: b.lease}, STATS)  # the submit ended the lease first
    assert a.state is ItemState.SUBMITTING and not step.advance and step.dropped == ()
    assert batch.submit_answered(a.key, DONE).advance is False and a.state is ItemState.SUBMITTED
    assert batch.item is b and b.state is ItemState.CURRENT


def test_an_item_that_came_back_to_its_skipper_says_so_with_the_reason() -> None:
    asset = Asset(9, 1, 1, AssetKind.IMAGE, "data", "scans/item9.png", None, 1, 1, "h", 1, 8, 6)
    again = QueueItem(replace(_lease(9), skipped="too dark"), asset, issues=0)
    assert _item(1).skipped is None and again.skipped == "too dark"
    assert skipped_line("too dark").startswith("You skipped this earlier: too dark.")
    assert skipped_line(" ").startswith("You skipped this earlier (no reason given).")
