"""Project JSON export for archiving: ``project.json`` with everything Sitelabel knows.

Ontology, every selected asset (also unlabelled ones: an archive keeps everything) with its data
root, path and file fingerprint, and every selected annotation with its geometry (masks as COCO RLE
of the full frame), attributes, author, source, confidence and version. Each asset carries its
``review``: queue status, agreement score, review history (oldest first) and how its consensus
label was made (null for assets never queued). An annotation's ``consensus`` is true for the
consensus label; its ``review`` stays null (reviews judge whole items: see the asset's).
Annotations of an object track also carry ``track_id``, ``keyframe``, ``outside`` and ``occluded``
(the interpolated frames are exported as real annotations with ``keyframe`` false and no ``id``).
"""

from __future__ import annotations

from typing import Any

from app.core.annotations import Annotation, Kind
from app.core.records import CONSENSUS_SOURCE
from app.exchange import rle
from app.exchange.selection import ExportJob

FILE = "project.json"
SCHEMA = "sitelabel-project/1"


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


def export_project_json(job: ExportJob) -> None:
    assets: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for item in job.frames(include_empty=True):
        asset = item.asset
        if current is None or current["id"] != asset.id:
            current = {
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
            assets.append(current)
            job.exported_assets.add(asset.id)
        current["annotations"].extend(annotation_json(a) for a in item.annotations)
        job.exported_annotations += len(item.annotations)
    job.tx.write_json(
        FILE,
        {
            "schema": SCHEMA,
            "ontology": job.ontology.to_dict(),
            "filters": job.filters.as_dict(),
            "assets": assets,
        },
    )
