"""Review lifecycle through the API on SQLite and PostgreSQL: reject back to one labeler with a
reason, resubmit, accept / fix, one decision per item, roles, audit, blindness before review."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from _queue_worker import add_assets, make_project
from _review_setup import box, make_team, square, task_of
from support.labeling import work_on
from support.ontology_check import assert_ontology_allows

from app.core.errors import ConflictError, PermissionDenied, ValidationError
from app.core.records import AssignmentStatus, TaskStatus, Verdict
from app.storage import Database
from app.workflow import queue, review


def test_reject_goes_back_to_that_labeler_only_and_resubmit_returns_it(db_url: str) -> None:
    team = make_team(db_url, images=2, consensus={0: 2})
    item, other = team.assets
    lee, kim, max_, rey = team["lee"], team["kim"], team["max"], team["rey"]
    work_on(lee, item, [square(10, 10, 40, 40)])
    kim_lease = work_on(kim, item, [square(12, 10, 40, 40)])
    assert [e.asset_id for e in rey.review_queue()] == [item]

    why = "you missed the coin at the top left"
    verdict = rey.reject(item, "kim", why)
    assert (verdict.verdict, verdict.labeler, verdict.reviewer, verdict.note) == (
        Verdict.REJECTED,
        "kim",
        "rey",
        why,
    )
    assert task_of(rey, item).status is TaskStatus.REJECTED
    with rey.db.unit_of_work(readonly=True) as uow:
        statuses = {a.user_id: a.status for a in uow.leases.assignments(kim_lease.task_id)}
    assert statuses[kim.user.id] is AssignmentStatus.RETURNED
    assert statuses[lee.user.id] is AssignmentStatus.SUBMITTED
    assert rey.review_queue() == []

    # nobody else gets it: not the other labeler of the item, not a fresh one
    assert item not in [x.asset_id for x in max_.claim(batch=100)]
    assert item not in [x.asset_id for x in lee.claim(batch=100)]
    back = kim.claim(batch=100)
    assert back[0].asset_id == item and back[0].note == why  # returned work first, with the reason
    assert back[0].assignment_id == kim_lease.assignment_id
    assert all(lease.note is None for lease in back[1:])
    assert [(n.reviewer, n.note) for n in kim.review_notes(item)] == [("rey", why)]
    assert lee.review_notes(item) == []
    assert kim.claim(batch=100)[0] == back[0]  # asked again: the same lease, still first
    with pytest.raises(ConflictError, match="sent it back to you"):
        kim.skip(back[0])

    (mine,) = kim.annotation_objects(item)
    kim.save_annotation(mine.evolve(points=mine.points - [2.0, 0.0]))  # her correction
    kim.upload_annotations(item, [square(10, 0, 20, 8)])
    kim.submit(back[0])
    assert task_of(rey, item).status is TaskStatus.SUBMITTED
    assert [e.asset_id for e in rey.review_queue()] == [item]
    accepted = rey.accept(item, note="fine now")
    assert accepted.verdict is Verdict.ACCEPTED and task_of(rey, item).status is TaskStatus.DONE
    assert [r.verdict for r in rey.review_history(item)] == [Verdict.REJECTED, Verdict.ACCEPTED]
    assert other not in [e.asset_id for e in rey.review_queue()]


def test_reject_needs_a_reason_and_a_labeler_who_submitted(db_url: str) -> None:
    team = make_team(db_url, images=1)
    (item,) = team.assets
    lee, rey = team["lee"], team["rey"]
    with pytest.raises(ValidationError, match="not waiting for review: it is new"):
        rey.accept(item)
    work_on(lee, item, [square(10, 10, 40, 40)])
    with pytest.raises(ValidationError, match="needs a reason"):
        rey.reject(item, "lee", "   ")
    with pytest.raises(ValidationError, match=r"kim has no submitted work on item .*submitted by: lee"):
        rey.reject(item, "kim", "why")
    with pytest.raises(ValidationError, match="no labeler called 'zed'"):
        rey.reject(item, "zed", "why")
    assert task_of(rey, item).status is TaskStatus.SUBMITTED


def test_accept_and_fix_set_done_and_a_second_reviewer_conflicts(db_url: str) -> None:
    team = make_team(db_url, images=2)
    first, second = team.assets
    lee, rey, sam = team["lee"], team["rey"], team["sam"]
    work_on(lee, first, [square(10, 10, 40, 40)])
    work_on(lee, second, [box(5, 5, 25, 25)])

    rey.accept(first)
    with pytest.raises(ConflictError, match=r"already decided by rey \(accepted"):
        sam.accept(first)
    with pytest.raises(ConflictError, match="already decided by rey"):
        sam.reject(first, "lee", "too loose")
    with pytest.raises(ConflictError, match="already decided by rey"):
        rey.fix_and_accept(first)  # the decider too: an accepted item is closed

    (label,) = sam.annotation_objects(second)
    sam.save_annotation(label.evolve(box=(6.0, 6.0, 24.0, 24.0)))  # the reviewer's correction
    fixed = sam.fix_and_accept(second, note="tightened the box")
    assert (fixed.verdict, fixed.reviewer, fixed.note) == (Verdict.FIXED, "sam", "tightened the box")
    assert task_of(sam, second).status is TaskStatus.DONE
    with pytest.raises(ConflictError, match=r"already decided by sam \(fixed"):
        rey.accept(second)
    assert lee.annotation_objects(second)[0].box == (6.0, 6.0, 24.0, 24.0)


def test_the_same_reviewer_may_send_back_a_second_labeler_but_others_may_not(db_url: str) -> None:
    team = make_team(db_url, images=1, consensus={0: 3})
    (item,) = team.assets
    for name, x in (("lee", 10), ("kim", 12), ("max", 40)):
        work_on(team[name], item, [square(x, 10, x + 30, 40)])
    rey, sam = team["rey"], team["sam"]
    rey.reject(item, "max", "wrong coin")
    with pytest.raises(ConflictError, match="already decided by rey"):
        sam.reject(item, "kim", "also off")
    rey.reject(item, "kim", "slightly off")
    assert {lease.note for lease in team["kim"].claim()} == {"slightly off"}
    assert {lease.note for lease in team["max"].claim()} == {"wrong coin"}
    team["kim"].submit(team["kim"].claim()[0])
    assert task_of(rey, item).status is TaskStatus.REJECTED  # max still owes his part
    team["max"].submit(team["max"].claim()[0])
    assert task_of(rey, item).status is TaskStatus.SUBMITTED


def test_labelers_cannot_review(db_url: str) -> None:
    team = make_team(db_url, images=1, consensus={0: 2})
    (item,) = team.assets
    lee, kim = team["lee"], team["kim"]
    work_on(lee, item, [square(10, 10, 40, 40)])
    work_on(kim, item, [square(12, 10, 40, 40)])
    for attempt in (
        lee.review_queue,
        lambda: lee.review_item(item),
        lambda: lee.disagreement(item, 0),
        lambda: lee.accept(item),
        lambda: lee.reject(item, "kim", "no"),
        lambda: lee.fix_and_accept(item),
        lambda: lee.choose_consensus(item, "lee"),
        lambda: lee.merge_consensus(item),
        lambda: lee.review_history(item),
    ):
        with pytest.raises(PermissionDenied, match="lee is a labeler"):
            attempt()
    assert task_of(lee, item).status is TaskStatus.SUBMITTED


def test_every_review_action_and_queue_step_is_audited(db_url: str) -> None:
    team = make_team(db_url, images=3, consensus={2: 2})
    a, b, c = team.assets
    lee, kim, rey = team["lee"], team["kim"], team["rey"]
    work_on(lee, a, [square(10, 10, 40, 40)])
    work_on(lee, b, [square(10, 10, 40, 40)])
    work_on(lee, c, [square(10, 10, 40, 40)])
    work_on(kim, c, [square(12, 10, 40, 40)])
    rey.accept(a)
    rey.reject(b, "lee", "redo")
    again = lee.claim()[0]
    lee.submit(again)
    rey.fix_and_accept(b)
    rey.merge_consensus(c)
    assert_ontology_allows(rey, rey.review_item(c).consensus)
    rey.choose_consensus(c, "kim")  # the decider may choose again: replaces the consensus set
    assert_ontology_allows(rey, rey.review_item(c).consensus)

    with rey.db.unit_of_work(readonly=True) as uow:
        entries = uow.audit.list(1000)
    actions = [(e.action, e.entity_id) for e in entries if e.action.startswith("review.")]
    assert sorted(actions) == sorted(
        [
            ("review.accept", a),
            ("review.reject", b),
            ("review.fix", b),
            ("review.consensus", c),
            ("review.consensus", c),
        ]
    )
    by_user = {(e.action, e.user_id) for e in entries}
    assert ("review.reject", rey.user.id) in by_user
    reject = next(e for e in entries if e.action == "review.reject")
    assert reject.details["labeler"] == "lee" and reject.details["reason"] == "redo"
    submits = [e for e in entries if e.action == "queue.submit"]
    assert sorted(e.entity_id for e in submits) == sorted([a, b, c, c, b])
    claims = [e for e in entries if e.action == "queue.claim"]
    assert {e.user_id for e in claims} == {lee.user.id, kim.user.id}
    assert any(e.details["returned"] == [again.assignment_id] for e in claims)
    # one audit row per claim call, however big the batch
    first_claim = min((e for e in claims if e.user_id == lee.user.id), key=lambda e: e.id)
    assert sorted(first_claim.details["tasks"]) == sorted(task_of(rey, x).id for x in (a, b, c))


def test_labelers_stay_blind_on_consensus_items_until_review(db_url: str) -> None:
    team = make_team(db_url, images=1, consensus={0: 2})
    (item,) = team.assets
    lee, kim, rey = team["lee"], team["kim"], team["rey"]
    work_on(lee, item, [square(10, 10, 40, 40)])
    kim_lease = kim.claim()[0]
    kim.upload_annotations(item, [square(12, 10, 40, 40)])
    assert {a["author"] for a in kim.annotations(item)} == {"kim"}  # while labeling
    kim.submit(kim_lease)
    assert {a["author"] for a in kim.annotations(item)} == {"kim"}  # waiting for review
    assert {a["author"] for a in lee.annotations(item)} == {"lee"}
    with pytest.raises(PermissionDenied):
        kim.annotations(item, labeler="lee")
    with pytest.raises(PermissionDenied):
        kim.render(item, labeler="lee")

    rey.merge_consensus(item)
    assert_ontology_allows(rey, rey.review_item(item).consensus)
    seen = {(a["author"], a["source"]) for a in kim.annotations(item)}
    assert seen == {("kim", "human"), ("rey", "consensus")}  # the accepted consensus, not lee's own
    with pytest.raises(PermissionDenied):
        kim.annotations(item, labeler="lee")


def test_review_queue_lowest_agreement_first_with_labelers_and_issues(db_url: str) -> None:
    team = make_team(db_url, images=4, consensus={0: 2, 1: 2})
    close, far, single, waiting = team.assets
    lee, kim, rey = team["lee"], team["kim"], team["rey"]
    work_on(lee, single, [square(10, 10, 40, 40)])
    for name, dx in (("lee", 0), ("kim", 2)):
        work_on(team[name], close, [square(10 + dx, 10, 40 + dx, 40)])
    for name, dx in (("kim", 0), ("lee", 20)):
        work_on(team[name], far, [square(10 + dx, 10, 40 + dx, 40)])
    kim.comment(far, "is this one coin or two?")
    entries = rey.review_queue()
    assert [e.asset_id for e in entries] == [far, close, single]  # unscored single item last
    assert entries[0].labelers == ("kim", "lee") and entries[0].open_threads == 1
    assert entries[1].labelers == ("lee", "kim") and entries[1].open_threads == 0
    assert entries[0].agreement is not None and entries[1].agreement is not None
    assert entries[0].agreement < entries[1].agreement and entries[2].agreement is None
    assert rey.review_queue(limit=1) == entries[:1]
    assert waiting not in [e.asset_id for e in entries]


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t


def test_returned_work_outlives_its_lease_and_requeue_voids_it(db: Database) -> None:
    clock = Clock()
    project, (ana, bob, rey) = make_project(db, users=3)  # users u0, u1, u2
    (asset,) = add_assets(db, project, 1)
    queue.enqueue(db, project, [asset], now=clock)
    lease = queue.claim(db, project, ana, lease_seconds=60, now=clock)[0]
    queue.submit(db, lease, now=clock)
    review.reject(db, project, asset, rey, "u0", reason="redo", now=clock)
    again = queue.claim(db, project, ana, lease_seconds=60, now=clock)[0]
    assert again.note == "redo" and again.expires_at == clock.t + timedelta(seconds=60)
    clock.t += timedelta(minutes=5)  # ana went home; housekeeping runs; bob asks for work
    queue.release_expired(db, project, now=clock)
    assert queue.claim(db, project, bob, now=clock) == []
    with pytest.raises(queue.LeaseExpired, match="expired 240 s ago"):
        queue.submit(db, again, now=clock)
    later = queue.claim(db, project, ana, lease_seconds=60, now=clock)
    assert [(x.assignment_id, x.note) for x in later] == [(lease.assignment_id, "redo")]
    queue.requeue(db, later[0].task_id, now=clock)  # a fresh start for the item: anyone may take it
    assert [x.asset_id for x in queue.claim(db, project, bob, now=clock)] == [asset]


def test_two_reviewers_deciding_at_once_one_wins_the_other_is_told_who(db_url: str) -> None:
    team = make_team(db_url, images=1, consensus={0: 2})
    (item,) = team.assets
    work_on(team["lee"], item, [square(10, 10, 40, 40)])
    work_on(team["kim"], item, [square(12, 10, 40, 40)])
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def decide(name: str, action: Callable[[], object]) -> None:
        start.wait()
        try:
            outcomes[name] = action()
        except ConflictError as exc:
            outcomes[name] = exc

    rey, sam = team["rey"], team["sam"]
    threads = [
        threading.Thread(target=decide, args=("rey", lambda: rey.merge_consensus(item))),
        threading.Thread(target=decide, args=("sam", lambda: sam.reject(item, "kim", "off by two"))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lost = [name for name, result in outcomes.items() if isinstance(result, ConflictError)]
    assert len(lost) == 1, outcomes
    (winner,) = set(outcomes) - set(lost)
    assert f"already decided by {winner}" in str(outcomes[lost[0]])
    history = rey.review_history(item)
    assert [r.reviewer for r in history] == [winner]
    expected = TaskStatus.DONE if winner == "rey" else TaskStatus.REJECTED
    assert task_of(rey, item).status is expected
    assert_ontology_allows(rey, rey.review_item(item).consensus)  # the merge's, when rey won
