"""Label volumes of a real multi-file CT series through project.export / import_labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app import api
from app.core.raster import rasterize_polygon
from app.sources.synthetic import build_ct_series

ONTOLOGY = {
    "classes": [
        {"name": "liver", "color": "#c0504d", "kinds": ["mask", "polygon"]},
        {"name": "lesion", "color": "#f2c14e", "kinds": ["mask"]},
    ]
}


@pytest.fixture
def labelled(db_url: str, tmp_path: Path) -> tuple[api.Project, int, np.ndarray]:
    """A 12-slice CT series (built from the real 693_UNCI slice: no package ships one) with labels."""
    series = tmp_path / "series"
    build_ct_series(series, 12)
    project = api.create_project(db_url, "ct", ontology=ONTOLOGY, user="nora")
    (asset_id,) = project.import_data([series])
    asset = project.asset(asset_id)
    expected = np.zeros((12, asset.height, asset.width), dtype=np.uint16)
    liver = rasterize_polygon(np.array([[100.0, 120.0], [400.0, 140.0], [300.0, 420.0]]), (512, 512))
    lesion = np.zeros((512, 512), dtype=bool)
    lesion[250:270, 260:300] = True
    uploads = []
    for z in (3, 4, 5):
        uploads.append(
            {
                "kind": "polygon",
                "label": "liver",
                "frame": z,
                "points": [[100.0, 120.0], [400.0, 140.0], [300.0, 420.0]],
            }
        )
        expected[z][liver] = 1
    uploads.append({"kind": "mask", "label": "lesion", "frame": 4, "mask": lesion})
    expected[4][lesion] = 2
    project.upload_annotations(asset_id, uploads)
    yield project, asset_id, expected
    project.close()


def test_nifti_export_is_read_by_nibabel_and_imports_back(labelled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import nibabel as nib

    project, asset_id, expected = labelled
    report = project.export("nifti", tmp_path / "out")
    (volume,) = list((tmp_path / "out").rglob("*.nii.gz"))
    assert report.assets == 1 and report.files_written >= 2  # the volume + legend (+ manifest)
    data = np.asarray(nib.load(volume).dataobj)
    assert np.array_equal(data.transpose(2, 1, 0), expected)  # nibabel (i, j, k) = our (x, y, z)
    again = project.export("nifti", tmp_path / "out")
    assert again.files_written == 0 and again.files_unchanged >= 2  # deterministic bytes: nothing rewritten

    fresh = api.create_project(project.db, "reimport", ontology=ONTOLOGY, user="nora")
    fresh.import_data([project.asset_path(asset_id)])
    imported = fresh.import_labels("nifti", tmp_path / "out")
    assert [count for _, _, count in imported.matched] == [4] and not imported.skipped  # 3 liver + 1 lesion
    new_id = imported.matched[0][1]
    rebuilt = np.zeros_like(expected)
    for ann in fresh.annotations(new_id):
        rebuilt[ann["frame"]][ann["mask"]] = fresh.ontology.index_of(ann["label"])
    assert np.array_equal(rebuilt, expected)


def test_dicom_seg_export_references_the_source_slices(labelled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import highdicom as hd
    import pydicom

    project, asset_id, _expected = labelled
    project.export("dicom-seg", tmp_path / "seg")
    (seg_file,) = list((tmp_path / "seg").rglob("*.seg.dcm"))
    seg = hd.seg.segread(seg_file)
    source_uids = {
        pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID
        for f in project.asset_path(asset_id).iterdir()
    }
    referenced = {
        item.ReferencedSOPInstanceUID
        for s in seg.ReferencedSeriesSequence
        for item in s.ReferencedInstanceSequence
    }
    assert referenced <= source_uids and len(referenced) == len(source_uids)
    labels = {d.SegmentLabel for d in seg.SegmentSequence}
    assert labels == {"liver", "lesion"}


def test_export_refuses_unknown_review_filters(labelled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.core.errors import ValidationError

    project, _asset_id, _expected = labelled
    with pytest.raises(ValidationError, match=r"unknown status 'approved'; use one of"):
        project.export("coco", tmp_path / "x", status="approved")
