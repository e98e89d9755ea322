"""The nnU-Net v2 export is a raw dataset nnU-Net takes as it is: dataset.json checked against the
fields nnU-Net v2 documents (documentation/dataset_format.md), every labelsTr volume on its image's
grid (nibabel), the series' DICOM geometry kept, overlapping classes reported, the stored split as
splits_final.json. nnU-Net itself is not installed here; its rules are written out below.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _frames_setup import Mixed, mixed_project
from _layouts_setup import Layouts, layouts_project
from PIL import Image

from app.core.annotations import Kind
from app.core.errors import ValidationError
from app.core.raster import rasterize_annotation
from app.exchange.volumes import ras_affine


def check_nnunet_dataset(folder: Path) -> dict[str, Any]:
    """nnU-Net v2's dataset.json and file naming rules; returns dataset.json."""
    data = json.loads((folder / "dataset.json").read_text())
    for key, kind in (("channel_names", dict), ("labels", dict), ("numTraining", int), ("file_ending", str)):
        assert isinstance(data.get(key), kind), key
    channels = data["channel_names"]
    assert sorted(channels) == [str(k) for k in range(len(channels))]  # "0", "1", ...
    assert all(isinstance(v, str) and v for v in channels.values())
    labels = data["labels"]
    assert labels["background"] == 0 and all(isinstance(v, int) for v in labels.values())
    assert sorted(labels.values()) == list(range(len(labels)))  # consecutive, as nnU-Net v2 requires
    ending = data["file_ending"]
    images = sorted(p.name for p in (folder / "imagesTr").iterdir())
    targets = sorted(p.name for p in (folder / "labelsTr").iterdir())
    assert all(name.endswith(ending) for name in images + targets)
    pattern = re.compile(rf"^(.+)_(\d{{4}}){re.escape(ending)}$")
    cases: dict[str, set[int]] = {}
    for name in images:
        found = pattern.match(name)
        assert found, name
        cases.setdefault(found.group(1), set()).add(int(found.group(2)))
    assert all(channels_found == set(range(len(channels))) for channels_found in cases.values())
    assert targets == sorted(f"{case}{ending}" for case in cases)
    assert data["numTraining"] == len(cases) > 0
    return data


def _overlap(project: Any, asset_id: int, frame: int, shape: tuple[int, int]) -> int:
    """Pixels of one frame where an 'object' and a 'lesion' annotation are both drawn."""
    drawn = {"object": np.zeros(shape, bool), "lesion": np.zeros(shape, bool)}
    for ann in project.annotation_objects(asset_id):
        if ann.frame == frame and ann.kind is not Kind.CLASSIFICATION:
            drawn[ann.label] |= rasterize_annotation(ann, shape)
    return int(np.count_nonzero(drawn["object"] & drawn["lesion"]))


@pytest.fixture
def layouts(tmp_path: Path) -> Layouts:
    made = layouts_project(str(tmp_path / "labels.db"), tmp_path)
    yield made
    made.project.close()


def test_nnunet_3d_dataset_keeps_each_series_grid_and_reports_overlaps(
    layouts: Layouts, tmp_path: Path
) -> None:
    import nibabel as nib

    project, out = layouts.project, tmp_path / "Dataset001_CT"
    report = project.export("nnunet", out, nnunet_kind="3d")
    data = check_nnunet_dataset(out)
    assert data["file_ending"] == ".nii.gz" and data["channel_names"] == {"0": "CT"}
    assert data["labels"] == {"background": 0, "object": 1, "lesion": 2}  # 'note' has no pixels
    cases = {c["case"]: c for c in json.loads((out / "cases.json").read_text())["cases"]}
    assert sorted(c["asset_id"] for c in cases.values()) == sorted(layouts.series)
    collided = 0
    for case, entry in cases.items():
        image = nib.load(out / "imagesTr" / f"{case}_0000.nii.gz")
        label = nib.load(out / "labelsTr" / f"{case}.nii.gz")
        assert label.shape == image.shape and np.allclose(label.affine, image.affine)
        with project.open_asset(entry["asset_id"]) as source:
            assert np.allclose(image.affine, ras_affine(source.geometry))  # the DICOM geometry, in RAS
            values = source.volume()
        assert image.shape == values.shape[::-1]
        assert np.array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), values)  # HU as read
        voxels = np.asarray(label.dataobj).transpose(2, 1, 0)
        assert set(np.unique(voxels)) <= {0, 1, 2}
        for frame in range(voxels.shape[0]):
            both = _overlap(project, entry["asset_id"], frame, voxels.shape[1:])
            collided += both
            if both:  # the default priority keeps the class later in the ontology: lesion
                assert np.count_nonzero(voxels[frame] == 2) > 0
    pairs = report.summary["overlaps"]["pairs"]
    assert collided > 0 and pairs == [{"classes": ["object", "lesion"], "count": collided, "kept": "lesion"}]
    stored = project.splits()
    (fold,) = json.loads((out / "splits_final.json").read_text())
    assert {s: sorted(fold[s]) for s in ("train", "val")} == {
        s: sorted(c for c, e in cases.items() if stored.split_of(e["asset_id"]) == s)
        for s in ("train", "val")
    }
    assert report.summary["nnunet"] == {"kind": "3d", "cases": 3, "training": 3}


def test_nnunet_class_priority_decides_the_overlap(layouts: Layouts, tmp_path: Path) -> None:
    import nibabel as nib

    out = tmp_path / "priority"
    layouts.project.export("nnunet", out, nnunet_kind="3d", class_priority=["object"])
    voxels = np.asarray(nib.load(out / "labelsTr" / f"a{layouts.mixed.series:06d}.nii.gz").dataobj)
    assert np.count_nonzero(voxels == 2) < 800  # the lesion mask (800 px) loses where the triangle is


@pytest.fixture
def mixed(tmp_path: Path) -> Mixed:
    made = mixed_project(str(tmp_path / "labels.db"), tmp_path)
    yield made
    made.project.close()


def test_nnunet_2d_dataset_is_png_and_a_mixed_selection_is_refused(mixed: Mixed, tmp_path: Path) -> None:
    project = mixed.project
    with pytest.raises(ValidationError, match="--nnunet-kind 3d or --nnunet-kind 2d"):
        project.export("nnunet", tmp_path / "both", skip_unwritable=True)
    assert not (tmp_path / "both").exists() or not any((tmp_path / "both").iterdir())
    out = tmp_path / "Dataset002_Photos"
    report = project.export("nnunet", out, nnunet_kind="2d", skip_unwritable=True)
    data = check_nnunet_dataset(out)
    assert data["file_ending"] == ".png" and data["channel_names"] == {"0": "grey"}
    reasons = {r.why for r in report.reasons()}
    assert any("3-channel frames in a dataset whose first case has 1" in why for why in reasons)  # the clip
    for asset_id in mixed.images:
        case = f"a{asset_id:06d}"
        with (
            Image.open(out / "imagesTr" / f"{case}_0000.png") as picture,
            Image.open(out / "labelsTr" / f"{case}.png") as labels,
        ):
            assert (
                picture.size == labels.size == (project.asset(asset_id).width, project.asset(asset_id).height)
            )
            with project.open_asset(asset_id) as source:
                assert np.array_equal(np.asarray(picture), source.frame(0))
            assert set(np.unique(np.asarray(labels))) == {0, 1, 2}
