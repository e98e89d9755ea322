"""Mutation fuzzing of the file readers (DICOM, PNG/JPEG/TIFF, zip/tar/gz) from real seed files.

Each property opens a mutated seed with ``open_source`` and decodes its first and last frame.
It must work or raise a SitelabelError (one line); see _fuzz_support for the bounds.
"""

from __future__ import annotations

import gzip
import io
import itertools
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _fuzz_support import (
    PROPERTY_TIMEOUT,
    Patcher,
    fuzz_settings,
    mutated,
    patch_dicom_sizes,
    patch_gzip_isize,
    patch_jpeg_sof,
    patch_png_ihdr,
    patch_tar_size,
    patch_tiff_size,
    patch_zip_sizes,
    works_or_refuses,
)
from hypothesis import given
from PIL import Image

from app import sample_data
from app.sources import DecompressionBomb, SourceLimits, open_source

pytestmark = [
    # mutated files make pydicom and Pillow warn about every oddity; the property is about errors
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
SEEDS = Path(__file__).with_name("seeds")
# the configured bound the readers must honour (the app's setting is larger; the check is the same)
LIMITS = SourceLimits(max_pixels=16_000_000, prefetch=0, cache_bytes=64 * 1024**2, decode_threads=1)
DICOM_SEEDS = (
    "CT_small.dcm",  # explicit VR LE, native 16-bit: the fast header path and np.fromfile
    "MR_small_implicit.dcm",  # implicit VR
    "MR_small_RLE.dcm",  # compressed: pydicom decodes
    "MR_small_bigendian.dcm",  # big endian: pydicom header fallback
    "rtdose.dcm",  # multi-frame with GridFrameOffsetVector
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline colour
    "SC_rgb_small_odd.dcm",  # colour, odd size
    "ExplVR_LitEndNoMeta.dcm",  # no preamble or file meta
)
_counter = itertools.count()


def _open_and_decode(path: Path) -> None:
    with open_source(path, limits=LIMITS) as src:
        first = src.frame(0)
        assert isinstance(first, np.ndarray)
        if src.frame_count > 1:
            src.frame(src.frame_count - 1)


def _write(folder: Path, name: str, data: bytes) -> Path:
    # a fresh name per example: archive extraction is cached by path, size and mtime
    path = folder / f"{next(_counter):05d}-{name}"
    path.write_bytes(data)
    return path


def _saved_seeds(prefix: str) -> list[Path]:
    return sorted(SEEDS.glob(f"{prefix}*")) if SEEDS.is_dir() else []


# --- DICOM ------------------------------------------------------------------------------------------
def _dicom_seeds() -> dict[str, bytes]:
    return {name: sample_data.dicom_file(name).read_bytes() for name in DICOM_SEEDS}


_DICOM = _dicom_seeds()


@pytest.mark.soak
@pytest.mark.timeout(PROPERTY_TIMEOUT)
@fuzz_settings(1500)
@given(case=mutated(_DICOM, dict.fromkeys(_DICOM, patch_dicom_sizes)))
def test_fuzz_dicom_reader(tmp_path: Path, case: tuple[str, bytes]) -> None:
    name, data = case
    path = _write(tmp_path, name, data)
    works_or_refuses(lambda: _open_and_decode(path), path)


@pytest.mark.parametrize("seed", _saved_seeds("dicom-"), ids=lambda p: p.name)
def test_fuzz_dicom_regressions(tmp_path: Path, seed: Path) -> None:
    """Inputs that once escaped as a non-Sitelabel error (see seeds/README.md): now one clear refusal."""
    assert works_or_refuses(lambda: _open_and_decode(seed)) is not None


def test_fuzz_dicom_seeds_are_readable(tmp_path: Path) -> None:
    """The unmutated seeds open and decode, so the property exercises the readers' real paths."""
    for name in DICOM_SEEDS:
        err = works_or_refuses(lambda n=name: _open_and_decode(sample_data.dicom_file(n)))
        # the no-meta seed is an RT plan: its header path is fuzzed, it has no pixels to show
        assert (err is None) == (name != "ExplVR_LitEndNoMeta.dcm"), (name, err)


# --- images -----------------------------------------------------------------------------------------
def _image_seeds() -> dict[str, bytes]:
    from skimage import data as skdata

    camera = skdata.camera()[::8, ::8]  # 64x64 grey
    astronaut = skdata.astronaut()[::8, ::8]  # 64x64 RGB
    out: dict[str, bytes] = {}
    for name, arr, fmt, kwargs in (
        ("camera.png", camera, "PNG", {}),
        ("astronaut.png", astronaut, "PNG", {}),
        ("astronaut.jpg", astronaut, "JPEG", {"quality": 80}),
        ("camera.jpg", camera, "JPEG", {"progressive": True}),
    ):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, fmt, **kwargs)
        out[name] = buf.getvalue()
    import tifffile

    for name, arr, kwargs in (
        ("camera.tif", camera, {}),
        ("astronaut-tiled.tif", astronaut, {"tile": (16, 16), "compression": "zlib"}),
        ("camera-pages.tif", np.stack([camera, camera[::-1]]), {}),
    ):
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr, **kwargs)
        out[name] = buf.getvalue()
    return out


_IMAGES = _image_seeds()
_IMAGE_PATCHERS = {
    name: {".png": patch_png_ihdr, ".jpg": patch_jpeg_sof, ".tif": patch_tiff_size}[Path(name).suffix]
    for name in _IMAGES
}


@pytest.mark.soak
@pytest.mark.timeout(PROPERTY_TIMEOUT)
@fuzz_settings(1500)
@given(case=mutated(_IMAGES, _IMAGE_PATCHERS))
def test_fuzz_image_reader(tmp_path: Path, case: tuple[str, bytes]) -> None:
    name, data = case
    path = _write(tmp_path, name, data)
    works_or_refuses(lambda: _open_and_decode(path), path)


@pytest.mark.parametrize("seed", _saved_seeds("image-"), ids=lambda p: p.name)
def test_fuzz_image_regressions(tmp_path: Path, seed: Path) -> None:
    """Inputs that once escaped as a non-Sitelabel error (see seeds/README.md): now one clear refusal."""
    assert works_or_refuses(lambda: _open_and_decode(seed)) is not None


def test_fuzz_image_seeds_are_readable(tmp_path: Path) -> None:
    for name, data in _IMAGES.items():
        path = _write(tmp_path, name, data)
        assert works_or_refuses(lambda p=path: _open_and_decode(p)) is None, name


# --- archives ---------------------------------------------------------------------------------------
def _archive_seeds() -> dict[str, bytes]:
    png = _IMAGES["camera.png"]
    dcm = _DICOM["MR_small_implicit.dcm"]
    out: dict[str, bytes] = {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("scan/camera.png", png)
    out["one.zip"] = buf.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.dcm", dcm)
        zf.writestr("b/camera.png", png)
    out["two.zip"] = buf.getvalue()
    for name, mode in (("one.tar", "w"), ("one.tar.gz", "w:gz")):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode=mode) as tf:  # type: ignore[call-overload]
            info = tarfile.TarInfo("series/mr.dcm")
            info.size = len(dcm)
            tf.addfile(info, io.BytesIO(dcm))
        out[name] = buf.getvalue()
    out["camera.png.gz"] = gzip.compress(png, mtime=0)
    return out


_ARCHIVES = _archive_seeds()
_ARCHIVE_PATCHERS = {
    "one.zip": patch_zip_sizes,
    "two.zip": patch_zip_sizes,
    "one.tar": patch_tar_size,
    "camera.png.gz": patch_gzip_isize,
    "one.tar.gz": patch_gzip_isize,
}


def _open_archive(path: Path, cache: Path) -> None:
    with open_source(path, limits=LIMITS, cache_dir=cache) as src:
        src.frame(0)


@pytest.mark.soak
@pytest.mark.timeout(PROPERTY_TIMEOUT)
@fuzz_settings(800)
@given(case=mutated(_ARCHIVES, _ARCHIVE_PATCHERS))
def test_fuzz_archive_reader(tmp_path: Path, case: tuple[str, bytes]) -> None:
    name, data = case
    path = _write(tmp_path, name, data)
    works_or_refuses(lambda: _open_archive(path, tmp_path / "cache"), path)
    partial = list((tmp_path / "cache").glob("archives/.partial-*"))
    assert not partial, f"half-extracted folders left behind: {partial}"


@pytest.mark.parametrize("seed", _saved_seeds("archive-"), ids=lambda p: p.name)
def test_fuzz_archive_regressions(tmp_path: Path, seed: Path) -> None:
    path = _write(tmp_path, seed.name.removeprefix("archive-"), seed.read_bytes())
    assert works_or_refuses(lambda: _open_archive(path, tmp_path / "cache")) is not None


def test_fuzz_archive_seeds_are_readable(tmp_path: Path) -> None:
    for name, data in _ARCHIVES.items():
        path = _write(tmp_path, name, data)
        err = works_or_refuses(lambda p=path: _open_archive(p, tmp_path / "cache"))
        # two.zip holds two files: open_source asks for a member, which is the intended refusal
        assert (err is None) == (name != "two.zip"), (name, err)


# --- huge declared sizes are refused from the header, before any buffer exists -----------------
@pytest.mark.parametrize(
    ("seed", "patch"),
    [
        ("camera.png", patch_png_ihdr),
        ("astronaut.jpg", patch_jpeg_sof),
        ("camera.tif", patch_tiff_size),
        ("CT_small.dcm", patch_dicom_sizes),
        ("MR_small_implicit.dcm", patch_dicom_sizes),
        ("one.zip", patch_zip_sizes),
    ],
)
def test_fuzz_huge_declared_size_is_refused(tmp_path: Path, seed: str, patch: Patcher) -> None:
    """With the app's default limits a 65535 x 65535 (or 4 GiB) header is a DecompressionBomb."""
    data = {**_DICOM, **_IMAGES, **_ARCHIVES}[seed]
    path = _write(tmp_path, seed, patch(data, 0xFFFFFFFF))
    err = works_or_refuses(
        lambda: open_source(path, limits=SourceLimits(prefetch=0), cache_dir=tmp_path / "cache").close()
    )
    assert isinstance(err, DecompressionBomb), err
