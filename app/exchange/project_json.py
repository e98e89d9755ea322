"""Project JSON export for archiving: ``project.json`` with everything Sitelabel knows.

Ontology, every selected asset (also unlabelled ones: an archive keeps everything) with its data
root, path and file fingerprint, and every selected annotation with its geometry (masks as COCO RLE
of the full frame), attributes, author, source, confidence and version. ``review`` and
``consensus`` are null until Sitelabel stores reviews.
"""

from __future__ import annotations

from typing import Any

from app.core.annotations import Annotation, Kind
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
        "consensus": None,
    }
    if ann.kind in (Kind.POLYGON, Kind.POLYLINE) and ann.points is not None:
        out["points"] = ann.points.tolist()
    elif ann.kind is Kind.POINT and ann.points is not None:
        out["point"] = ann.points[0].tolist()
    elif ann.kind is Kind.BOX and ann.box is not None:
        out["box"] = [float(v) for v in ann.box]
    elif ann.kind is Kind.MASK and ann.mask is not None:
        out["mask"] = rle.encode(ann.mask)
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
