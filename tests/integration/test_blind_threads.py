"""Comment threads on consensus items keep labelers blind: another labeler's thread (its pin and
words describe their labels) shows only once the item is done; own threads, a lead's threads and
threads on ordinary items always show. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from _review_setup import make_team, square
from support.labeling import work_on
from support.ontology_check import assert_ontology_allows

from app.core.errors import NotFoundError


def test_a_labeler_does_not_see_another_labelers_thread_on_an_unfinished_consensus_item(db_url: str) -> None:
    team = make_team(db_url, images=2, consensus={0: 2})
    consensus_item, single_item = team.assets
    lee, kim, rey = team["lee"], team["kim"], team["rey"]
    lee_pin = lee.comment(consensus_item, "the coin edge here is blurred", x=40.0, y=50.0)
    lead_pin = rey.comment(consensus_item, "label the outer rim, @lee @kim")
    lee_plain = lee.comment(single_item, "a scratch on this one")

    assert {t.id for t in kim.threads()} == {lead_pin.id, lee_plain.id}
    assert {t.id for t in kim.threads(consensus_item)} == {lead_pin.id}
    assert kim.open_thread_counts() == {consensus_item: 1, single_item: 1}
    with pytest.raises(NotFoundError):
        kim.reply(lee_pin.id, "same here")
    with pytest.raises(NotFoundError):
        kim.resolve(lee_pin.id)

    # the author, the lead and the admin see everything
    assert {t.id for t in lee.threads()} == {lee_pin.id, lead_pin.id, lee_plain.id}
    assert {t.id for t in rey.threads()} == {lee_pin.id, lead_pin.id, lee_plain.id}
    assert rey.open_thread_counts() == {consensus_item: 2, single_item: 1}
    lee.reply(lead_pin.id, "will do")  # a labeler still answers the lead's thread

    # once both labeled and the reviewer accepted, the item is done and nothing is blind any more
    work_on(lee, consensus_item, [square(0, 0, 20, 20)])
    work_on(kim, consensus_item, [square(2, 0, 22, 20)])
    assert lee_pin.id not in {t.id for t in kim.threads()}  # submitted but not reviewed: still blind
    # the activity list's issue counts leave the hidden thread out too (a labeler sees own items)
    assert {r.asset_id: r.open_threads for r in kim.activity().rows}[consensus_item] == 1
    assert {r.asset_id: r.open_threads for r in rey.activity().rows} == {consensus_item: 2, single_item: 1}
    rey.choose_consensus(consensus_item, "lee")
    assert_ontology_allows(rey, rey.review_item(consensus_item).consensus)
    assert {t.id for t in kim.threads(consensus_item)} == {lee_pin.id, lead_pin.id}
    kim.reply(lee_pin.id, "agreed")
