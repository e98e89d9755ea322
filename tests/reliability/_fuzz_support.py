"""Mutation fuzzing helpers shared by tests/reliability/test_fuzz_*.py.

A reader is fed real seed files mutated by hypothesis (bit flips, truncation, inserted
chunks, huge numbers written over header fields, format-aware "huge declared size" patches,
JSON structure mutations). The property every reader must hold: it works, or it raises a
SitelabelError with a one-line message; never another exception type, never an
allocation beyond an address-space cap, never a hang past the pytest-timeout bound.

Examples per property: ``SITELABEL_FUZZ_EXAMPLES`` (the defaults keep ``make test`` well under
90 s; set e.g. 20000 for a soak run). Runs are derandomized so CI is reproducible; a soak run
can set ``SITELABEL_FUZZ_RANDOM=1`` to explore other inputs than the fixed sequence, and
``SITELABEL_FUZZ_SAVE=DIR`` to keep every failing input for tests/reliability/seeds/.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import resource
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from app.core.errors import SitelabelError

GIB = 1024**3
#: per-example bound; a reader taking longer than this on a small seed is treated as a hang
EXAMPLE_DEADLINE = timedelta(seconds=10)
#: pytest-timeout for a whole property: the default run takes a few seconds per property; a soak
#: run (SITELABEL_FUZZ_EXAMPLES) gets 60 s per 1000 examples on top
PROPERTY_TIMEOUT = 120 + 60 * int(os.environ.get("SITELABEL_FUZZ_EXAMPLES") or 0) // 1000


def examples(default: int) -> int:
    """Examples per property: ``SITELABEL_FUZZ_EXAMPLES`` if set (soak runs), else ``default``."""
    raw = os.environ.get("SITELABEL_FUZZ_EXAMPLES")
    return int(raw) if raw else default


def fuzz_settings(default_examples: int) -> settings:
    return settings(
        max_examples=examples(default_examples),
        derandomize=not os.environ.get("SITELABEL_FUZZ_RANDOM"),
        database=None,
        deadline=EXAMPLE_DEADLINE,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# --- the property ---------------------------------------------------------------------------------
def _vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def address_space_cap(extra: int = 3 * GIB) -> Iterator[None]:
    """Lower the soft RLIMIT_AS to the current size + ``extra`` while the block runs.

    An opener that believes a header's declared size tries to map gigabytes and gets a
    MemoryError here (which the property reports), instead of swapping the test machine.
    The soft limit is raised back afterwards (allowed: it never exceeds the hard limit).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_size() + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def works_or_refuses(action: Callable[[], object], keep: Path | None = None) -> SitelabelError | None:
    """Run ``action`` under the memory cap; a SitelabelError is fine, anything else fails the test.

    With ``SITELABEL_FUZZ_SAVE=DIR`` a failing input (``keep``) is copied there, to be added to
    tests/reliability/seeds/ as a regression seed.
    """
    try:
        with address_space_cap():
            try:
                action()
            except SitelabelError as exc:
                text = str(exc)
                assert text.strip(), f"{type(exc).__name__} without a message"
                assert "\n" not in text.strip(), f"{type(exc).__name__} message is not one line: {text!r}"
                return exc
    except BaseException:
        save = os.environ.get("SITELABEL_FUZZ_SAVE")
        if save and keep is not None and keep.exists():
            Path(save).mkdir(parents=True, exist_ok=True)
            target = Path(save) / keep.name
            if keep.is_dir():
                shutil.copytree(keep, target, dirs_exist_ok=True)
            else:
                shutil.copyfile(keep, target)
        raise
    return None


# --- byte mutations -------------------------------------------------------------------------------
HUGE_VALUES = (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0x0000FFFF, 0x10000, 0)


@st.composite
def _op(draw: st.DrawFn, size: int) -> tuple[Any, ...]:
    # half of the positions land in the first 1 KiB, where headers live
    hi = max(size, 1)
    pos = draw(st.one_of(st.integers(0, min(hi, 1024)), st.integers(0, hi)))
    kind = draw(st.sampled_from(["flip", "flip", "truncate", "insert", "huge", "zero"]))
    if kind == "flip":
        return ("flip", pos, draw(st.integers(0, 7)))
    if kind == "truncate":
        return ("truncate", pos)
    if kind == "insert":
        return ("insert", pos, draw(st.binary(min_size=1, max_size=64)))
    if kind == "huge":
        return ("huge", pos, draw(st.sampled_from([2, 4, 8])), draw(st.sampled_from(HUGE_VALUES)))
    return ("zero", pos, draw(st.integers(1, 32)))


def apply_op(data: bytes, op: tuple[Any, ...]) -> bytes:
    buf = bytearray(data)
    kind, pos = op[0], min(op[1], len(buf))
    if kind == "flip" and pos < len(buf):
        buf[pos] ^= 1 << op[2]
    elif kind == "truncate":
        del buf[pos:]
    elif kind == "insert":
        buf[pos:pos] = op[2]
    elif kind == "huge":
        width, value = op[2], op[3]
        fmt = {2: "<H", 4: "<I", 8: "<Q"}[width]
        buf[pos : pos + width] = struct.pack(fmt, value & ((1 << (8 * width)) - 1))
    elif kind == "zero":
        buf[pos : pos + op[2]] = bytes(min(op[2], len(buf) - pos))
    return bytes(buf)


Patcher = Callable[[bytes, int], bytes]


class Case(tuple[str, bytes]):
    """(seed name, mutated bytes) with a short repr: hypothesis prints it for a failing example."""

    def __repr__(self) -> str:
        return f"Case({self[0]!r}, {len(self[1])} bytes, sha1 {hashlib.sha1(self[1]).hexdigest()[:12]})"


@st.composite
def mutated(
    draw: st.DrawFn, seeds: dict[str, bytes], patchers: Mapping[str, Patcher] | None = None
) -> tuple[str, bytes]:
    """(seed name, mutated bytes): 1-4 byte ops, sometimes after a format-aware header patch."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = seeds[name]
    patch = (patchers or {}).get(name)
    if patch is not None and draw(st.booleans()):
        data = patch(data, draw(st.sampled_from(HUGE_VALUES)))
        if draw(st.booleans()):
            return Case((name, data))
    for op in draw(st.lists(_op(len(data)), min_size=1, max_size=4)):
        data = apply_op(data, op)
    return Case((name, data))


# --- format-aware "huge declared size" patches ------------------------------------------------------
def patch_png_ihdr(data: bytes, value: int) -> bytes:
    """Width and height in IHDR set to ``value`` (CRC recomputed so the lie reaches the reader)."""
    if data[12:16] != b"IHDR":
        return data
    ihdr = bytearray(data[16:29])
    ihdr[0:8] = struct.pack(">II", value & 0x7FFFFFFF, value & 0x7FFFFFFF)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return data[:16] + bytes(ihdr) + crc + data[33:]


def patch_jpeg_sof(data: bytes, value: int) -> bytes:
    """Height and width of the first SOFn segment set to ``value`` (16 bits)."""
    m = re.search(rb"\xff[\xc0-\xc3\xc5-\xc7\xc9-\xcb\xcd-\xcf]", data)
    if m is None:
        return data
    at = m.start() + 5
    return data[:at] + struct.pack(">HH", value & 0xFFFF, value & 0xFFFF) + data[at + 4 :]


def patch_tiff_size(data: bytes, value: int) -> bytes:
    """ImageWidth/ImageLength/StripByteCounts in the first IFD (little endian) set to ``value``."""
    if data[:4] != b"II*\x00":
        return data
    buf = bytearray(data)
    ifd = struct.unpack_from("<I", buf, 4)[0]
    if ifd + 2 > len(buf):
        return data
    count = struct.unpack_from("<H", buf, ifd)[0]
    for i in range(count):
        at = ifd + 2 + 12 * i
        if at + 12 > len(buf):
            break
        tag, typ = struct.unpack_from("<HH", buf, at)
        if tag in (256, 257, 279):
            if typ == 3:
                struct.pack_into("<H", buf, at + 8, value & 0xFFFF)
            elif typ == 4:
                struct.pack_into("<I", buf, at + 8, value)
    return bytes(buf)


def patch_dicom_sizes(data: bytes, value: int) -> bytes:
    """Rows, Columns (US) and the Pixel Data length (explicit or implicit VR LE) set to huge values."""
    buf = bytearray(data)
    for tag in (b"\x28\x00\x10\x00", b"\x28\x00\x11\x00"):
        at = buf.find(tag)
        if at < 0:
            continue
        if at + 10 <= len(buf):  # explicit (VR "US") and implicit VR both hold the value at +8
            struct.pack_into("<H", buf, at + 8, value & 0xFFFF)
    at = buf.rfind(b"\xe0\x7f\x10\x00")
    if at >= 0 and at + 12 <= len(buf):
        if bytes(buf[at + 4 : at + 6]) in (b"OW", b"OB"):
            struct.pack_into("<I", buf, at + 8, value)
        else:
            struct.pack_into("<I", buf, at + 4, value)
    return bytes(buf)


def patch_zip_sizes(data: bytes, value: int) -> bytes:
    """Uncompressed sizes in every local header and central directory entry set to ``value``."""
    buf = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (at := buf.find(sig, start)) >= 0:
            if at + off + 4 <= len(buf):
                struct.pack_into("<I", buf, at + off, value)
            start = at + 4
    return bytes(buf)


def patch_tar_size(data: bytes, value: int) -> bytes:
    """The first member's octal size field set to ``value`` (checksum fixed so tarfile believes it)."""
    if len(data) < 512:
        return data
    head = bytearray(data[:512])
    head[124:136] = f"{value & 0o77777777777:011o}\0".encode()
    head[148:156] = b"        "
    head[148:156] = f"{sum(head):06o}\0 ".encode()
    return bytes(head) + data[512:]


def patch_gzip_isize(data: bytes, value: int) -> bytes:
    """The gzip trailer's declared uncompressed size set to ``value``."""
    return data[:-4] + struct.pack("<I", value) if len(data) > 18 else data


# --- JSON structure mutations -----------------------------------------------------------------------
WRONG_VALUES: tuple[Any, ...] = (
    None, True, 0, -1, 1e308, -1e308, 10**30, float("nan"), float("inf"), "", "x", "0", [], {},
    [1], [[1, 2]], {"a": 1}, [None], ["x", "y"], 2**63, -(2**63),
)  # fmt: skip


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if len(prefix) > 12:  # do not walk into the deep nesting an earlier mutation planted
        return
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:8]):
            yield from _paths(v, (*prefix, i))


def _set(root: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    if not path:
        return value
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return root


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


@st.composite
def mutated_json(draw: st.DrawFn, seed: Any) -> Any:
    """1-3 structural changes to a deep copy of ``seed``: wrong types, missing keys, huge numbers, nesting."""
    doc = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["wrong", "wrong", "delete", "nest", "grow"]))
        if how == "delete" and path:
            doc = _set(doc, path, None, delete=True)
        elif how == "nest":
            doc = _set(doc, path, nested(draw(st.sampled_from([3, 50, 5000]))))
        elif how == "grow":
            value = draw(st.sampled_from(WRONG_VALUES))
            count = draw(st.sampled_from([0, 2, 1000]))
            doc = _set(doc, path, [copy.deepcopy(value) for _ in range(count)])
        else:  # a copy: later mutations must not change the shared WRONG_VALUES (hypothesis replays)
            doc = _set(doc, path, copy.deepcopy(draw(st.sampled_from(WRONG_VALUES))))
    return doc


def dump_json(doc: Any) -> str:
    """JSON text of ``doc``; very deep documents are written iteratively (json.dumps would recurse)."""
    try:
        return json.dumps(doc)
    except RecursionError:
        return _deep_dumps(doc)


def _deep_dumps(doc: Any) -> str:
    out: list[str] = []
    stack: list[Any] = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and item.startswith("\0raw:"):
            out.append(item[5:])
        elif isinstance(item, dict):
            parts: list[Any] = ["\0raw:{"]
            for n, (k, v) in enumerate(item.items()):
                parts += ([("\0raw:,")] if n else []) + [f"\0raw:{json.dumps(str(k))}:", v]
            parts.append("\0raw:}")
            stack.extend(reversed(parts))
        elif isinstance(item, list):
            parts = ["\0raw:["]
            for n, v in enumerate(item):
                parts += ([("\0raw:,")] if n else []) + [v]
            parts.append("\0raw:]")
            stack.extend(reversed(parts))
        else:
            out.append(json.dumps(item))
    return "".join(out)


# --- container fields that a structure-aware patch can lie about (video, NIfTI) --------------------
#: (what, byte offset, width in bytes, byte order "<" or ">") of one header field in a seed
Field = tuple[str, int, int, str]

_MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts", b"udta", b"mvex"}
# payload offsets of the fields worth lying about, by box type and version (0 / 1)
_MP4_PAYLOAD_FIELDS: dict[bytes, dict[int, list[tuple[str, int, int]]]] = {
    b"mvhd": {0: [("timescale", 12, 4), ("duration", 16, 4)], 1: [("timescale", 20, 4), ("duration", 24, 8)]},
    b"mdhd": {0: [("timescale", 12, 4), ("duration", 16, 4)], 1: [("timescale", 20, 4), ("duration", 24, 8)]},
    b"tkhd": {0: [("duration", 20, 4), ("width", 76, 4), ("height", 80, 4)],
              1: [("duration", 28, 8), ("width", 88, 4), ("height", 92, 4)]},
    b"stsz": {0: [("sample_size", 4, 4), ("sample_count", 8, 4), ("entry0", 12, 4)]},
    b"stco": {0: [("entry_count", 4, 4), ("offset0", 8, 4)]},
    b"co64": {0: [("entry_count", 4, 4), ("offset0", 8, 8)]},
    b"stts": {0: [("entry_count", 4, 4), ("sample_count0", 8, 4), ("delta0", 12, 4)]},
    b"stsc": {0: [("entry_count", 4, 4), ("first_chunk0", 8, 4), ("per_chunk0", 12, 4)]},
    b"stss": {0: [("entry_count", 4, 4), ("sync0", 8, 4)]},
    b"ctts": {0: [("entry_count", 4, 4), ("count0", 8, 4)]},
    b"stsd": {0: [("entry_count", 4, 4), ("entry_size", 8, 4),
                  # visual sample entry: 8 header + 6 reserved + 2 index + 16 predefined, then w, h
                  ("entry_width", 8 + 32, 2), ("entry_height", 8 + 34, 2)]},
    b"elst": {0: [("entry_count", 4, 4), ("segment_duration0", 8, 4), ("media_time0", 12, 4)]},
}  # fmt: skip


def mp4_fields(data: bytes) -> list[Field]:
    """Every box size of an MP4/MOV, plus timescales, durations, sample tables and frame sizes."""
    out: list[Field] = []

    def walk(start: int, end: int, depth: int) -> None:
        at = start
        while at + 8 <= end and depth < 8:
            size, kind = struct.unpack_from(">I4s", data, at)
            out.append((f"{kind.decode('latin-1')}.size", at, 4, ">"))
            header = 16 if size == 1 else 8
            if size == 1 and at + 16 <= end:
                size = struct.unpack_from(">Q", data, at + 8)[0]
            elif size == 0:
                size = end - at
            if size < header or at + size > end:
                return
            payload = at + header
            if kind in _MP4_CONTAINERS:
                walk(payload, at + size, depth + 1)
            elif kind in _MP4_PAYLOAD_FIELDS and payload < at + size:
                version = data[payload]
                for name, off, width in _MP4_PAYLOAD_FIELDS[kind].get(version, []):
                    if payload + off + width <= at + size:
                        out.append((f"{kind.decode('latin-1')}.{name}", payload + off, width, ">"))
            at += size

    walk(0, len(data), 0)
    return out


_AVI_CHUNK_FIELDS: dict[bytes, list[tuple[str, int, int]]] = {
    b"avih": [("usec_per_frame", 0, 4), ("total_frames", 16, 4), ("streams", 24, 4),
              ("buffer_size", 28, 4), ("width", 32, 4), ("height", 36, 4)],
    b"strh": [("scale", 20, 4), ("rate", 24, 4), ("start", 28, 4), ("length", 32, 4),
              ("buffer_size", 36, 4), ("sample_size", 44, 4)],
    b"strf": [("bi_size", 0, 4), ("width", 4, 4), ("height", 8, 4), ("bit_count", 14, 2),
              ("size_image", 20, 4)],
    b"idx1": [("offset0", 8, 4), ("size0", 12, 4)],
    b"indx": [("entries_in_use", 4, 4), ("qw_offset0", 24, 8), ("size0", 32, 4)],
    b"dmlh": [("total_frames", 0, 4)],
}  # fmt: skip


def avi_fields(data: bytes) -> list[Field]:
    """RIFF/LIST/chunk sizes of an AVI plus the main and stream headers' counts, rates and sizes."""
    out: list[Field] = []

    def walk(start: int, end: int, depth: int) -> None:
        at = start
        while at + 8 <= end and depth < 6:
            fourcc, size = struct.unpack_from("<4sI", data, at)
            out.append((f"{fourcc.decode('latin-1')}.size", at + 4, 4, "<"))
            payload = at + 8
            stop = min(end, payload + size)
            if fourcc in (b"RIFF", b"LIST"):
                walk(payload + 4, stop, depth + 1)
            else:
                for name, off, width in _AVI_CHUNK_FIELDS.get(fourcc, []):
                    if payload + off + width <= stop:
                        out.append((f"{fourcc.decode('latin-1')}.{name}", payload + off, width, "<"))
            at = payload + size + (size & 1)

    walk(0, len(data), 0)
    return out


#: values a lying header field gets: zero, one, huge, the sign bit, and 10^9 (frames or samples)
LIES = (0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 10**9, 0xFFFF, 0x10000, 7)


def patch_field(data: bytes, field: Field, value: int) -> bytes:
    """``field`` of ``data`` set to ``value`` (cut to the field's width)."""
    _what, at, width, order = field
    if at + width > len(data):
        return data
    raw = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little" if order == "<" else "big")
    return data[:at] + raw + data[at + width :]


@st.composite
def field_patched(
    draw: st.DrawFn,
    seeds: dict[str, bytes],
    fields: Mapping[str, list[Field]],
    values: tuple[Any, ...] = LIES,
) -> tuple[str, bytes]:
    """(seed name, bytes) with 1-3 header fields lying, then sometimes 1-2 byte mutations on top."""
    name = draw(st.sampled_from(sorted(n for n in seeds if fields.get(n))))
    data = seeds[name]
    for field in draw(st.lists(st.sampled_from(fields[name]), min_size=1, max_size=3)):
        data = patch_field(data, field, draw(st.sampled_from(values)))
    if draw(st.integers(0, 3)) == 0:
        for op in draw(st.lists(_op(len(data)), min_size=1, max_size=2)):
            data = apply_op(data, op)
    return Case((name, data))


def png_with_ihdr(
    data: bytes,
    *,
    width: int | None = None,
    height: int | None = None,
    bit_depth: int | None = None,
    color_type: int | None = None,
) -> bytes:
    """``data`` with IHDR fields replaced (CRC recomputed so the reader believes the lie)."""
    if data[12:16] != b"IHDR" or len(data) < 33:
        return data
    ihdr = bytearray(data[16:29])
    if width is not None:
        struct.pack_into(">I", ihdr, 0, width & 0xFFFFFFFF)
    if height is not None:
        struct.pack_into(">I", ihdr, 4, height & 0xFFFFFFFF)
    if bit_depth is not None:
        ihdr[8] = bit_depth & 0xFF
    if color_type is not None:
        ihdr[9] = color_type & 0xFF
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return data[:16] + bytes(ihdr) + crc + data[33:]


#: NIfTI-1 header fields (little endian): (name, offset, struct code); dim and pixdim have 8 each
NIFTI1_FIELDS: tuple[tuple[str, int, str], ...] = (
    ("sizeof_hdr", 0, "i"),
    *((f"dim[{i}]", 40 + 2 * i, "h") for i in range(8)),
    ("intent_code", 68, "h"), ("datatype", 70, "h"), ("bitpix", 72, "h"), ("slice_start", 74, "h"),
    *((f"pixdim[{i}]", 76 + 4 * i, "f") for i in range(8)),
    ("vox_offset", 108, "f"), ("scl_slope", 112, "f"), ("scl_inter", 116, "f"),
    ("slice_end", 120, "h"), ("cal_max", 124, "f"), ("cal_min", 128, "f"),
    ("qform_code", 252, "h"), ("sform_code", 254, "h"),
    ("quatern_b", 256, "f"), ("quatern_c", 260, "f"), ("quatern_d", 264, "f"),
    ("qoffset_x", 268, "f"), ("qoffset_y", 272, "f"), ("qoffset_z", 276, "f"),
    *((f"srow_{axis}[{i}]", off + 4 * i, "f") for axis, off in (("x", 280), ("y", 296), ("z", 312))
      for i in range(4)),
    ("magic", 344, "4s"),
)  # fmt: skip
#: lies per field type: huge, negative, zero, NaN/inf, and the NIfTI datatype codes nibabel knows
NIFTI_INT_LIES = (0, -1, 1, 2, 3, 4, 7, 8, 9, 16, 64, 128, 255, 511, 768, 1536, 2304, 32767, -32768)
NIFTI_FLOAT_LIES = (0.0, -1.0, 1e-30, 1e30, 3.4e38, float("nan"), float("inf"), float("-inf"), 352.0, 1e9)
NIFTI_MAGIC_LIES = (b"ni1\0", b"n+2\0", b"\0\0\0\0", b"n+1\0")


def patch_nifti1(raw: bytes, name: str, value: Any) -> bytes:
    """The uncompressed NIfTI-1 header field ``name`` (see NIFTI1_FIELDS) set to ``value``."""
    for field_name, at, code in NIFTI1_FIELDS:
        if field_name == name and at + struct.calcsize("<" + code) <= len(raw):
            return raw[:at] + struct.pack("<" + code, value) + raw[at + struct.calcsize("<" + code) :]
    return raw
