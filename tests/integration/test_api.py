"""The public API end to end on real files, against SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app import api, sample_data
from app.core.errors import ValidationError
from app.core.raster import rasterize_polygon

ONTOLOGY = {
    "classes": [
        {
            "name": "liver",
            "color": "#c0504d",
            "kinds": ["polygon", "mask"],
            "attributes": [{"name": "confidence", "type": "enum", "options": ["sure", "unsure"]}],
        },
        {"name": "lesion", "color": "#f2c14e", "kinds": ["box", "point"]},
        {"name": "normal", "kinds": ["classification"]},
    ]
}


@pytest.fixture
def project(db_url: str) -> api.Project:
    opened = api.create_project(db_url, "liver", ontology=ONTOLOGY, user="alice")
    yield opened
    opened.close()


def test_import_registers_real_files_in_place(project: api.Project) -> None:
    ct = sample_data.dicom_file("CT_small.dcm")
    photo = sample_data.skimage_images() / "camera.png"
    ids = project.import_data([ct, photo])
    assert len(ids) == 2
    assets = {a.id: a for a in project.assets()}
    by_name = {a.rel_path.rsplit("/", 1)[-1]: a for a in assets.values()}
    assert by_name["CT_small.dcm"].kind == "dicom-series"
    assert (by_name["CT_small.dcm"].width, by_name["CT_small.dcm"].height) == (128, 128)
    assert by_name["CT_small.dcm"].metadata["Modality"] == "CT"
    assert project.asset_path(by_name["camera.png"]) == photo
    # importing again registers nothing new
    assert project.import_data([ct, photo]) == []
    assert project.last_import_skipped == 2


def test_upload_and_read_back_every_kind(project: api.Project) -> None:
    (asset_id,) = project.import_data([sample_data.skimage_images() / "coins.png"])
    asset = project.asset(asset_id)
    mask = rasterize_polygon(
        np.array([[10, 10], [100, 20], [60, 90]], dtype=float), (asset.height, asset.width)
    )
    uploaded = [
        {
            "kind": "polygon",
            "label": "liver",
            "points": [[1.5, 2.5], [40, 3], [20, 30]],
            "attributes": {"confidence": "sure"},
        },
        {"kind": "box", "label": "lesion", "box": [5, 6, 50, 70]},
        {"kind": "point", "label": "lesion", "point": [12.25, 13.75]},
        {"kind": "mask", "label": "liver", "mask": mask},
        {"kind": "classification", "label": "normal"},
    ]
    ids = project.upload_annotations(asset_id, uploaded, source="model:liver-mm@3", confidence=0.82)
    assert len(ids) == 5
    got = sorted(project.annotations(asset_id), key=lambda a: a["id"])
    assert [a["kind"] for a in got] == ["polygon", "box", "point", "mask", "classification"]
    assert got[0]["points"] == [[1.5, 2.5], [40.0, 3.0], [20.0, 30.0]]
    assert got[0]["attributes"] == {"confidence": "sure"}
    assert got[1]["box"] == [5.0, 6.0, 50.0, 70.0]
    assert got[2]["point"] == [12.25, 13.75]
    assert np.array_equal(got[3]["mask"], mask)
    assert all(a["source"] == "model:liver-mm@3" and a["confidence"] == pytest.approx(0.82) for a in got)
    assert all(a["author"] == "alice" and a["version"] == 1 for a in got)
    assert [a["id"] for a in project.annotations(asset_id, labeler="alice")] == [a["id"] for a in got]
    assert project.annotations(asset_id, frame=1) == []


def test_upload_is_all_or_nothing_and_explains_what_is_wrong(project: api.Project) -> None:
    (asset_id,) = project.import_data([sample_data.skimage_images() / "coins.png"])
    good = {"kind": "box", "label": "lesion", "box": [1, 1, 5, 5]}
    with pytest.raises(ValidationError, match=r"annotation #2.*no class 'spleen'"):
        project.upload_annotations(asset_id, [good, {"kind": "box", "label": "spleen", "box": [1, 1, 5, 5]}])
    with pytest.raises(ValidationError, match="does not allow box"):
        project.upload_annotations(asset_id, [{"kind": "box", "label": "liver", "box": [1, 1, 5, 5]}])
    with pytest.raises(ValidationError, match="not one of"):
        project.upload_annotations(
            asset_id,
            [
                {
                    "kind": "polygon",
                    "label": "liver",
                    "points": [[0, 0], [5, 0], [0, 5]],
                    "attributes": {"confidence": "maybe"},
                }
            ],
        )
    with pytest.raises(ValidationError, match="past the last frame"):
        project.upload_annotations(asset_id, [{**good, "frame": 3}])
    with pytest.raises(ValidationError, match="does not match the frame"):
        project.upload_annotations(
            asset_id, [{"kind": "mask", "label": "liver", "mask": np.ones((3, 3), bool)}]
        )
    assert project.annotations(asset_id) == []


def test_open_project_by_name_and_ontology_versions(db_url: str) -> None:
    first = api.create_project(db_url, "a", ontology=ONTOLOGY, user="bob")
    api.create_project(first.db, "b", user="bob")
    with pytest.raises(ValidationError, match="holds 2 projects"):
        api.open_project(first.db)
    reopened = api.open_project(first.db, "a", user="bob")
    assert reopened.ontology.version == 1
    changed = dict(ONTOLOGY, classes=[*ONTOLOGY["classes"], {"name": "cyst", "kinds": ["polygon"]}])
    assert reopened.set_ontology(changed).version == 2
    assert [c.name for c in reopened.ontology.classes][-1] == "cyst"
    first.close()


def test_the_site_config_limits_export_and_import_formats_in_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "site.toml"
    config.write_text('allowed_formats = ["coco"]\n')
    monkeypatch.setenv("SITELABEL_CONFIG", str(config))
    project = api.create_project(tmp_path / "labels.db", "formats", user="ana")
    with pytest.raises(ValidationError, match="'yolo' is not allowed on this site"):
        project.export("yolo", tmp_path / "out")
    with pytest.raises(ValidationError, match="'labelme' is not allowed on this site"):
        project.import_labels("labelme", tmp_path)
    assert project.export("coco", tmp_path / "out").out_dir.exists()
    project.close()
