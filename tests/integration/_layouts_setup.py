"""Shared set-up of the training-layout tests (YOLO, nnU-Net, splits): the frame tests' mixed project
(two sample images, bigbuckbunny.mp4, an 8-slice CT series) plus CT series of two patients.

The series are built from pydicom-data's real 693_UNCI slice (``app.sources.synthetic``: no package
ships a multi-file CT series), with the template's PatientID replaced where another patient is meant.
Each build is a study of its own, so two builds with one PatientID are two studies of one patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _frames_setup import TRIANGLE, Mixed, mixed_project

from app import api
from app.sample_data import dicom_file
from app.sources.synthetic import build_ct_series

FIRST_PATIENT = "CQ500-CT-310"  # 693_UNCI's own PatientID: the mixed project's series "ct"


def patient_series(tmp: Path, name: str, patient: str, slices: int = 4, seed: int = 0) -> Path:
    """A CT series of ``patient`` (a study of its own) in ``tmp/name``."""
    import pydicom

    template = tmp / f"{name}-template.dcm"
    ds = pydicom.dcmread(dicom_file("693_UNCI.dcm"))
    ds.PatientID = patient
    ds.save_as(template, enforce_file_format=True)
    build_ct_series(tmp / name, slices, seed=seed, template=template)
    return tmp / name


@dataclass
class Layouts:
    mixed: Mixed
    second_study: int  # another series of the mixed project's patient
    other_patient: int  # a series of another patient

    @property
    def project(self) -> api.Project:
        return self.mixed.project

    @property
    def series(self) -> list[int]:
        return [self.mixed.series, self.second_study, self.other_patient]


def label_series(project: api.Project, asset_id: int, frames: tuple[int, ...] = (1, 2)) -> None:
    box = np.zeros((512, 512), dtype=bool)
    box[200:240, 180:260] = True
    project.upload_annotations(
        asset_id,
        [{"kind": "polygon", "label": "object", "frame": f, "points": TRIANGLE} for f in frames]
        + [{"kind": "mask", "label": "lesion", "frame": frames[-1], "mask": box}],
    )


def layouts_project(db_url: str, tmp: Path) -> Layouts:
    """The mixed project and two more labelled series: one of its patient, one of another."""
    mixed = mixed_project(db_url, tmp)
    project = mixed.project
    ids = project.import_data(
        [
            patient_series(tmp, "ct-a2", FIRST_PATIENT, seed=1),
            patient_series(tmp, "ct-b", "PATIENT-B", seed=2),
        ]
    )
    assert len(ids) == 2, project.last_import_errors
    for asset_id in ids:
        label_series(project, asset_id)
    return Layouts(mixed, ids[0], ids[1])
