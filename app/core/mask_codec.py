"""Compact, lossless bytes for a MaskPatch: the bounding-box crop, bit-packed, then deflated.

Layout: b"SLM1", six little-endian uint32 (x0, y0, height, width, frame height, frame width),
then zlib(packbits(bits)). A 512x512 organ mask is typically a few hundred bytes.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from app.core.annotations import MaskPatch
from app.core.errors import ValidationError

_MAGIC = b"SLM1"
_HEADER = struct.Struct("<4s6I")


def encode_mask(patch: MaskPatch) -> bytes:
    h, w = patch.bits.shape
    fh, fw = patch.frame_shape
    packed = np.packbits(np.ascontiguousarray(patch.bits, dtype=bool), axis=None)
    return _HEADER.pack(_MAGIC, patch.x0, patch.y0, h, w, fh, fw) + zlib.compress(packed.tobytes(), 1)


def decode_mask(data: bytes) -> MaskPatch:
    if len(data) < _HEADER.size:
        raise ValidationError("stored mask is truncated")
    magic, x0, y0, h, w, fh, fw = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise ValidationError("stored mask has an unknown format")
    try:
        packed = np.frombuffer(zlib.decompress(data[_HEADER.size :]), dtype=np.uint8)
    except zlib.error as exc:
        raise ValidationError(f"stored mask is corrupt: {exc}") from None
    if packed.size * 8 < h * w:
        raise ValidationError("stored mask is shorter than its header says")
    bits = np.unpackbits(packed, count=h * w).astype(bool).reshape(h, w)
    return MaskPatch(x0, y0, bits, (fh, fw))
