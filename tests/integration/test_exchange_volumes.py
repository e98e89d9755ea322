"""NIfTI and DICOM SEG label volumes of real multi-file DICOM series.

No package ships a full multi-file CT series: the axial series is built from pydicom-data's
real 693_UNCI.dcm slice by ``app.sources.synthetic.build_ct_series`` (shuffled file names,
untrustworthy InstanceNumbers); the coronal and oblique series are written here from crops of
the same slice with a rotated ImageOrientationPatient and anisotropic PixelSpacing.
Expected positions are computed from the DICOM headers with pydicom, independently of
``VolumeGeometry``; SimpleITK is the reference NIfTI writer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.core.raster import rasterize_annotation
from app.exchange import volumes as vol
from app.sources import Source, VolumeGeometry, open_source

# highdicom warns that the real slice's PatientName "CQ500-CT-310" has a single component.
pytestmark = pytest.mark.filterwarnings("ignore:The string .* person name:UserWarning")

ONTOLOGY = Ontology.from_dict(
    {
        "classes": [
            {"name": "bone", "color": "#e0e0e0"},
            {"name": "fat", "color": "#f0c040"},
            {"name": "soft tissue", "color": "#c0504d"},
        ]
    }
)


@dataclass
class Series:
    folder: Path
    source: Source
    geometry: VolumeGeometry
    files: list[Path]  # sorted along the normal, from the headers (independent of app.sources)
    labels: np.ndarray  # (z, y, x) uint16


def _sorted_by_normal(folder: Path) -> list[Path]:
    import pydicom

    headers = [(p, pydicom.dcmread(p, stop_before_pixels=True)) for p in folder.glob("*.dcm")]
    iop = np.asarray(headers[0][1].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return [
        p for p, _ in sorted(headers, key=lambda h: float(normal @ np.asarray(h[1].ImagePositionPatient)))
    ]


def _rotated_series(folder: Path, row: np.ndarray, col: np.ndarray, n: int = 10) -> None:
    """``n`` real 40x56 crops of 693_UNCI.dcm on a plane spanned by ``row``/``col``, 1.7 mm apart."""
    import pydicom
    from pydicom.uid import generate_uid

    from app.sample_data import dicom_file

    src = pydicom.dcmread(dicom_file("693_UNCI.dcm"))
    base = src.pixel_array.astype(np.int16)
    row, col = (np.round(v / np.linalg.norm(v), 6) for v in (row, col))
    normal = np.cross(row, col)
    origin = np.array([-31.25, 17.5, 40.0])
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    names = [f"S{k:03d}.dcm" for k in range(n)]
    random.Random(3).shuffle(names)
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        ds = src.copy()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID = series, study, frame
        ds.InstanceNumber = n - k  # reversed on purpose
        ds.ImageOrientationPatient = [float(v) for v in (*row, *col)]
        ds.ImagePositionPatient = [round(float(v), 4) for v in origin + k * 1.7 * normal]
        ds.PixelSpacing = [0.8, 0.6]  # row spacing (y), column spacing (x): anisotropic on purpose
        ds.SliceThickness = 1.7
        if "SliceLocation" in ds:
            del ds.SliceLocation
        crop = base[240 + k : 280 + k, 122 + k : 178 + k]  # skull edge: bone and soft tissue
        ds.Rows, ds.Columns = crop.shape
        ds.PixelData = np.ascontiguousarray(crop).tobytes()
        ds.save_as(folder / name, enforce_file_format=True)


def _labels_of(source: Source) -> np.ndarray:
    hu = source.volume().astype(np.int32)
    labels = np.zeros(hu.shape, dtype=np.uint16)
    labels[(hu > 0) & (hu < 60)] = 3  # soft tissue
    labels[hu > 300] = 1  # bone; class 2 ("fat") stays absent
    labels[:2] = 0  # empty slices must be omitted from the SEG
    assert (labels == 1).any() and (labels == 3).any()
    return labels


def _rotation(ax: float, ay: float) -> np.ndarray:
    cx, sx, cy, sy = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay)
    return np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])


@pytest.fixture(scope="module", params=["axial", "coronal", "oblique"])
def series(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Series:
    from app.sources.synthetic import build_ct_series

    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "axial":
        build_ct_series(folder, 24)
    elif request.param == "coronal":
        _rotated_series(folder, np.array([1.0, 0, 0]), np.array([0, 0, -1.0]))
    else:
        rot = _rotation(np.radians(25), np.radians(-35))
        _rotated_series(folder, rot[:, 0], rot[:, 1])
    source = open_source(folder)
    assert source.geometry is not None
    return Series(folder, source, source.geometry, _sorted_by_normal(folder), _labels_of(source))


def test_source_slices_follow_the_slice_positions(series: Series) -> None:
    import pydicom

    slices = vol.source_slices(series.source)
    assert [p for p, _ in slices] == series.files
    assert [uid for _, uid in slices] == [pydicom.dcmread(p).SOPInstanceUID for p in series.files]
    assert vol.sort_slice_files(list(reversed(series.files))) == slices


def test_nifti_affine_maps_voxels_to_the_dicom_slice_positions(series: Series, tmp_path: Path) -> None:
    import nibabel as nib
    import pydicom

    out = tmp_path / "labels.nii.gz"
    vol.write_nifti(series.labels, series.geometry, out)
    img = nib.load(out)
    data = np.asanyarray(img.dataobj)
    assert data.dtype == np.uint16 and data.shape == series.labels.shape[::-1]
    hdr = img.header
    assert int(hdr["qform_code"]) == 1 and int(hdr["sform_code"]) == 1
    assert hdr.get_xyzt_units()[0] == "mm" and hdr.get_intent()[0] == "label"
    assert np.allclose(img.get_qform(), img.get_sform(), atol=1e-4)
    depth, rows, cols = series.labels.shape
    rng = np.random.default_rng(0)
    samples = [(0, 0, 0), (cols - 1, rows - 1, depth - 1), (cols - 1, 0, depth // 2)]
    samples += [tuple(int(v) for v in rng.integers(0, (cols, rows, depth))) for _ in range(20)]
    for i, j, k in samples:
        ds = pydicom.dcmread(series.files[k], stop_before_pixels=True)
        iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
        row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
        lps = (
            np.asarray(ds.ImagePositionPatient, dtype=float)
            + iop[:3] * i * col_spacing
            + iop[3:] * j * row_spacing
        )
        ras = lps * [-1, -1, 1]
        assert np.allclose(img.affine @ [i, j, k, 1], [*ras, 1], atol=1e-3), (i, j, k)
        assert data[i, j, k] == series.labels[k, j, i]


def test_nifti_equals_simpleitk_nifti_of_the_same_labels(series: Series, tmp_path: Path) -> None:
    import nibabel as nib
    import SimpleITK as sitk  # noqa: N813 - the usual alias

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series.folder)))
    reference = reader.Execute()
    peer = sitk.GetImageFromArray(series.labels)
    peer.CopyInformation(reference)
    sitk.WriteImage(peer, str(tmp_path / "sitk.nii.gz"))
    vol.write_nifti(series.labels, series.geometry, tmp_path / "ours.nii.gz")
    ours, theirs = nib.load(tmp_path / "ours.nii.gz"), nib.load(tmp_path / "sitk.nii.gz")
    assert np.allclose(ours.affine, theirs.affine, atol=1e-4)
    assert np.array_equal(np.asanyarray(ours.dataobj), np.asanyarray(theirs.dataobj))
    # ...and our reader accepts SimpleITK's file as a mask on this series.
    back = vol.read_nifti_labels(tmp_path / "sitk.nii.gz", series.geometry, shape_zyx=series.labels.shape)
    assert np.array_equal(back, series.labels)


def test_nifti_round_trip_and_reoriented_copies(series: Series, tmp_path: Path) -> None:
    import nibabel as nib

    geometry = series.geometry
    path = tmp_path / "labels.nii.gz"
    vol.write_nifti(series.labels, geometry, path)
    assert np.array_equal(vol.read_nifti_labels(path, geometry, shape_zyx=series.labels.shape), series.labels)
    img = nib.load(path)
    canonical = nib.as_closest_canonical(img)  # flips (and permutes for coronal) to RAS
    # i and k reversed, j moved first: (j, i, k) order (nibabel's slicer mis-handles negative steps)
    data = np.asanyarray(img.dataobj)[::-1, :, ::-1].transpose(1, 0, 2)
    move = np.zeros((4, 4))
    move[3, 3] = 1
    move[0, 1], move[1, 0], move[2, 2] = -1, 1, -1  # file (a, b, c) -> original (n_i-1-b, a, n_k-1-c)
    move[0, 3], move[2, 3] = data.shape[1] - 1, data.shape[2] - 1
    flipped = nib.Nifti1Image(data, img.affine @ move)
    for k, copy in enumerate([canonical, flipped]):
        nib.save(copy, tmp_path / f"copy{k}.nii")
        back = vol.read_nifti_labels(tmp_path / f"copy{k}.nii", geometry, shape_zyx=series.labels.shape)
        assert np.array_equal(back, series.labels)


def test_nifti_of_another_grid_is_refused(series: Series, tmp_path: Path) -> None:
    import nibabel as nib

    geometry = series.geometry
    path = tmp_path / "labels.nii.gz"
    vol.write_nifti(series.labels, geometry, path)
    img = nib.load(path)
    nib.save(img.slicer[:, :, 1:], tmp_path / "cropped.nii.gz")
    with pytest.raises(ValidationError, match=r"\(z, y, x\) voxels, the series"):
        vol.read_nifti_labels(tmp_path / "cropped.nii.gz", geometry, shape_zyx=series.labels.shape)
    with pytest.raises(ValidationError, match="mm away from the series"):
        vol.read_nifti_labels(tmp_path / "cropped.nii.gz", geometry)  # first slice moved
    shifted = img.affine.copy()
    shifted[:3, 3] += [0.5, 0, 0]
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), shifted), tmp_path / "shifted.nii.gz")
    with pytest.raises(ValidationError, match=r"up to 0\.5 mm away.*NIfTI: shape .*series: shape"):
        vol.read_nifti_labels(tmp_path / "shifted.nii.gz", geometry, shape_zyx=series.labels.shape)


def _source_uids(files: list[Path]) -> list[str]:
    import pydicom

    return [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files]


def test_dicom_seg_references_the_source_slices(series: Series, tmp_path: Path) -> None:
    import highdicom as hd
    import pydicom

    path = tmp_path / "seg.dcm"
    vol.write_dicom_seg(series.labels, series.files, ONTOLOGY, path)
    seg = hd.seg.segread(path)
    uids = _source_uids(series.files)
    source_series = pydicom.dcmread(series.files[0], stop_before_pixels=True).SeriesInstanceUID
    assert seg.SOPClassUID == vol.SEG_SOP_CLASS_UID and seg.SegmentationType == "BINARY"
    assert [s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence] == [source_series]
    referenced = [
        i.ReferencedSOPInstanceUID for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    ]
    assert sorted(referenced) == sorted(uids)
    assert [d.SegmentLabel for d in seg.SegmentSequence] == ["bone", "soft tissue"]  # classes present
    for d in seg.SegmentSequence:
        assert d.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "85756007"  # SCT Tissue
        assert d.SegmentedPropertyTypeCodeSequence[0].CodeValue == "91723000"  # SCT Anatomical Structure
        assert d.SegmentAlgorithmType == "MANUAL"
    expected = {1: series.labels == 1, 2: series.labels == 3}
    # Every frame: its source slice by UID, its position, its pixels (omitted frames are empty).
    frames = seg.pixel_array.reshape(-1, *series.labels.shape[1:])
    seen = set()
    for n, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        uid = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        z = uids.index(uid)
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        src = pydicom.dcmread(series.files[z], stop_before_pixels=True)
        position = item.PlanePositionSequence[0].ImagePositionPatient
        assert np.allclose(
            np.asarray(position, float), np.asarray(src.ImagePositionPatient, float), atol=1e-3
        )
        assert np.array_equal(frames[n].astype(bool), expected[number][z])
        seen.add((z, number))
    assert seen == {(z, n) for n, m in expected.items() for z in range(len(uids)) if m[z].any()}
    pixels = seg.get_pixels_by_source_instance(uids, assert_missing_frames_are_empty=True)
    assert pixels.shape == (*series.labels.shape, 2)
    assert np.array_equal(pixels[..., 0].astype(bool), expected[1])
    assert np.array_equal(pixels[..., 1].astype(bool), expected[2])


def test_dicom_seg_round_trip_and_algorithm(series: Series, tmp_path: Path) -> None:
    import highdicom as hd

    path = tmp_path / "seg.dcm"
    vol.write_dicom_seg(series.labels, series.files, ONTOLOGY, path, algorithm="model:tissue@3")
    segments = vol.read_dicom_seg_labels(path, series.files)
    assert sorted(segments) == ["bone", "soft tissue"]
    assert np.array_equal(vol.labels_from_segments(segments, ONTOLOGY), series.labels)
    seg = hd.seg.segread(path)
    item = seg.SegmentSequence[0]
    assert item.SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert item.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "model:tissue"
    assert item.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == "3"


def test_annotations_round_trip_through_nifti_and_seg(tmp_path: Path) -> None:
    from app.sources.synthetic import build_ct_series

    build_ct_series(tmp_path / "ct", 6)
    source = open_source(tmp_path / "ct")
    geometry = source.geometry
    assert geometry is not None
    files = [p for p, _ in vol.source_slices(source)]
    blob = np.zeros((512, 512), dtype=bool)
    blob[100:180, 300:420] = True
    blob[140:150, 350:360] = False
    by_frame = {
        1: [
            Annotation(
                Kind.POLYGON, "bone", 1, points=np.array([[10.5, 20.0], [200.25, 40.0], [90.0, 300.75]])
            )
        ],
        4: [
            Annotation(Kind.BOX, "fat", 4, box=(50.0, 60.0, 250.5, 90.25)),
            Annotation(Kind.MASK, "soft tissue", 4, mask=MaskPatch.from_full(blob)),
        ],
    }
    labels = vol.label_volume(by_frame, ONTOLOGY, (6, 512, 512))
    vol.write_nifti(labels, geometry, tmp_path / "l.nii.gz")
    vol.write_dicom_seg(labels, files, ONTOLOGY, tmp_path / "seg.dcm")
    from_nifti = vol.read_nifti_labels(tmp_path / "l.nii.gz", geometry, shape_zyx=labels.shape)
    from_seg = vol.labels_from_segments(vol.read_dicom_seg_labels(tmp_path / "seg.dcm", files), ONTOLOGY)
    for back in (from_nifti, from_seg):
        imported = vol.annotations_from_labels(back, ONTOLOGY)
        assert sorted(imported) == [1, 4]
        assert [a.label for a in imported[4]] == ["fat", "soft tissue"]
        for frame, items in by_frame.items():
            for original in items:
                mask = next(a for a in imported[frame] if a.label == original.label).mask
                assert mask is not None
                assert np.array_equal(mask.to_full(), rasterize_annotation(original, (512, 512)))
        assert np.array_equal(vol.label_volume(imported, ONTOLOGY, labels.shape), labels)


def test_dicom_seg_refuses_mismatches(tmp_path: Path) -> None:
    from app.sources.synthetic import build_ct_series

    one = build_ct_series(tmp_path / "one", 4, seed=1)
    other = build_ct_series(tmp_path / "other", 4, seed=2)
    labels = np.zeros((4, 512, 512), dtype=np.uint16)
    with pytest.raises(ValidationError, match="empty"):
        vol.dicom_seg_dataset(labels, one, ONTOLOGY)
    with pytest.raises(ValidationError, match="does not match the source series"):
        vol.dicom_seg_dataset(labels[:3], one, ONTOLOGY)
    labels[2, 10:20, 10:20] = 7
    with pytest.raises(ValidationError, match="has no class"):
        vol.dicom_seg_dataset(labels, one, ONTOLOGY)
    labels[2, 10:20, 10:20] = 2
    vol.write_dicom_seg(labels, one, ONTOLOGY, tmp_path / "seg.dcm")
    with pytest.raises(ValidationError, match="not in the 4 given source slices"):
        vol.read_dicom_seg_labels(tmp_path / "seg.dcm", other)
    with pytest.raises(ValidationError, match="not a DICOM Segmentation"):
        vol.read_dicom_seg_labels(one[0], one)


def test_fractional_seg_from_another_tool_is_cut_at_one_half(tmp_path: Path) -> None:
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from app.sources.synthetic import build_ct_series

    files = build_ct_series(tmp_path / "ct", 3)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    prob = np.zeros((3, 512, 512), dtype=np.float32)
    prob[1, 100:200, 100:200] = 0.8
    prob[1, 150:160, 100:200] = 0.3
    prob[2, 0:10, 0:10] = 0.5
    description = hd.seg.SegmentDescription(
        1, "lesion", codes.SCT.Tissue, codes.SCT.AnatomicalStructure, hd.seg.SegmentAlgorithmTypeValues.MANUAL
    )
    seg = hd.seg.Segmentation(
        sources, prob, hd.seg.SegmentationTypeValues.FRACTIONAL, [description], hd.UID(), 2, hd.UID(), 1,
        "other", "other", "1", "1", max_fractional_value=200,
    )  # fmt: skip
    seg.save_as(tmp_path / "frac.dcm")
    masks = vol.read_dicom_seg_labels(tmp_path / "frac.dcm", files)
    assert list(masks) == ["lesion"]
    assert np.array_equal(masks["lesion"], prob >= 0.5)
