"""Fill the slices between drawn mask slices of a series (morphological contour interpolation).

The brief's choice was SimpleITK's ``MorphologicalContourInterpolator``; the SimpleITK wheels we
ship (2.5) do not contain it (it is an ITK remote module), so when the running SimpleITK lacks it
(checked with ``hasattr``) we use our own implementation of the same method (Albu et al. 2008, as in
ITK's filter in its distance-transform mode), in numpy + scipy:

* connected regions of two drawn slices are paired by overlap (else by nearest centroid);
* a pair is aligned on its centroids, so a region that moves between the slices travels along
  the straight line instead of fading out in one place and in at another;
* the slice a fraction ``t`` of the way is the *morphological interpolation* of the aligned pair:
  with ``I`` their intersection and ``U`` their union, a pixel of ``U`` belongs to it when its
  distance to ``I`` and its distance to the outside of ``U`` are in the ratio ``t : 1-t`` (at
  t = 1/2 this is the morphological median of Meyer / Albu). For concentric discs the radius grows
  exactly linearly;
* a region with no partner shrinks to its centre (extrapolation).

The result becomes ONE undoable command on the label document (:func:`fill_command`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from app.core.annotations import BoolMask
from app.core.commands import Command, LabelDocument, PaintCommand
from app.core.conversions import MacroCommand
from app.core.errors import ValidationError

Progress = Callable[[int, int], bool | None]
Engine = Literal["auto", "morphological", "sitk"]
_Float = npt.NDArray[np.float64]


class SliceInterpolationError(ValidationError):
    """Nothing to interpolate (fewer than two drawn slices, or no gap between them)."""


@dataclass(frozen=True)
class SliceFill:
    """In-between masks by frame, and which slices they were interpolated from."""

    masks: Mapping[int, BoolMask]
    drawn: tuple[int, ...]
    engine: str
    cancelled: bool = False


def sitk_available() -> bool:
    import SimpleITK as sitk  # noqa: N813 - the library's own spelling

    return hasattr(sitk, "MorphologicalContourInterpolator")


# --- the morphological interpolation of two aligned regions --------------------------------------
def _edt(mask: BoolMask, border: bool = False) -> _Float:
    """Distance of each set pixel to the nearest unset one; beyond the array counts as ``border``
    (scipy alone would treat the edge as set, so a shape cut by the edge would look far from it)."""
    from scipy import ndimage

    padded = np.pad(mask, 1, constant_values=border)
    return np.asarray(ndimage.distance_transform_edt(padded), dtype=np.float64)[1:-1, 1:-1]


def _blend(a: BoolMask, b: BoolMask, t: float) -> BoolMask:
    """The region a fraction ``t`` of the way from ``a`` to ``b`` (both in one aligned frame)."""
    inter, union = a & b, a | b
    if not inter.any():  # nothing shared even after alignment: fall back to signed distances
        return _sdf_blend(a, b, t)
    to_inter = _edt(~inter, border=True)  # distance of each pixel to the intersection
    to_outside = _edt(union)  # distance of each union pixel to the outside of the union
    only_a, only_b = a & ~b, b & ~a
    out = inter.copy()
    out |= only_a & (t * to_inter <= (1 - t) * to_outside)
    out |= only_b & ((1 - t) * to_inter <= t * to_outside)
    return out


def _sdf(mask: BoolMask) -> _Float:
    """Signed distance: negative inside, positive outside (pixel centres)."""
    return _edt(~mask, border=True) - _edt(mask)


def _sdf_blend(a: BoolMask, b: BoolMask, t: float) -> BoolMask:
    return np.asarray(((1 - t) * _sdf(a) + t * _sdf(b)) < 0, dtype=bool)


def sdf_interpolation(a: BoolMask, b: BoolMask, t: float) -> BoolMask:
    """The naive peer (shape-based interpolation): a linear blend of signed distance maps."""
    return _sdf_blend(np.asarray(a, bool), np.asarray(b, bool), t)


def _shrink(region: BoolMask, t: float) -> BoolMask:
    """A region with no partner at a fraction ``t`` of the way to vanishing at its centre."""
    depth = _edt(region)
    return np.asarray(depth > t * float(depth.max()), dtype=bool)


@dataclass(frozen=True, eq=False)
class _Region:
    """One connected region of a drawn slice: its bounding-box crop and centroid (frame coords)."""

    y0: int
    x0: int
    bits: BoolMask
    cy: float
    cx: float


def _regions(mask: BoolMask) -> list[_Region]:
    from scipy import ndimage

    labels, _ = ndimage.label(mask)
    out: list[_Region] = []
    for index, found in enumerate(ndimage.find_objects(labels), 1):
        if found is None:
            continue
        ys, xs = found
        bits = labels[ys, xs] == index
        ry, rx = np.nonzero(bits)
        out.append(
            _Region(ys.start, xs.start, bits, ys.start + float(ry.mean()), xs.start + float(rx.mean()))
        )
    return out


def _overlap(a: _Region, b: _Region) -> int:
    y0, x0 = max(a.y0, b.y0), max(a.x0, b.x0)
    y1 = min(a.y0 + a.bits.shape[0], b.y0 + b.bits.shape[0])
    x1 = min(a.x0 + a.bits.shape[1], b.x0 + b.bits.shape[1])
    if y1 <= y0 or x1 <= x0:
        return 0
    ca = a.bits[y0 - a.y0 : y1 - a.y0, x0 - a.x0 : x1 - a.x0]
    cb = b.bits[y0 - b.y0 : y1 - b.y0, x0 - b.x0 : x1 - b.x0]
    return int((ca & cb).sum())


def _pairs(ra: list[_Region], rb: list[_Region]) -> list[tuple[_Region | None, _Region | None]]:
    """Pair regions greedily: the largest overlaps first, then the nearest centroids; the rest stay
    single (they shrink away)."""
    candidates = sorted(
        (-_overlap(a, b), float(np.hypot(a.cy - b.cy, a.cx - b.cx)), i, j)
        for i, a in enumerate(ra)
        for j, b in enumerate(rb)
    )
    free_a, free_b = set(range(len(ra))), set(range(len(rb)))
    pairs: list[tuple[_Region | None, _Region | None]] = []
    for _, _, i, j in candidates:
        if i in free_a and j in free_b:
            free_a.discard(i)
            free_b.discard(j)
            pairs.append((ra[i], rb[j]))
    pairs.extend((ra[i], None) for i in sorted(free_a))
    pairs.extend((None, rb[j]) for j in sorted(free_b))
    return pairs


def _paste(out: BoolMask, y0: int, x0: int, bits: BoolMask) -> None:
    """OR ``bits`` into ``out`` at (y0, x0), clipped to the frame (a structure may leave it)."""
    h, w = out.shape
    sy0, sx0 = max(0, -y0), max(0, -x0)
    dy0, dx0 = max(0, y0), max(0, x0)
    dy1, dx1 = min(h, y0 + bits.shape[0]), min(w, x0 + bits.shape[1])
    if dy1 > dy0 and dx1 > dx0:
        out[dy0:dy1, dx0:dx1] |= bits[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]


def _pair_at(a: _Region, b: _Region, t: float, out: BoolMask) -> None:
    """Move both regions onto the centroid the structure has at ``t``, blend, paste into ``out``."""
    ty, tx = a.cy + (b.cy - a.cy) * t, a.cx + (b.cx - a.cx) * t
    ay, ax = a.y0 + round(ty - a.cy), a.x0 + round(tx - a.cx)
    by, bx = b.y0 + round(ty - b.cy), b.x0 + round(tx - b.cx)
    # a canvas just holding both: distances only matter inside their union
    y0, x0 = min(ay, by), min(ax, bx)
    y1 = max(ay + a.bits.shape[0], by + b.bits.shape[0])
    x1 = max(ax + a.bits.shape[1], bx + b.bits.shape[1])
    ca = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    cb = np.zeros_like(ca)
    ca[ay - y0 : ay - y0 + a.bits.shape[0], ax - x0 : ax - x0 + a.bits.shape[1]] = a.bits
    cb[by - y0 : by - y0 + b.bits.shape[0], bx - x0 : bx - x0 + b.bits.shape[1]] = b.bits
    _paste(out, y0, x0, _blend(ca, cb, t))


def interpolate_pair(a: BoolMask, b: BoolMask, count: int) -> list[BoolMask]:
    """``count`` evenly spaced in-between masks from ``a`` to ``b`` (our morphological method)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise SliceInterpolationError("the drawn slices differ in size")
    pairs = _pairs(_regions(a), _regions(b))  # regions and pairs once per gap, not per slice
    out: list[BoolMask] = []
    for k in range(1, count + 1):
        t = k / (count + 1)
        mask = np.zeros_like(a)
        for ra, rb in pairs:
            if ra is not None and rb is not None:
                _pair_at(ra, rb, t, mask)
            elif ra is not None:
                _paste(mask, ra.y0, ra.x0, _shrink(ra.bits, t))
            elif rb is not None:
                _paste(mask, rb.y0, rb.x0, _shrink(rb.bits, 1 - t))
        out.append(mask)
    return out


def _sitk_fill(
    drawn: Mapping[int, BoolMask], shape: tuple[int, int]
) -> dict[int, BoolMask]:  # pragma: no cover
    """SimpleITK's filter where the build has it (not the wheels we ship: see the module doc)."""
    import SimpleITK as sitk  # noqa: N813 - the library's own spelling

    first, last = min(drawn), max(drawn)
    volume = np.zeros((last - first + 1, *shape), dtype=np.uint8)
    for frame, mask in drawn.items():
        volume[frame - first] = mask
    image = sitk.GetImageFromArray(volume)
    result = sitk.GetArrayFromImage(sitk.MorphologicalContourInterpolator(image, axis=2))  # type: ignore[attr-defined]
    return {first + i: result[i] > 0 for i in range(len(result)) if first + i not in drawn}


def interpolate_slices(
    drawn: Mapping[int, BoolMask], *, engine: Engine = "auto", progress: Progress | None = None
) -> SliceFill:
    """Masks for every slice strictly between consecutive drawn slices (``drawn``: frame -> mask).

    Slices that already hold a drawing are never changed. ``progress(done, total)`` per gap;
    returning False stops and returns what was filled so far (``cancelled=True``).
    """
    frames = sorted(f for f, m in drawn.items() if np.asarray(m).any())
    if len(frames) < 2:
        raise SliceInterpolationError("draw the structure on at least two slices to fill the ones between")
    gaps = [(a, b) for a, b in itertools.pairwise(frames) if b - a > 1]
    if not gaps:
        raise SliceInterpolationError(
            "the drawn slices are next to each other: there is nothing between them"
        )
    use_sitk = engine == "sitk" or (engine == "auto" and sitk_available())
    if engine == "sitk" and not sitk_available():
        raise SliceInterpolationError("this SimpleITK has no MorphologicalContourInterpolator")
    if use_sitk:  # pragma: no cover - see _sitk_fill
        shape = np.asarray(drawn[frames[0]]).shape
        sitk_masks = _sitk_fill({f: np.asarray(drawn[f], bool) for f in frames}, (shape[0], shape[1]))
        return SliceFill(sitk_masks, tuple(frames), "sitk")
    masks: dict[int, BoolMask] = {}
    for done, (a, b) in enumerate(gaps, 1):
        for offset, mask in enumerate(interpolate_pair(drawn[a], drawn[b], b - a - 1), 1):
            masks[a + offset] = mask
        if progress is not None and progress(done, len(gaps)) is False:
            return SliceFill(masks, tuple(frames), "morphological", cancelled=True)
    return SliceFill(masks, tuple(frames), "morphological")


# --- the label document side ------------------------------------------------------------------------
def drawn_slices(doc: LabelDocument, class_index: int) -> dict[int, BoolMask]:
    """Frame -> mask of ``class_index`` for every frame whose label map holds that class.

    Take this snapshot on the UI thread; :func:`interpolate_slices` can then run on a worker.
    """
    out: dict[int, BoolMask] = {}
    for frame in range(doc.frame_count):
        if doc.has_label_map(frame):
            mask = doc.label_map(frame) == class_index
            if mask.any():
                out[frame] = mask
    return out


def fill_command(doc: LabelDocument, fill: SliceFill, class_index: int, label: str = "") -> Command:
    """ONE undoable step painting every in-between mask with ``class_index``.

    Pixels that already hold another class are left alone (the fill never paints over a neighbour
    structure); slices that got a drawing meanwhile are skipped.
    """
    commands: list[Command] = []
    for frame in sorted(fill.masks):
        if doc.has_label_map(frame) and (doc.label_map(frame) == class_index).any():
            continue
        mask = np.asarray(fill.masks[frame], dtype=bool)
        if doc.has_label_map(frame):
            mask = mask & (doc.label_map(frame) == 0)
        if mask.any():
            commands.append(PaintCommand(frame, [(0, 0, mask)], class_index, text="Interpolate slices"))
    name = f" ({label})" if label else ""
    return MacroCommand(commands, text=f"Interpolate {len(commands)} slices{name}")


def slice_interpolation_command(doc: LabelDocument, class_index: int, **options: Any) -> Command:
    """Snapshot, interpolate and build the command in one call (tests, scripts, small series)."""
    fill = interpolate_slices(drawn_slices(doc, class_index), **options)
    return fill_command(doc, fill, class_index)
