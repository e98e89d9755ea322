"""The YOLO export is the Ultralytics layout a training run reads as it is, split by patient, and
Sitelabel's own importer reads it back (detect and segment).

Ultralytics is not installed here, so its two rules are applied literally: images are every file
with an image suffix below ``path/train`` and ``path/val``, and an image's label file is its path
with the last ``/images/`` replaced by ``/labels/`` and the suffix by ``.txt``
(``ultralytics.data.utils.img2label_paths``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from _frames_setup import ONTOLOGY, import_mixed
from _layouts_setup import FIRST_PATIENT, Layouts, layouts_project, patient_series
from PIL import Image

from app import api
from app.cli import main
from app.core.annotations import Kind
from app.exchange.selection import expand_tracks
from app.exchange.yolo import shape_extent

IMG_FORMATS = {"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic"}


def img2label_paths(img_paths: list[str]) -> list[str]:
    """Ultralytics' rule, as it is written there."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return [sb.join(x.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt" for x in img_paths]


def ultralytics_images(data: dict[str, object], split: str) -> list[str]:
    folder = Path(str(data["path"])) / str(data[split])
    found = [str(p) for p in folder.glob("**/*.*")]
    return sorted(f for f in found if f.rsplit(".", 1)[-1].lower() in IMG_FORMATS)


@pytest.fixture
def layouts(tmp_path: Path) -> Layouts:
    made = layouts_project(str(tmp_path / "labels.db"), tmp_path)
    yield made
    made.project.close()


def _asset_of(image: Path, out: Path, project: api.Project) -> int:
    """The asset an exported image shows: frames/<id>/..., else the linked file's own path."""
    parts = image.relative_to(out).parts
    if parts[2] == "frames":
        return int(parts[3])
    (found,) = [a.id for a in project.assets() if image.as_posix().endswith("/" + a.rel_path)]
    return found


def test_yolo_export_is_the_ultralytics_layout_split_by_patient(layouts: Layouts, tmp_path: Path) -> None:
    project, out = layouts.project, tmp_path / "yolo"
    project.export("yolo", out, skip_unwritable=True, yolo_task="detect")
    data = yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))
    assert Path(data["path"]) == out.resolve()
    assert (data["train"], data["val"]) == ("images/train", "images/val") and "test" not in data
    assert data["names"] == {0: "object", 1: "lesion", 2: "note"} and data["nc"] == 3

    images = {split: ultralytics_images(data, split) for split in ("train", "val")}
    assert images["train"] and images["val"]
    every_image = [*images["train"], *images["val"]]
    labels = img2label_paths(every_image)
    assert all(Path(p).is_file() for p in labels)  # every image has its label file ...
    written = sorted(str(p) for p in (out / "labels").rglob("*.txt"))
    assert sorted(labels) == written  # ... and every label file its image
    assert not [p for p in out.rglob("*") if p.is_symlink() or p.suffix.lower() == ".dcm"]

    split_of: dict[int, set[str]] = defaultdict(set)
    for split, files in images.items():
        for file in files:
            split_of[_asset_of(Path(file), out, project)].add(split)
    assert all(len(s) == 1 for s in split_of.values())
    assert set(split_of) == {*layouts.mixed.images, layouts.mixed.video, *layouts.series}
    by_patient: dict[str, set[str]] = defaultdict(set)
    for asset_id in layouts.series:
        by_patient[str(project.asset(asset_id).metadata["PatientID"])] |= split_of[asset_id]
    assert set(by_patient) == {FIRST_PATIENT, "PATIENT-B"}
    assert all(len(s) == 1 for s in by_patient.values())  # no patient in both train and val
    stored = project.splits()
    assert {a: stored.split_of(a) for a in split_of} == {a: s.pop() for a, s in split_of.items()}

    for file, label in zip(every_image, labels, strict=True):
        with Image.open(file) as picture:
            width, height = picture.size
            if "/frames/" in file and _asset_of(Path(file), out, project) in layouts.series:
                assert picture.mode.startswith("I;16")  # CT slices stay 16-bit
        for line in Path(label).read_text().splitlines():
            fields = line.split()
            assert int(fields[0]) in data["names"] and len(fields) == 5
            assert all(0.0 <= float(v) <= 1.0 for v in fields[1:]), (label, line)
        assert (width, height) in {
            (512, 512),
            (1280, 720),
            *((project.asset(a).width, project.asset(a).height) for a in layouts.mixed.images),
        }


def _expected(project: api.Project, asset_id: int) -> dict[int, list[tuple[float, ...]]]:
    asset = project.asset(asset_id)
    shapes = [
        a
        for a in expand_tracks(asset, project.annotation_objects(asset_id))
        if a.kind in (Kind.BOX, Kind.POLYGON, Kind.MASK)
    ]
    out: dict[int, list[tuple[float, ...]]] = defaultdict(list)
    for ann in shapes:
        out[ann.frame].append(shape_extent(ann))
    return {f: sorted(v) for f, v in out.items()}


def _imported(project: api.Project, asset_id: int) -> dict[int, list[tuple[float, ...]]]:
    out: dict[int, list[tuple[float, ...]]] = defaultdict(list)
    for ann in project.annotation_objects(asset_id):
        out[ann.frame].append(shape_extent(ann))
    return {f: sorted(v) for f, v in out.items()}


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_sitelabel_reads_its_own_yolo_export_back(layouts: Layouts, tmp_path: Path, task: str) -> None:
    project, out = layouts.project, tmp_path / task
    report = project.export("yolo", out, skip_unwritable=True, yolo_task=task)
    fresh = api.create_project(project.db, "again", ontology=ONTOLOGY, user="ann")
    again = import_mixed(fresh, tmp_path)
    more = fresh.import_data([tmp_path / "ct-a2", tmp_path / "ct-b"])
    imported = fresh.import_labels("yolo", out)
    assert not imported.skipped and imported.annotations == report.annotations
    pairs = dict(
        zip(
            [*layouts.mixed.images, layouts.mixed.video, *layouts.series],
            [*again.images, again.video, again.series, *more],
            strict=True,
        )
    )
    for old, new in pairs.items():
        expected, found = _expected(project, old), _imported(fresh, new)
        assert sorted(expected) == sorted(found), old
        for frame, boxes in expected.items():
            assert len(found[frame]) == len(boxes)
            assert np.abs(np.array(found[frame]) - np.array(boxes)).max() <= 1.0  # within 1 px
    kinds = {a.kind for new in pairs.values() for a in fresh.annotation_objects(new)}
    assert kinds == ({Kind.BOX} if task == "detect" else {Kind.POLYGON})
    if task == "segment":  # polygons come back vertex for vertex
        (drawn,) = [a for a in project.annotation_objects(layouts.mixed.images[0]) if a.kind is Kind.POLYGON]
        (back,) = [a for a in fresh.annotation_objects(again.images[0]) if a.label == "object"]
        assert np.allclose(back.points, drawn.points, atol=1e-6)
    fresh.close()


def test_yolo_task_follows_the_ontology_and_splits_come_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "boxes.db")
    boxes_only = {
        "classes": [{"name": "car", "kinds": ["box"]}, {"name": "sign", "kinds": ["box", "classification"]}]
    }
    project = api.create_project(db, "boxes", ontology=boxes_only, user="ann")
    ids = project.import_data(
        [patient_series(tmp_path, "ct", "P1"), patient_series(tmp_path, "ct2", "P2", seed=1)]
    )
    for asset_id in ids:
        project.upload_annotations(
            asset_id, [{"kind": "box", "label": "car", "frame": 1, "box": [10.5, 20.0, 90.0, 60.25]}]
        )
    project.close()
    assert main(["splits", "assign", "--db", db, "--user", "ann", "--val", "0.5"]) == 0
    assert "1 assets in 1 groups (1 patient)" in capsys.readouterr().out
    out = str(tmp_path / "y")
    assert main(["export", "--db", db, "--user", "ann", "--format", "yolo", "--out", out]) == 0
    assert "yolo detect: splits train, val" in capsys.readouterr().out
    data = yaml.safe_load((tmp_path / "y" / "data.yaml").read_text())
    assert data["task"] == "detect" and data["names"] == {0: "car", 1: "sign"}
    labels = sorted((tmp_path / "y" / "labels").rglob("*.txt"))
    assert len(labels) == 2 and {p.parts[-4] for p in labels} == {"train", "val"}  # one patient each
    assert [len(p.read_text().split()) for p in labels] == [5, 5]
