"""Slice interpolation of masks on a CT series: smooth areas, a linear-radius reference, one undo step.

The series is ``app.sources.synthetic.build_ct_series`` (20 real 512x512 CT slices written as a
shuffled multi-file DICOM series) opened through the DICOM reader. Discs are painted with the
brush rasteriser, the way the editor paints. Tolerance: the interpolated slice's equivalent radius
sqrt(area / pi) is within 1 px of the linear blend of the two drawn radii.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from app.core.commands import LabelDocument, PaintCommand, UndoStack
from app.core.raster import brush_dab
from app.sources.opening import open_source
from app.sources.synthetic import build_ct_series
from app.workflow.slice_interpolation import (
    SliceInterpolationError,
    drawn_slices,
    fill_command,
    interpolate_pair,
    interpolate_slices,
    sdf_interpolation,
    slice_interpolation_command,
)

LIVER = 2


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[int, int], int]:
    folder: Path = tmp_path_factory.mktemp("ct")
    build_ct_series(folder, n=20)
    with open_source(folder) as source:
        assert source.kind == "dicom" and source.frame_count == 20
        return source.shape, source.frame_count


def _paint_disc(stack: UndoStack, frame: int, centre: tuple[float, float], radius: float, value: int) -> None:
    stack.push(PaintCommand(frame, [brush_dab(centre, radius, stack.doc.shape)], value))


def test_areas_grow_smoothly_and_match_linear_radius(series: tuple[tuple[int, int], int]) -> None:
    shape, frames = series
    doc = LabelDocument(shape, frames)
    stack = UndoStack(doc)
    _paint_disc(stack, 3, (250.0, 260.0), 15.0, LIVER)
    _paint_disc(stack, 13, (270.0, 240.0), 60.0, LIVER)  # larger and moved a little
    depth = len(stack)

    stack.push(slice_interpolation_command(doc, LIVER))
    assert len(stack) == depth + 1  # ONE undo step for all nine slices
    areas = [int((doc.label_map(f) == LIVER).sum()) for f in range(3, 14)]
    assert all(b > a for a, b in itertools.pairwise(areas)), areas  # monotonic small -> large
    for k, frame in enumerate(range(4, 13), 1):
        radius = np.sqrt(areas[frame - 3] / np.pi)
        assert abs(radius - (15.0 + (60.0 - 15.0) * k / 10)) <= 1.0, (frame, radius)
        ys, xs = np.nonzero(doc.label_map(frame) == LIVER)  # the centre travels along the line too
        assert (
            abs(xs.mean() + 0.5 - (250 + 20 * k / 10)) <= 1.0
            and abs(ys.mean() + 0.5 - (260 - 20 * k / 10)) <= 1.0
        )
    assert not doc.has_label_map(2) or not doc.label_map(2).any()  # nothing outside the drawn range

    stack.undo()
    assert all(not doc.has_label_map(f) or not doc.label_map(f).any() for f in range(4, 13))
    stack.redo()
    assert int((doc.label_map(8) == LIVER).sum()) == areas[5]


def test_a_moving_structure_travels_where_the_signed_distance_blend_loses_it() -> None:
    yy, xx = np.mgrid[0:128, 0:160]
    a = (xx + 0.5 - 30) ** 2 + (yy + 0.5 - 64) ** 2 <= 100
    b = (xx + 0.5 - 130) ** 2 + (yy + 0.5 - 64) ** 2 <= 100
    ours = interpolate_pair(a, b, 3)
    assert [int(m.sum()) for m in ours] == [int(a.sum())] * 3
    assert [round(float(np.nonzero(m)[1].mean()) + 0.5) for m in ours] == [55, 80, 105]
    assert int(sdf_interpolation(a, b, 0.5).sum()) == 0  # the peer: the disc vanishes mid-way


def test_two_regions_pair_up_and_a_lone_one_shrinks_away() -> None:
    yy, xx = np.mgrid[0:100, 0:200]
    disc = lambda cx, r: (xx + 0.5 - cx) ** 2 + (yy + 0.5 - 50) ** 2 <= r * r  # noqa: E731
    a = disc(40, 10) | disc(150, 20)
    b = disc(45, 14)
    mid = interpolate_pair(a, b, 1)[0]
    left, right = mid[:, :100], mid[:, 100:]
    assert np.pi * 11**2 < left.sum() < np.pi * 13**2  # paired: between r=10 and r=14
    assert 0 < right.sum() < np.pi * 20**2 / 2  # unpaired: shrinking towards its centre


def test_fill_keeps_other_classes_and_drawn_slices(series: tuple[tuple[int, int], int]) -> None:
    shape, frames = series
    doc = LabelDocument(shape, frames)
    stack = UndoStack(doc)
    _paint_disc(stack, 0, (100.0, 100.0), 20.0, LIVER)
    _paint_disc(stack, 4, (100.0, 100.0), 20.0, LIVER)
    _paint_disc(stack, 2, (100.0, 100.0), 5.0, 7)  # another structure in the way
    fill = interpolate_slices(drawn_slices(doc, LIVER))
    assert sorted(fill.masks) == [1, 2, 3] and fill.engine == "morphological"
    stack.push(fill_command(doc, fill, LIVER))
    assert (doc.label_map(2)[97:103, 97:103] == 7).all()
    assert (doc.label_map(2) == LIVER).sum() > 0


def test_refusals_and_cancel() -> None:
    one = np.zeros((32, 32), bool)
    one[10:20, 10:20] = True
    with pytest.raises(SliceInterpolationError, match="at least two"):
        interpolate_slices({3: one})
    with pytest.raises(SliceInterpolationError, match="next to each other"):
        interpolate_slices({3: one, 4: one})
    fill = interpolate_slices({0: one, 3: one, 9: one}, progress=lambda done, total: False)
    assert fill.cancelled and sorted(fill.masks) == [1, 2]
