"""Build a realistic multi-file CT series from a real 512x512 CT slice (tests, benchmarks, demos).

No installed package ships a full multi-file CT series, so this writes ``n`` slices of
pydicom-data's ``693_UNCI.dcm`` with new UIDs, ImagePositionPatient stepping along z, and
pixel data varied per slice (rolls/flips of the real slice) under shuffled file names.
"""

from __future__ import annotations

import random
from pathlib import Path


def build_ct_series(
    folder: Path,
    n: int = 40,
    *,
    spacing: float = 2.5,
    seed: int = 0,
    skip: tuple[int, ...] = (),
    duplicate: tuple[int, ...] = (),
    template: Path | None = None,
) -> list[Path]:
    """Write the series into ``folder`` and return the file paths in true z order (skipped ones left out)."""
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    from app.sample_data import dicom_file

    src = pydicom.dcmread(template or dicom_file("693_UNCI.dcm"))
    base = src.pixel_array.astype(np.int16)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    names = [f"IM{k:05d}.dcm" for k in range(n + len(duplicate))]
    rng.shuffle(names)
    x0, y0, z0 = (float(v) for v in src.ImagePositionPatient)
    out: list[Path] = []
    slots = [i for i in range(n) if i not in skip] + list(duplicate)
    for slot, (i, name) in enumerate(zip(slots, names, strict=False)):
        ds = src.copy()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID = series_uid, study_uid, frame_uid
        ds.SeriesDescription = "synthetic CT series"
        ds.InstanceNumber = rng.randint(1, 10 * n) if slot % 7 == 0 else i + 1  # not trustworthy on purpose
        ds.ImagePositionPatient = [x0, y0, z0 + i * spacing]
        ds.SliceLocation = z0 + i * spacing
        ds.SliceThickness = spacing
        pixels = np.roll(base, shift=(i * 3) % 512, axis=1)
        if i % 2:
            pixels = pixels[::-1]
        pixels = np.ascontiguousarray(pixels + np.int16(i % 50))
        ds.PixelData = pixels.tobytes()
        path = folder / name
        ds.save_as(path, enforce_file_format=True)
        if slot < n - len(skip):
            out.append(path)
    return out
