"""Exports read by their real consumers (pycocotools, XML, PNG readers) equal what was drawn."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from _exchange_setup import annotate, export, make_project, tree
from PIL import Image

from app.core.annotations import Kind
from app.core.errors import ValidationError
from app.core.raster import label_image, rasterize_annotation
from app.exchange.export import FORMATS, ExportCancelled, ExportFilters
from app.exchange.layout_options import LayoutOptions
from app.exchange.selection import item_names

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


@pytest.fixture
def labelled(db_url: str):  # type: ignore[no-untyped-def]
    project, ids = make_project(db_url)
    annotate(project, ids)
    yield project, ids
    project.close()


def test_registry_names() -> None:
    assert {"png-masks", "coco", "yolo", "voc", "project-json", "csv"} <= set(FORMATS)


def test_coco_ann_to_mask_is_exactly_our_raster(labelled, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    project, _ids = labelled
    report = export(project, "coco", tmp_path)
    coco = COCO(str(tmp_path / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["coin", "shadow", "tag"]
    assert report.assets == 3 and report.annotations == 12
    checked = 0
    for image in coco.loadImgs(coco.getImgIds()):
        asset_id = image["sitelabel"]["asset_id"]
        stored = {a.id: a for a in project.annotation_objects(asset_id)}
        asset = project.asset(asset_id)
        assert (image["width"], image["height"]) == (asset.width, asset.height)
        # the image itself beside the annotations (a hard link or copy), under its data root's name
        assert image["file_name"] == f"images/{asset.root}/{asset.rel_path}"
        assert (tmp_path / image["file_name"]).read_bytes() == project.asset_path(asset_id).read_bytes()
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
            ours = stored[ann["sitelabel"]["annotation_id"]]
            expected = rasterize_annotation(ours, (asset.height, asset.width))
            got = coco.annToMask(ann).astype(bool)
            assert np.array_equal(got, expected), ours.kind
            assert ann["area"] == int(expected.sum())
            assert ann["attributes"] == dict(ours.attributes)
            assert ann["sitelabel"]["author"] == "ann" and ann["sitelabel"]["confidence"] == 0.75
            if ours.kind is Kind.BOX:
                x0, y0, x1, y1 = ours.box
                assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0]
            checked += 1
    assert checked == 12
    skipped_kinds = {why.split()[0] for _, why in report.skipped}
    assert skipped_kinds == {"classification", "point"}


def test_yolo_coordinates_round_trip(labelled, tmp_path: Path) -> None:
    project, ids = labelled
    export(project, "yolo", tmp_path / "detect", layout=LayoutOptions(yolo_task="detect"))
    export(project, "yolo", tmp_path / "segment", layout=LayoutOptions(yolo_task="segment"))
    asset = project.asset(ids[0])
    split = project.splits().split_of(ids[0])
    assert split in ("train", "val")
    image = tmp_path / "detect/images" / split / asset.root / asset.rel_path  # inside the export
    assert not image.is_symlink() and image.read_bytes() == project.asset_path(ids[0]).read_bytes()
    assert 'names:\n  0: "coin"\n  1: "shadow"\n  2: "tag"' in (tmp_path / "detect/data.yaml").read_text()
    w, h = asset.width, asset.height
    label = Path(split, asset.root, asset.rel_path).with_suffix(".txt")  # images/ -> labels/, .txt
    lines = (tmp_path / "detect/labels" / label).read_text().splitlines()
    box = [float(v) for v in lines[1].split()]
    assert box[0] == 1
    cx, cy, bw, bh = box[1:]
    assert np.allclose(
        [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h],
        [20.0, 40.5, 120.25, 101.0],
        atol=1e-9,
    )
    seg = (tmp_path / "segment/labels" / label).read_text().splitlines()
    poly = np.array([float(v) for v in seg[0].split()[1:]]).reshape(-1, 2) * [w, h]
    assert np.allclose(poly, [[10.25, 12.5], [140.0, 30.75], [100.5, 150.0], [40.0, 90.5]], atol=1e-9)
    # the mask's outer rings, one line each, rasterise to the mask without its holes
    mask_lines = [line for line in seg if line.startswith("0 ")][1:]
    assert len(mask_lines) >= 2


def test_voc_boxes_round_trip(labelled, tmp_path: Path) -> None:
    project, ids = labelled
    export(project, "voc", tmp_path)
    names = item_names(project.assets())
    root = ET.parse(tmp_path / "Annotations" / f"{names[ids[1]]}.xml").getroot()
    assert root.findtext("size/width") == "512" and root.findtext("filename") == "camera.png"
    objects = root.findall("object")
    assert [o.findtext("name") for o in objects] == ["coin", "shadow", "coin", "shadow"]
    bnd = objects[1].find("bndbox")
    assert bnd is not None
    values = [float(bnd.findtext(t) or "nan") for t in ("xmin", "ymin", "xmax", "ymax")]
    assert [values[0] - 1, values[1] - 1, values[2], values[3]] == [20.0, 40.5, 120.25, 101.0]
    mask = next(a for a in project.annotation_objects(ids[1]) if a.kind is Kind.MASK)
    ys, xs = np.nonzero(rasterize_annotation(mask, (512, 512)))
    mb = objects[2].find("bndbox")
    assert mb is not None
    assert [int(mb.findtext(t) or 0) for t in ("xmin", "ymin", "xmax", "ymax")] == [
        xs.min() + 1,
        ys.min() + 1,
        xs.max() + 1,
        ys.max() + 1,
    ]


def test_png_masks_equal_label_image(labelled, tmp_path: Path) -> None:
    project, ids = labelled
    export(project, "png-masks", tmp_path)
    legend = json.loads((tmp_path / "legend.json").read_text())
    assert legend["dtype"] == "uint8" and [c["name"] for c in legend["classes"]] == ["coin", "shadow", "tag"]
    names = item_names(project.assets())
    ontology = project.ontology
    for asset_id in ids:
        asset = project.asset(asset_id)
        # where classes overlap the map keeps the class later in the ontology (the default priority)
        by_class = sorted(project.annotation_objects(asset_id), key=lambda a: ontology.index_of(a.label))
        expected = label_image(by_class, ontology, (asset.height, asset.width))
        with Image.open(tmp_path / "index" / f"{names[asset_id]}.png") as img:
            index = np.asarray(img)
        with Image.open(tmp_path / "color" / f"{names[asset_id]}.png") as img:
            color = np.asarray(img.convert("RGB"))
        assert index.dtype == np.uint8 and np.array_equal(index, expected)
        assert tuple(color[expected == 1][0]) == (0xC0, 0x50, 0x4D)
        assert (color[expected == 0] == 0).all()


def test_csv_and_project_json(labelled, tmp_path: Path) -> None:
    project, ids = labelled
    export(project, "csv", tmp_path / "csv")
    rows = list(csv.DictReader((tmp_path / "csv/annotations.csv").open()))  # every kind (#17)
    tags = [r for r in rows if r["kind"] == "classification"]
    assert [(int(r["asset_id"]), r["author"], r["class"]) for r in tags] == [(i, "ann", "tag") for i in ids]
    assert len(rows) == 6 * len(ids)
    export(project, "project-json", tmp_path / "pj")
    data = json.loads((tmp_path / "pj/project.json").read_text())
    assert data["ontology"]["classes"][0]["name"] == "coin"
    first = data["assets"][0]["annotations"]
    assert [a["kind"] for a in first] == ["polygon", "box", "mask", "polygon", "classification", "point"]
    assert all(a["author"] == "ann" and a["review"] is None and a["consensus"] is False for a in first)


def test_filters(labelled, tmp_path: Path) -> None:
    project, ids = labelled
    box = project.annotation_objects(ids[0])[1].evolve(id=None)
    with project.db.unit_of_work() as uow:
        bob = uow.users.ensure("bob")
        uow.annotations.add(ids[0], box, bob.id)
    report = export(project, "coco", tmp_path / "bob", filters=ExportFilters(labeler="bob"))
    assert report.assets == 1 and report.annotations == 1
    report = export(project, "coco", tmp_path / "cls", filters=ExportFilters(classes=("shadow",)))
    assert report.annotations == 7
    with pytest.raises(ValidationError, match="unknown status 'approved'"):
        export(project, "coco", tmp_path / "s", filters=ExportFilters(status="approved"))
    with pytest.raises(ValidationError, match="unknown consensus filter 'agreed'"):
        export(project, "coco", tmp_path / "c", filters=ExportFilters(consensus="agreed"))
    with pytest.raises(ValidationError, match="no dataset"):
        export(project, "coco", tmp_path / "d", filters=ExportFilters(dataset="nope"))
    with pytest.raises(ValidationError, match="no class"):
        export(project, "coco", tmp_path / "k", filters=ExportFilters(classes=("liver",)))
    assert not (tmp_path / "s").exists()


def test_incremental_re_export_writes_only_changes(labelled, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"  # the SQLite file lives in tmp_path itself
    project, ids = labelled
    first = export(project, "png-masks", tmp_path)
    # 3 x (index, color) + legend.json + overlaps.json + provenance.json
    assert (first.files_written, first.files_unchanged, first.files_removed) == (9, 0, 0)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["files"]) == set(tree(tmp_path)) - {"manifest.json"}
    stamps = {p: (tmp_path / p).stat().st_mtime_ns for p in manifest["files"]}
    again = export(project, "png-masks", tmp_path)
    assert (again.files_written, again.files_unchanged, again.files_removed) == (0, 9, 0)
    assert stamps == {p: (tmp_path / p).stat().st_mtime_ns for p in manifest["files"]}
    for ann in project.annotation_objects(ids[2]):  # asset 3 loses its labels: its files go
        project.delete_annotation(ann)
    poly = project.annotation_objects(ids[0])[0]
    project.save_annotation(poly.evolve(points=poly.points + 3.0))
    third = export(project, "png-masks", tmp_path)
    # asset 1's two maps, overlaps.json (its overlaps moved, asset 3's are gone) and provenance.json
    # (a new version of the polygon, asset 3 gone) are rewritten
    assert (third.files_written, third.files_unchanged, third.files_removed) == (4, 3, 2)
    names = item_names(project.assets())
    assert not (tmp_path / "index" / f"{names[ids[2]]}.png").exists()
    assert (tmp_path / "index" / f"{names[ids[1]]}.png").stat().st_mtime_ns == stamps[
        f"index/{names[ids[1]]}.png"
    ]


def test_cancel_keeps_previous_export(labelled, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"  # the SQLite file lives in tmp_path itself
    project, ids = labelled
    export(project, "coco", tmp_path)
    before = tree(tmp_path)
    project.delete_annotation(project.annotation_objects(ids[0])[0])
    calls: list[tuple[int, int]] = []

    def cancel_at_two(done: int, total: int) -> bool:
        calls.append((done, total))
        return done < 2

    with pytest.raises(ExportCancelled):
        export(project, "coco", tmp_path, progress=cancel_at_two)
    assert calls[-1] == (2, 3)
    assert tree(tmp_path) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sitelabel")]
