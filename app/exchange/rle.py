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


def _grouped_strings(counts: Counts, ends: Counts) -> list[str]:
    """:func:`counts_to_string` of consecutive groups of ``counts`` (group i ends before
    ``ends[i]``), all in one pass."""
    groups = ends.size
    starts = np.concatenate([[0], ends[:-1]]) if groups else ends
    index = np.arange(counts.size) - np.repeat(starts, ends - starts)  # a count's place in its group
    x = counts.copy()
    x[2:] -= counts[:-2]  # pycocotools: from the fourth count on, cnts[i] - cnts[i - 2] ...
    first = index < 3
    x[first] = counts[first]  # ... and the first three as they are
    # 5 bits per character, as many characters as the value needs; most deltas need one, so each
    # round works only on the values that still need more.
    which = np.arange(x.size)
    chars_of = np.ones(x.size, dtype=np.int64)
    rounds: list[tuple[Counts, Counts]] = []
    while which.size:
        c = x & 0x1F
        x = x >> 5  # arithmetic shift, as the C code on a signed long
        more = np.where(c & 0x10, x != -1, x != 0)
        rounds.append((which, (c | (more << 5)) + 48))
        which, x = which[more], x[more]
        chars_of[which] += 1
    place = np.cumsum(chars_of) - chars_of
    out = np.empty(int(chars_of.sum()), dtype=np.uint8)
    for k, (ix, ch) in enumerate(rounds):
        out[place[ix] + k] = ch
    text = out.tobytes().decode("ascii")
    cut = np.concatenate([[0], np.cumsum(chars_of)])[np.concatenate([starts, ends[-1:]])].tolist()
    return [text[cut[i] : cut[i + 1]] for i in range(groups)]


def encode_spans(
    spans: tuple[Counts, Counts, Counts, Counts], shapes: npt.ArrayLike
) -> tuple[list[dict[str, Any]], Counts]:
    """COCO RLE objects and pixel areas of many shapes given as row spans, without any bitmap.

    ``spans`` is ``(shape index, row, c_start, c_end)`` sorted by shape, row and column (as
    ``app.core.raster.polygon_spans`` returns them); ``shapes`` holds each shape's frame (height,
    width). The result equals :func:`encode` of each shape's mask. Column-major runs change state
    where a pixel differs from the one above it, so the transitions of row ``r`` are the columns
    where row ``r`` and row ``r - 1`` differ: the symmetric difference of their spans, found by
    sorting both rows' span ends together. The cost follows the outlines, not the areas.
    """
    frames = np.asarray(shapes, dtype=np.int64).reshape(-1, 2)
    n = len(frames)
    heights, widths = frames[:, 0], frames[:, 1]
    group, row, start, end = (np.asarray(a, dtype=np.int64) for a in spans)
    areas = np.bincount(group, weights=end - start, minlength=n).astype(np.int64)
    # Each span's ends toggle its own row and, as "the row above", the next row. Sorted by one
    # integer key (shape, row, column): integers sort ~10x faster than a multi-key lexsort.
    high, wide = int(heights.max(initial=0)) + 1, int(widths.max(initial=0)) + 1
    if n * high * wide >= 2**62:
        raise ValidationError("frames too large to encode in one batch")
    own = np.empty(2 * group.size, dtype=np.int64)
    own[0::2] = (group * high + row) * wide + start
    own[1::2] = own[0::2] + (end - start)
    # two sorted runs (each row's own ends, and the same one row down): a linear merge for timsort
    keys = np.sort(np.concatenate([own, own + wide]), kind="stable")
    rest = keys[0::2] // wide
    xa, xb = keys[0::2] - rest * wide, keys[1::2] - keys[1::2] // wide * wide
    g = rest // high
    r = rest - g * high
    width = xb - xa
    keep = width > 0
    g, r, xa, width = g[keep], r[keep], xa[keep], width[keep]
    # Every column of [xa, xb) changes state at row r: Fortran position c * H + r.
    total = int(width.sum())
    cell = np.repeat(np.arange(g.size), width)
    column = xa[cell] + (np.arange(total) - np.repeat(np.cumsum(width) - width, width))
    pg = g[cell]
    span = high * (wide - 1)  # above any position c * H + r of any shape
    keys = np.sort(pg * span + column * heights[pg] + r[cell])
    pg = keys // span
    pos = keys - pg * span
    # A run reaching the bottom of a column goes on at the top of the next one: its end and the
    # next start share a position, and both go (one longer run, as pycocotools counts it).
    same = np.flatnonzero(keys[1:] == keys[:-1])
    if same.size:
        drop = np.zeros(pos.size, dtype=bool)
        drop[same] = True
        drop[same + 1] = True
        pg, pos = pg[~drop], pos[~drop]
    # counts: each transition minus the one before (0 at a shape's start), then the zeros to the end.
    per = np.bincount(pg, minlength=n)
    tails = np.cumsum(per) + np.arange(n)  # where each shape's closing count goes
    values = np.empty(pos.size + n, dtype=np.int64)
    groups_of = np.empty(pos.size + n, dtype=np.int64)
    is_tail = np.zeros(pos.size + n, dtype=bool)
    is_tail[tails] = True
    values[~is_tail], groups_of[~is_tail] = pos, pg
    values[is_tail], groups_of[is_tail] = heights * widths, np.arange(n)
    previous = np.concatenate([[0], values[:-1]])
    previous[tails - per] = 0  # each shape starts from position 0
    counts = values - previous
    keep = ~is_tail | (counts != 0)  # a shape ending on the last pixel has no closing zeros
    counts = counts[keep]
    strings = _grouped_strings(counts, np.cumsum(np.bincount(groups_of[keep], minlength=n)))
    objects = [
        {"size": [h, w], "counts": text}
        for h, w, text in zip(heights.tolist(), widths.tolist(), strings, strict=True)
    ]
    return objects, areas


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
