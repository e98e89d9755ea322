"""Shared set-up of the label-map tests: a real MR series, and masks computed without Sitelabel.

No package ships a multi-file MR series: ``mri_series`` writes one from pydicom's real
``MR_small.dcm`` slice with ``app.sources.synthetic.build_ct_series`` (its ``template``), which
steps ImagePositionPatient along the slice normal, varies the pixels per slice and shuffles the
file names. ``drop_type2`` deletes the Type-2 patient and study attributes from the copies, as
some archives and anonymisers do (the attributes must be present but may be empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app import sample_data

# Type 2 in the Patient and General Study modules (PS3.3 C.7.1.1, C.7.2.1)
TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def mri_series(folder: Path, n: int = 20, *, drop_type2: bool = False) -> list[Path]:
    """Write the series; returns its files in true slice order (frame ``z`` is ``files[z]``)."""
    import pydicom

    from app.sources.synthetic import build_ct_series

    files = build_ct_series(folder, n, spacing=1.5, template=sample_data.dicom_file("MR_small.dcm"))
    if drop_type2:
        for path in files:
            ds = pydicom.dcmread(path)
            for keyword in TYPE2:
                if keyword in ds:
                    delattr(ds, keyword)
            ds.save_as(path, enforce_file_format=True)
    return files


def centres(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every pixel centre, (H, W) each (DESIGN: pixel (c, r) has its centre at c+.5, r+.5)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return xx + 0.5, yy + 0.5


def polygon_pixels(points: Sequence[Sequence[float]], shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies inside the polygon, by shapely (independent of app.core.raster)."""
    import shapely

    xs, ys = centres(shape)
    return np.asarray(shapely.contains_xy(shapely.Polygon(points), xs, ys))


def box_pixels(box: Sequence[float], shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies in ``[x0, x1) x [y0, y1)``."""
    x0, y0, x1, y1 = box
    xs, ys = centres(shape)
    return (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
