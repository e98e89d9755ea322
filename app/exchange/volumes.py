"""Label volumes of DICOM series: class-index volumes, NIfTI export and import, DICOM SEG.

Conventions (DESIGN.md "Volumes"):

* In memory a label volume is ``(z, y, x)`` = (slice, row, column) uint16 class indices
  (``Ontology.index_of``; 0 is background); slice ``z`` is frame ``z`` of the series, i.e. the
  ``z``-th slice sorted along the slice normal.
* ``VolumeGeometry`` is LPS as in DICOM/ITK: ``p_LPS = origin + D @ diag(spacing) @ (i, j, k)``
  with ``(i, j, k)`` = (column, row, slice) and ``D`` the direction matrix whose columns are the
  row direction, the column direction and the slice normal.
* NIfTI is RAS: the file's data array is indexed ``(i, j, k)`` and its affine is
  ``A = [[F @ D @ diag(spacing), F @ origin], [0, 0, 0, 1]]`` with ``F = diag(-1, -1, 1)``
  (LPS -> RAS negates x and y). Voxel centres map to voxel centres, as DICOM's
  ImagePositionPatient and ITK's origin do, so there is no half-voxel shift. qform and sform
  both carry ``A`` with code 1 (scanner anatomical, as ITK and dcm2niix write), units mm,
  intent NIFTI_INTENT_LABEL, data type uint16.

The DICOM SEG functions live in ``app.exchange.volumes_seg`` and are re-exported here.
"""

from __future__ import annotations

import itertools
import uuid
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from app.core.annotations import HUMAN, Annotation, Kind, MaskPatch
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.core.raster import label_image
from app.exchange.volumes_seg import (
    SEG_SOP_CLASS_UID,
    dicom_seg_dataset,
    dicom_seg_from_masks,
    labels_from_segments,
    read_dicom_seg_labels,
    write_dicom_seg,
)

if TYPE_CHECKING:
    import nibabel

    from app.sources import Source, VolumeGeometry

LabelVolume = npt.NDArray[np.uint16]
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
_NORMAL_TIE_MM = 1e-3

__all__ = [
    "LPS_TO_RAS",
    "SEG_SOP_CLASS_UID",
    "annotations_from_labels",
    "dicom_seg_dataset",
    "dicom_seg_from_masks",
    "label_volume",
    "labels_from_segments",
    "nifti_image",
    "nifti_mask_image",
    "ras_affine",
    "read_dicom_seg_labels",
    "read_nifti_labels",
    "sort_slice_files",
    "source_slices",
    "write_dicom_seg",
    "write_nifti",
]


# --- class-index volumes -------------------------------------------------------------------------
def label_volume(
    annotations_by_frame: Mapping[int, Sequence[Annotation]],
    ontology: Ontology,
    shape_zyx: tuple[int, int, int],
) -> LabelVolume:
    """``(z, y, x)`` uint16 class indices, slice ``z`` rasterised by ``app.core.raster.label_image``."""
    depth, height, width = (int(v) for v in shape_zyx)
    if min(depth, height, width) < 0:
        raise ValidationError(f"a volume shape must be (z, y, x) >= 0, got {tuple(shape_zyx)}")
    out = np.zeros((depth, height, width), dtype=np.uint16)
    for frame, items in annotations_by_frame.items():
        if not 0 <= int(frame) < depth:
            raise ValidationError(f"annotations on frame {frame}, but the series has {depth} slices")
        if items:
            out[int(frame)] = label_image(items, ontology, (height, width))
    return out


def annotations_from_labels(
    labels_zyx: np.ndarray, ontology: Ontology, *, source: str = HUMAN
) -> dict[int, list[Annotation]]:
    """One MASK annotation per class per non-empty slice; ``label_volume`` of it gives the input back."""
    labels = _as_label_array(labels_zyx, 3)
    top = int(labels.max()) if labels.size else 0
    if top > len(ontology.classes):
        raise ValidationError(f"label value {top} has no class: the ontology has {len(ontology.classes)}")
    out: dict[int, list[Annotation]] = {}
    for z in np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1)):
        plane = labels[int(z)]
        present = np.flatnonzero(np.bincount(plane.reshape(-1), minlength=top + 1)[1:]) + 1
        out[int(z)] = [
            Annotation(
                kind=Kind.MASK,
                label=ontology.classes[int(index) - 1].name,
                frame=int(z),
                mask=MaskPatch.from_full(plane == index),
                source=source,
            )
            for index in present
        ]
    return out


def _as_label_array(labels: np.ndarray, ndim: int) -> LabelVolume:
    arr = np.asarray(labels)
    if arr.ndim != ndim:
        raise ValidationError(f"a label volume must be {ndim}-D, got shape {arr.shape}")
    if arr.dtype.kind not in "uib":
        raise ValidationError(f"a label volume must hold integers, got {arr.dtype}")
    if arr.dtype != np.uint16 and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > np.iinfo(np.uint16).max:
            raise ValidationError(f"label values {lo}..{hi} do not fit 0..65535")
    return arr.astype(np.uint16, copy=False)


# --- NIfTI ---------------------------------------------------------------------------------------
def ras_affine(geometry: VolumeGeometry) -> npt.NDArray[np.float64]:
    """4x4 NIfTI (RAS) affine of voxel ``(i, j, k)`` = (column, row, slice) for an LPS geometry."""
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ geometry.matrix() @ np.diag(np.asarray(geometry.spacing, dtype=float))
    affine[:3, 3] = LPS_TO_RAS @ np.asarray(geometry.origin, dtype=float)
    return affine


def _nifti_on_grid(
    data_ijk: np.ndarray, geometry: VolumeGeometry, *, label_intent: bool, description: str
) -> nibabel.Nifti1Image:
    nib = _nibabel()

    affine = ras_affine(geometry)
    header = nib.Nifti1Header()
    header.set_data_dtype(data_ijk.dtype)
    img = nib.Nifti1Image(data_ijk, affine, header)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units(xyz="mm")
    if label_intent:
        img.header.set_intent("label")
    img.header["descrip"] = description.encode("utf-8")[:79]
    return img


def nifti_image(labels_zyx: np.ndarray, geometry: VolumeGeometry) -> nibabel.Nifti1Image:
    """A NIfTI-1 label image of ``labels_zyx`` on the series grid (see the module notes)."""
    labels = _as_label_array(labels_zyx, 3)
    # (z, y, x) C-order transposed is (i, j, k) Fortran-order: nibabel writes it without a copy.
    return _nifti_on_grid(
        labels.transpose(2, 1, 0), geometry, label_intent=True, description="Sitelabel labels"
    )


def nifti_mask_image(masks: np.ndarray, geometry: VolumeGeometry, *, description: str) -> nibabel.Nifti1Image:
    """A uint8 NIfTI-1 of binary masks on the series grid: one mask ``(z, y, x)`` becomes a 3-D
    ``(i, j, k)`` image, a stack ``(c, z, y, x)`` a 4-D ``(i, j, k, c)`` one (a channel per class)."""
    data = np.asarray(masks)
    if data.ndim not in (3, 4):
        raise ValidationError(f"masks must be (z, y, x) or (c, z, y, x), got shape {data.shape}")
    data = data.astype(np.uint8, copy=False)
    ijk = data.transpose(2, 1, 0) if data.ndim == 3 else data.transpose(3, 2, 1, 0)
    return _nifti_on_grid(ijk, geometry, label_intent=False, description=description)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _nibabel() -> Any:
    """nibabel, imported on first use (its partial type hints are not worth strict checking)."""
    import nibabel

    return nibabel


def _temp_sibling(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp{suffix}")


def write_nifti(labels_zyx: np.ndarray, geometry: VolumeGeometry, path: Path) -> None:
    """Write ``nifti_image(...)`` to ``path`` (``.nii.gz`` or ``.nii``) through a temporary file."""
    nib = _nibabel()

    path = Path(path)
    name = path.name.lower()
    if not (name.endswith(".nii.gz") or name.endswith(".nii")):
        raise ValidationError(f"{path}: a NIfTI file name must end with .nii.gz or .nii")
    img = nifti_image(labels_zyx, geometry)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(path, ".nii.gz" if name.endswith(".gz") else ".nii")
    try:
        nib.save(img, tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _grid_text(affine: np.ndarray, shape: Sequence[int] | None) -> str:
    nib = _nibabel()

    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    codes = "".join(str(c) for c in nib.aff2axcodes(affine))
    origin = ", ".join(f"{v:.3f}" for v in affine[:3, 3])
    sizes = " x ".join(f"{v:.4g}" for v in zooms)
    extent = "?" if shape is None else tuple(int(s) for s in shape)
    return f"shape (i, j, k) {extent}, voxel {sizes} mm, axes {codes}, first voxel at RAS ({origin})"


def _signed_permutation(linear: np.ndarray) -> tuple[list[int], list[int]] | None:
    """(perm, signs) when ``linear`` (expected step -> file step) is a signed permutation, else None."""
    rounded = np.rint(linear)
    if not np.allclose(linear, rounded, atol=1e-3):
        return None
    perm: list[int] = []
    signs: list[int] = []
    for e in range(3):
        column = rounded[:, e]
        nonzero = np.flatnonzero(column)
        if len(nonzero) != 1 or abs(column[nonzero[0]]) != 1:
            return None
        perm.append(int(nonzero[0]))
        signs.append(int(column[nonzero[0]]))
    return (perm, signs) if sorted(perm) == [0, 1, 2] else None


def read_nifti_labels(
    path: Path,
    geometry: VolumeGeometry,
    *,
    shape_zyx: tuple[int, int, int] | None = None,
    atol_mm: float = 1e-3,
) -> LabelVolume:
    """``(z, y, x)`` uint16 labels of a NIfTI mask drawn on the series grid, without resampling.

    The file's voxel grid must be the series grid: same voxel centres within ``atol_mm``
    (checked at the grid corners, which bounds every voxel), and the same shape
    (``shape_zyx``, when given). Axis flips and permutations (e.g. an LAS or reoriented
    copy) are undone exactly. Anything else raises ``ValidationError`` saying what differs.
    """
    nib = _nibabel()

    path = Path(path)
    try:
        img: Any = nib.load(path)
    except Exception as exc:
        raise ValidationError(f"{path}: cannot read NIfTI: {_one_line(exc)}") from exc
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise ValidationError(f"{path}: not a NIfTI image ({type(img).__name__})")
    shape = tuple(int(s) for s in img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise ValidationError(f"{path}: a label volume must be 3-D, the NIfTI is {img.shape}")
    if int(img.header["sform_code"]) == 0 and int(img.header["qform_code"]) == 0:
        raise ValidationError(
            f"{path}: the NIfTI has neither a qform nor an sform: its orientation is unknown"
        )
    file_affine = np.asarray(img.affine, dtype=float)
    if not np.isfinite(file_affine).all():  # found by fuzzing: NaN pixdim/quatern/srow values
        raise ValidationError(f"{path}: the NIfTI orientation (qform/sform) holds NaN or infinite values")
    expected = ras_affine(geometry)
    problem = _match_grid(file_affine, shape, expected, shape_zyx, atol_mm)
    if isinstance(problem, str):
        raise ValidationError(
            f"{path}: the NIfTI grid does not match the DICOM series: {problem}. "
            f"NIfTI: {_grid_text(file_affine, shape)}; "
            f"series: {_grid_text(expected, shape_zyx[::-1] if shape_zyx else None)}"
        )
    perm, signs = problem
    try:  # nibabel reads the voxels lazily: a truncated file or a damaged gzip stream fails here
        data = np.asanyarray(img.dataobj).reshape(shape)
    except (OSError, EOFError, ValueError, zlib.error, MemoryError) as exc:
        raise ValidationError(f"{path}: cannot read the NIfTI voxel data ({_one_line(exc)})") from None
    data = data.transpose(perm)
    flips = tuple(e for e in range(3) if signs[e] < 0)
    if flips:
        data = np.flip(data, axis=flips)
    # one copy: C-ordered (z, y, x), detached from nibabel's memory map of a plain .nii
    return _checked_labels(np.asarray(data), path).transpose(2, 1, 0).copy()


def _match_grid(
    file_affine: np.ndarray,
    shape: tuple[int, ...],
    expected: np.ndarray,
    shape_zyx: tuple[int, int, int] | None,
    atol_mm: float,
) -> str | tuple[list[int], list[int]]:
    try:
        linear = np.linalg.solve(file_affine[:3, :3], expected[:3, :3])
    except np.linalg.LinAlgError:
        return "its affine is singular"
    found = _signed_permutation(linear)
    if found is None:
        return "voxel size or orientation differ (not a flip or permutation of the series axes)"
    perm, signs = found
    shape_e = [shape[perm[e]] for e in range(3)]  # (x, y, z) extents seen from the series axes
    if shape_zyx is not None and tuple(shape_e) != tuple(int(s) for s in shape_zyx[::-1]):
        return f"it has {tuple(shape_e[::-1])} (z, y, x) voxels, the series {tuple(shape_zyx)}"
    offset = np.zeros(3)
    move = np.zeros((3, 3))
    for e in range(3):
        move[perm[e], e] = signs[e]
        offset[perm[e]] = 0 if signs[e] > 0 else shape[perm[e]] - 1
    corners = np.array(np.meshgrid(*[[0, max(n - 1, 0)] for n in shape_e], indexing="ij")).reshape(3, -1)
    want = expected[:3, :3] @ corners + expected[:3, 3:4]
    got = file_affine[:3, :3] @ (move @ corners + offset[:, None]) + file_affine[:3, 3:4]
    error = float(np.abs(got - want).max())
    if error > atol_mm:
        return f"voxel centres are up to {error:.4g} mm away from the series' (tolerance {atol_mm} mm)"
    return perm, signs


def _checked_labels(data: np.ndarray, path: Path) -> LabelVolume:
    if data.dtype.kind == "f":
        if not np.isfinite(data).all() or not np.array_equal(data, np.rint(data)):
            raise ValidationError(f"{path}: a label NIfTI must hold whole numbers, found fractions")
        data = np.rint(data)
    elif data.dtype.kind not in "uib":
        raise ValidationError(f"{path}: a label NIfTI must hold integers, got {data.dtype}")
    if data.size:
        lo, hi = float(data.min()), float(data.max())
        if lo < 0 or hi > np.iinfo(np.uint16).max:
            raise ValidationError(f"{path}: label values {lo:g}..{hi:g} do not fit 0..65535")
    return data.astype(np.uint16, copy=False)


# --- DICOM series slices -------------------------------------------------------------------------
def _slice_headers(paths: Sequence[Path]) -> list[Any]:
    import pydicom

    tags = ["SOPInstanceUID", "ImagePositionPatient", "ImageOrientationPatient", "InstanceNumber"]
    out = []
    for p in paths:
        try:
            out.append(pydicom.dcmread(p, stop_before_pixels=True, specific_tags=tags))
        except Exception as exc:
            raise ValidationError(f"{p}: cannot read the DICOM header: {exc}") from exc
    return out


def _sorted_order(paths: Sequence[Path], headers: Sequence[Any]) -> list[int] | None:
    """Indices sorted along the slice normal (ties: InstanceNumber, name); None without geometry."""
    iop = headers[0].get("ImageOrientationPatient") if headers else None
    if iop is None or any(h.get("ImagePositionPatient") is None for h in headers):
        return None
    normal = np.cross(np.asarray(iop[:3], dtype=float), np.asarray(iop[3:6], dtype=float))
    if float(np.linalg.norm(normal)) < 1e-6:
        return None
    normal /= np.linalg.norm(normal)
    proj = [float(normal @ np.asarray(h.ImagePositionPatient, dtype=float)) for h in headers]

    def key(i: int) -> tuple[float, float, str]:
        return proj[i], float(headers[i].get("InstanceNumber") or 0), paths[i].name

    order = sorted(range(len(paths)), key=key)
    for a, b in itertools.pairwise(order):
        if abs(proj[b] - proj[a]) < _NORMAL_TIE_MM:
            raise ValidationError(
                f"{paths[a].name} and {paths[b].name} lie at the same position: not one volume"
            )
    return order


def sort_slice_files(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """(file, SOPInstanceUID) of single-frame slices sorted by position along the slice normal."""
    files = [Path(p) for p in paths]
    headers = _slice_headers(files)
    order = _sorted_order(files, headers)
    if order is None:
        raise ValidationError(
            "the slices lack ImagePositionPatient/ImageOrientationPatient: cannot sort them"
        )
    return [(files[i], str(headers[i].SOPInstanceUID)) for i in order]


def source_slices(series_source: Source) -> list[tuple[Path, str]]:
    """(file, SOPInstanceUID) of each frame of a single-frame DICOM series, in frame order.

    The order is re-derived from the headers (position along the normal) and must agree with
    the source's frame order; a disagreement raises rather than mislabel slices.
    """
    files = getattr(series_source, "files", None)
    if series_source.kind != "dicom" or files is None:
        raise ValidationError(f"{series_source.uri}: not a DICOM series of single-frame files")
    paths = [Path(p) for p in files]
    if len(paths) != series_source.frame_count:
        raise ValidationError(
            f"{series_source.uri}: {len(paths)} files for {series_source.frame_count} frames; "
            "multi-frame DICOM is not supported here"
        )
    headers = _slice_headers(paths)
    order = _sorted_order(paths, headers)
    if order is not None and order != list(range(len(paths))):
        raise ValidationError(f"{series_source.uri}: the frame order does not follow the slice positions")
    return [(p, str(h.SOPInstanceUID)) for p, h in zip(paths, headers, strict=True)]
