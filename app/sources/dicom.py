"""DICOM sources: single files, series (sorted along the normal), multi-frame and enhanced files.

``frame()`` returns modality values: CT in HU. When every RescaleSlope/Intercept of the
source is an integer the output stays integer (int16 if the stored range fits, else
int32); otherwise it is float32. Colour data (RGB, YBR_*, PALETTE COLOR) comes back as
RGB (H, W, 3). MONOCHROME1 is not inverted: ``metadata['photometric']`` tells the display.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.sources.base import ScanResult, Source, SourceRef, run_parallel
from app.sources.dicom_geometry import group_headers, make_geometry, sort_series, spacing_warnings
from app.sources.dicom_header import DEFER_SIZE, DicomHeader, read_header, sniff_dicom
from app.sources.errors import (
    CorruptFile,
    DecompressionBomb,
    SourceError,
    UnsupportedFormat,
    one_line,
    shown,
)
from app.sources.pydicom_notes import pydicom_notes, route_pydicom_warnings
from app.sources.registry import register_reader
from app.sources.values import SourceLimits, VolumeGeometry

SEARCH_TAGS = (
    "Modality", "BodyPartExamined", "StudyDate", "StudyTime", "PatientID", "PatientName", "PatientSex",
    "PatientAge", "StudyDescription", "SeriesDescription", "Manufacturer", "ManufacturerModelName",
    "InstitutionName", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "AccessionNumber", "StudyID",
    "FrameOfReferenceUID", "SOPClassUID", "BitsStored", "RescaleType",
)  # fmt: skip
_COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420", "PALETTE COLOR"}
_NATIVE_TS = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
SCAN_THREADS = min(16, 4 * (os.cpu_count() or 2))  # header reads overlap I/O latency on network shares


def _raw_dtype(h: DicomHeader) -> np.dtype:
    bits = int(h.get("BitsAllocated", 16))
    signed = int(h.get("PixelRepresentation", 0)) == 1
    if bits == 1:
        return np.dtype(np.uint8)
    if bits not in (8, 16, 32):
        raise UnsupportedFormat(f"{h.path}: BitsAllocated {bits} is not supported")
    return np.dtype(f"{'i' if signed else 'u'}{bits // 8}")


def _stored_range(h: DicomHeader) -> tuple[int, int]:
    stored = int(h.get("BitsStored", h.get("BitsAllocated", 16)))
    if int(h.get("PixelRepresentation", 0)) == 1:
        return -(1 << (stored - 1)), (1 << (stored - 1)) - 1
    return 0, (1 << stored) - 1


def _output_dtype(h: DicomHeader, rescales: list[tuple[float, float]], colour: bool) -> np.dtype:
    raw = _raw_dtype(h)
    if colour or all(s == 1.0 and i == 0.0 for s, i in rescales):
        return raw
    if all(float(s).is_integer() and float(i).is_integer() for s, i in rescales):
        lo, hi = _stored_range(h)
        ends = [v for s, i in rescales for v in (lo * s + i, hi * s + i)]
        for candidate in (np.int16, np.int32):
            info = np.iinfo(candidate)
            if info.min <= min(ends) and max(ends) <= info.max:
                return np.dtype(candidate)
    return np.dtype(np.float32)


def _rescale_of(h: DicomHeader) -> tuple[float, float]:
    slope = h.num("RescaleSlope")
    if slope is None:
        slope = h.num("DoseGridScaling", 1.0)
    return float(slope or 1.0), float(h.num("RescaleIntercept", 0.0) or 0.0)


def _window_of(h: DicomHeader) -> tuple[float, float] | None:
    centre, width = h.num("WindowCenter"), h.num("WindowWidth")
    return (centre, width) if centre is not None and width else None


def _check_image(h: DicomHeader, limits: SourceLimits) -> None:
    if not h.has_pixels:
        kind = h.get("Modality") or h.get("SOPClassUID") or "unknown"
        # the tag text comes from the file: a damaged length can pull control bytes into it
        raise UnsupportedFormat(f"{h.path}: DICOM object without pixel data (modality {shown(kind)})")
    rows, cols = int(h.get("Rows", 0)), int(h.get("Columns", 0))
    if rows <= 0 or cols <= 0:
        raise CorruptFile(f"{h.path}: DICOM image without Rows/Columns")
    if rows * cols > limits.max_pixels:
        raise DecompressionBomb(f"{h.path}: {cols} x {rows} pixels exceed the limit of {limits.max_pixels:,}")


def search_metadata(h: DicomHeader) -> dict[str, Any]:
    meta: dict[str, Any] = {k: h.get(k) for k in SEARCH_TAGS if h.get(k) is not None}
    meta["photometric"] = str(h.get("PhotometricInterpretation", "MONOCHROME2"))
    meta["TransferSyntaxUID"] = h.transfer_syntax
    if meta.get("Modality") == "CT" and "RescaleType" not in meta:
        meta["RescaleType"] = "HU"
    return meta


class _DicomBase(Source):
    kind = "dicom"

    def _setup(self, h: DicomHeader, rescales: list[tuple[float, float]]) -> None:
        self._photometric = str(h.get("PhotometricInterpretation", "MONOCHROME2")).strip()
        colour = self._photometric in _COLOUR or int(h.get("SamplesPerPixel", 1)) == 3
        self.channels = 3 if colour else 1
        self.shape = (int(h.get("Rows")), int(h.get("Columns")))
        self._rescales = rescales
        self.dtype = _output_dtype(h, rescales, colour)
        if self._photometric == "PALETTE COLOR":
            self.dtype = np.dtype(np.uint8)
        self._raw = _raw_dtype(h)
        self.metadata = search_metadata(h)
        if not colour:
            self.metadata["rescale"] = {"slope": rescales[0][0], "intercept": rescales[0][1]}

    def _modality(self, arr: np.ndarray, index: int) -> np.ndarray:
        if self.channels == 3:
            if arr.ndim == 2:
                raise CorruptFile(f"{self.uri}: expected colour pixels, decoder returned grey")
            return arr.astype(self.dtype, copy=False)
        slope, intercept = self._rescales[min(index, len(self._rescales) - 1)]
        if self.dtype.kind == "f":
            out = arr.astype(np.float32)
            if slope != 1.0:
                out *= np.float32(slope)
            if intercept != 0.0:
                out += np.float32(intercept)
            return out
        out = arr.astype(self.dtype)
        if slope != 1.0:
            out *= self.dtype.type(int(slope))
        if intercept != 0.0:
            out += self.dtype.type(int(intercept))
        return out

    def _pydicom_frame(self, path: Path, index: int | None, ds: Any = None) -> np.ndarray:
        from pydicom.pixels import pixel_array  # type: ignore[attr-defined]

        try:
            try:
                arr = pixel_array(path, index=index)
            except (AttributeError, ValueError, KeyError) as first:
                arr = _pixels_without_meta(path, index, first)
            if self._photometric == "PALETTE COLOR":
                arr = _palette(arr, ds if ds is not None else _dataset(path))
        except SourceError:
            raise
        except BaseException as exc:
            # Rust decoders (pylibjpeg-rle via pyo3) report a bad stream as a PanicException, which
            # derives from BaseException (found by fuzzing); anything else of that kind passes through
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            where = "" if index is None else f" frame {index}"
            raise CorruptFile(f"{path}: cannot decode DICOM pixel data{where}: {one_line(exc)}") from exc
        return np.asarray(arr)


def _pixels_without_meta(path: Path, index: int | None, first: Exception) -> np.ndarray:
    """Files without a file meta header: read fully and supply the transfer syntax pydicom guessed."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    ds = pydicom.dcmread(path, force=True)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        raise first
    ds.file_meta = meta or FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if ds.is_implicit_VR else ExplicitVRLittleEndian
    arr = np.asarray(ds.pixel_array)
    return arr if index is None or int(ds.get("NumberOfFrames", 1) or 1) == 1 else arr[index]


def _palette(arr: np.ndarray, ds: Any) -> np.ndarray:
    """PALETTE COLOR -> RGB uint8 (16-bit LUT entries keep their high byte, as GDCM does)."""
    from pydicom.pixels import apply_color_lut  # type: ignore[attr-defined]

    rgb = np.asarray(apply_color_lut(arr, ds))
    if rgb.dtype.itemsize > 1:
        rgb = (rgb >> 8).astype(np.uint8)
    return rgb


def _dataset(path: Path) -> Any:
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True, force=True, defer_size=DEFER_SIZE)


class DicomSeries(_DicomBase):
    """Single-frame files sorted into a volume (a lone file is a one-slice series)."""

    _frame_noun = "slice"

    def __init__(self, headers: list[DicomHeader], uri: str, limits: SourceLimits | None = None) -> None:
        super().__init__(limits)
        for h in headers:
            _check_image(h, self.limits)
        ordered = sort_series(headers)
        self._headers = ordered.headers
        self.uri = uri
        self.frame_count = len(self._headers)
        self._setup(self._headers[0], [_rescale_of(h) for h in self._headers])
        self.spacing = ordered.spacing
        self.geometry = ordered.geometry
        self.warnings = list(ordered.warnings)
        self.window = _window_of(self._headers[0])
        self.metadata["files"] = len(self._headers)

    @property
    def files(self) -> list[Path]:
        return [h.path for h in self._headers]

    def _files_of(self, index: int) -> tuple[Path, ...]:
        return (self._headers[index].path,)

    def _fast_native(self, h: DicomHeader) -> np.ndarray | None:
        if h.pixel_offset is None or self._photometric not in ("MONOCHROME1", "MONOCHROME2", "RGB"):
            return None
        bits = int(h.get("BitsAllocated", 16))
        if bits not in (8, 16, 32):
            return None
        samples = int(h.get("SamplesPerPixel", 1))
        rows, cols = self.shape
        count = rows * cols * samples
        if h.pixel_length is None or h.pixel_length < count * self._raw.itemsize:
            return None
        arr = np.fromfile(h.path, dtype=self._raw.newbyteorder("<"), count=count, offset=h.pixel_offset)
        if arr.size != count:
            raise CorruptFile(f"{h.path}: truncated pixel data")
        stored = int(h.get("BitsStored", bits))
        if stored < bits:
            shift = bits - stored
            if self._raw.kind == "i":
                arr = (arr << shift) >> shift
            else:
                arr &= (1 << stored) - 1
        if samples == 3:
            if int(h.get("PlanarConfiguration", 0)) == 1:
                return np.ascontiguousarray(arr.reshape(3, rows, cols).transpose(1, 2, 0))
            return arr.reshape(rows, cols, 3)
        return arr.reshape(rows, cols)

    def _decode(self, index: int) -> np.ndarray:
        h = self._headers[index]
        try:
            arr = self._fast_native(h)
        except OSError as exc:
            raise CorruptFile(f"{h.path}: cannot read pixel data: {exc}") from exc
        if arr is None:
            arr = self._pydicom_frame(h.path, None, h.extra.get("dataset"))
        if arr.shape[:2] != self.shape:
            raise CorruptFile(f"{h.path}: slice is {arr.shape[:2]}, series is {self.shape}")
        return self._modality(arr, index)


def _seq_item(ds: Any, keyword: str) -> Any:
    seq = ds.get(keyword) if ds is not None else None
    return seq[0] if seq else None


def _fg_value(shared: Any, per_frame: Any, seq: str, keyword: str) -> Any:
    for group in (per_frame, shared):
        item = _seq_item(group, seq)
        if item is not None and keyword in item:
            return item.get(keyword)
    return None


class DicomMultiFrame(_DicomBase):
    """One file holding many frames (cine US, RT dose, enhanced CT/MR); frames in file order."""

    def __init__(
        self, header: DicomHeader, uri: str | None = None, limits: SourceLimits | None = None
    ) -> None:
        super().__init__(limits)
        _check_image(header, self.limits)
        self.path = header.path
        self.uri = uri or str(header.path)
        ds = header.extra.get("dataset") or _dataset(header.path)
        self._ds = ds
        self.frame_count = header.frames
        shared = _seq_item(ds, "SharedFunctionalGroupsSequence")
        per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
        rescales: list[tuple[float, float]] = []
        positions: list[tuple[float, ...] | None] = []
        base_slope, base_intercept = _rescale_of(header)
        for i in range(self.frame_count):
            pf = per_frame[i] if i < len(per_frame) else None
            slope = _fg_value(shared, pf, "PixelValueTransformationSequence", "RescaleSlope")
            intercept = _fg_value(shared, pf, "PixelValueTransformationSequence", "RescaleIntercept")
            rescales.append(
                (float(slope) if slope is not None else base_slope,
                 float(intercept) if intercept is not None else base_intercept)
            )  # fmt: skip
            ipp = _fg_value(shared, pf, "PlanePositionSequence", "ImagePositionPatient")
            positions.append(tuple(float(v) for v in ipp) if ipp is not None else None)
        self._setup(header, rescales)
        iop_value = _fg_value(shared, per_frame[0] if per_frame else None, "PlaneOrientationSequence",
                              "ImageOrientationPatient") or header.get("ImageOrientationPatient")  # fmt: skip
        pixel = _fg_value(
            shared, per_frame[0] if per_frame else None, "PixelMeasuresSequence", "PixelSpacing"
        )
        pixel = pixel or header.get("PixelSpacing")
        centre = _fg_value(shared, per_frame[0] if per_frame else None, "FrameVOILUTSequence", "WindowCenter")
        width = _fg_value(shared, per_frame[0] if per_frame else None, "FrameVOILUTSequence", "WindowWidth")
        if centre is not None and width is not None:
            self.window = (float(_first(centre)), float(_first(width)))
        else:
            self.window = _window_of(header)
        self._set_geometry(header, iop_value, pixel, positions)
        self.metadata["frames"] = self.frame_count

    def _set_geometry(self, header: DicomHeader, iop_value: Any, pixel: Any, positions: list[Any]) -> None:
        iop = [float(v) for v in iop_value] if iop_value is not None and len(iop_value) == 6 else None
        offsets = header.get("GridFrameOffsetVector")
        ipp = header.floats("ImagePositionPatient", 3)
        if (
            iop is not None
            and ipp is not None
            and isinstance(offsets, list)
            and len(offsets) == self.frame_count
        ):
            normal = np.cross(iop[:3], iop[3:])
            positions = [tuple(np.asarray(ipp) + float(o) * normal) for o in offsets]
        if iop is None or pixel is None or any(p is None for p in positions) or self.frame_count < 2:
            return
        row_sp, col_sp = float(pixel[0]), float(pixel[1])
        normal = np.cross(iop[:3], iop[3:])
        proj = np.asarray([float(np.dot(normal, p)) for p in positions])
        if not (np.all(np.diff(proj) > 0) or np.all(np.diff(proj) < 0)):
            self.warnings.append("frames are not in spatial order along the slice normal; no volume geometry")
            return
        median, msgs = spacing_warnings(np.sort(proj))
        self.warnings.extend(msgs)
        if median is None:
            return
        self.spacing = (median, row_sp, col_sp)
        geometry = make_geometry(positions[0], iop, self.spacing)
        if proj[-1] < proj[0]:  # frames run against the normal: flip the k axis
            d = list(geometry.direction)
            d[2], d[5], d[8] = -d[2], -d[5], -d[8]
            geometry = VolumeGeometry(geometry.origin, geometry.spacing, tuple(d))  # type: ignore[arg-type]
        self.geometry = geometry

    def _decode(self, index: int) -> np.ndarray:
        arr = self._pydicom_frame(self.path, index, self._ds)
        if arr.shape[:2] != self.shape:
            raise CorruptFile(f"{self.path}: frame {index} is {arr.shape[:2]}, expected {self.shape}")
        return self._modality(arr, index)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list | tuple) or (hasattr(value, "__getitem__") and not isinstance(
        value, str | bytes)) else value  # fmt: skip


def source_from_headers(headers: list[DicomHeader], uri: str, limits: SourceLimits | None) -> Source:
    source: Source
    if len(headers) == 1 and (headers[0].frames > 1 or headers[0].is_enhanced):
        try:
            source = DicomMultiFrame(headers[0], uri, limits)
        except SourceError:
            raise
        except Exception as exc:  # pydicom converts malformed functional-group values lazily, here
            detail = f"{type(exc).__name__}: {one_line(exc)}"
            raise CorruptFile(f"{uri}: unreadable multi-frame DICOM header: {detail}") from exc
    else:
        source = DicomSeries(headers, uri, limits)
    source.warnings.extend(header_notes(headers))
    return source


# --------------------------------------------------------------------------- DICOMDIR
def dicomdir_files(path: Path) -> list[Path]:
    """Image files a DICOMDIR references (paths resolved next to the DICOMDIR)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:
        raise CorruptFile(f"{path}: cannot read DICOMDIR: {exc}") from exc
    out: list[Path] = []
    root = path.parent.resolve()
    for record in ds.get("DirectoryRecordSequence") or []:
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        target = root.joinpath(*[str(p) for p in parts]).resolve()
        if target.is_relative_to(root):
            out.append(target)
    return out


# --------------------------------------------------------------------------- scanning
def read_noted_header(path: Path) -> DicomHeader:
    """``read_header`` with what pydicom warned about kept on the header (``notes``), not shown."""
    with pydicom_notes() as notes:
        header = read_header(path)
    header.notes.extend(notes)
    return header


def header_notes(headers: list[DicomHeader]) -> list[str]:
    """The headers' pydicom notes as source warnings; a series names the file of each."""
    many = len(headers) > 1
    return [f"{h.path.name}: pydicom: {n}" if many else f"pydicom: {n}" for h in headers for n in h.notes]


def _series_uri(headers: list[DicomHeader], part: int) -> str:
    if len(headers) == 1:
        return str(headers[0].path)
    folder = os.path.commonpath([str(h.path.parent) for h in headers])
    uid = headers[0].get("SeriesInstanceUID", "unknown")
    return f"{folder}#series={uid}" + (f"&part={part}" if part else "")


def refs_from_headers(headers: list[DicomHeader]) -> tuple[list[SourceRef], list[tuple[Path, str]]]:
    refs: list[SourceRef] = []
    errors: list[tuple[Path, str]] = []
    parts: dict[str, int] = {}
    for group in group_headers(headers):
        uid = str(group[0].get("SeriesInstanceUID", ""))
        part = parts.get(uid, 0)
        parts[uid] = part + 1
        uri = _series_uri(group, part)
        h = group[0]
        try:
            ordered = sort_series(group) if len(group) > 1 else None
        except Exception as exc:  # pragma: no cover - defensive; sort_series tolerates bad tags
            errors.extend((g.path, f"{g.path}: cannot order series: {exc}") for g in group)
            continue
        files = tuple(x.path for x in (ordered.headers if ordered else group))
        meta = search_metadata(h)
        if ordered and ordered.spacing:
            meta["spacing"] = list(ordered.spacing)
        refs.append(
            SourceRef(
                uri=uri, kind="dicom", files=files, frame_count=h.frames if len(group) == 1 else len(files),
                shape=(int(h.get("Rows", 0)), int(h.get("Columns", 0))), metadata=meta,
                warnings=(*(ordered.warnings if ordered else ()), *header_notes(group)), payload=tuple(group),
            )
        )  # fmt: skip
    return refs, errors


def read_headers(
    paths: list[Path], limits: SourceLimits, progress: Callable[[int], bool] | None = None
) -> tuple[list[DicomHeader], list[tuple[Path, str]], bool]:
    """Headers of many files on a thread pool; per-file errors; DICOMDIRs expanded."""
    headers: list[DicomHeader] = []
    errors: list[tuple[Path, str]] = []
    cancelled = False

    route_pydicom_warnings()

    def one(p: Path) -> DicomHeader | str:
        if cancelled:
            return "cancelled"
        try:
            return read_noted_header(p)
        except SourceError as exc:
            return str(exc)
        except Exception as exc:
            return f"{p}: cannot read DICOM header: {type(exc).__name__}: {exc}"

    from concurrent.futures import ThreadPoolExecutor

    seen = {p.resolve() for p in paths}
    with ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="sitelabel-dicom-scan") as pool:
        for p, res in zip(paths, pool.map(one, paths), strict=True):
            if isinstance(res, str):
                if res != "cancelled":
                    errors.append((p, res))
            elif res.is_dicomdir:
                extra = [f for f in dicomdir_files(p) if f not in seen]
                seen.update(extra)
                more = run_parallel(one, extra, SCAN_THREADS)
                for q, r in zip(extra, more, strict=True):
                    if isinstance(r, str):
                        errors.append((q, r))
                    elif not r.is_dicomdir:
                        headers.append(r)
            else:
                headers.append(res)
            if progress is not None and progress(1) is False:
                cancelled = True
    good: list[DicomHeader] = []
    for h in headers:
        try:
            _check_image(h, limits)
            good.append(h)
        except SourceError as exc:
            errors.append((h.path, str(exc)))
    return good, errors, cancelled


def scan_dicom(paths: list[Path], limits: SourceLimits, progress: Callable[[int], bool]) -> ScanResult:
    headers, errors, cancelled = read_headers(paths, limits, progress)
    refs, more = refs_from_headers(headers)
    return ScanResult(items=refs, errors=errors + more, cancelled=cancelled)


@register_reader(
    name="dicom", kind="dicom", patterns=("*.dcm", "*.dicom", "*.ima", "dicomdir"), sniff=sniff_dicom,
    priority=20, batch=scan_dicom,
)  # fmt: skip
def open_dicom(path: Path, limits: SourceLimits | None = None) -> Source:
    """One DICOM file, or the single series a DICOMDIR references."""
    limits = limits or SourceLimits()
    route_pydicom_warnings()
    header = read_noted_header(path)
    if header.is_dicomdir:
        headers, _errors, _ = read_headers(dicomdir_files(path), limits)
        refs, _ = refs_from_headers(headers)
        if len(refs) != 1:
            listing = ", ".join(r.uri for r in refs[:5])
            raise UnsupportedFormat(
                f"{path}: DICOMDIR references {len(refs)} series; open one of them ({listing}) or use scan()"
            )
        return source_from_headers(list(refs[0].payload), refs[0].uri, limits)
    return source_from_headers([header], str(path), limits)
