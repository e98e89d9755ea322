"""The one rasteriser of Sitelabel: canvas display, exports, metrics and training all call it.

Pixel convention (DESIGN.md "Pixel conventions"): image coordinates are continuous ``(x, y)``,
pixel ``(col c, row r)`` covers ``[c, c+1) x [r, r+1)`` and its centre is ``(c+0.5, r+0.5)``.

* Polygons and boxes cover exactly the pixels whose centre lies inside. A centre exactly on the
  outline is decided by the half-open ("top-left") rule: it is IN on a left or top edge and OUT on
  a right or bottom edge. Formally a centre ``p`` is in iff ``p + (e, e**2)`` is inside for every
  small enough ``e > 0``. The scanline fill implements this exactly: on the scanline
  ``y = r + 0.5`` an edge counts iff ``y_top <= y < y_bottom`` (horizontal edges never count) and
  a centre is in iff ``x_left <= c + 0.5 < x_right`` for a pair of sorted crossings.
* Self-intersecting polygons and several rings together use the EVEN-ODD rule (a centre is in iff
  a ray from it crosses the outline an odd number of times). For simple polygons even-odd and
  nonzero agree. Even-odd makes "outer rings + hole rings" (see ``geometry.mask_to_polygons``)
  reproduce a mask exactly.
* A brush dab of radius ``R`` covers the centres at distance ``<= R``; a stroke is the union of
  capsules (centres within ``R`` of a segment), so it has no gaps however fast the pointer moved.
* A polyline annotation is a stroke of radius 0.5; a point covers the one pixel containing it.

Exactness: every tie test compares a pixel-centre coordinate (exact in float64) with a crossing or
distance computed the same way for a given edge whichever direction it is walked, so two polygons
sharing an edge split the pixels on it with no gap and no overlap. For vertices on a dyadic grid
(e.g. multiples of 1/4 of a pixel, the usual case for clicks and exports) every computation is exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation, BoolMask, Kind, MaskPatch
from app.core.errors import ValidationError
from app.core.ontology import Ontology

Shape = tuple[int, int]  # (height, width)
Patch = tuple[int, int, BoolMask]  # (y0, x0, bits): a crop placed at row y0, column x0
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

__all__ = [
    "brush_dab",
    "label_image",
    "polygon_mask_in_bbox",
    "polygon_spans",
    "rasterize_annotation",
    "rasterize_box",
    "rasterize_polygon",
    "rasterize_rings",
    "rasterize_stroke",
    "rings_mask_in_bbox",
]


# --- small exact helpers --------------------------------------------------------------------------
def _check_shape(shape: Sequence[int]) -> Shape:
    if len(shape) != 2 or int(shape[0]) < 0 or int(shape[1]) < 0:
        raise ValidationError(f"a frame shape must be (height, width) >= 0, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _as_points(points: npt.ArrayLike, what: str, minimum: int) -> FloatArray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValidationError(f"{what} points must be an (N, 2) array of [x, y], got shape {pts.shape}")
    if len(pts) < minimum:
        raise ValidationError(f"{what} needs at least {minimum} points, got {len(pts)}")
    if not np.isfinite(pts).all():
        raise ValidationError(f"{what} points must be finite numbers")
    return pts


def _first_centre_at_or_after(v: FloatArray) -> IntArray:
    """Smallest integer ``c`` with ``c + 0.5 >= v``, exactly (``v - 0.5`` may round; fix it up)."""
    c = np.ceil(v - 0.5)
    c = np.where(c - 0.5 >= v, c - 1.0, c)  # rounded too high
    c = np.where(c + 0.5 < v, c + 1.0, c)  # rounded too low
    # Clamp before the int cast: far-away coordinates must not overflow int64.
    return np.clip(c, -(2.0**52), 2.0**52).astype(np.int64)


def _first_centre_after(v: FloatArray) -> IntArray:
    """Smallest integer ``c`` with ``c + 0.5 > v``."""
    c = _first_centre_at_or_after(v)
    return c + (c.astype(np.float64) + 0.5 == v)


def _empty_patch() -> Patch:
    return 0, 0, np.zeros((0, 0), dtype=bool)


def _crop(y0: int, x0: int, bits: BoolMask) -> Patch:
    """Crop a patch to the bounding box of its set pixels (empty -> 0x0 at the origin)."""
    rows = np.flatnonzero(bits.any(axis=1))
    if rows.size == 0:
        return _empty_patch()
    cols = np.flatnonzero(bits.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return y0 + r0, x0 + c0, np.ascontiguousarray(bits[r0:r1, c0:c1])


def _to_full(patch: Patch, shape: Shape) -> BoolMask:
    y0, x0, bits = patch
    out = np.zeros(shape, dtype=bool)
    out[y0 : y0 + bits.shape[0], x0 : x0 + bits.shape[1]] = bits
    return out


# --- polygons -----------------------------------------------------------------------------------
def _ring_spans(
    rings: Sequence[FloatArray],
    shape: Shape,
    groups: IntArray | None = None,
    sizes: tuple[IntArray, IntArray] | None = None,
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Even-odd spans ``(group, row, c_start, c_end)`` (end exclusive, clipped, non-empty) of rings.

    Rings of the same ``group`` (default: all one group) are filled together with the even-odd rule;
    different groups are independent shapes rasterised in one pass (the exports' batch path). The
    arithmetic per edge is the same either way, so a group's spans equal a call with its rings alone.
    ``sizes`` (heights, widths per group) replaces ``shape`` when the groups lie on different frames.
    """
    points = np.concatenate(rings) if len(rings) > 1 else rings[0]
    lengths = np.array([len(r) for r in rings], dtype=np.int64)
    # Each vertex's edge goes to the next vertex of its ring (the last one back to the first).
    following = np.arange(1, len(points) + 1)
    ring_ends = np.cumsum(lengths)
    following[ring_ends - 1] = ring_ends - lengths
    nxt = points[following]
    # Canonical direction: each edge is described from its top (smaller y) end, so an edge
    # shared by two polygons gives bit-identical crossings in both (no gap, no overlap).
    swap = (nxt[:, 1] < points[:, 1])[:, None]
    top = np.where(swap, nxt, points)
    bot = np.where(swap, points, nxt)
    ring_group = np.zeros(len(rings), dtype=np.int64) if groups is None else np.asarray(groups, np.int64)
    group = np.repeat(ring_group, lengths)
    keep = bot[:, 1] > top[:, 1]  # horizontal edges never cross a scanline
    top, bot, group = top[keep], bot[keep], group[keep]
    if sizes is None:
        height: int | IntArray = shape[0]
        width: int | IntArray = shape[1]
    else:
        height, width = sizes[0][group], sizes[1][group]
    # Rows whose centre line y = r + 0.5 satisfies y_top <= y < y_bottom.
    r_start = np.clip(_first_centre_at_or_after(top[:, 1]), 0, height)
    r_stop = np.clip(_first_centre_at_or_after(bot[:, 1]), 0, height)
    counts = np.maximum(r_stop - r_start, 0)
    total = int(counts.sum())
    empty = np.zeros(0, dtype=np.int64)
    if total == 0:
        return empty, empty, empty, empty
    edge = np.repeat(np.arange(len(top)), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = r_start[edge] + offsets
    x_top, y_top = top[edge, 0], top[edge, 1]
    dx = bot[edge, 0] - x_top
    dy = bot[edge, 1] - y_top
    xs = x_top + (rows + 0.5 - y_top) * dx / dy
    groups_of = group[edge]
    # Each crossing's first pixel centre at or after it, clipped to the frame. The map is monotone,
    # so sorting these integers pairs the crossings exactly as sorting the x values would (the sorted
    # sequence is the same), and one integer key sorts ~10x faster than a multi-key lexsort.
    high = int(np.max(height)) if sizes is not None else int(height)
    wide = int(np.max(width)) if sizes is not None else int(width)
    cols = np.clip(_first_centre_at_or_after(xs), 0, width if sizes is None else sizes[1][groups_of])
    groups_count = int(group.max()) + 1 if group.size else 1
    if groups_count * max(high, 1) * (wide + 1) < 2**62:
        key = np.sort((groups_of * high + rows) * (wide + 1) + cols)
        rest = key // (wide + 1)
        groups_of = rest // high
        cols, rows = key - rest * (wide + 1), rest - groups_of * high  # (no slower % on int64)
    else:  # absurd frame sizes: the same order by a slower multi-key sort
        order = np.lexsort((cols, rows, groups_of))
        rows, cols, groups_of = rows[order], cols[order], groups_of[order]
    # Every row of a group has an even number of crossings (closed rings), so global pairs are row pairs.
    row, span_group, start, end = rows[0::2], groups_of[0::2], cols[0::2], cols[1::2]
    nonempty = end > start
    return span_group[nonempty], row[nonempty], start[nonempty], end[nonempty]


def polygon_spans(
    polygons: Sequence[npt.ArrayLike], shapes: Sequence[Sequence[int]]
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """The pixels of many polygons at once, each on its own frame ``shapes[i]`` (height, width).

    Returns spans ``(polygon index, row, c_start, c_end)`` sorted by polygon, row and column: exactly
    the pixels :func:`polygon_mask_in_bbox` gives each polygon alone (same arithmetic, one numpy pass
    for all, which is what makes a COCO export of 100,000 polygons fast).
    """
    empty = np.zeros(0, dtype=np.int64)
    if len(polygons) != len(shapes):
        raise ValidationError("polygon_spans needs one frame shape per polygon")
    if not polygons:
        return empty, empty, empty, empty
    rings = [np.asarray(p, dtype=np.float64) for p in polygons]
    if any(r.ndim != 2 or r.shape[1] != 2 or not len(r) for r in rings):
        raise ValidationError("polygon points must be non-empty (N, 2) arrays of [x, y]")
    if not np.isfinite(np.concatenate(rings)).all():
        raise ValidationError("polygon points must be finite numbers")
    checked = np.asarray(shapes, dtype=np.int64).reshape(-1, 2)
    if (checked < 0).any():
        raise ValidationError("frame shapes must be (height, width) >= 0")
    groups = np.arange(len(rings), dtype=np.int64)
    return _ring_spans(rings, (0, 0), groups, (checked[:, 0], checked[:, 1]))


# Cost model (measured): a slice assignment per span costs ~0.4 us, a toggle scan ~1 ns/pixel.
_SPAN_COST_PIXELS = 400


def _fill_spans(rows: IntArray, starts: IntArray, ends: IntArray, shape: Shape) -> Patch:
    """Paint disjoint spans into a patch covering exactly their bounding box."""
    if rows.size == 0:
        return _empty_patch()
    y0, y1 = int(rows[0]), int(rows[-1]) + 1  # rows are sorted
    x0, x1 = int(starts.min()), int(ends.max())
    h, w = y1 - y0, x1 - x0
    r, s, e = rows - y0, starts - x0, ends - x0
    if rows.size * _SPAN_COST_PIXELS < h * w:
        bits = np.zeros((h, w), dtype=bool)
        for ri, si, ei in zip(r.tolist(), s.tolist(), e.tolist(), strict=True):
            bits[ri, si:ei] = True
        return y0, x0, bits
    # Many spans: mark span borders, then XOR-scan each row. Spans are sorted and disjoint;
    # merging the ones that touch makes every border cell unique, so plain assignment is exact.
    touch = (r[1:] == r[:-1]) & (s[1:] == e[:-1])
    keep_start = np.concatenate([[True], ~touch])
    keep_end = np.concatenate([~touch, [True]])
    toggles = np.zeros((h, w + 1), dtype=bool)
    toggles[r[keep_start], s[keep_start]] = True
    toggles[r[keep_end], e[keep_end]] = True
    return y0, x0, np.logical_xor.accumulate(toggles, axis=1)[:, :w]


def _rings_patch(rings: Iterable[npt.ArrayLike], shape: Sequence[int]) -> Patch:
    shp = _check_shape(shape)
    arrays = [_as_points(r, "a polygon ring", 1) for r in rings]
    if not arrays:
        return _empty_patch()
    _group, rows, starts, ends = _ring_spans(arrays, shp)
    return _fill_spans(rows, starts, ends, shp)


def rings_mask_in_bbox(rings: Iterable[npt.ArrayLike], shape: Sequence[int]) -> MaskPatch:
    """Rasterise several rings together with the even-odd rule, allocating only their bounding box.

    Each ring is an (N, 2) array of ``[x, y]`` vertices, implicitly closed. Use this for a polygon
    with holes (outer ring + hole rings) and for ``geometry.mask_to_polygons`` output.
    """
    shp = _check_shape(shape)
    y0, x0, bits = _rings_patch(rings, shp)
    return MaskPatch(x0, y0, bits, shp)


def rasterize_rings(rings: Iterable[npt.ArrayLike], shape: Sequence[int]) -> BoolMask:
    """Full-frame (H, W) bool mask of several rings under the even-odd rule."""
    shp = _check_shape(shape)
    return _to_full(_rings_patch(rings, shp), shp)


def polygon_mask_in_bbox(points: npt.ArrayLike, shape: Sequence[int]) -> MaskPatch:
    """Rasterise one polygon into a ``MaskPatch`` that only allocates its bounding box.

    Needed for 16k x 16k frames: cost is proportional to the rows and area the polygon touches.
    Degenerate polygons (fewer than 3 vertices, zero area) cover nothing.
    """
    return rings_mask_in_bbox([points], shape)


def rasterize_polygon(points: npt.ArrayLike, shape: Sequence[int]) -> BoolMask:
    """Full-frame (H, W) bool mask of the pixels whose centre lies in the polygon (even-odd)."""
    return rasterize_rings([points], shape)


# --- boxes --------------------------------------------------------------------------------------
def _box_patch(box: Sequence[float], shape: Shape) -> Patch:
    if len(box) != 4 or not all(np.isfinite(v) for v in box):
        raise ValidationError(f"a box needs four finite numbers [x0, y0, x1, y1], got {list(box)}")
    height, width = shape
    # The box [x0, x1) x [y0, y1) on pixel centres: x0 <= c + 0.5 < x1, y0 <= r + 0.5 < y1.
    lo = _first_centre_at_or_after(np.array([box[0], box[1]], dtype=np.float64))
    hi = _first_centre_at_or_after(np.array([box[2], box[3]], dtype=np.float64))
    c0, r0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    c1, r1 = min(int(hi[0]), width), min(int(hi[1]), height)
    if c1 <= c0 or r1 <= r0:
        return _empty_patch()
    return r0, c0, np.ones((r1 - r0, c1 - c0), dtype=bool)


def rasterize_box(box: Sequence[float], shape: Sequence[int]) -> BoolMask:
    """Pixels whose centre lies in ``[x0, x1) x [y0, y1)``: the polygon rule applied to a rectangle."""
    shp = _check_shape(shape)
    return _to_full(_box_patch(box, shp), shp)


# --- brush --------------------------------------------------------------------------------------
def _window(
    lo_xy: tuple[float, float], hi_xy: tuple[float, float], radius: float
) -> tuple[int, int, int, int]:
    """Columns [c0, c1) and rows [r0, r1) whose centres may lie within ``radius`` of the box."""
    lo = _first_centre_at_or_after(np.array(lo_xy, dtype=np.float64) - radius)
    hi = _first_centre_after(np.array(hi_xy, dtype=np.float64) + radius)
    return int(lo[0]), int(hi[0]), int(lo[1]), int(hi[1])


def _capsules_patch(points: FloatArray, radius: float, shape: Shape) -> Patch:
    """Centres within ``radius`` of the polyline ``points`` (a single point: a disc)."""
    if not np.isfinite(radius) or radius < 0:
        raise ValidationError(f"a brush radius must be a finite number >= 0, got {radius}")
    height, width = shape
    c0, c1, r0, r1 = _window(tuple(points.min(axis=0)), tuple(points.max(axis=0)), radius)
    c0, r0, c1, r1 = max(c0, 0), max(r0, 0), min(c1, width), min(r1, height)
    if c1 <= c0 or r1 <= r0:
        return _empty_patch()
    px = np.arange(c0, c1, dtype=np.float64)[None, :] + 0.5
    py = np.arange(r0, r1, dtype=np.float64)[:, None] + 0.5
    r2 = radius * radius
    bits = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    pts = points.tolist()
    for i, (ax, ay) in enumerate(pts):
        # Each vertex's disc is computed as (p - a)^2 exactly like a single dab, so a stroke's ends
        # agree with ``brush_dab`` to the last bit. Only the window around it is touched.
        wc0, wc1, wr0, wr1 = _window((ax, ay), (ax, ay), radius)
        wc0, wr0 = max(wc0, c0) - c0, max(wr0, r0) - r0
        wc1, wr1 = min(wc1, c1) - c0, min(wr1, r1) - r0
        if wc1 > wc0 and wr1 > wr0:
            qx = px[:, wc0:wc1] - ax
            qy = py[wr0:wr1, :] - ay
            bits[wr0:wr1, wc0:wc1] |= qx * qx + qy * qy <= r2
        if i + 1 == len(pts):
            break
        bx, by = pts[i + 1]
        ex, ey = bx - ax, by - ay
        length2 = ex * ex + ey * ey
        if length2 == 0.0:
            continue
        wc0, wc1, wr0, wr1 = _window((min(ax, bx), min(ay, by)), (max(ax, bx), max(ay, by)), radius)
        wc0, wr0 = max(wc0, c0) - c0, max(wr0, r0) - r0
        wc1, wr1 = min(wc1, c1) - c0, min(wr1, r1) - r0
        if wc1 <= wc0 or wr1 <= wr0:
            continue
        qx = px[:, wc0:wc1] - ax
        qy = py[wr0:wr1, :] - ay
        dot = qx * ex + qy * ey
        cross = qx * ey - qy * ex
        # Within the slab of the segment and within R of its line; compared without a division.
        bits[wr0:wr1, wc0:wc1] |= (dot >= 0) & (dot <= length2) & (cross * cross <= r2 * length2)
    return _crop(r0, c0, bits)


def brush_dab(center_xy: Sequence[float], radius: float, shape: Sequence[int]) -> Patch:
    """One dab: ``(y0, x0, bits)`` where ``bits`` is the minimal crop of the centres within ``radius``.

    Clipped to the frame; a dab covering no pixel returns ``(0, 0, 0x0 array)``.
    """
    shp = _check_shape(shape)
    pts = _as_points([list(center_xy)], "a brush dab", 1)
    return _capsules_patch(pts, float(radius), shp)


def stroke_patch(points: npt.ArrayLike, radius: float, shape: Sequence[int]) -> Patch:
    """Like ``rasterize_stroke`` but returns the minimal ``(y0, x0, bits)`` crop (for undo diffs)."""
    shp = _check_shape(shape)
    return _capsules_patch(_as_points(points, "a stroke", 1), float(radius), shp)


def rasterize_stroke(points: npt.ArrayLike, radius: float, shape: Sequence[int]) -> BoolMask:
    """Union of capsules along the polyline: centres within ``radius`` of any segment (no gaps)."""
    shp = _check_shape(shape)
    return _to_full(stroke_patch(points, radius, shp), shp)


# --- annotations --------------------------------------------------------------------------------
POLYLINE_RADIUS = 0.5  # a polyline covers centres within half a pixel of it (a 1-px wide line)


def _annotation_patch(annotation: Annotation, shape: Shape) -> Patch:
    kind = annotation.kind
    if kind is Kind.POLYGON and annotation.points is not None:
        return _rings_patch([annotation.points], shape)
    if kind is Kind.BOX and annotation.box is not None:
        return _box_patch(annotation.box, shape)
    if kind is Kind.MASK and annotation.mask is not None:
        mask = annotation.mask
        if tuple(mask.frame_shape) != shape:
            raise ValidationError(
                f"mask is for a {mask.frame_shape[1]}x{mask.frame_shape[0]} frame, not {shape[1]}x{shape[0]}"
            )
        return mask.y0, mask.x0, mask.bits
    if kind is Kind.POINT and annotation.points is not None:
        x, y = (float(v) for v in annotation.points[0])
        c, r = int(np.floor(x)), int(np.floor(y))  # the pixel [c, c+1) x [r, r+1) containing it
        if 0 <= c < shape[1] and 0 <= r < shape[0]:
            return r, c, np.ones((1, 1), dtype=bool)
        return _empty_patch()
    if kind is Kind.POLYLINE and annotation.points is not None:
        return _capsules_patch(_as_points(annotation.points, "a polyline", 1), POLYLINE_RADIUS, shape)
    if kind is Kind.CLASSIFICATION:
        return _empty_patch()  # a whole-image label has no pixels
    raise ValidationError(f"a {kind} annotation has no geometry to rasterise")


def rasterize_annotation(annotation: Annotation, shape: Sequence[int]) -> BoolMask:
    """Full-frame bool mask of one annotation by its kind.

    polygon: even-odd centre rule; box: ``[x0, x1) x [y0, y1)`` on centres; mask: the stored
    pixels; point: the one pixel containing it (none when outside); polyline: centres within 0.5
    of the line; classification: no pixels.
    """
    shp = _check_shape(shape)
    return _to_full(_annotation_patch(annotation, shp), shp)


def label_image(
    annotations: Iterable[Annotation], ontology: Ontology, shape: Sequence[int]
) -> npt.NDArray[np.uint16]:
    """Class-index map (H, W) uint16: 0 is background, class k is ``ontology.index_of(label)``.

    Later annotations paint over earlier ones. The caller passes one frame's annotations.
    """
    shp = _check_shape(shape)
    out = np.zeros(shp, dtype=np.uint16)
    for annotation in annotations:
        if annotation.kind is Kind.CLASSIFICATION:
            continue
        index = ontology.index_of(annotation.label)
        if index > np.iinfo(np.uint16).max:
            raise ValidationError(f"class index {index} does not fit a 16-bit label image")
        y0, x0, bits = _annotation_patch(annotation, shp)
        out[y0 : y0 + bits.shape[0], x0 : x0 + bits.shape[1]][bits] = index
    return out
