"""Export names never change when other assets arrive, so an older export still imports.

A folder holds a CT series and ``scan.png``; both are labelled and exported. Then a second series
joins the same folder and ``scan.jpg`` (the same name but for its extension) arrives: the old
files keep their names in the next export, and the older export imports back onto the project.
The series are built from pydicom-data's real 693_UNCI slice (no package ships a series).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from app import api, sample_data
from app.sources.synthetic import build_ct_series

ONTOLOGY = {"classes": [{"name": "organ", "color": "#c0504d", "kinds": ["polygon", "mask", "box"]}]}
TRIANGLE = [[100.0, 120.0], [400.0, 140.0], [300.0, 420.0]]
FORMATS = ("nifti", "voc", "coco")
LISTS = {"annotations.json", "frames.json", "provenance.json"}  # one file listing every asset


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def _second_series(folder: Path, tmp: Path) -> None:
    """Another series in ``folder``, its files named apart from the first's."""
    build_ct_series(tmp / "b", 5, seed=7)
    for path in (tmp / "b").iterdir():
        shutil.move(str(path), folder / f"B{path.name}")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    import cv2

    folder = tmp_path / "data"
    build_ct_series(folder / "ct", 6)
    camera = cv2.imread(str(sample_data.skimage_images() / "camera.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(folder / "scan.png"), camera)
    return folder


def test_names_stay_when_a_series_and_a_namesake_arrive(db_url: str, data: Path, tmp_path: Path) -> None:
    import cv2

    project = api.create_project(db_url, "names", ontology=ONTOLOGY, user="ann")
    ids = project.import_data([data / "ct", data / "scan.png"])
    (series,) = [i for i in ids if project.asset(i).frame_count > 1]
    (scan,) = [i for i in ids if i != series]
    project.upload_annotations(
        series, [{"kind": "polygon", "label": "organ", "frame": 2, "points": TRIANGLE}]
    )
    project.upload_annotations(scan, [{"kind": "box", "label": "organ", "box": [10.0, 20.0, 90.0, 80.0]}])
    before = {fmt: _files_of(project, fmt, tmp_path / f"old-{fmt}") for fmt in FORMATS}
    assert f"{_series_name(project, series)}.nii.gz" in before["nifti"]  # the whole UID

    _second_series(data / "ct", tmp_path)
    cv2.imwrite(str(data / "scan.jpg"), np.full((64, 48), 200, dtype=np.uint8))
    added = project.import_data([data / "ct", data / "scan.jpg"])
    assert len(added) == 2, project.last_import_errors
    for asset_id in added:
        project.upload_annotations(
            asset_id, [{"kind": "box", "label": "organ", "box": [1.0, 2.0, 30.0, 40.0]}]
        )
    for fmt in FORMATS:
        after = _files_of(project, fmt, tmp_path / f"new-{fmt}")
        changed = {name for name, content in before[fmt].items() if after.get(name) != content}
        # every old file is in the new export, unchanged, but for the lists of everything (the
        # images' entries in annotations.json keep their file names: the image files are unchanged)
        assert changed <= LISTS, fmt
        assert len(after) > len(before[fmt]), fmt  # and the new assets have files of their own

    # the older exports import back onto the grown project (before: "no asset ... called 'series=...'")
    nifti = project.import_labels("nifti", tmp_path / "old-nifti")
    assert [(asset_id, count) for _item, asset_id, count in nifti.matched] == [(series, 1)]
    assert not nifti.skipped
    coco = project.import_labels("coco", tmp_path / "old-coco")
    assert sorted(asset_id for _item, asset_id, _n in coco.matched) == sorted([series, scan])
    assert not coco.skipped
    project.close()


def _files_of(project: api.Project, fmt: str, out: Path) -> dict[str, bytes]:
    project.export(fmt, out, skip_unwritable=True)  # nifti: the images have no volume
    return _files(out)


def _series_name(project: api.Project, asset_id: int) -> str:
    from app.exchange.names import item_names

    name = str(item_names(project.assets())[asset_id])
    uid = project.asset(asset_id).member.split("=", 1)[1]
    assert name.endswith(f"series={uid}")
    return name
