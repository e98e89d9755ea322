"""Imported data joins the queue; the consensus share goes to several distinct labelers."""

from __future__ import annotations

import pytest

from app import api, sample_data
from app.core.errors import PermissionDenied
from app.core.records import ProjectSettings
from app.workflow.consensus import consensus_plan

IMAGES = ["coins.png", "camera.png", "astronaut.png", "retina.jpg", "chelsea.png", "coffee.png"]


def test_imports_are_queued_and_consensus_items_reach_two_labelers(db_url: str) -> None:
    settings = ProjectSettings(consensus_share=0.5, consensus_count=2, batch_size=10)
    admin = api.create_project(db_url, "queue", settings=settings, user="ada")
    ids = admin.import_data([sample_data.skimage_images() / name for name in IMAGES])
    plan = consensus_plan(ids, share=0.5, count=2, seed=f"project-{admin.id}")
    consensus = {asset_id for asset_id, required in plan.items() if required == 2}
    assert 0 < len(consensus) < len(ids)  # ids 1..6 with this seed: 3 sampled
    assert admin.queue_stats()["total"] == len(IMAGES)
    for name in ("lee", "max", "nia"):
        admin.set_member(name, "labeler")
    lee, max_, nia = (api.open_project(admin.db, "queue", user=n) for n in ("lee", "max", "nia"))

    first = lee.claim()
    assert {lease.asset_id for lease in first} == set(ids)
    for lease in first:
        lee.submit(lease)
    second = max_.claim()
    assert {lease.asset_id for lease in second} == consensus  # only items that still need a labeler
    with pytest.raises(PermissionDenied, match="another labeler"):
        nia.submit(second[0]) if second else nia.submit(first[0])
    for lease in second:
        max_.submit(lease)
    assert nia.claim() == []  # everything has all the labelers it needs
    assert admin.queue_stats()["submitted"] == len(IMAGES)
