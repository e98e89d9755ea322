"""A lease carries its item's required labeler count, on SQLite and PostgreSQL: after set_required
the queue hands out the new count (at the claim, again with the held batch, and at each renewal),
and the editor's batch shows that count rather than the project's sampling plan."""

from __future__ import annotations

from app import api, sample_data
from app.core.records import ProjectSettings
from app.workflow import queue
from app.workflow.consensus import consensus_plan
from app.workflow.queue_batch import QueueBatch, QueueItem

IMAGES = ["coins.png", "camera.png", "astronaut.png", "retina.jpg", "chelsea.png", "coffee.png"]


def test_leases_carry_the_required_count_set_after_import(db_url: str) -> None:
    settings = ProjectSettings(consensus_share=0.5, consensus_count=2, batch_size=10)
    admin = api.create_project(db_url, "required", settings=settings, user="ada")
    ids = admin.import_data([sample_data.skimage_images() / name for name in IMAGES])
    plan = consensus_plan(ids, share=0.5, count=2, seed=f"project-{admin.id}")
    single = next(asset_id for asset_id in ids if plan[asset_id] == 1)
    double = next(asset_id for asset_id in ids if plan[asset_id] == 2)
    queue.set_required(admin.db, admin.id, [single], 3)  # the plan says 1
    queue.set_required(admin.db, admin.id, [double], 1)  # the plan says 2
    want = {**plan, single: 3, double: 1}
    admin.set_member("lee", "labeler")
    lee = api.open_project(admin.db, "required", user="lee")

    leases = lee.claim()
    assert {lease.asset_id: lease.required_labelers for lease in leases} == want
    assert [lease.required_labelers for lease in lee.claim()] == [want[lease.asset_id] for lease in leases]

    # the editor's batch shows the lease's count (the consensus badge), not the sampling plan
    batch = QueueBatch(settings.batch_size)
    batch.start()
    batch.begin_claim()
    batch.claimed([QueueItem(lease, lee.asset(lease.asset_id), 0) for lease in leases], lee.queue_stats())
    shown = {item.asset.id: item.required for item in batch.items}
    assert shown == want and shown[single] != plan[single] and shown[double] != plan[double]

    # changed while leased (the task is still open): the next renewal brings the new count
    queue.set_required(admin.db, admin.id, [single], 2)
    held = batch.begin_renew()
    assert held is not None
    renewed = {key: lee.renew(lease) for key, lease in held}
    assert {lease.asset_id: lease.required_labelers for lease in renewed.values()} == {**want, single: 2}
    batch.renewed(renewed, lee.queue_stats())
    assert {item.asset.id: item.required for item in batch.items} == {**want, single: 2}
    admin.close()
    lee.close()
