"""Project JSON export for archiving: ``project.json`` with everything Sitelabel knows.

Ontology, every selected asset (also unlabelled ones: an archive keeps everything) with its data
root, path and file fingerprint, and every selected annotation with its geometry (masks as COCO RLE
of the full frame), attributes, author, source, confidence and version. Each asset carries its
``review``: queue status (the word of app.core.item_status, and the stored ``task_status``),
priority, agreement score, every labeler's ``assignments`` (lease times, status), the review
history (oldest first, each naming the assignment a rejection sent back) and how its consensus
label was made (null for assets never queued). An annotation's ``consensus`` is true for the
consensus label; its ``review`` stays null (reviews judge whole items: see the asset's).
Annotations of an object track also carry ``track_id``, ``keyframe``, ``outside`` and ``occluded``:
the interpolated frames are exported as real annotations with ``keyframe`` false and no ``id``, and
a stored anchor where the object leaves the view is kept with ``outside`` true (it draws nothing;
readers that want what is visible skip it) so that ``import-labels --format project-json``
(``app.exchange.project_json_import``) restores the tracks exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.core.annotations import Annotation, Kind
from app.core.item_status import ItemStatus
from app.core.records import CONSENSUS_SOURCE, Asset, Review, Task, TaskStatus
from app.core.tracks import materialise_tracks
from app.exchange import rle
from app.exchange.selection import ExportJob

if TYPE_CHECKING:
    from app.storage.uow import UnitOfWork

FILE = "project.json"
SCHEMA = "sitelabel-project/2"
# version 1 had no assignments, task status or priority, and left tracks' outside anchors out
SCHEMAS = ("sitelabel-project/1", SCHEMA)


def annotation_json(ann: Annotation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": ann.id,
        "kind": ann.kind.value,
        "label": ann.label,
        "frame": ann.frame,
        "attributes": dict(ann.attributes),
        "author": ann.author,
        "source": ann.source,
        "confidence": ann.confidence,
        "version": ann.version,
        "review": None,
        "consensus": ann.source == CONSENSUS_SOURCE,
    }
    if ann.kind in (Kind.POLYGON, Kind.POLYLINE) and ann.points is not None:
        out["points"] = ann.points.tolist()
    elif ann.kind is Kind.POINT and ann.points is not None:
        out["point"] = ann.points[0].tolist()
    elif ann.kind is Kind.BOX and ann.box is not None:
        out["box"] = [float(v) for v in ann.box]
    elif ann.kind is Kind.MASK and ann.mask is not None:
        out["mask"] = rle.encode(ann.mask)
    if ann.track_id is not None:  # optional keys, as in Annotation.to_dict
        out.update(track_id=ann.track_id, keyframe=ann.keyframe, outside=ann.outside, occluded=ann.occluded)
    return out


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _review_json(review: Review) -> dict[str, Any]:
    return {
        "id": review.id,
        "verdict": review.verdict.value,
        "reviewer": review.reviewer,
        "labeler": review.labeler,
        "assignment_id": review.assignment_id,
        "note": review.note,
        "details": dict(review.details),
        "created_at": _time(review.created_at),
    }


def review_loader(uow: UnitOfWork, project_id: int) -> Callable[[Asset], dict[str, Any] | None]:
    """Per asset: its task, assignments, review history and consensus (None: never queued)."""
    tasks: dict[int, Task] = {}
    statuses: dict[int, str] = {}  # the status words of app.core.item_status
    names: dict[int, str] = {}

    def name(user_id: int) -> str:
        if user_id not in names:
            names[user_id] = uow.users.get(user_id).name
        return names[user_id]

    def review(asset: Asset) -> dict[str, Any] | None:
        if not tasks:
            tasks.update(uow.tasks.by_asset(project_id))
            statuses.update(uow.activity.statuses(project_id, datetime.now(UTC)))
        task = tasks.get(asset.id)
        if task is None:
            return None
        history = uow.reviews.history(asset.id)
        # the consensus is that of the decision that closed the item: once requeued, an earlier
        # one is superseded (app.workflow.queue.requeue), also when the item is then accepted as is
        latest = history[-1] if history else None
        closed = latest is not None and task.status is TaskStatus.DONE and "consensus" in latest.details
        assignments = [
            {
                "id": a.id,
                "labeler": name(a.user_id),
                "status": a.status.value,
                "leased_at": _time(a.leased_at),
                "lease_expires_at": _time(a.lease_expires_at),
                "finished_at": _time(a.finished_at),
            }
            for a in uow.leases.assignments(task.id)
        ]
        return {
            "status": statuses.get(asset.id, ItemStatus.UNQUEUED.value),
            "task_status": task.status.value,
            "priority": task.priority,
            "required_labelers": task.required_labelers,
            "agreement": task.agreement,
            "created_at": _time(task.created_at),
            "updated_at": _time(task.updated_at),
            "verdict": latest.verdict.value if latest else None,
            "assignments": assignments,
            "history": [_review_json(r) for r in history],
            "consensus": dict(latest.details) if closed and latest else None,
        }

    return review


def _asset_json(job: ExportJob, asset: Asset) -> dict[str, Any]:
    return {
        "id": asset.id,
        "dataset_id": asset.dataset_id,
        "kind": asset.kind.value,
        "root": asset.root,
        "path": asset.rel_path,
        "member": asset.member,
        "size": asset.size,
        "mtime_ns": asset.mtime_ns,
        "content_hash": asset.content_hash,
        "frame_count": asset.frame_count,
        "width": asset.width,
        "height": asset.height,
        "metadata": dict(asset.metadata),
        "review": job.review(asset),
        "annotations": [],
    }


def export_project_json(job: ExportJob) -> None:
    assets: list[dict[str, Any]] = []
    total = len(job.assets)
    job.tick(0, total)
    for done, asset in enumerate(job.assets, 1):
        # the stored anchors of tracks, outside ones included, with every frame between them
        stored = job.stored(asset) if job.stored is not None else job.load(asset)
        annotations = materialise_tracks(stored, asset.frame_count, keep_outside=True)
        entry = _asset_json(job, asset)
        entry["annotations"] = [annotation_json(a) for a in annotations]
        assets.append(entry)
        job.exported_assets.add(asset.id)
        job.exported_annotations += sum(1 for a in annotations if not a.outside)
        job.tick(done, total)
    job.tx.write_json(
        FILE,
        {
            "schema": SCHEMA,
            "ontology": job.ontology.to_dict(),
            "filters": job.filters.as_dict(),
            "assets": assets,
        },
    )
