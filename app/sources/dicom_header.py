"""DICOM header reading that never touches pixel data.

A small parser reads top-level elements of explicit/implicit VR little-endian files up to
the Pixel Data tag and records the tags we need plus the pixel data's file offset (which
lets uncompressed slices be read with one ``np.fromfile``). Anything unusual (big endian,
deflate, enhanced multi-frame, odd character sets, surprises in the byte stream) falls
back to ``pydicom.dcmread(stop_before_pixels=True)``, so the fast path never guesses.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from app.sources.errors import CorruptFile, SourceError, SourceNotFound, one_line

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
_NATIVE_LE = {EXPLICIT_LE, IMPLICIT_LE}
_CHUNK = 16 * 1024
_MAX_DEPTH = 48
# pydicom reads a value of this size or more only when asked, so a header declaring a 4 GiB
# element is skipped instead of allocated (the fuzz suite found the allocation)
DEFER_SIZE = 1024 * 1024

# keyword -> (tag, VR). VRs are used for implicit-VR files and UN elements.
TAGS: dict[str, tuple[int, str]] = {
    "SpecificCharacterSet": (0x00080005, "CS"),
    "ImageType": (0x00080008, "CS"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "StudyDate": (0x00080020, "DA"),
    "SeriesDate": (0x00080021, "DA"),
    "StudyTime": (0x00080030, "TM"),
    "AccessionNumber": (0x00080050, "SH"),
    "Modality": (0x00080060, "CS"),
    "Manufacturer": (0x00080070, "LO"),
    "InstitutionName": (0x00080080, "LO"),
    "StudyDescription": (0x00081030, "LO"),
    "SeriesDescription": (0x0008103E, "LO"),
    "ManufacturerModelName": (0x00081090, "LO"),
    "PatientName": (0x00100010, "PN"),
    "PatientID": (0x00100020, "LO"),
    "PatientSex": (0x00100040, "CS"),
    "PatientAge": (0x00101010, "AS"),
    "BodyPartExamined": (0x00180015, "CS"),
    "SliceThickness": (0x00180050, "DS"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "StudyID": (0x00200010, "SH"),
    "SeriesNumber": (0x00200011, "IS"),
    "AcquisitionNumber": (0x00200012, "IS"),
    "InstanceNumber": (0x00200013, "IS"),
    "ImagePositionPatient": (0x00200032, "DS"),
    "ImageOrientationPatient": (0x00200037, "DS"),
    "FrameOfReferenceUID": (0x00200052, "UI"),
    "SamplesPerPixel": (0x00280002, "US"),
    "PhotometricInterpretation": (0x00280004, "CS"),
    "PlanarConfiguration": (0x00280006, "US"),
    "NumberOfFrames": (0x00280008, "IS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
    "PixelSpacing": (0x00280030, "DS"),
    "BitsAllocated": (0x00280100, "US"),
    "BitsStored": (0x00280101, "US"),
    "HighBit": (0x00280102, "US"),
    "PixelRepresentation": (0x00280103, "US"),
    "WindowCenter": (0x00281050, "DS"),
    "WindowWidth": (0x00281051, "DS"),
    "RescaleIntercept": (0x00281052, "DS"),
    "RescaleSlope": (0x00281053, "DS"),
    "RescaleType": (0x00281054, "LO"),
    "GridFrameOffsetVector": (0x3004000C, "DS"),
    "DoseGridScaling": (0x3004000E, "DS"),
    "DoseUnits": (0x30040002, "CS"),
}
_BY_TAG = {tag: (kw, vr) for kw, (tag, vr) in TAGS.items()}
_PIXEL_DATA = 0x7FE00010
_FALLBACK_TAGS = {
    0x52009229: "shared functional groups",
    0x52009230: "per-frame functional groups",
    0x00041220: "directory records",
}
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
_NUMERIC = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}
_SIMPLE_CHARSETS = {"", "ISO_IR 100", "ISO_IR 192", "ISO_IR 6", "ISO 2022 IR 6"}


class _Fallback(Exception):
    """The fast parser met something it does not handle; pydicom decides."""


@dataclass
class DicomHeader:
    path: Path
    tags: dict[str, Any]
    transfer_syntax: str
    file_size: int
    has_pixels: bool
    pixel_offset: int | None = None  # file offset of the Pixel Data value (native data only)
    pixel_length: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what pydicom warned about while reading it

    def get(self, key: str, default: Any = None) -> Any:
        value = self.tags.get(key)
        return default if value is None or value == "" else value

    def num(self, key: str, default: float | None = None) -> float | None:
        value = self.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        try:
            return default if value is None else float(value)
        except (TypeError, ValueError):
            return default

    def floats(self, key: str, n: int) -> tuple[float, ...] | None:
        value = self.get(key)
        if not isinstance(value, list):
            value = [value] if value is not None else []
        try:
            out = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            return None
        return out if len(out) == n else None

    @property
    def frames(self) -> int:
        value = self.num("NumberOfFrames", 1.0)
        return max(1, int(value or 1))

    @property
    def is_dicomdir(self) -> bool:
        return bool(self.extra.get("is_dicomdir"))

    @property
    def is_enhanced(self) -> bool:
        return bool(self.extra.get("functional_groups"))


def sniff_dicom(head: bytes) -> bool:
    """DICM preamble, or a preamble-less file starting with a group 0002/0008 element."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    group, elem = struct.unpack_from("<HH", head)
    return group in (0x0002, 0x0008) and elem < 0x2000 and (head[4:6].isalpha() or head[6:8] == b"\x00\x00")


class _Stream:
    """Forward-only buffered reader with absolute positions and cheap skips."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh, self.size = fh, size
        self.buf, self.base, self.pos = b"", 0, 0

    def peek(self, n: int) -> bytes:
        end = self.pos + n
        if end > self.size:
            raise EOFError
        if not (self.base <= self.pos and end <= self.base + len(self.buf)):
            self.fh.seek(self.pos)
            self.buf, self.base = self.fh.read(max(n, _CHUNK)), self.pos
            if len(self.buf) < n:
                raise EOFError
        return self.buf[self.pos - self.base : end - self.base]


def _decode_value(vr: str, raw: bytes, charset: str) -> Any:
    if vr in _NUMERIC:
        fmt = _NUMERIC[vr]
        n = len(raw) // struct.calcsize(fmt)
        values = list(struct.unpack(f"<{n}{fmt}", raw[: n * struct.calcsize(fmt)]))
        return values[0] if len(values) == 1 else values
    if vr in ("SQ", "OB", "OW", "UN"):
        return None
    encoding = "utf-8" if "192" in charset else "latin-1"
    text = raw.decode(encoding, errors="replace").strip("\x00 ")
    if vr in ("DS", "IS"):
        parts = [p.strip() for p in text.split("\\")]
        try:
            nums: list[float | int] = [int(float(p)) if vr == "IS" else float(p) for p in parts if p]
        except ValueError:
            return None
        return nums[0] if len(nums) == 1 else nums
    if "\\" in text and vr in ("CS",):
        return [p.strip() for p in text.split("\\")]
    return text


def _parse(s: _Stream, explicit: bool, top: bool, depth: int, out: dict[str, Any]) -> None:
    while True:
        try:
            hdr = s.peek(8)
        except EOFError:
            if top:
                return
            raise _Fallback("unterminated item") from None
        group, elem = struct.unpack_from("<HH", hdr)
        tag = (group << 16) | elem
        if group == 0xFFFE:
            if not top and elem == 0xE00D:
                s.pos += 8
                return
            raise _Fallback("unexpected delimiter")
        vr_bytes = b""
        if explicit:
            vr_bytes = hdr[4:6]
            if vr_bytes in _LONG_VRS:
                length = struct.unpack("<I", s.peek(12)[8:12])[0]
                header_len = 12
            elif vr_bytes.isalpha() and vr_bytes.isupper():
                length = struct.unpack_from("<H", hdr, 6)[0]
                header_len = 8
            else:
                raise _Fallback("bad VR")
        else:
            length = struct.unpack_from("<I", hdr, 4)[0]
            header_len = 8
        value_pos = s.pos + header_len
        if top and tag >= _PIXEL_DATA:
            if tag == _PIXEL_DATA:
                out["\0pixel"] = (value_pos, length)
            return
        if top and tag in _FALLBACK_TAGS:
            raise _Fallback(_FALLBACK_TAGS[tag])
        if length == 0xFFFFFFFF:
            s.pos = value_pos
            _skip_sequence(s, explicit and vr_bytes != b"UN", depth + 1)
            continue
        if top and tag in _BY_TAG:
            keyword, vr = _BY_TAG[tag]
            if explicit and vr_bytes not in (b"UN", b"OB", b"OW"):
                vr = vr_bytes.decode("ascii")
            s.pos = value_pos
            raw = s.peek(length) if length else b""
            out[keyword] = _decode_value(vr, raw, str(out.get("SpecificCharacterSet", "")))
        s.pos = value_pos + length


def _skip_sequence(s: _Stream, explicit: bool, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _Fallback("deep nesting")
    while True:
        try:
            group, elem, length = struct.unpack("<HHI", s.peek(8))
        except EOFError:
            raise _Fallback("unterminated sequence") from None
        s.pos += 8
        if (group, elem) == (0xFFFE, 0xE0DD):
            return
        if (group, elem) != (0xFFFE, 0xE000):
            raise _Fallback("bad item")
        if length == 0xFFFFFFFF:
            _parse(s, explicit, False, depth + 1, {})
        else:
            s.pos += length


def _fast_header(path: Path, fh: BinaryIO, size: int) -> DicomHeader:
    s = _Stream(fh, size)
    head = s.peek(min(size, 132))
    transfer_syntax = IMPLICIT_LE
    meta: dict[str, Any] = {}
    if len(head) >= 132 and head[128:132] == b"DICM":
        s.pos = 132
    while True:  # file meta group (always explicit VR little endian)
        try:
            group, elem = struct.unpack("<HH", s.peek(4))
        except EOFError:
            raise _Fallback("empty") from None
        if group != 0x0002:
            break
        vr = s.peek(6)[4:6]
        if vr in _LONG_VRS:
            length, hl = struct.unpack("<I", s.peek(12)[8:12])[0], 12
        else:
            length, hl = struct.unpack("<H", s.peek(8)[6:8])[0], 8
        if length == 0xFFFFFFFF:
            raise _Fallback("odd meta")
        s.pos += hl
        if elem in (0x0002, 0x0010):
            meta[str(elem)] = s.peek(length).decode("ascii", "replace").strip("\x00 ")
        s.pos += length
    transfer_syntax = meta.get("16", "")
    if not transfer_syntax:
        explicit = s.peek(6)[4:6].isalpha()
        transfer_syntax = EXPLICIT_LE if explicit else IMPLICIT_LE
    if transfer_syntax in ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"):
        raise _Fallback("big endian / deflate")
    if meta.get("2") == DICOMDIR_SOP_CLASS:
        raise _Fallback("DICOMDIR")
    explicit = transfer_syntax != IMPLICIT_LE
    tags: dict[str, Any] = {}
    _parse(s, explicit, True, 0, tags)
    if str(tags.get("SpecificCharacterSet") or "") not in _SIMPLE_CHARSETS:
        raise _Fallback("character set")
    pixel = tags.pop("\0pixel", None)
    if pixel is None:
        return DicomHeader(path, tags, transfer_syntax, size, has_pixels=False)
    offset, length = pixel
    native = transfer_syntax in _NATIVE_LE
    if native and length != 0xFFFFFFFF and offset + length > size:
        raise CorruptFile(
            f"{path}: truncated DICOM: pixel data needs {length:,} bytes, the file holds {size - offset:,}"
        )
    return DicomHeader(
        path,
        tags,
        transfer_syntax,
        size,
        has_pixels=True,
        pixel_offset=offset if native and length != 0xFFFFFFFF else None,
        pixel_length=length if length != 0xFFFFFFFF else None,
    )


def _pydicom_header(path: Path, size: int) -> DicomHeader:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, defer_size=DEFER_SIZE)
    except (InvalidDicomError, EOFError, ValueError, KeyError, struct.error, OverflowError) as exc:
        raise CorruptFile(f"{path}: not a readable DICOM file: {one_line(exc)}") from exc
    except MemoryError as exc:  # an element whose declared length is beyond memory
        raise CorruptFile(f"{path}: DICOM element declares a length beyond what can be read") from exc
    except RecursionError as exc:
        raise CorruptFile(f"{path}: DICOM sequences nested too deeply to read") from exc
    except OSError as exc:
        raise CorruptFile(f"{path}: cannot read DICOM file: {one_line(exc)}") from exc
    except Exception as exc:  # pydicom on a damaged file: unknown VRs, BytesLengthException, ...
        raise CorruptFile(
            f"{path}: not a readable DICOM file: {type(exc).__name__}: {one_line(exc)}"
        ) from exc
    if not any(_readable(ds, tag) for tag in (0x00080016, 0x00080018, 0x00280010)) and not _readable(
        ds, "DirectoryRecordSequence"
    ):
        raise CorruptFile(f"{path}: not a DICOM file (no DICM preamble and no recognisable data elements)")
    tags: dict[str, Any] = {}
    for keyword in TAGS:
        try:
            elem = ds.get(keyword)
        except Exception:  # a malformed value only loses that tag
            continue
        tags[keyword] = _plain(elem)
    meta = getattr(ds, "file_meta", None)
    ts = _meta_text(meta, "TransferSyntaxUID")
    if not ts:
        ts = IMPLICIT_LE if ds.is_implicit_VR else EXPLICIT_LE
    sop_class = _meta_text(meta, "MediaStorageSOPClassUID") or str(tags.get("SOPClassUID") or "")
    has_pixels = _has_pixel_data(path, size)
    extra: dict[str, Any] = {
        "is_dicomdir": sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds,
        "functional_groups": "PerFrameFunctionalGroupsSequence" in ds
        or "SharedFunctionalGroupsSequence" in ds,
        "dataset": ds,
    }
    return DicomHeader(path, tags, ts, size, has_pixels=has_pixels, extra=extra)


def _readable(ds: Any, tag: int | str) -> bool:
    """Whether ``ds`` holds a value for ``tag`` that pydicom can convert (it converts lazily)."""
    try:
        return ds.get(tag) is not None
    except Exception:  # found by fuzzing: an unknown VR raised NotImplementedError here
        return False


def _meta_text(meta: Any, keyword: str) -> str:
    """A file meta value as text; "" when missing or unconvertible (found by fuzzing: unknown VR)."""
    try:
        return str(getattr(meta, keyword, "") or "")
    except Exception:
        return ""


def _has_pixel_data(path: Path, size: int) -> bool:
    import pydicom

    try:
        ds = pydicom.dcmread(
            path,
            specific_tags=["PixelData", "FloatPixelData", "DoubleFloatPixelData"],
            force=True,
            defer_size=DEFER_SIZE,
        )
    except Exception:
        return False
    return any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


def _plain(value: Any) -> Any:
    """pydicom values -> plain JSON-friendly Python values."""
    if value is None:
        return None
    from pydicom.multival import MultiValue
    from pydicom.sequence import Sequence
    from pydicom.valuerep import IS, DSfloat, PersonName

    if isinstance(value, Sequence):
        return None
    if isinstance(value, MultiValue | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, DSfloat | float):
        return float(value)
    if isinstance(value, IS | int):
        return int(value)
    if isinstance(value, PersonName):
        return str(value)
    if isinstance(value, bytes):
        return None
    return str(value)


def read_header(path: Path) -> DicomHeader:
    """Header of one DICOM file; raises CorruptFile/SourceNotFound with a one-line reason."""
    try:
        fh = path.open("rb")
    except IsADirectoryError as exc:
        raise SourceNotFound(f"{path}: is a directory, not a DICOM file") from exc
    except FileNotFoundError as exc:
        raise SourceNotFound(f"{path}: file not found (or dangling link)") from exc
    except OSError as exc:
        raise SourceNotFound(f"{path}: cannot open: {exc.strerror or exc}") from exc
    with fh:
        size = path.stat().st_size
        if size == 0:
            raise CorruptFile(f"{path}: empty file (0 bytes)")
        head = fh.read(132)
        fh.seek(0)
        if not sniff_dicom(head):
            raise CorruptFile(
                f"{path}: not a DICOM file (no DICM preamble and no recognisable data elements)"
            )
        try:
            return _fast_header(path, fh, size)
        except (_Fallback, EOFError, struct.error, UnicodeDecodeError):
            pass
    try:
        return _pydicom_header(path, size)
    except SourceError:
        raise
    except Exception as exc:  # pydicom converts values lazily; a damaged one can fail anywhere here
        raise CorruptFile(f"{path}: unreadable DICOM header: {type(exc).__name__}: {one_line(exc)}") from exc
