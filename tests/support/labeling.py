"""Labelers working the queue through the API, the way the editor does: claim a batch, upload the
annotations of an item, submit it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.api import Project
    from app.workflow.queue import Lease

Annotations = list[dict[str, Any]]


@dataclass(frozen=True)
class Worked:
    """What :func:`label_batch` did, each list in claim order."""

    claimed: list[Lease]
    submitted: list[Lease]
    kept: list[Lease]  # still claimed: ``annotations_for`` said None for them


def label_batch(
    project: Project, annotations_for: Callable[[Lease], Annotations | None], *, batch: int | None = None
) -> Worked:
    """Claim a batch (the project's batch size, or ``batch``) and work through it: upload
    ``annotations_for(lease)`` for each item (nothing for an empty list) and submit it; an item for
    which it returns None stays claimed."""
    claimed = project.claim() if batch is None else project.claim(batch=batch)
    submitted, kept = [], []
    for lease in claimed:
        annotations = annotations_for(lease)
        if annotations is None:
            kept.append(lease)
            continue
        if annotations:
            project.upload_annotations(lease.asset_id, annotations)
        project.submit(lease)
        submitted.append(lease)
    return Worked(claimed, submitted, kept)


def work_on(project: Project, asset_id: int, annotations: Annotations) -> Lease:
    """The labeler claims their batch, labels ``asset_id`` and submits it; the other items of the
    batch are skipped back to the pool (others get them first). Returns the submitted lease."""
    leases = project.claim(batch=100)
    mine = [lease for lease in leases if lease.asset_id == asset_id]
    assert mine, f"{project.user_name} did not get asset {asset_id}: {[x.asset_id for x in leases]}"
    if annotations:
        project.upload_annotations(asset_id, annotations)
    project.submit(mine[0])
    for lease in leases:
        if lease.asset_id != asset_id and lease.note is None:
            project.skip(lease)
    return mine[0]
