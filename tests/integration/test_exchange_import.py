"""Imports: export then import into a fresh project gives the same pixels and attributes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _exchange_setup import ONTOLOGY, annotate, export, image_paths, import_, make_project

from app import api, sample_data
from app.core.annotations import Kind
from app.core.errors import ValidationError
from app.core.raster import label_image, rasterize_annotation
from app.exchange.layout_options import LayoutOptions


def _importer_may_create_projects(source: api.Project) -> None:
    """Only site admins create projects in a database that has users: make 'importer' one."""
    api.set_site_role(source.db, "importer", "admin", user=source.user_name)


def _fresh(db_url: str, source: api.Project) -> tuple[api.Project, dict[str, int]]:
    _importer_may_create_projects(source)
    target = api.create_project(source.db, "copy", ontology=ONTOLOGY, user="importer")
    ids = target.import_data(image_paths())
    return target, {target.asset(i).rel_path: i for i in ids}


def test_coco_round_trip_is_exact(db_url: str, tmp_path: Path) -> None:
    source, ids = make_project(db_url)
    annotate(source, ids)
    export(source, "coco", tmp_path / "coco")
    target, by_path = _fresh(db_url, source)
    report = import_(target, "coco", tmp_path / "coco" / "annotations.json")
    assert report.skipped == []
    assert sorted(n for _, _, n in report.matched) == [4, 4, 4]
    for asset_id in ids:
        asset = source.asset(asset_id)
        theirs = [
            a for a in source.annotation_objects(asset_id) if a.kind in (Kind.POLYGON, Kind.BOX, Kind.MASK)
        ]
        ours = target.annotation_objects(by_path[asset.rel_path])
        assert len(ours) == len(theirs)
        for a, b in zip(theirs, ours, strict=True):
            assert a.same_content(b), (a.kind, b.kind)
            assert b.source == "import:coco" and b.author == "importer" and b.confidence == 0.75
            shape = (asset.height, asset.width)
            assert np.array_equal(rasterize_annotation(a, shape), rasterize_annotation(b, shape))


def test_png_masks_round_trip_pixels(db_url: str, tmp_path: Path) -> None:
    source, ids = make_project(db_url)
    annotate(source, ids)
    export(source, "png-masks", tmp_path / "png")
    target, by_path = _fresh(db_url, source)
    dry = import_(target, "png-masks", tmp_path / "png", dry_run=True)
    assert len(dry.matched) == 3 and target.annotation_objects(by_path[source.asset(ids[0]).rel_path]) == []
    report = import_(target, "png-masks", tmp_path / "png")
    assert len(report.matched) == 3
    # the ontology allows 'tag' only as classification/point/polyline: its pixels cannot come back as a mask
    assert [why.startswith("class 'tag' does not allow mask") for _, why in report.skipped] == [True] * 3
    ontology = source.ontology
    for asset_id in ids:
        asset = source.asset(asset_id)
        shape = (asset.height, asset.width)
        back = target.annotation_objects(by_path[asset.rel_path])
        assert {a.kind for a in back} == {Kind.MASK}
        # the exported map keeps the class later in the ontology where classes overlap
        by_class = sorted(source.annotation_objects(asset_id), key=lambda a: ontology.index_of(a.label))
        expected = label_image(by_class, ontology, shape)
        expected[expected == ontology.index_of("tag")] = 0
        assert np.array_equal(label_image(back, ontology, shape), expected)


def test_yolo_round_trip_coordinates(db_url: str, tmp_path: Path) -> None:
    source, ids = make_project(db_url)
    annotate(source, ids)
    export(source, "yolo", tmp_path / "detect", layout=LayoutOptions(yolo_task="detect"))
    export(source, "yolo", tmp_path / "segment", layout=LayoutOptions(yolo_task="segment"))
    target, by_path = _fresh(db_url, source)
    legacy = tmp_path / "legacy"  # older exports held both: one of them must be named
    (legacy / "labels" / "detect").mkdir(parents=True)
    (legacy / "labels" / "segment").mkdir()
    with pytest.raises(ValidationError, match="import one of them"):
        import_(target, "yolo", legacy)
    report = import_(target, "yolo", tmp_path / "detect")
    assert report.skipped == [] and len(report.matched) == 3
    back = target.annotation_objects(by_path[source.asset(ids[0]).rel_path])
    assert [a.kind for a in back] == [Kind.BOX] * 4
    assert back[1].box == (20.0, 40.5, 120.25, 101.0) and back[1].label == "shadow"
    assert back[0].box == (10.25, 12.5, 140.0, 150.0)
    _importer_may_create_projects(source)
    seg_target = api.create_project(source.db, "seg", ontology=ONTOLOGY, user="importer")
    seg_ids = seg_target.import_data(image_paths())
    import_(seg_target, "yolo", tmp_path / "segment")
    polys = seg_target.annotation_objects(seg_ids[0])
    assert polys[0].points.tolist() == [[10.25, 12.5], [140.0, 30.75], [100.5, 150.0], [40.0, 90.5]]
    # the mask comes back as its outer outlines: its pixels minus its holes
    mask = next(a for a in source.annotation_objects(ids[0]) if a.kind is Kind.MASK)
    shape = (source.asset(ids[0]).height, source.asset(ids[0]).width)
    outlines = np.zeros(shape, dtype=bool)
    for poly in polys[2:-1]:
        outlines |= rasterize_annotation(poly, shape)
    drawn = rasterize_annotation(mask, shape)
    assert (outlines & drawn).sum() == drawn.sum()  # every drawn pixel is covered


def test_labelme_and_matching_rules(db_url: str, tmp_path: Path) -> None:
    project, ids = make_project(db_url)
    coins = project.asset(ids[0])
    folder = tmp_path / "lm"
    folder.mkdir()
    shapes = [
        {"label": "coin", "points": [[1, 2], [30.5, 4], [20, 40]], "shape_type": "polygon"},
        {"label": "shadow", "points": [[50, 60], [10, 20]], "shape_type": "rectangle"},
        {"label": "tag", "points": [[5.5, 6.5]], "shape_type": "point"},
        {"label": "tag", "points": [[1, 1], [9, 9], [20, 3]], "shape_type": "linestrip"},
        {"label": "coin", "points": [[1, 1], [5, 5]], "shape_type": "circle"},
        {"label": "liver", "points": [[1, 1], [5, 5], [1, 5]], "shape_type": "polygon"},
    ]
    doc = {
        "shapes": shapes,
        "imagePath": str(sample_data.skimage_images() / "coins.png"),
        "imageWidth": coins.width,
        "imageHeight": coins.height,
    }
    (folder / "coins.json").write_text(json.dumps(doc))
    (folder / "other.json").write_text(json.dumps({**doc, "imagePath": "nowhere/missing.png"}))
    (folder / "wrong.json").write_text(json.dumps({**doc, "imagePath": "camera.png"}))
    report = import_(project, "labelme", folder)
    assert report.matched == [("coins.json", ids[0], 4)]
    reasons = dict(report.skipped)
    assert "not supported" in reasons["coins.json shape 5"]
    assert "liver" in reasons["coins.json #5"]
    assert "no asset of the project is called 'missing.png'" in reasons["other.json"]
    assert "is for a 384x303 image but the asset is 512x512" in reasons["wrong.json"]
    back = project.annotation_objects(ids[0])
    assert [a.kind for a in back] == [Kind.POLYGON, Kind.BOX, Kind.POINT, Kind.POLYLINE]
    assert back[1].box == (10.0, 20.0, 50.0, 60.0) and back[0].source == "import:labelme"


def test_third_party_coco_polygons_rle_and_boxes(tmp_path: Path) -> None:
    from pycocotools import mask as coco_mask

    project, ids = make_project(str(tmp_path / "labels.db"))
    camera = np.zeros((512, 512), dtype=np.uint8)
    camera[100:200, 50:60] = 1
    crowd = coco_mask.encode(np.asfortranarray(camera))
    doc = {
        "images": [
            {"id": 7, "file_name": "data/camera.png", "width": 512, "height": 512},
            {"id": 8, "file_name": "elsewhere/unknown.png", "width": 5, "height": 5},
        ],
        "categories": [{"id": 3, "name": "coin"}, {"id": 4, "name": "shadow"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 3,
                "segmentation": [[10, 10, 50, 10, 30, 40]],
                "bbox": [0, 0, 1, 1],
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 3,
                "segmentation": [[1, 1, 9, 1, 9, 9], [20, 20, 29, 20, 29, 29]],
            },
            {
                "id": 3,
                "image_id": 7,
                "category_id": 4,
                "segmentation": {"size": [512, 512], "counts": crowd["counts"].decode()},
                "iscrowd": 1,
            },
            {"id": 4, "image_id": 7, "category_id": 4, "bbox": [5, 6, 10, 20]},
            {"id": 5, "image_id": 7, "category_id": 9, "bbox": [5, 6, 10, 20]},
        ],
    }
    (tmp_path / "c.json").write_text(json.dumps(doc))
    report = import_(project, "coco", tmp_path / "c.json")
    assert [m[1:] for m in report.matched] == [(ids[1], 4)]
    assert any("unknown category id 9" in why for _, why in report.skipped)
    assert any("unknown.png" in why for _, why in report.skipped)
    back = project.annotation_objects(ids[1])
    assert [a.kind for a in back] == [Kind.POLYGON, Kind.MASK, Kind.MASK, Kind.BOX]
    assert np.array_equal(back[2].mask.to_full(), camera.astype(bool))
    assert back[3].box == (5.0, 6.0, 15.0, 26.0)


def test_ambiguous_names_are_skipped(tmp_path: Path) -> None:
    project = api.create_project(str(tmp_path / "labels.db"), "p", ontology=ONTOLOGY, user="u")
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "coins.png").write_bytes((sample_data.skimage_images() / "coins.png").read_bytes())
    project.import_data([tmp_path / "a" / "coins.png", tmp_path / "b" / "coins.png"])
    doc = {
        "images": [{"id": 1, "file_name": "coins.png"}, {"id": 2, "file_name": "b/coins.png"}],
        "categories": [{"id": 1, "name": "coin"}],
        "annotations": [{"id": 1, "image_id": i, "category_id": 1, "bbox": [1, 1, 5, 5]} for i in (1, 2)],
    }
    (tmp_path / "c.json").write_text(json.dumps(doc))
    report = import_(project, "coco", tmp_path / "c.json")
    assert "matches 2 assets equally" in report.skipped[0][1]
    assert [m[0].endswith("b/coins.png") for m in report.matched] == [True]
