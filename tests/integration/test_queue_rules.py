"""Queue rules on SQLite and PostgreSQL: order, leases, skips, consensus, requeue (a test clock
drives lease expiry, so nothing sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from _queue_worker import make_project, make_queue

from app.core.errors import ConflictError, NotFoundError
from app.core.records import AssignmentStatus, TaskStatus
from app.storage import Database
from app.workflow import queue
from app.workflow.queue import LeaseExpired


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def assets_of(leases: list[queue.Lease]) -> list[int]:
    return [lease.asset_id for lease in leases]


def test_priority_first_then_oldest_and_enqueue_is_idempotent(db: Database, clock: Clock) -> None:
    project, (ana,) = make_project(db, users=1)
    assets = make_queue(db, project, 6, now=clock)
    assert queue.enqueue(db, project, assets, now=clock) == 0  # existing tasks kept
    queue.set_priority(db, project, [assets[4]], 0.9, now=clock)  # e.g. 1 - model confidence 0.1
    queue.set_priority(db, project, [assets[2], assets[5]], 0.25, now=clock)
    got = queue.claim(db, project, ana, batch=6, lease_seconds=60, now=clock)
    assert assets_of(got) == [assets[4], assets[2], assets[5], assets[0], assets[1], assets[3]]
    assert all(lease.expires_at == clock.t + timedelta(seconds=60) for lease in got)
    with pytest.raises(NotFoundError):
        queue.enqueue(db, project, [10**9])


def test_live_leases_come_back_first_and_batch_is_topped_up(db: Database, clock: Clock) -> None:
    project, (ana, bob) = make_project(db, users=2, batch=3)
    assets = make_queue(db, project, 8, now=clock)
    first = queue.claim(db, project, ana, now=clock)  # project default batch: 3
    assert assets_of(first) == assets[:3]
    queue.submit(db, first[0], now=clock)
    again = queue.claim(db, project, ana, now=clock)  # the app restarted: same two leases, one new
    assert again[:2] == first[1:] and assets_of(again[2:]) == [assets[3]]
    assert assets_of(queue.claim(db, project, bob, now=clock)) == assets[4:7]


def test_renew_extends_and_late_renew_or_submit_is_rejected(db: Database, clock: Clock) -> None:
    project, (ana, bob) = make_project(db, users=2)
    make_queue(db, project, 2, now=clock)
    lease, other = queue.claim(db, project, ana, batch=2, lease_seconds=30, now=clock)
    clock.advance(20)
    renewed = queue.renew(db, lease, lease_seconds=30, now=clock)
    assert renewed.expires_at == clock.t + timedelta(seconds=30) > lease.expires_at
    clock.advance(20)  # past the first expiry, within the renewed one
    queue.submit(db, renewed, now=clock)
    # the other lease ran out; nobody claimed it yet, but a late submit must still fail
    with pytest.raises(LeaseExpired, match="expired 10 s ago"):
        queue.submit(db, other, now=clock)
    with pytest.raises(LeaseExpired):
        queue.renew(db, other, now=clock)
    taken = queue.claim(db, project, bob, batch=5, now=clock)
    assert [t.task_id for t in taken] == [other.task_id]
    with pytest.raises(LeaseExpired, match="another labeler took it over"):
        queue.submit(db, other, now=clock)
    assert isinstance(LeaseExpired("x"), ConflictError)


def test_skip_returns_item_to_pool_and_to_the_skipper_last(db: Database, clock: Clock) -> None:
    project, (ana, bob) = make_project(db, users=2)
    assets = make_queue(db, project, 3, now=clock)
    first = queue.claim(db, project, ana, batch=1, now=clock)[0]
    assert first.asset_id == assets[0]
    queue.skip(db, first, reason="blurry", now=clock)
    queue.skip(db, first, now=clock)  # skipping twice does nothing
    # ana gets the others first; the skipped item comes back to her only when nothing else is left
    assert assets_of(queue.claim(db, project, ana, batch=1, now=clock)) == [assets[1]]
    assert assets_of(queue.claim(db, project, bob, batch=1, now=clock)) == [assets[0]]  # bob: oldest first
    bob_lease = queue.claim(db, project, bob, batch=1, now=clock)[0]  # his live lease comes back
    assert bob_lease.asset_id == assets[0]
    queue.skip(db, bob_lease, now=clock)
    ana_batch = queue.claim(db, project, ana, batch=5, now=clock)
    # her live lease, then the item she never saw, then the one both skipped
    assert assets_of(ana_batch) == [assets[1], assets[2], assets[0]]
    with db.unit_of_work(readonly=True) as uow:
        history = uow.leases.assignments(first.task_id)
    skipped, active = AssignmentStatus.SKIPPED, AssignmentStatus.ACTIVE
    assert [(a.user_id, a.status) for a in history] == [(ana, skipped), (bob, skipped), (ana, active)]
    with pytest.raises(LeaseExpired):
        queue.submit(db, first, now=clock)  # a skipped lease is over


def test_consensus_needs_distinct_labelers(db: Database, clock: Clock) -> None:
    project, users = make_project(db, users=4)
    [consensus] = make_queue(db, project, 1, required=3, priority=1.0, now=clock)
    singles = make_queue(db, project, 4, now=clock)
    leases = {u: queue.claim(db, project, u, batch=1, now=clock)[0] for u in users[:3]}
    assert {lease.asset_id for lease in leases.values()} == {consensus}
    assert queue.claim(db, project, users[3], batch=1, now=clock)[0].asset_id == singles[0]  # 3 slots held
    # the same user never twice: a second claim hands ana other items
    ana = users[0]
    more = queue.claim(db, project, ana, batch=3, now=clock)
    assert more[0] == leases[ana] and consensus not in assets_of(more[1:])
    for n, user in enumerate(users[:3]):
        with db.unit_of_work(readonly=True) as uow:
            assert uow.tasks.get(leases[user].task_id).status is TaskStatus.NEW
        queue.submit(db, leases[user], now=clock)
        assert consensus not in assets_of(queue.claim(db, project, user, batch=5, now=clock))
        assert n < 2 or queue.queue_stats(db, project, now=clock)["submitted"] == 1
    with db.unit_of_work(readonly=True) as uow:
        assert uow.tasks.get(leases[ana].task_id).status is TaskStatus.SUBMITTED
    assert consensus not in assets_of(queue.claim(db, project, users[3], batch=5, now=clock))


def test_expired_consensus_slot_goes_to_someone_new(db: Database, clock: Clock) -> None:
    project, (ana, bob, cid) = make_project(db, users=3)
    [asset] = make_queue(db, project, 1, required=2, now=clock)
    a = queue.claim(db, project, ana, batch=1, lease_seconds=10, now=clock)[0]
    queue.claim(db, project, bob, batch=1, lease_seconds=100, now=clock)
    assert queue.claim(db, project, cid, batch=1, now=clock) == []
    clock.advance(11)
    assert assets_of(queue.claim(db, project, cid, batch=1, now=clock)) == [asset]
    with pytest.raises(LeaseExpired):
        queue.renew(db, a, now=clock)


def test_requeue_voids_leases_and_submissions(db: Database, clock: Clock) -> None:
    project, (ana, bob) = make_project(db, users=2)
    [asset] = make_queue(db, project, 1, now=clock)
    lease = queue.claim(db, project, ana, batch=1, now=clock)[0]
    queue.submit(db, lease, now=clock)
    queue.submit(db, lease, now=clock)  # a retried submit is a no-op
    assert queue.claim(db, project, bob, batch=1, now=clock) == []
    queue.requeue(db, lease.task_id, now=clock)  # e.g. rejected in review
    again = queue.claim(db, project, bob, batch=1, now=clock)[0]
    assert again.asset_id == asset
    queue.requeue(db, lease.task_id, now=clock)
    with pytest.raises(LeaseExpired, match="requeued"):
        queue.submit(db, again, now=clock)
    assert assets_of(queue.claim(db, project, ana, batch=1, now=clock)) == [asset]  # earlier labeler, last
    with pytest.raises(NotFoundError):
        queue.requeue(db, 10**9)


def test_stats_and_release_expired(db: Database, clock: Clock) -> None:
    project, (ana,) = make_project(db, users=1)
    make_queue(db, project, 5, now=clock)
    leases = queue.claim(db, project, ana, batch=3, lease_seconds=10, now=clock)
    queue.submit(db, leases[0], now=clock)
    stats = queue.queue_stats(db, project, now=clock)
    assert (stats["new"], stats["leased"], stats["submitted"], stats["accepted"], stats["total"]) == (
        2,
        2,
        1,
        0,
        5,
    )
    clock.advance(10)
    assert queue.release_expired(db, project, now=clock) == 2
    assert queue.release_expired(db, project, now=clock) == 0
    assert queue.queue_stats(db, project, now=clock)["new"] == 4
    assert len(queue.claim(db, project, ana, batch=10, now=clock)) == 4  # her expired ones come back too
