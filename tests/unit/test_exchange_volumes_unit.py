"""Label volumes and NIfTI geometry without DICOM files: affines, axis flips/permutations, refusals."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.exchange import volumes as vol
from app.sources import VolumeGeometry

ONTOLOGY = Ontology.from_dict({"classes": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})


def _oblique() -> VolumeGeometry:
    a, b = np.radians(20), np.radians(-50)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    d = rx @ rz
    return VolumeGeometry(
        origin=(-12.5, 30.25, 104.0),
        spacing=(0.7, 0.9, 2.5),
        direction=tuple(float(v) for v in d.reshape(-1)),  # type: ignore[arg-type]
    )


def _labels(shape: tuple[int, int, int] = (5, 4, 3), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, size=shape).astype(np.uint16)


def test_ras_affine_is_the_lps_geometry_with_x_and_y_negated() -> None:
    axial = VolumeGeometry((10.0, -20.0, 30.0), (0.5, 0.75, 2.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    expected = np.diag([-0.5, -0.75, 2.0, 1.0])
    expected[:3, 3] = [-10.0, 20.0, 30.0]
    assert np.allclose(vol.ras_affine(axial), expected)
    geometry = _oblique()
    affine = vol.ras_affine(geometry)
    for ijk in [(0, 0, 0), (2, 3, 4), (7.5, -1, 0.25)]:
        lps = np.asarray(geometry.index_to_lps(*ijk))
        assert np.allclose(affine @ [*ijk, 1], [-lps[0], -lps[1], lps[2], 1])


def test_nifti_image_layout_and_header() -> None:
    labels = _labels()
    img = vol.nifti_image(labels, _oblique())
    data = np.asanyarray(img.dataobj)
    assert data.shape == (3, 4, 5) and data.dtype == np.uint16
    assert data[2, 1, 4] == labels[4, 1, 2]
    assert np.array_equal(data.transpose(2, 1, 0), labels)
    hdr = img.header
    assert (int(hdr["qform_code"]), int(hdr["sform_code"])) == (1, 1)
    assert hdr.get_xyzt_units() == ("mm", "unknown") and hdr.get_intent()[0] == "label"
    assert np.allclose(img.get_qform(), vol.ras_affine(_oblique()), atol=1e-5)
    assert np.allclose(hdr.get_zooms(), (0.7, 0.9, 2.5))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_write_and_read_back(tmp_path: Path, suffix: str) -> None:
    labels = _labels((6, 7, 8))
    path = tmp_path / "out" / f"labels{suffix}"
    vol.write_nifti(labels, _oblique(), path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == suffix.endswith(".gz")
    back = vol.read_nifti_labels(path, _oblique(), shape_zyx=labels.shape)
    assert back.dtype == np.uint16 and back.flags.c_contiguous
    assert np.array_equal(back, labels)


def test_write_refuses_bad_names_and_values(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"\.nii\.gz or \.nii"):
        vol.write_nifti(_labels(), _oblique(), tmp_path / "labels.nrrd")
    with pytest.raises(ValidationError, match="do not fit"):
        vol.write_nifti(np.full((2, 2, 2), -1, dtype=np.int32), _oblique(), tmp_path / "x.nii")
    with pytest.raises(ValidationError, match="integers"):
        vol.write_nifti(np.zeros((2, 2, 2), dtype=np.float32), _oblique(), tmp_path / "x.nii")


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))), ids=lambda p: "".join(map(str, p)))
def test_every_flip_and_permutation_of_the_grid_is_undone_exactly(
    tmp_path: Path, perm: tuple[int, ...]
) -> None:
    import nibabel as nib

    labels = _labels((5, 4, 3))
    base = vol.nifti_image(labels, _oblique())
    data_ijk = np.asanyarray(base.dataobj)
    for signs in itertools.product((1, -1), repeat=3):
        # file axis f holds original axis perm[f], reversed when signs[f] < 0
        data = data_ijk.transpose(perm)
        data = np.flip(data, axis=tuple(f for f in range(3) if signs[f] < 0))
        to_original = np.zeros((4, 4))
        to_original[3, 3] = 1
        for f in range(3):
            to_original[perm[f], f] = signs[f]
            if signs[f] < 0:
                to_original[perm[f], 3] = data.shape[f] - 1
        path = tmp_path / "copy.nii"
        nib.save(nib.Nifti1Image(np.ascontiguousarray(data), base.affine @ to_original), path)
        assert np.array_equal(vol.read_nifti_labels(path, _oblique(), shape_zyx=labels.shape), labels)


def test_read_refuses_what_is_not_the_series_grid(tmp_path: Path) -> None:
    import nibabel as nib

    geometry = _oblique()
    labels = _labels()
    affine = vol.ras_affine(geometry)

    def save(data: np.ndarray, aff: np.ndarray | None, name: str) -> Path:
        nib.save(nib.Nifti1Image(data, aff), tmp_path / name)
        return tmp_path / name

    data = labels.transpose(2, 1, 0)
    zoomed = affine @ np.diag([2.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValidationError, match=r"voxel size or orientation differ.*voxel 1\.4 x 0\.9 x 2\.5"):
        vol.read_nifti_labels(save(data, zoomed, "zoom.nii"), geometry)
    rotated = affine.copy()
    rotated[:3, :3] = _rot_z(0.2) @ affine[:3, :3]
    with pytest.raises(ValidationError, match="voxel size or orientation differ"):
        vol.read_nifti_labels(save(data, rotated, "rot.nii"), geometry)
    with pytest.raises(ValidationError, match="the series \\(6, 4, 3\\)"):
        vol.read_nifti_labels(save(data, affine, "ok.nii"), geometry, shape_zyx=(6, 4, 3))
    nudged = affine.copy()
    nudged[:3, 3] += 0.002
    with pytest.raises(ValidationError, match="mm away"):
        vol.read_nifti_labels(save(data, nudged, "nudged.nii"), geometry)
    assert np.array_equal(vol.read_nifti_labels(tmp_path / "nudged.nii", geometry, atol_mm=0.01), labels)
    with pytest.raises(ValidationError, match="neither a qform nor an sform"):
        vol.read_nifti_labels(save(data, None, "nocode.nii"), geometry)
    with pytest.raises(ValidationError, match="whole numbers"):
        vol.read_nifti_labels(save(data.astype(np.float32) + 0.5, affine, "frac.nii"), geometry)
    with pytest.raises(ValidationError, match="do not fit"):
        vol.read_nifti_labels(save(data.astype(np.int16) - 1, affine, "neg.nii"), geometry)
    with pytest.raises(ValidationError, match="3-D"):
        vol.read_nifti_labels(save(np.stack([data, data], axis=-1), affine, "4d.nii"), geometry)
    (tmp_path / "junk.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(ValidationError, match="cannot read NIfTI"):
        vol.read_nifti_labels(tmp_path / "junk.nii.gz", geometry)
    # a float file holding whole numbers and a trailing singleton axis is fine
    whole = save(data.astype(np.float32)[..., None], affine, "float.nii")
    assert np.array_equal(vol.read_nifti_labels(whole, geometry, shape_zyx=labels.shape), labels)


def _rot_z(a: float) -> np.ndarray:
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def test_label_volume_paints_frames_and_checks_them() -> None:
    box = Annotation(Kind.BOX, "b", 1, box=(1.0, 0.0, 3.0, 2.0))
    over = Annotation(Kind.BOX, "c", 1, box=(2.0, 1.0, 4.0, 3.0))
    note = Annotation(Kind.CLASSIFICATION, "a", 2)
    labels = vol.label_volume({1: [box, over], 2: [note], 0: []}, ONTOLOGY, (3, 3, 4))
    assert labels.dtype == np.uint16 and labels.shape == (3, 3, 4)
    assert not labels[0].any() and not labels[2].any()
    assert labels[1].tolist() == [[0, 2, 2, 0], [0, 2, 3, 3], [0, 0, 3, 3]]  # later paints over
    with pytest.raises(ValidationError, match="frame 3, but the series has 3 slices"):
        vol.label_volume({3: [box]}, ONTOLOGY, (3, 3, 4))
    with pytest.raises(ValidationError, match="no class 'zzz'"):
        vol.label_volume({0: [Annotation(Kind.BOX, "zzz", 0, box=(0, 0, 1, 1))]}, ONTOLOGY, (1, 3, 4))


def test_annotations_from_labels_inverts_label_volume() -> None:
    labels = _labels((4, 9, 7), seed=3)
    labels[2] = 0
    by_frame = vol.annotations_from_labels(labels, ONTOLOGY, source="import:nifti")
    assert sorted(by_frame) == [0, 1, 3]
    assert all(a.kind is Kind.MASK and a.source == "import:nifti" for a in by_frame[0])
    assert np.array_equal(vol.label_volume(by_frame, ONTOLOGY, labels.shape), labels)
    first = by_frame[0][0]
    assert first.mask == MaskPatch.from_full(labels[0] == ONTOLOGY.index_of(first.label))
    with pytest.raises(ValidationError, match="label value 9 has no class"):
        vol.annotations_from_labels(np.full((1, 2, 2), 9, dtype=np.uint16), ONTOLOGY)


def test_labels_from_segments() -> None:
    a = np.zeros((2, 3, 3), dtype=bool)
    c = np.zeros_like(a)
    a[0, :2, :2] = True
    c[0, 1:, 1:] = True
    out = vol.labels_from_segments({"c": c, "a": a}, ONTOLOGY)
    assert out.dtype == np.uint16
    assert out[0].tolist() == [[1, 1, 0], [1, 3, 3], [0, 3, 3]]  # overlap: the later class wins
    with pytest.raises(ValidationError, match="no class 'x'"):
        vol.labels_from_segments({"x": a}, ONTOLOGY)
    with pytest.raises(ValidationError, match="differ in shape"):
        vol.labels_from_segments({"a": a, "c": c[:1]}, ONTOLOGY)
