from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk  # noqa: N813 - the usual alias

from app.sample_data import dicom_file, pydicom_test_files
from app.sources import WINDOW_PRESETS, CorruptFile, SourceError, open_source, scan
from app.sources.synthetic import build_ct_series

# Files whose pixels must equal SimpleITK's exactly (compressed ones included).
EXACT = [
    "693_UNCI.dcm", "693_J2KR.dcm", "693_UNCR.dcm", "CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm", "JPEG2000.dcm", "JPEG-LL.dcm", "emri_small.dcm", "emri_small_RLE.dcm",
    "emri_small_jpeg_2k_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm", "US1_J2KR.dcm", "US1_UNCR.dcm",
    "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle.dcm", "SC_rgb.dcm", "SC_rgb_16bit.dcm", "examples_rgb_color.dcm",
    "SC_ybr_full_uncompressed.dcm", "OBXXXX1A_rle_2frame.dcm", "eCT_Supplemental.dcm", "OT-PAL-8-face.dcm",
    "JPEGLSNearLossless_16.dcm", "examples_jpeg2k.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm",
]  # fmt: skip


def _sitk(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.mark.parametrize("name", EXACT)
def test_pixels_equal_simpleitk(name: str) -> None:
    path = dicom_file(name)
    with open_source(path) as src:
        ours = src.volume()
        assert src.kind == "dicom"
        assert ours.dtype == src.dtype
        assert ours.shape[0] == src.frame_count
        assert src.frame(0).shape == ours.shape[1:]
    ref = _sitk(path).reshape(ours.shape)
    np.testing.assert_array_equal(ours.astype(np.float64), ref.astype(np.float64))


def test_float_rescale_matches_simpleitk() -> None:
    path = dicom_file("MR2_J2KR.dcm")
    with open_source(path) as src:
        assert src.dtype == np.float32
        ours = src.volume()
    np.testing.assert_allclose(ours, _sitk(path).reshape(ours.shape), rtol=1e-6, atol=1e-3)


def test_monochrome1_is_noted_not_inverted() -> None:
    path = dicom_file("RG1_UNCR.dcm")
    with open_source(path) as src:
        assert src.metadata["photometric"] == "MONOCHROME1"
        ours = src.frame(0).astype(np.int64)
    # GDCM inverts MONOCHROME1 for display; we keep stored values and let the display invert.
    ref = _sitk(path)[0].astype(np.int64)
    assert np.array_equal(ours + ref, np.full_like(ours, (1 << 15) - 1))


def test_ybr_jpeg_multiframe_close_to_simpleitk() -> None:
    # Lossy YBR JPEG: libjpeg and GDCM round the YBR->RGB conversion differently by a few levels.
    path = dicom_file("examples_ybr_color.dcm")
    with open_source(path) as src:
        assert (src.frame_count, src.channels) == (30, 3)
        ours = src.volume()
    diff = np.abs(ours.astype(int) - _sitk(path).astype(int))
    assert diff.max() <= 4 and diff.mean() < 0.5


def test_rtdose_multiframe_scaled_to_gray() -> None:
    path = dicom_file("rtdose.dcm")
    with open_source(path) as src:
        scaling = float(src.metadata["rescale"]["slope"])
        assert src.dtype == np.float32 and src.frame_count == 15
        assert src.spacing is not None and src.geometry is not None
        np.testing.assert_allclose(src.volume(), _sitk(path) * scaling, rtol=1e-6)


def test_ct_hu_and_window(ct_series: tuple[Path, list[Path]]) -> None:
    with open_source(dicom_file("693_UNCI.dcm")) as src:
        assert src.metadata["Modality"] == "CT" and src.metadata["RescaleType"] == "HU"
        assert src.window == (40.0, 100.0)
        assert src.frame(0).min() < -900  # air in HU
    assert set(WINDOW_PRESETS) >= {"lung", "mediastinum", "bone", "brain", "abdomen"}


def test_shuffled_series_order_spacing_geometry(ct_series: tuple[Path, list[Path]]) -> None:
    folder, ordered = ct_series
    result = scan([folder])
    assert result.errors == [] and len(result.items) == 1
    ref = result.items[0]
    assert ref.frame_count == len(ordered) and list(ref.files) == ordered
    with ref.open() as src:
        assert src.spacing == pytest.approx((2.5, 0.478516, 0.478516))
        assert src.warnings == []
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
        image = reader.Execute()
        np.testing.assert_array_equal(src.volume(), sitk.GetArrayFromImage(image))
        assert src.geometry is not None
        assert src.geometry.origin == pytest.approx(image.GetOrigin())
        assert src.geometry.spacing == pytest.approx(image.GetSpacing())
        assert src.geometry.direction == pytest.approx(image.GetDirection())
        assert src.frame(3).dtype == np.int16
    with open_source(ref.uri) as again:
        assert again.frame_count == len(ordered)


def test_missing_and_duplicate_slices_are_reported(tmp_path: Path) -> None:
    build_ct_series(tmp_path, 12, skip=(5, 6), duplicate=(3,), seed=3)
    with open_source(tmp_path) as src:
        assert src.frame_count == 10
        text = " ".join(src.warnings)
        assert "gap" in text and "2 missing" in text
        assert "duplicate slice" in text
        assert src.spacing is not None and src.spacing[0] == pytest.approx(2.5)


def test_dicomdir_opens_series() -> None:
    dicomdir = pydicom_test_files() / "dicomdirtests" / "DICOMDIR"
    result = scan([dicomdir])
    assert len(result.items) >= 3
    assert all(r.kind == "dicom" for r in result.items)


def test_bad_inputs_give_one_error_each_and_the_rest_loads(
    tmp_path: Path, ct_series: tuple[Path, list[Path]]
) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(ct_series[0], folder / "series")
    shutil.copy(dicom_file("MR_truncated.dcm"), folder / "truncated.dcm")
    (folder / "fake.dcm").write_text("this is not DICOM at all, just text\n" * 10)
    shutil.copy(dicom_file("rtplan.dcm"), folder / "plan.dcm")
    shutil.copy(dicom_file("nested_priv_SQ.dcm"), folder / "nested.dcm")
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "dangling.dcm").symlink_to(folder / "nowhere.dcm")
    (folder / "folder.dcm").mkdir()
    (folder / "README.txt").write_text("notes")
    result = scan([folder])
    errors = {p.name: msg for p, msg in result.errors}
    assert set(errors) == {"truncated.dcm", "fake.dcm", "plan.dcm", "nested.dcm", "empty.dcm", "dangling.dcm"}
    assert "truncated" in errors["truncated.dcm"]
    assert "not a DICOM file" in errors["fake.dcm"]
    assert "without pixel data" in errors["plan.dcm"]
    assert "Rows/Columns" in errors["nested.dcm"]  # deeply nested private sequences parse; no image in it
    assert "empty" in errors["empty.dcm"]
    assert "dangling" in errors["dangling.dcm"] or "not found" in errors["dangling.dcm"]
    assert all("\n" not in m for m in errors.values())
    assert [r.frame_count for r in result.items] == [len(ct_series[1])]
    assert {p.name for p in result.skipped} == {"README.txt"}
    with pytest.raises(CorruptFile, match="truncated"):
        open_source(folder / "truncated.dcm")
    with pytest.raises(SourceError):
        open_source(folder / "folder.dcm" / "x")


def test_scan_progress_can_cancel(ct_series: tuple[Path, list[Path]]) -> None:
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> bool:
        calls.append((done, total))
        return done < 3

    result = scan([ct_series[0]], progress=progress)
    assert result.cancelled and calls[0][1] == len(ct_series[1])


def test_frames_are_cached_and_prefetched(ct_series: tuple[Path, list[Path]]) -> None:
    with open_source(ct_series[0]) as src:
        a = src.frame(5)
        assert src.frame(5) is a and not a.flags.writeable
        src.volume()
        assert src.frame(6) is src.frame(6)
    with pytest.raises(SourceError, match="closed"):
        src.frame(0)
