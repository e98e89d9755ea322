"""Every labelled frame exported as an image file beside its labels, read back by the real readers.

COCO is loaded with pycocotools, images with Pillow and OpenCV, VOC with ElementTree: every
``file_name`` is a file in the export with the size COCO states, 2-D images are hard links (or
copies) of the originals, video frames are the decoded frames, and CT slices stay 16-bit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from _frames_setup import Mixed, export, mixed_project
from PIL import Image

from app.core.display import apply_window
from app.core.raster import rasterize_annotation

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


@pytest.fixture
def mixed(db_url: str, tmp_path: Path) -> Mixed:
    mixed = mixed_project(db_url, tmp_path)
    yield mixed
    mixed.project.close()


def _no_links_out(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.is_symlink()]


def test_coco_file_names_are_the_images_beside_the_labels(mixed: Mixed, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    project, out = mixed.project, tmp_path / "coco"
    report = export(project, "coco", out)
    coco = COCO(str(out / "annotations.json"))
    images = coco.loadImgs(coco.getImgIds())
    frames = {(i["sitelabel"]["asset_id"], i["sitelabel"]["frame"]) for i in images}
    # the two images, the clip's frames 3 and 10..14 (the track between its keyframes), slices 2, 3
    assert frames == {
        *((a, 0) for a in mixed.images),
        *((mixed.video, f) for f in (3, 10, 11, 12, 13, 14)),
        (mixed.series, 2),
        (mixed.series, 3),
    }
    assert report.annotations == 4 + 6 + 3
    _no_links_out(out)
    for image in images:
        asset_id, frame = image["sitelabel"]["asset_id"], image["sitelabel"]["frame"]
        file = out / image["file_name"]
        assert not Path(image["file_name"]).is_absolute() and file.is_file()
        with Image.open(file) as picture:
            assert picture.size == (image["width"], image["height"])
        if asset_id in mixed.images:  # the original file itself: a hard link (same file system here)
            original = project.asset_path(asset_id)
            assert file.read_bytes() == original.read_bytes()
            if file.stat().st_dev == original.stat().st_dev:
                assert file.stat().st_ino == original.stat().st_ino
            continue
        assert image["file_name"] == f"frames/{asset_id}/{frame:06d}.png"
        with project.open_asset(asset_id) as source:
            expected = np.asarray(source.frame(frame))
        if asset_id == mixed.video:  # PNG is lossless: exactly the decoded RGB frame
            import cv2

            bgr = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), expected)
        else:  # CT in HU (int16): a 16-bit PNG holding HU + 32768, as frames.json says
            with Image.open(file) as picture:
                assert picture.mode.startswith("I;16")
                stored = np.asarray(picture)
            assert image["sitelabel"]["pixels"] == {"bits": 16, "offset": -32768}
            assert np.array_equal(stored.astype(np.int32) - 32768, expected)
        stored = {a.id: a for a in project.annotation_objects(asset_id)}
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
            ours = stored.get(ann["sitelabel"]["annotation_id"])  # None: interpolated on this frame
            got = coco.annToMask(ann).astype(bool)
            assert got.sum() == ann["area"] > 0
            if ours is not None:
                assert np.array_equal(got, rasterize_annotation(ours, (image["height"], image["width"])))
    encodings = {e["asset_id"]: e for e in json.loads((out / "frames.json").read_text())["assets"]}
    assert encodings[mixed.series]["source_dtype"] == "int16" and encodings[mixed.series]["offset"] == -32768
    assert encodings[mixed.video]["png_dtype"] == "uint8"
    data = json.loads((out / "annotations.json").read_text())
    assert [v["sitelabel"]["asset_id"] for v in data["videos"]] == [mixed.video, mixed.series]
    tracked = [a for a in data["annotations"] if "track_id" in a]
    assert len(tracked) == 5 and {a["track_id"] for a in tracked} == {1}
    assert [t["video_id"] for t in data["tracks"]] == [1]


def test_copies_and_a_window_give_8_bit_frames(mixed: Mixed, tmp_path: Path) -> None:
    project, out = mixed.project, tmp_path / "copy"
    export(project, "coco", out, images="copy", frames_window="40,400")
    data = json.loads((out / "annotations.json").read_text())
    for image in data["images"]:
        file = out / image["file_name"]
        asset_id, frame = image["sitelabel"]["asset_id"], image["sitelabel"]["frame"]
        if asset_id in mixed.images:
            assert file.stat().st_ino != project.asset_path(asset_id).stat().st_ino  # a copy
            assert file.stat().st_nlink == 1
        elif asset_id == mixed.series:
            with project.open_asset(asset_id) as source:
                expected = apply_window(source.frame(frame), (40.0, 400.0))
            with Image.open(file) as picture:
                assert picture.mode == "L" and np.array_equal(np.asarray(picture), expected)
            assert image["sitelabel"]["pixels"] == {"bits": 8, "window": [40.0, 400.0]}


def test_voc_writes_a_file_per_frame_of_videos_and_series(mixed: Mixed, tmp_path: Path) -> None:
    project, out = mixed.project, tmp_path / "voc"
    report = export(project, "voc", out)
    xmls = sorted(p.relative_to(out / "Annotations").as_posix() for p in (out / "Annotations").rglob("*.xml"))
    frame_xmls = [x for x in xmls if x.startswith("frames/")]
    assert frame_xmls == [
        *(f"frames/{mixed.video}/{f:06d}.xml" for f in (3, 10, 11, 12, 13, 14)),
        f"frames/{mixed.series}/000002.xml",
        f"frames/{mixed.series}/000003.xml",
    ]
    assert len(xmls) == len(frame_xmls) + 2
    for xml in xmls:
        root = ET.parse(out / "Annotations" / xml).getroot()
        image = out / (root.findtext("path") or "")
        assert image.is_file() and image.name == root.findtext("filename")
        with Image.open(image) as picture:
            assert picture.size == (
                int(root.findtext("size/width") or 0),
                int(root.findtext("size/height") or 0),
            )
    slice_3 = ET.parse(out / "Annotations" / f"frames/{mixed.series}/000003.xml").getroot()
    assert [o.findtext("name") for o in slice_3.findall("object")] == ["object", "lesion"]
    assert slice_3.findtext("size/depth") == "1"
    # nothing skipped for being a frame: only the images' classifications have no VOC form
    assert {why for _item, why in report.skipped} == {"classification annotations have no VOC form"}
    _no_links_out(out)


def test_a_missing_file_fails_the_export_with_one_line(mixed: Mixed, tmp_path: Path) -> None:
    """Frames whose file is gone cannot be written: the export fails (nothing written), and with
    skip_unwritable the six frames are one reason, not six lines."""
    from app.exchange.export import UnwritableItems

    project = mixed.project
    clip = tmp_path / "clip.mp4"
    os.link(project.asset_path(mixed.video), clip)
    (clip_id,) = project.import_data([clip])
    boxes = [
        {"kind": "box", "label": "object", "frame": f, "box": [10.0, 10.0, 50.0, 40.0]} for f in range(6)
    ]
    project.upload_annotations(clip_id, boxes)
    clip.unlink()  # as if its share were not mounted
    with pytest.raises(UnwritableItems, match="its image cannot be written"):
        project.export("coco", tmp_path / "fails")
    assert not (tmp_path / "fails" / "annotations.json").exists()
    report = export(project, "coco", tmp_path / "rest")
    gone = [r for r in report.reasons() if "its image cannot be written" in r.why]
    assert len(gone) == 1 and gone[0].count == 6
    assert report.annotations == 4 + 6 + 3  # everything else is there


def _content(folder: Path) -> list[tuple[object, ...]]:
    """Each annotation of a COCO export as what it says about the image: the asset path, frame,
    class, pixels, box and drawn geometry (ids, authors and track bookkeeping left out)."""
    data = json.loads((folder / "annotations.json").read_text())
    images = {i["id"]: i for i in data["images"]}
    classes = {c["id"]: c["name"] for c in data["categories"]}
    out = []
    for ann in data["annotations"]:
        image = images[ann["image_id"]]
        ext = ann["sitelabel"]
        geometry = ext.get("points") or ext.get("box")
        out.append(
            (
                image["sitelabel"]["source"],
                image["sitelabel"]["frame"],
                image["file_name"].split("/", 1)[0],
                (image["width"], image["height"]),
                classes[ann["category_id"]],
                json.dumps(ann["segmentation"]),
                ann["area"],
                ann["bbox"],
                ext["kind"],
                json.dumps(geometry),
                ann["attributes"],
            )
        )
    return sorted(out, key=repr)


def test_coco_export_import_export_gives_the_same_annotations(mixed: Mixed, tmp_path: Path) -> None:
    """The export's folder imports (not only its JSON file) onto the same data in a fresh project,
    and exporting that again gives the same annotations."""
    from _frames_setup import ONTOLOGY, import_mixed

    from app import api

    first = tmp_path / "first"
    export(mixed.project, "coco", first)
    fresh = import_mixed(
        api.create_project(mixed.project.db, "again", ontology=ONTOLOGY, user="ann"), tmp_path
    )
    imported = fresh.project.import_labels("coco", first)  # the folder
    assert not imported.skipped
    assert len(imported.matched) == 2 + 6 + 2 and sum(n for _, _, n in imported.matched) == 13
    second = tmp_path / "second"
    export(fresh.project, "coco", second)
    assert _content(second) == _content(first) and len(_content(first)) == 13


def test_cli_options_and_importing_an_export_folder(db_url: str, tmp_path: Path) -> None:
    """``export --images copy --frames-window lung`` and ``import-labels DIR --format coco`` (which
    failed with "Is a directory") as a user runs them."""
    import subprocess
    import sys

    mixed = mixed_project(db_url, tmp_path, name="cli")
    mixed.project.close()
    out = tmp_path / "cli-coco"

    def sitelabel(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "app", *args, "--db", db_url, "--user", "ann", "--project", "cli"]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)

    exported = sitelabel(
        "export", "--format", "coco", "--out", str(out), "--images", "copy", "--frames-window", "lung",
        "--skip-unwritable",
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert "13 annotations" in exported.stdout
    data = json.loads((out / "annotations.json").read_text())
    series_image = next(i for i in data["images"] if i["sitelabel"]["asset_id"] == mixed.series)
    assert series_image["sitelabel"]["pixels"] == {"bits": 8, "window": [-600.0, 1500.0]}
    camera = next(i for i in data["images"] if i["sitelabel"]["asset_id"] == mixed.images[0])
    assert (out / camera["file_name"]).stat().st_nlink == 1  # a copy
    again = sitelabel("import-labels", str(out), "--format", "coco", "--dry-run")
    assert again.returncode == 0, again.stderr
    assert "would import 13 annotations" in again.stdout
    refused = sitelabel("export", "--format", "coco", "--out", str(tmp_path / "x"), "--frames-window", "soft")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr and "CENTRE,WIDTH" in refused.stderr
