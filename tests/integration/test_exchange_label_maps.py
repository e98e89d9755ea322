"""Label maps drop no class silently (#17): overlapping classes through NIfTI, DICOM SEG and PNG
masks read back by nibabel, highdicom and Pillow; a SEG of an MR series whose files lack their
Type-2 attributes; items a format cannot write; 16-bit instance maps.

The series is a real MR slice (pydicom's MR_small.dcm) written as a 20-slice series
(``_series_setup.mri_series``). Expected pixels come from shapely and plain numpy
(``_series_setup``), not from Sitelabel's rasteriser.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _series_setup import TYPE2, box_pixels, mri_series, polygon_pixels

from app import api, sample_data
from app.cli import main

ONTOLOGY = {
    "classes": [
        {"name": "brain", "color": "#8c8c8c"},
        {"name": "ventricle", "color": "#3a6fd8"},
        {"name": "finding", "color": "#ffcc00", "kinds": ["classification"]},
    ]
}
BRAIN = [[6.3, 8.2], [54.7, 5.1], [58.3, 40.6], [30.4, 57.9], [4.9, 44.3]]  # polygon
VENTRICLE = [30.0, 20.0, 62.0, 36.0]  # box, reaching out of the polygon on the right
SLICES = (9, 10)
DEPTH, SHAPE = 20, (64, 64)
ORDERS = ("brain-first", "ventricle-first")


@dataclass
class Labelled:
    project: api.Project
    db: str
    asset_id: int
    files: list[Path]  # slice order
    expected: dict[str, np.ndarray]  # class -> (z, y, x) bool, from shapely / numpy

    @property
    def overlap(self) -> np.ndarray:
        return self.expected["brain"] & self.expected["ventricle"]


def _labelled(db: str, folder: Path, order: str = "brain-first", *, drop_type2: bool = False) -> Labelled:
    files = mri_series(folder / "mri", DEPTH, drop_type2=drop_type2)
    project = api.create_project(db, "mri", ontology=ONTOLOGY, user="ann")
    (asset_id,) = project.import_data([folder / "mri"])
    brain = [{"kind": "polygon", "label": "brain", "frame": z, "points": BRAIN} for z in SLICES]
    ventricle = [{"kind": "box", "label": "ventricle", "frame": z, "box": VENTRICLE} for z in SLICES]
    project.upload_annotations(asset_id, brain + ventricle if order == "brain-first" else ventricle + brain)
    expected = {name: np.zeros((DEPTH, *SHAPE), dtype=bool) for name in ("brain", "ventricle")}
    for z in SLICES:
        expected["brain"][z] = polygon_pixels(BRAIN, SHAPE)
        expected["ventricle"][z] = box_pixels(VENTRICLE, SHAPE)
    labelled = Labelled(project, db, asset_id, files, expected)
    only_brain = expected["brain"] & ~expected["ventricle"]
    only_ventricle = expected["ventricle"] & ~expected["brain"]
    assert labelled.overlap.sum() > 100 and only_brain.any() and only_ventricle.any()  # a real overlap
    return labelled


@pytest.fixture(params=ORDERS)
def labelled(request: pytest.FixtureRequest, tmp_path: Path) -> Labelled:
    """On SQLite: these exports read the database the same way on both backends (the SEG tests
    run on both)."""
    lab = _labelled(str(tmp_path / "labels.db"), tmp_path, request.param)
    yield lab
    lab.project.close()


def _cli(lab: Labelled, fmt: str, out: Path, *options: str) -> int:
    return main(["export", "--db", lab.db, "--user", "ann", "--format", fmt, "--out", str(out), *options])


def _index_map(lab: Labelled, kept: str) -> np.ndarray:
    """The class-index volume with ``kept`` at the overlap."""
    out = np.zeros((DEPTH, *SHAPE), dtype=np.uint16)
    order = ("brain", "ventricle") if kept == "ventricle" else ("ventricle", "brain")
    for name in order:
        out[lab.expected[name]] = 1 + ("brain", "ventricle").index(name)
    return out


# --- NIfTI -----------------------------------------------------------------------------------------
def test_nifti_per_class_and_one_hot_hold_both_classes(labelled: Labelled, tmp_path: Path) -> None:
    import nibabel as nib

    lab = labelled
    lab.project.export("nifti", tmp_path / "per-class", nifti_mode="per-class")
    legend = json.loads((tmp_path / "per-class" / "legend.json").read_text())
    assert legend["mode"] == "per-class"
    assert [(c["name"], c["file"]) for c in legend["classes"]] == [
        ("brain", "brain.nii.gz"),
        ("ventricle", "ventricle.nii.gz"),  # the classification-only class has no pixels, no file
    ]
    for name in ("brain", "ventricle"):
        (path,) = (tmp_path / "per-class").rglob(f"*/{name}.nii.gz")
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
        assert data.dtype == np.uint8 and data.shape == (64, 64, DEPTH)
        assert np.array_equal(data.transpose(2, 1, 0) == 1, lab.expected[name]), name

    lab.project.export("nifti", tmp_path / "one-hot", nifti_mode="one-hot")
    legend = json.loads((tmp_path / "one-hot" / "legend.json").read_text())
    assert [(c["channel"], c["name"]) for c in legend["classes"]] == [(0, "brain"), (1, "ventricle")]
    (path,) = (tmp_path / "one-hot").rglob("*.nii.gz")
    data = np.asanyarray(nib.load(path).dataobj)
    assert data.shape == (64, 64, DEPTH, 2) and data.dtype == np.uint8
    for channel, name in enumerate(("brain", "ventricle")):
        assert np.array_equal(data[..., channel].transpose(2, 1, 0) == 1, lab.expected[name]), name
    assert (data.sum(axis=3) == 2).sum() == lab.overlap.sum()  # both classes at the overlap


def test_nifti_index_volume_reports_every_collision(
    labelled: Labelled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import nibabel as nib

    lab = labelled
    overlap = int(lab.overlap.sum())
    per_slice = {z: int(lab.overlap[z].sum()) for z in SLICES}
    out = tmp_path / "index"
    assert _cli(lab, "nifti", out, "--nifti-mode", "index") == 0
    printed = capsys.readouterr().out
    assert f"brain + ventricle: {overlap} voxels, the index maps keep ventricle" in printed

    manifest = json.loads((out / "manifest.json").read_text())
    pairs = [{"classes": ["brain", "ventricle"], "count": overlap, "kept": "ventricle"}]
    assert manifest["summary"]["overlaps"]["pairs"] == pairs
    assert manifest["summary"]["overlaps"]["priority"] == ["ventricle", "brain"]  # later class first
    assert "overlaps.json" in manifest["files"]
    sidecar = json.loads((out / "overlaps.json").read_text())
    assert sidecar["pairs"] == pairs
    assert {item["frame"]: item["pairs"][0]["count"] for item in sidecar["items"]} == per_slice
    (path,) = out.rglob("*.nii.gz")
    assert np.array_equal(
        np.asanyarray(nib.load(path).dataobj).transpose(2, 1, 0), _index_map(lab, "ventricle")
    )

    # an explicit priority: brain above everything else
    out = tmp_path / "brain-first"
    assert _cli(lab, "nifti", out, "--class-priority", "brain") == 0
    assert f"brain + ventricle: {overlap} voxels, the index maps keep brain" in capsys.readouterr().out
    (path,) = out.rglob("*.nii.gz")
    assert np.array_equal(np.asanyarray(nib.load(path).dataobj).transpose(2, 1, 0), _index_map(lab, "brain"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["summary"]["overlaps"]["pairs"][0]["kept"] == "brain"

    assert _cli(lab, "nifti", tmp_path / "bad", "--class-priority", "brain,tumour") == 1
    assert "tumour" in capsys.readouterr().err


# --- PNG masks -------------------------------------------------------------------------------------
def test_png_masks_hold_both_classes_and_report_the_collisions(
    labelled: Labelled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    lab = labelled
    overlap = int(lab.overlap.sum())
    assert _cli(lab, "png-masks", tmp_path) == 0
    assert f"brain + ventricle: {overlap} pixels, the index maps keep ventricle" in capsys.readouterr().out
    for z in SLICES:
        (path,) = (tmp_path / "index").rglob(f"{z:05d}.png")
        index = np.asarray(Image.open(path))
        assert np.array_equal(index, _index_map(lab, "ventricle")[z])  # both classes are there
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["summary"]["overlaps"]["pairs"] == [
        {"classes": ["brain", "ventricle"], "count": overlap, "kept": "ventricle"}
    ]
    assert json.loads((tmp_path / "overlaps.json").read_text())["unit"] == "pixels"


def test_png_masks_instance_maps(tmp_path: Path) -> None:
    """Two labelers; ``--instances``: a 16-bit instance-id PNG per frame beside the class map and a
    JSON naming each instance's class, author and annotation."""
    from PIL import Image

    lab = _labelled(str(tmp_path / "labels.db"), tmp_path)
    lab.project.set_member("bob", "labeler")
    bob = api.open_project(lab.db, user="bob")
    second = [34.4, 40.2, 50.6, 60.8]  # another ventricle, partly over the brain of slice 9
    bob.upload_annotations(lab.asset_id, [{"kind": "box", "label": "ventricle", "frame": 9, "box": second}])
    bob.close()
    assert _cli(lab, "png-masks", tmp_path / "out", "--instances") == 0
    stored = {a["id"]: a for a in lab.project.annotations(lab.asset_id, frame=9)}
    assert {a["author"] for a in stored.values()} == {"ann", "bob"}

    (index_png,) = (tmp_path / "out" / "index").rglob("00009.png")
    (instance_png,) = (tmp_path / "out" / "instances").rglob("00009.png")
    (instance_json,) = (tmp_path / "out" / "instances").rglob("00009.json")
    image = Image.open(instance_png)
    assert image.mode == "I;16"  # 16-bit greyscale
    ids = np.asarray(image)
    classes = np.asarray(Image.open(index_png))
    listed = json.loads(instance_json.read_text())["instances"]
    assert set(np.unique(ids)) - {0} == {i["id"] for i in listed}
    assert sorted(i["annotation_id"] for i in listed) == sorted(stored)
    index_of = {"brain": 1, "ventricle": 2}
    for instance in listed:
        annotation = stored[instance["annotation_id"]]
        assert instance["class"] == annotation["label"] and instance["author"] == annotation["author"]
        here = ids == instance["id"]
        assert instance["pixels"] == int(here.sum()) > 0
        assert (classes[here] == index_of[instance["class"]]).all()  # the class map agrees
    area = {i["annotation_id"]: i["area"] for i in listed}
    bob_box = next(i for i, a in stored.items() if a["author"] == "bob")
    assert area[bob_box] == int(box_pixels(second, SHAPE).sum())
    lab.project.close()


# --- DICOM SEG -------------------------------------------------------------------------------------
def _segments(seg_file: Path, files: list[Path]) -> dict[str, np.ndarray]:
    """Segment label -> (z, y, x) bool, read by highdicom onto the source slices."""
    import highdicom as hd
    import pydicom

    seg = hd.seg.segread(seg_file)
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
    numbers = list(seg.segment_numbers)
    pixels = seg.get_pixels_by_source_instance(
        uids, segment_numbers=numbers, assert_missing_frames_are_empty=True
    )
    return {
        str(seg.get_segment_description(n).segment_label): pixels[..., k] != 0 for k, n in enumerate(numbers)
    }


@pytest.mark.parametrize("order", ORDERS)
def test_dicom_seg_segments_hold_exactly_their_class(db_url: str, tmp_path: Path, order: str) -> None:
    lab = _labelled(db_url, tmp_path, order)
    lab.project.export("dicom-seg", tmp_path / "seg")
    (seg_file,) = (tmp_path / "seg").rglob("*.seg.dcm")
    segments = _segments(seg_file, lab.files)
    assert sorted(segments) == ["brain", "ventricle"]
    for name, mask in segments.items():
        assert np.array_equal(mask, lab.expected[name]), name  # no hole where the other class is
    lab.project.close()


def test_dicom_seg_of_a_series_lacking_type2_attributes(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pydicom

    lab = _labelled(db_url, tmp_path, drop_type2=True)
    source = pydicom.dcmread(lab.files[0], stop_before_pixels=True)
    assert not any(keyword in source for keyword in TYPE2)
    assert _cli(lab, "dicom-seg", tmp_path / "seg") == 0
    captured = capsys.readouterr()
    assert "skipped" not in captured.err and "1 assets" in captured.out
    (seg_file,) = (tmp_path / "seg").rglob("*.seg.dcm")
    seg = pydicom.dcmread(seg_file)
    for keyword in TYPE2:  # present and empty: nothing invented
        assert keyword in seg and str(seg[keyword].value or "") == "", keyword
    segments = _segments(seg_file, lab.files)
    for name, mask in segments.items():
        assert np.array_equal(mask, lab.expected[name]), name
    lab.project.close()


def test_dicom_seg_keeps_library_warnings_off_the_console(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """pydicom-data's real CT slice has PatientName 'CQ500-CT-310', on which highdicom warns."""
    from app.sources.synthetic import build_ct_series

    files = build_ct_series(tmp_path / "ct", 6)
    db = str(tmp_path / "labels.db")
    project = api.create_project(db, "ct", ontology=ONTOLOGY, user="ann")
    (asset_id,) = project.import_data([tmp_path / "ct"])
    project.upload_annotations(
        asset_id, [{"kind": "box", "label": "brain", "frame": 2, "box": [100, 100, 300, 200]}]
    )
    project.close()
    caplog.set_level(logging.INFO, logger="app.exchange")
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        rc = main(
            ["export", "--db", db, "--user", "ann", "--format", "dicom-seg", "--out", str(tmp_path / "seg")]
        )
    assert rc == 0
    assert [str(w.message) for w in escaped] == []
    err = capfd.readouterr().err
    assert "person name" not in err and "Warning" not in err, err
    assert any("person name" in r.getMessage() for r in caplog.records if r.name.startswith("app.exchange"))
    (seg_file,) = (tmp_path / "seg").rglob("*.seg.dcm")  # no overlap: written from an index volume
    expected = np.zeros((6, 512, 512), dtype=bool)
    expected[2] = box_pixels([100, 100, 300, 200], (512, 512))
    assert [(name, np.array_equal(mask, expected)) for name, mask in _segments(seg_file, files).items()] == [
        ("brain", True)
    ]


# --- what a format cannot write --------------------------------------------------------------------
def test_unwritable_items_fail_the_export_unless_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = _labelled(str(tmp_path / "labels.db"), tmp_path)
    project = lab.project
    # a classification on five slices: a SEG has no place for it (one cause, five items)
    project.upload_annotations(
        lab.asset_id, [{"kind": "classification", "label": "finding", "frame": z} for z in range(5)]
    )
    # a 2-D photo with a box: not a series
    (photo,) = project.import_data([sample_data.skimage_images() / "camera.png"])
    project.upload_annotations(photo, [{"kind": "box", "label": "brain", "box": [10, 10, 90, 90]}])
    # a second series whose files are gone by export time
    mri_series(tmp_path / "gone", 8)
    (gone,) = project.import_data([tmp_path / "gone"])
    project.upload_annotations(gone, [{"kind": "box", "label": "brain", "frame": 3, "box": VENTRICLE}])
    shutil.rmtree(tmp_path / "gone")

    out = tmp_path / "seg"
    assert _cli(lab, "dicom-seg", out) == 1
    err = capsys.readouterr().err
    causes = [line for line in err.splitlines() if line.startswith("  ")]
    assert len(causes) == 3, err  # one line per cause
    assert sum("5 items" in c and "classification" in c for c in causes) == 1, err
    assert sum("camera.png" in c and "DICOM series only" in c for c in causes) == 1, err
    assert sum("gone" in c for c in causes) == 1, err
    assert "--skip-unwritable" in err
    assert not out.exists() or not any(out.iterdir())  # nothing written, not even a manifest

    assert _cli(lab, "dicom-seg", out, "--skip-unwritable") == 0
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if "skipped" in line]
    assert len(skipped) == 3, err  # summarised by reason, not repeated per slice
    assert any("5 items" in line and "classification" in line for line in skipped), err
    assert len(list(out.rglob("*.seg.dcm"))) == 1
    summary = json.loads((out / "manifest.json").read_text())["summary"]["skipped"]
    assert sorted(s["count"] for s in summary) == [1, 1, 5]
    project.close()
