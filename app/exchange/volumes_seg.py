"""DICOM SEG export and import of label volumes (highdicom).

Per-class masks (``dicom_seg_from_masks``), or a volume ``(z, y, x)`` of class indices
(``dicom_seg_dataset``; ``Ontology.index_of``, 0 is background), become one BINARY Segmentation
instance referencing the source series slice by slice:

* one segment per class present, numbered 1..n in class-index order, labelled with the class
  name and shown in the class colour; each segment has its own binary frames and holds exactly its
  class's pixels, so classes may overlap, as the standard allows;
* Type-2 patient and study attributes a source file lacks (:data:`TYPE2_EMPTY`) are written
  present and empty, as the standard allows; nothing is invented;
* highdicom's and pydicom's warnings go to this module's logger at INFO, not to the console;
* every segment is coded with the generic SNOMED CT concepts from pydicom's
  ``pydicom.sr.codedict.codes``: category ``SCT 85756007 "Tissue"``, type
  ``SCT 91723000 "Anatomical Structure"`` (the ontology holds names, not codes);
* algorithm type MANUAL, or SEMIAUTOMATIC with an algorithm identification when
  ``algorithm`` (e.g. ``"model:liver@3"``) is given;
* frame ``z`` is derived from ``source_files_sorted[z]`` (its SOPInstanceUID in the per-frame
  DerivationImageSequence/SourceImageSequence, all of them in ReferencedSeriesSequence);
  empty frames are omitted.

Reading maps the frames back onto the source slices by referenced SOP Instance UID.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from app.core.errors import ValidationError
from app.core.ontology import Ontology

if TYPE_CHECKING:
    import highdicom

SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.4"
BoolVolume = npt.NDArray[np.bool_]
# Type 2 (present, may be empty) in the Patient and General Study modules, PS3.3 C.7.1.1, C.7.2.1:
# highdicom copies them from the first source image and fails when a file lacks one.
TYPE2_EMPTY = (
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
_log = logging.getLogger(__name__)

__all__ = [
    "SEG_SOP_CLASS_UID",
    "TYPE2_EMPTY",
    "dicom_seg_dataset",
    "dicom_seg_from_masks",
    "labels_from_segments",
    "read_dicom_seg_labels",
    "write_dicom_seg",
]


def _read_source_headers(files: Sequence[Path]) -> list[Any]:
    import pydicom

    out: list[Any] = []
    for f in files:
        try:
            out.append(pydicom.dcmread(f, stop_before_pixels=True))
        except Exception as exc:
            raise ValidationError(f"{f}: cannot read the DICOM header: {exc}") from exc
    return out


def _fill_type2(sources: Sequence[Any]) -> None:
    """Add the Type-2 attributes a source header lacks, empty (in memory only)."""
    for ds in sources:
        for keyword in TYPE2_EMPTY:
            if keyword not in ds:
                setattr(ds, keyword, "")


class _ToLog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _log.info("%s: %s", record.name, record.getMessage())


@contextlib.contextmanager
def _library_messages_logged() -> Iterator[None]:
    """Route highdicom's and pydicom's warnings to this module's logger at INFO: without a
    configured handler Python prints WARNING records and warnings on stderr, which the CLI's
    summary is not. (``catch_warnings`` is process-wide: exports build one SEG at a time.)"""
    library = logging.getLogger("highdicom")
    handler, propagate = _ToLog(), library.propagate
    library.addHandler(handler)
    library.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            finally:
                for message in caught:
                    _log.info("%s: %s", message.category.__name__, message.message)
    finally:
        library.removeHandler(handler)
        library.propagate = propagate


def _hex_rgb(color: str) -> tuple[int, int, int]:
    h = color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _algorithm_sequence(algorithm: str) -> Any:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    name, _, version = algorithm.partition("@")
    return hd.AlgorithmIdentificationSequence(
        name=name or algorithm,
        family=codes.cid7162.ArtificialIntelligence,
        version=version or "unknown",
    )


def _segment_descriptions(present: Sequence[int], ontology: Ontology, algorithm: str | None) -> list[Any]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm_type = (
        hd.seg.SegmentAlgorithmTypeValues.MANUAL
        if algorithm is None
        else hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
    )
    identification = None if algorithm is None else _algorithm_sequence(algorithm)
    out = []
    for number, class_index in enumerate(present, start=1):
        cls_ = ontology.classes[class_index - 1]
        out.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=cls_.name,
                segmented_property_category=codes.SCT.Tissue,
                segmented_property_type=codes.SCT.AnatomicalStructure,
                algorithm_type=algorithm_type,
                algorithm_identification=identification,
                display_color=hd.color.CIELabColor.from_rgb(*_hex_rgb(cls_.color)),
            )
        )
    return out


def _expected_shape(sources: Sequence[Any]) -> tuple[int, int, int]:
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in sources}
    if len(series) != 1:
        raise ValidationError(f"the source files belong to {len(series)} series; pass one series")
    return len(sources), int(sources[0].Rows), int(sources[0].Columns)


def _check_shape(shape: tuple[int, ...], expected: tuple[int, int, int], what: str) -> None:
    if shape != expected:
        depth, rows, cols = expected
        raise ValidationError(
            f"{what} shape {shape} (z, y, x) does not match the source series "
            f"{expected} ({depth} slices of {cols}x{rows})"
        )


def _check_labels(labels_zyx: np.ndarray, sources: Sequence[Any], ontology: Ontology) -> None:
    if labels_zyx.ndim != 3:
        raise ValidationError(f"a label volume must be 3-D (z, y, x), got shape {labels_zyx.shape}")
    if labels_zyx.dtype.kind not in "uib":
        raise ValidationError(f"a label volume must hold integers, got {labels_zyx.dtype}")
    _check_shape(labels_zyx.shape, _expected_shape(sources), "label volume")
    if labels_zyx.size and int(labels_zyx.min()) < 0:
        raise ValidationError("a label volume cannot hold negative class indices")
    top = int(labels_zyx.max()) if labels_zyx.size else 0
    if top > len(ontology.classes):
        raise ValidationError(
            f"label value {top} has no class: the ontology has {len(ontology.classes)} classes"
        )


def dicom_seg_dataset(
    labels_zyx: np.ndarray,
    source_files_sorted: Sequence[Path],
    ontology: Ontology,
    *,
    series_description: str = "Sitelabel segmentation",
    manufacturer: str = "Sitelabel",
    algorithm: str | None = None,
) -> highdicom.seg.Segmentation:
    """A BINARY DICOM Segmentation of the class-index volume ``labels_zyx`` over the sorted slices.

    ``labels_zyx[z]`` belongs to ``source_files_sorted[z]`` (the series' frame order, see
    ``app.exchange.volumes.source_slices``). Raises ``ValidationError`` when the shapes do not
    match, a value has no class, or the volume has no labelled voxel (a SEG needs a segment).
    Classes that overlap cannot be told apart in an index volume: ``dicom_seg_from_masks`` keeps them.
    """
    sources = _read_source_headers(source_files_sorted)
    if not sources:
        raise ValidationError("a DICOM SEG needs at least one source slice")
    labels = np.asarray(labels_zyx)
    _check_labels(labels, sources, ontology)
    counts = np.zeros(len(ontology.classes) + 1, dtype=np.int64)
    for plane in labels:  # per slice: bincount's intp copy stays small
        counts += np.bincount(plane.reshape(-1), minlength=len(counts))
    present = [int(i) for i in np.flatnonzero(counts[1:]) + 1]
    if not present:
        raise ValidationError("the label volume is empty: a DICOM SEG needs at least one labelled voxel")
    lut = np.zeros(len(counts), dtype=np.uint8 if len(present) < 256 else np.uint16)
    lut[present] = np.arange(1, len(present) + 1)
    # label-map style (value n is segment n): highdicom splits it per segment without the
    # whole-volume overlap check a 4-D stack costs, as classes cannot overlap in an index volume
    return _segmentation(
        present,
        lut[labels],
        sources,
        ontology,
        series_description=series_description,
        manufacturer=manufacturer,
        algorithm=algorithm,
    )


def dicom_seg_from_masks(
    masks: Mapping[int, np.ndarray],
    source_files_sorted: Sequence[Path],
    ontology: Ontology,
    *,
    series_description: str = "Sitelabel segmentation",
    manufacturer: str = "Sitelabel",
    algorithm: str | None = None,
) -> highdicom.seg.Segmentation:
    """A BINARY DICOM Segmentation with one segment per class: ``masks`` maps a class index
    (``Ontology.index_of``) to its ``(z, y, x)`` bool volume over the sorted source slices.

    Each segment gets its own frames, so overlapping classes keep all their voxels. Classes
    without a voxel are left out; ``ValidationError`` when no class has one, a shape does not match
    the series, or an index has no class.
    """
    sources = _read_source_headers(source_files_sorted)
    if not sources:
        raise ValidationError("a DICOM SEG needs at least one source slice")
    expected = _expected_shape(sources)
    for index, mask in masks.items():
        if not 1 <= int(index) <= len(ontology.classes):
            raise ValidationError(
                f"class index {index} has no class: the ontology has {len(ontology.classes)}"
            )
        _check_shape(np.shape(mask), expected, f"the mask of class {index}")
    present = sorted(int(i) for i, m in masks.items() if np.any(m))
    if not present:
        raise ValidationError("the label volume is empty: a DICOM SEG needs at least one labelled voxel")
    # (z, y, x, segment): segment n is the n-th class present, with frames of its own
    stack = np.stack([np.asarray(masks[index], dtype=bool) for index in present], axis=-1)
    return _segmentation(
        present,
        stack,
        sources,
        ontology,
        series_description=series_description,
        manufacturer=manufacturer,
        algorithm=algorithm,
    )


def _segmentation(
    present: list[int],
    pixels: np.ndarray,
    sources: list[Any],
    ontology: Ontology,
    *,
    series_description: str,
    manufacturer: str,
    algorithm: str | None,
) -> highdicom.seg.Segmentation:
    import highdicom as hd

    from app import __version__

    """The Segmentation of ``pixels``: a ``(z, y, x)`` map of segment numbers or a ``(z, y, x, n)``
    stack, segment ``k`` being class ``present[k - 1]``."""
    _fill_type2(sources)
    try:
        with _library_messages_logged():
            return hd.seg.Segmentation(
                source_images=sources,
                pixel_array=pixels,
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=_segment_descriptions(present, ontology, algorithm),
                series_instance_uid=hd.UID(),
                series_number=int(sources[0].get("SeriesNumber") or 0) + 1000,
                sop_instance_uid=hd.UID(),
                instance_number=1,
                manufacturer=manufacturer[:64],
                manufacturer_model_name="Sitelabel",
                software_versions=__version__,
                device_serial_number="0",
                series_description=series_description[:64],
                content_label="SITELABEL",
                content_description=series_description[:64],
                omit_empty_frames=True,
            )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # highdicom's checks of the sources
        raise ValidationError(f"cannot build a DICOM SEG on these source slices: {exc}") from exc


def write_dicom_seg(
    labels_zyx: np.ndarray,
    source_files_sorted: Sequence[Path],
    ontology: Ontology,
    path: Path,
    *,
    series_description: str = "Sitelabel segmentation",
    manufacturer: str = "Sitelabel",
    algorithm: str | None = None,
) -> None:
    """Write ``dicom_seg_dataset(...)`` to ``path`` (temporary name in the same folder, then replace)."""
    seg = dicom_seg_dataset(
        labels_zyx,
        source_files_sorted,
        ontology,
        series_description=series_description,
        manufacturer=manufacturer,
        algorithm=algorithm,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with tmp.open("xb") as fh:
            seg.save_as(fh, enforce_file_format=True)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _referenced_instances(seg: Any) -> set[str]:
    uids: set[str] = set()
    for series in seg.get("ReferencedSeriesSequence") or []:
        for item in series.get("ReferencedInstanceSequence") or []:
            uids.add(str(item.ReferencedSOPInstanceUID))
    for frame in seg.get("PerFrameFunctionalGroupsSequence") or []:
        for derivation in frame.get("DerivationImageSequence") or []:
            for item in derivation.get("SourceImageSequence") or []:
                uids.add(str(item.ReferencedSOPInstanceUID))
    return uids


def read_dicom_seg_labels(path: Path, source_files_sorted: Sequence[Path]) -> dict[str, BoolVolume]:
    """Segment label -> bool ``(z, y, x)`` mask on the sorted source slices.

    Frames are placed by their referenced SOP Instance UID; slices the SEG does not mention
    are empty. Segments sharing a label are merged; FRACTIONAL segments are cut at 0.5.
    Raises ``ValidationError`` when the file is not a DICOM SEG, does not reference the given
    series, or its frames do not fit it.
    """
    import highdicom as hd
    import pydicom

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise ValidationError(f"{path}: cannot read DICOM: {exc}") from exc
    if str(ds.get("SOPClassUID", "")) != SEG_SOP_CLASS_UID:
        raise ValidationError(f"{path}: not a DICOM Segmentation (SOP class {ds.get('SOPClassUID')})")
    seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    sources = _read_source_headers(source_files_sorted)
    uids = [str(s.SOPInstanceUID) for s in sources]
    referenced = _referenced_instances(seg)
    unknown = referenced - set(uids)
    if not referenced & set(uids) or unknown:
        raise ValidationError(
            f"{path}: the segmentation references {len(referenced)} instance(s), "
            f"{len(unknown)} of them not in the {len(uids)} given source slices"
        )
    rows, cols = int(sources[0].Rows), int(sources[0].Columns)
    if (int(seg.Rows), int(seg.Columns)) != (rows, cols):
        raise ValidationError(f"{path}: frames are {seg.Columns}x{seg.Rows}, the source slices {cols}x{rows}")
    numbers = list(seg.segment_numbers)
    try:
        pixels = seg.get_pixels_by_source_instance(
            uids, segment_numbers=numbers, assert_missing_frames_are_empty=True
        )  # (z, y, x, segment); FRACTIONAL segments come back as 0..1 floats
    except (ValueError, RuntimeError, KeyError, AttributeError) as exc:
        raise ValidationError(f"{path}: cannot map the segmentation onto the source slices: {exc}") from exc
    out: dict[str, BoolVolume] = {}
    for k, number in enumerate(numbers):
        label = str(seg.get_segment_description(number).segment_label)
        plane = pixels[..., k]
        mask = np.ascontiguousarray(plane >= 0.5 if plane.dtype.kind == "f" else plane != 0)
        out[label] = out[label] | mask if label in out else mask
    return out


def labels_from_segments(segments: Mapping[str, np.ndarray], ontology: Ontology) -> npt.NDArray[np.uint16]:
    """Class-index volume from per-class masks (the inverse of a SEG export).

    Classes are painted in ontology order, so where masks overlap the later class wins.
    Raises ``ValidationError`` for a segment label the ontology does not know.
    """
    if not segments:
        raise ValidationError("no segments to combine")
    shapes = {np.shape(m) for m in segments.values()}
    if len(shapes) != 1:
        raise ValidationError(f"segment masks differ in shape: {sorted(shapes)}")
    indexed = sorted(
        ((ontology.index_of(name), mask) for name, mask in segments.items()), key=lambda pair: pair[0]
    )
    out = np.zeros(shapes.pop(), dtype=np.uint16)
    for index, mask in indexed:
        out[np.asarray(mask, dtype=bool)] = index
    return out
