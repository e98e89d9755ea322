"""COCO run-length encoding in numpy (no pycocotools at run time).

COCO RLE: the mask is read in column-major (Fortran) order; ``counts`` are alternating run lengths
starting with a run of zeros (0 when the first pixel is set). The compressed string form is
pycocotools' LEB128-like code: 5 bits per character, offset 48, and from the fourth count on each
count is stored as the difference to the count two before it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.annotations import BoolMask, MaskPatch
from app.core.errors import ValidationError

Counts = npt.NDArray[np.int64]


def _runs(flat: npt.NDArray[np.bool_], lead: int, tail: int) -> Counts:
    """Run lengths of ``lead`` zeros, then ``flat``, then ``tail`` zeros; first run counts zeros."""
    if flat.size == 0:
        total = lead + tail
        return np.array([total] if total else [], dtype=np.int64)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).astype(np.int64)
    if flat[0]:
        counts = np.concatenate(([lead], counts))
    else:
        counts[0] += lead
    if flat[-1]:
        if tail:
            counts = np.concatenate((counts, [tail]))
    else:
        counts[-1] += tail
    return counts


def encode_counts(mask: npt.ArrayLike) -> Counts:
    """Uncompressed COCO counts of a full (H, W) mask."""
    bits = np.asarray(mask, dtype=bool)
    if bits.ndim != 2:
        raise ValidationError(f"a mask must be a 2-D array, got shape {bits.shape}")
    return _runs(bits.ravel(order="F"), 0, 0)


def patch_counts(patch: MaskPatch) -> Counts:
    """COCO counts of a mask patch's full frame, touching only the patch's columns (fast for 100k shapes)."""
    height, width = patch.frame_shape
    h, w = patch.bits.shape
    if h == 0 or w == 0:
        return _runs(np.zeros(0, dtype=bool), height * width, 0)
    strip = np.zeros((w, height), dtype=bool)  # the patch's columns, full height, column-major
    strip[:, patch.y0 : patch.y0 + h] = patch.bits.T
    return _runs(strip.ravel(), patch.x0 * height, (width - patch.x0 - w) * height)


def counts_to_string(counts: npt.ArrayLike) -> str:
    """pycocotools' compressed string of ``counts`` (``rleToString``), vectorised."""
    cnts = np.asarray(counts, dtype=np.int64)
    x = cnts.copy()
    x[3:] -= cnts[1:-2]  # pycocotools: for i > 2, store cnts[i] - cnts[i - 2]
    chars = np.zeros((x.size, 14), dtype=np.uint8)
    used = np.zeros((x.size, 14), dtype=bool)
    active = np.ones(x.size, dtype=bool)
    for k in range(14):  # 5 bits per character: 14 are enough for any int64
        if not active.any():
            break
        c = x & 0x1F
        x = x >> 5  # arithmetic shift, as the C code on a signed long
        more = np.where(c & 0x10, x != -1, x != 0)
        chars[:, k] = (c | np.where(more, 0x20, 0)) + 48
        used[:, k] = active
        active &= more
    return chars[used].tobytes().decode("ascii")


def string_to_counts(text: str) -> Counts:
    """Inverse of :func:`counts_to_string` (``rleFrString``), vectorised."""
    raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    if (raw < 0).any() or (raw > 63).any():
        raise ValidationError("a compressed RLE string holds characters outside its alphabet")
    ends = (raw & 0x20) == 0
    if not ends[-1]:
        raise ValidationError("a compressed RLE string is truncated")
    end_idx = np.flatnonzero(ends)
    starts = np.concatenate(([0], end_idx[:-1] + 1))
    group = np.repeat(np.arange(starts.size), end_idx - starts + 1)
    position = np.arange(raw.size) - starts[group]
    if position.max() > 12:
        raise ValidationError("a compressed RLE string holds a count that is too large")
    values = np.add.reduceat((raw & 0x1F) << (5 * position), starts)
    last = raw[end_idx]
    negative = (last & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (position[end_idx][negative] + 1))
    counts = values.copy()
    counts[1::2] = np.cumsum(values[1::2])  # undo the differences to two counts before (i > 2)
    counts[2::2] = np.cumsum(values[2::2])
    return counts


def decode_counts(counts: npt.ArrayLike, shape: tuple[int, int]) -> BoolMask:
    """The (H, W) mask of COCO counts."""
    cnts = np.asarray(counts, dtype=np.int64)
    height, width = shape
    if (cnts < 0).any() or int(cnts.sum()) != height * width:
        raise ValidationError(f"RLE counts do not add up to a {width}x{height} mask")
    values = (np.arange(cnts.size) % 2).astype(bool)
    flat = np.repeat(values, cnts)
    return np.ascontiguousarray(flat.reshape(width, height).T)


def encode(mask: npt.ArrayLike | MaskPatch) -> dict[str, Any]:
    """COCO RLE object ``{"size": [h, w], "counts": str}`` (compressed), as pycocotools.mask.encode."""
    if isinstance(mask, MaskPatch):
        counts, shape = patch_counts(mask), mask.frame_shape
    else:
        bits = np.asarray(mask, dtype=bool)
        counts, shape = encode_counts(bits), (int(bits.shape[0]), int(bits.shape[1]))
    return {"size": [int(shape[0]), int(shape[1])], "counts": counts_to_string(counts)}


def decode(rle: Any) -> BoolMask:
    """Mask of a COCO RLE object: compressed string or uncompressed list ``counts``."""
    try:
        height, width = (int(v) for v in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError):
        raise ValidationError('an RLE segmentation needs "size": [h, w] and "counts"') from None
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    parsed = string_to_counts(counts) if isinstance(counts, str) else np.asarray(counts, dtype=np.int64)
    return decode_counts(parsed, (height, width))
