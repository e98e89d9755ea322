"""A skipped item goes to the other labelers first (app.workflow.queue, app.storage.repo_leases),
on SQLite and PostgreSQL; a test clock moves time."""

from __future__ import annotations

import pytest
from _queue_worker import make_project, make_queue
from support.clock import StepClock

from app.core.records import AssignmentStatus
from app.storage import Database
from app.workflow import queue
from app.workflow.queue import Lease

LEASE = 60  # make_project's lease time: who worked within it is an active labeler


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


def assets_of(leases: list[Lease]) -> list[int]:
    return [lease.asset_id for lease in leases]


def history(db: Database, task_id: int) -> list[tuple[int, AssignmentStatus]]:
    with db.unit_of_work(readonly=True) as uow:
        return [(a.user_id, a.status) for a in uow.leases.assignments(task_id)]


def test_a_skipped_item_waits_for_the_other_labeler(db: Database, clock: StepClock) -> None:
    project, (ana, bob) = make_project(db, users=2, batch=2)
    assets = make_queue(db, project, 3, now=clock)
    bobs = queue.claim(db, project, bob, now=clock)  # bob's batch: the first two
    (mine,) = queue.claim(db, project, ana, now=clock)
    assert assets_of(bobs) == assets[:2] and mine.asset_id == assets[2] and mine.skipped is None
    queue.skip(db, mine, reason="too blurry", now=clock)
    clock.advance(6)
    # her batch refills: the item she skipped is not handed back while bob can still take it
    assert queue.claim(db, project, ana, now=clock) == []
    assert history(db, mine.task_id) == [(ana, AssignmentStatus.SKIPPED)]
    for lease in bobs:
        queue.submit(db, lease, now=clock)
    (his,) = queue.claim(db, project, bob, now=clock)
    assert his.asset_id == assets[2] and his.skipped is None  # bob never skipped it
    # bob skips it too: now nobody else could take it, so it comes back to ana with her reason
    queue.skip(db, his, now=clock)
    (back,) = queue.claim(db, project, ana, now=clock)
    assert back.asset_id == assets[2] and back.skipped == "too blurry"
    assert queue.claim(db, project, ana, now=clock)[0].skipped == "too blurry"  # a restart keeps it
    assert queue.claim(db, project, bob, now=clock) == []  # ana holds it
    queue.submit(db, back, now=clock)
    assert queue.queue_stats(db, project, now=clock)["submitted"] == 3


def test_it_comes_back_after_the_rest_of_the_queue_when_nobody_else_works(
    db: Database, clock: StepClock
) -> None:
    project, (ana, bob) = make_project(db, users=2, batch=10)
    assets = make_queue(db, project, 4, now=clock)
    (old,) = queue.claim(db, project, bob, batch=1, now=clock)
    queue.submit(db, old, now=clock)
    clock.advance(LEASE + 1)  # bob left more than a lease period ago: no longer an active labeler
    (first,) = queue.claim(db, project, ana, batch=1, now=clock)
    queue.skip(db, first, reason="wrong body part", now=clock)
    batch = queue.claim(db, project, ana, now=clock)
    assert assets_of(batch) == [assets[2], assets[3], assets[1]]  # the skipped one last
    assert [lease.skipped for lease in batch] == [None, None, "wrong body part"]
    # a skip without a reason reads as an empty reason, not as "never skipped"
    queue.skip(db, batch[0], now=clock)
    assert queue.claim(db, project, ana, batch=10, now=clock)[-1].skipped == ""


def test_a_consensus_item_comes_back_when_the_others_hold_or_labeled_it(
    db: Database, clock: StepClock
) -> None:
    project, (ana, bob, cid) = make_project(db, users=3, batch=1)
    singles = make_queue(db, project, 2, now=clock)
    (item,) = make_queue(db, project, 1, required=3, priority=-1.0, now=clock)
    working = {user: queue.claim(db, project, user, now=clock)[0] for user in (bob, cid)}
    assert assets_of(list(working.values())) == singles  # bob and cid are at work
    (a,) = queue.claim(db, project, ana, now=clock)
    assert a.asset_id == item
    queue.skip(db, a, reason="later", now=clock)
    assert queue.claim(db, project, ana, now=clock) == []  # bob and cid have not had it
    queue.submit(db, working[bob], now=clock)
    (b,) = queue.claim(db, project, bob, now=clock)
    queue.submit(db, b, now=clock)
    assert queue.claim(db, project, ana, now=clock) == []  # cid still could
    queue.submit(db, working[cid], now=clock)
    (c,) = queue.claim(db, project, cid, now=clock)  # cid holds a slot now: nobody else could take it
    (back,) = queue.claim(db, project, ana, now=clock)
    assert back.asset_id == item and back.skipped == "later"
    queue.submit(db, c, now=clock)
    queue.submit(db, back, now=clock)
    stats = queue.queue_stats(db, project, now=clock)
    assert (stats["submitted"], stats["new"], stats["in_progress"]) == (3, 0, 0)


def test_an_expired_lease_is_not_a_skip(db: Database, clock: StepClock) -> None:
    project, (ana, bob) = make_project(db, users=2)
    assets = make_queue(db, project, 2, now=clock)
    (lapsed,) = queue.claim(db, project, ana, batch=1, now=clock)
    (his,) = queue.claim(db, project, bob, batch=1, now=clock)
    clock.advance(LEASE + 1)  # ana's lease ran out (she did not decline the item)
    assert his.asset_id == assets[1]
    back = queue.claim(db, project, ana, batch=2, now=clock)
    assert assets_of(back) == [assets[1], assets[0]]  # bob's lapsed one she never had, then hers
    assert lapsed.task_id in {lease.task_id for lease in back} and all(x.skipped is None for x in back)
