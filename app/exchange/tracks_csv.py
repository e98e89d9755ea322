"""Per-track CSV export: ``tracks.csv``, one row per frame of every object track.

Every frame a track covers is a row, interpolated frames included (the export's loader expands
tracks first: ``app.core.tracks.materialise_tracks``); frames where the object is outside the view
have no row. Rows are ordered by asset, track, frame.

Columns: asset_id, path (relative to the data root), track_id, frame, label, kind, state
(keyframe | tracked | interpolated), occluded (0/1), x0, y0, x1, y1 (the box, or the extent of a
polygon / mask), points (JSON [[x, y], ...] for polygons, polylines and points; empty otherwise),
source, confidence, labeler, annotation_id (empty for interpolated frames).
Annotations outside any track are not rows of this table (reported once per asset).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict

from app.core.annotations import Annotation, Kind
from app.core.tracks import FrameState
from app.exchange.selection import ExportJob, FrameItem, asset_display_path

FILE = "tracks.csv"
COLUMNS = (
    "asset_id",
    "path",
    "track_id",
    "frame",
    "label",
    "kind",
    "state",
    "occluded",
    "x0",
    "y0",
    "x1",
    "y1",
    "points",
    "source",
    "confidence",
    "labeler",
    "annotation_id",
)


def frame_state(ann: Annotation) -> FrameState:
    if ann.keyframe:
        return FrameState.KEYFRAME
    return FrameState.TRACKED if ann.id is not None else FrameState.INTERPOLATED


def extent(ann: Annotation) -> tuple[float, float, float, float] | None:
    if ann.box is not None:
        return ann.box
    if ann.points is not None and len(ann.points):
        lo, hi = ann.points.min(axis=0), ann.points.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])
    if ann.mask is not None and ann.mask.area:
        h, w = ann.mask.bits.shape
        return float(ann.mask.x0), float(ann.mask.y0), float(ann.mask.x0 + w), float(ann.mask.y0 + h)
    return None


def _row(item: FrameItem, ann: Annotation) -> tuple[object, ...]:
    box = extent(ann)
    points = ""
    if ann.kind in (Kind.POLYGON, Kind.POLYLINE, Kind.POINT) and ann.points is not None:
        points = json.dumps(ann.points.tolist())
    return (
        item.asset.id,
        asset_display_path(item.asset),
        ann.track_id,
        ann.frame,
        ann.label,
        ann.kind.value,
        frame_state(ann).value,
        int(ann.occluded),
        *(("",) * 4 if box is None else tuple(repr(float(v)) for v in box)),
        points,
        ann.source,
        "" if ann.confidence is None else repr(ann.confidence),
        ann.author or "",
        "" if ann.id is None else ann.id,
    )


def export_tracks_csv(job: ExportJob) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    rows: dict[tuple[int, int], list[tuple[int, tuple[object, ...]]]] = defaultdict(list)
    untracked: dict[int, int] = defaultdict(int)
    for item in job.frames():
        in_tracks = [a for a in item.annotations if a.track_id is not None]
        untracked[item.asset.id] += len(item.annotations) - len(in_tracks)
        for ann in in_tracks:
            assert ann.track_id is not None
            rows[(item.asset.id, ann.track_id)].append((ann.frame, _row(item, ann)))
        if in_tracks:
            job.count(item, len(in_tracks))
    for key in sorted(rows):
        for _, row in sorted(rows[key], key=lambda r: r[0]):
            writer.writerow(row)
    for asset in job.assets:
        if untracked.get(asset.id):
            job.skip(asset_display_path(asset), f"{untracked[asset.id]} annotations are not part of a track")
    job.tx.write_text(FILE, buffer.getvalue())
