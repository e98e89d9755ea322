"""CSV export of classifications: ``classifications.csv``, one row per classification annotation.

Columns: asset_id, path (relative to the data root), frame, labeler, label, attributes (JSON),
source, confidence, annotation_id. Other annotation kinds are not rows of this table.
"""

from __future__ import annotations

import csv
import io
import json

from app.core.annotations import Kind
from app.exchange.selection import ExportJob, asset_display_path

FILE = "classifications.csv"
COLUMNS = (
    "asset_id",
    "path",
    "frame",
    "labeler",
    "label",
    "attributes",
    "source",
    "confidence",
    "annotation_id",
)


def export_csv(job: ExportJob) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for item in job.frames():
        rows = [a for a in item.annotations if a.kind is Kind.CLASSIFICATION]
        for ann in rows:
            writer.writerow(
                (
                    item.asset.id,
                    asset_display_path(item.asset),
                    item.frame,
                    ann.author or "",
                    ann.label,
                    json.dumps(dict(ann.attributes), ensure_ascii=False, sort_keys=True),
                    ann.source,
                    "" if ann.confidence is None else repr(ann.confidence),
                    ann.id,
                )
            )
        if rows:
            job.count(item, len(rows))
    job.tx.write_text(FILE, buffer.getvalue())
