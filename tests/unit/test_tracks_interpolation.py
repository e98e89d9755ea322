"""Tracks: linear interpolation of boxes and polygons, outside frames, keyframes (app.core.tracks)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.annotations import Annotation, Kind
from app.core.commands import AddAnnotation, LabelDocument, UndoStack
from app.core.errors import ValidationError
from app.core.tracks import (
    FrameState,
    annotations_at,
    interpolate_points,
    keyframe_command,
    materialise_tracks,
    new_track_id,
    next_anchor_frame,
    polygon_correspondence,
    track_at,
    track_frames,
    track_summaries,
)

SQUARE = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])


def box(frame: int, b: tuple[float, float, float, float], **kw: object) -> Annotation:
    return Annotation(Kind.BOX, "car", frame, box=b, track_id=kw.pop("track_id", 1), **kw)  # type: ignore[arg-type]


def poly(frame: int, pts: np.ndarray, **kw: object) -> Annotation:
    return Annotation(Kind.POLYGON, "car", frame, points=pts, track_id=1, **kw)  # type: ignore[arg-type]


def test_box_between_two_keyframes_is_the_linear_blend_on_every_frame() -> None:
    a, b = (100.0, 50.0, 180.0, 120.0), (300.0, 20.0, 420.0, 200.0)
    frames = track_frames([box(10, a, id=1), box(50, b, id=2)])
    assert [f.frame for f in frames] == list(range(10, 51))
    for ann in frames[1:-1]:
        t = (ann.frame - 10) / 40
        assert ann.box == pytest.approx([p + (q - p) * t for p, q in zip(a, b, strict=True)], abs=1e-12)
        assert not ann.keyframe and ann.id is None and ann.track_id == 1
    assert frames[0].box == a and frames[-1].box == b and frames[0].keyframe


def test_translated_polygon_moves_vertex_for_vertex() -> None:
    mid = interpolate_points(SQUARE, SQUARE + np.array([20.0, 4.0]), 0.25)
    np.testing.assert_allclose(mid, SQUARE + np.array([5.0, 1.0]))


def test_other_start_vertex_and_direction_do_not_twist() -> None:
    # the same square moved, drawn from another corner and the other way round
    target = (SQUARE + np.array([30.0, 0.0]))[[2, 1, 0, 3]]
    mid = interpolate_points(SQUARE, target, 0.5)
    assert shapely.Polygon(mid).area == pytest.approx(100.0)
    assert shapely.Polygon(mid).equals(shapely.Polygon(SQUARE + np.array([15.0, 0.0])))


def test_different_vertex_counts_keep_both_outlines_exactly() -> None:
    octagon_square = np.array([[0, 0], [5, 0], [10, 0], [10, 5], [10, 10], [5, 10], [0, 10], [0, 5]], float)
    ca, cb = polygon_correspondence(SQUARE, octagon_square * 2 + 40)
    assert len(ca) == len(cb) == 8
    assert shapely.Polygon(ca).equals(shapely.Polygon(SQUARE))
    mid = interpolate_points(SQUARE, octagon_square * 2 + 40, 0.5)
    assert shapely.Polygon(mid).equals(shapely.Polygon(SQUARE * 1.5 + 20))


def test_triangle_to_square_area_changes_monotonically() -> None:
    triangle = np.array([[0.0, 0.0], [20.0, 0.0], [10.0, 15.0]])
    areas = [shapely.Polygon(interpolate_points(triangle, SQUARE, t)).area for t in np.linspace(0, 1, 11)]
    assert areas[0] == pytest.approx(150.0) and areas[-1] == pytest.approx(100.0)
    assert all(x >= y - 1e-9 for x, y in itertools.pairwise(areas))


ring = st.lists(
    st.tuples(st.floats(0, 500, allow_nan=False), st.floats(0, 500, allow_nan=False)), min_size=3, max_size=12
)


@settings(max_examples=60, deadline=None)
@given(a=ring, b=ring)
def test_correspondence_holds_every_vertex_of_both(
    a: list[tuple[float, float]], b: list[tuple[float, float]]
) -> None:
    pa, pb = np.asarray(a), np.asarray(b)
    ca, cb = polygon_correspondence(pa, pb)
    assert len(ca) == len(cb) <= len(pa) + len(pb)
    for source, out in ((pa, ca), (pb, cb)):
        distances = np.hypot(*(source[:, None, :] - out[None, :, :]).transpose(2, 0, 1)).min(axis=1)
        # a vertex may merge with a neighbour only where they are (nearly) in one place along the outline
        perimeter = float(np.hypot(*np.diff(np.vstack([source, source[:1]]), axis=0).T).sum())
        assert (distances <= 1e-6 * max(perimeter, 1.0) + 1e-9).all()


def test_outside_anchor_ends_the_object_until_the_next_anchor() -> None:
    a, b = (0.0, 0.0, 10.0, 10.0), (40.0, 0.0, 50.0, 10.0)
    track = [box(0, a, id=1), box(4, b, id=2, outside=True), box(8, b, id=3)]
    frames = track_frames(track)
    # held until it leaves at 4; nothing at 4..7; back at 8
    assert [f.frame for f in frames] == [0, 1, 2, 3, 8]
    assert all(f.box == a for f in frames[:4])
    assert track_at(track, 5) is None and track_at(track, 4) is None and track_at(track, 2) is not None
    assert [f.frame for f in track_frames(track, keep_outside=True)] == [0, 1, 2, 3, 4, 8]
    summary = track_summaries(track)[0]
    assert [summary.states[f] for f in range(9)] == [
        FrameState.KEYFRAME,
        *[FrameState.INTERPOLATED] * 3,
        *[FrameState.OUTSIDE] * 4,
        FrameState.KEYFRAME,
    ]


def test_occluded_and_attributes_come_from_the_anchor_before() -> None:
    track = [
        box(0, (0, 0, 10, 10), id=1, occluded=True, attributes={"colour": "red"}),
        box(4, (4, 0, 14, 10), id=2),
    ]
    mid = track_at(track, 2)
    assert (
        mid is not None and mid.occluded and mid.attributes == {"colour": "red"} and mid.box == (2, 0, 12, 10)
    )


def test_masks_are_not_interpolated_in_time() -> None:
    bits = np.zeros((8, 8), bool)
    bits[2:4, 2:4] = True
    mask = Annotation.from_dict({"kind": "mask", "label": "x", "mask": bits})
    track = [mask.evolve(frame=0, track_id=3, id=1), mask.evolve(frame=5, track_id=3, id=2)]
    assert [a.frame for a in track_frames(track)] == [0, 5]


def test_materialise_keeps_plain_annotations_and_expands_tracks_per_asset() -> None:
    plain = Annotation(Kind.POINT, "p", 2, points=np.array([[1.0, 1.0]]))
    t1 = [box(0, (0, 0, 4, 4), asset_id=1), box(3, (3, 0, 7, 4), asset_id=1)]
    t1_other_asset = [box(1, (0, 0, 4, 4), asset_id=2), box(2, (1, 0, 5, 4), asset_id=2)]
    out = materialise_tracks([plain, *t1, *t1_other_asset], frame_count=3)
    assert [(a.asset_id, a.frame) for a in out if a.track_id] == [(1, 0), (1, 1), (2, 1), (1, 2), (2, 2)]
    assert plain in out


def test_one_frame_holds_exactly_what_the_materialised_tracks_hold_there() -> None:
    """annotations_at (render) and materialise_tracks (every export) are one expansion."""
    bits = np.zeros((8, 8), bool)
    bits[2:4, 2:4] = True
    mask = Annotation.from_dict({"kind": "mask", "label": "m", "mask": bits})
    hexagon = np.array([[2.0, 1.0], [8.0, 0.0], [12.0, 5.0], [9.0, 11.0], [3.0, 10.0], [0.0, 5.0]])
    annotations = [
        Annotation(Kind.POINT, "p", 6, points=np.array([[1.0, 1.0]]), id=50),
        box(2, (0, 0, 4, 4), id=1),
        box(9, (20, 4, 30, 12), id=2),
        box(12, (22, 5, 31, 13), id=3, keyframe=False),
        poly(1, SQUARE, id=4).evolve(track_id=2),
        poly(7, hexagon, id=5, occluded=True).evolve(track_id=2),
        poly(10, hexagon, id=6, outside=True).evolve(track_id=2),
        poly(13, SQUARE + 5, id=7).evolve(track_id=2),
        mask.evolve(frame=3, track_id=3, id=8),
        mask.evolve(frame=8, track_id=3, id=9),
    ]

    def key(a: Annotation) -> tuple[object, ...]:
        return (a.frame, a.track_id, a.id, a.box, None if a.points is None else a.points.tolist(), a.occluded)

    every = materialise_tracks(annotations, frame_count=13)
    for frame in range(16):
        expected = [key(a) for a in every if a.frame == frame]
        assert [key(a) for a in annotations_at(annotations, frame, 13)] == expected, frame
    assert [key(a) for a in annotations_at(annotations, 13)] == [key(annotations[7])]  # no frame count
    # interpolated boxes and polygons, a held polygon before it leaves, no mask between its anchors
    assert [(a.track_id, a.id) for a in annotations_at(annotations, 5)] == [(1, None), (2, None)]
    assert [(a.track_id, a.id) for a in annotations_at(annotations, 8)] == [(1, None), (2, None), (3, 9)]
    assert [(a.track_id, a.id) for a in annotations_at(annotations, 11)] == [(1, None)]


def test_navigation_and_new_ids() -> None:
    track = [box(3, (0, 0, 4, 4)), box(9, (0, 0, 4, 4), keyframe=False), box(12, (0, 0, 4, 4))]
    assert next_anchor_frame(track, 3, +1) == 12
    assert next_anchor_frame(track, 3, +1, keyframes_only=False) == 9
    assert next_anchor_frame(track, 12, -1) == 3
    assert next_anchor_frame(track, 12, +1) is None
    assert new_track_id(track) == 2 and new_track_id([]) == 1


def test_editing_an_interpolated_frame_adds_one_undoable_keyframe() -> None:
    doc = LabelDocument((100, 100), frame_count=20)
    stack = UndoStack(doc)
    for ann in (box(0, (0, 0, 10, 10)), box(10, (50, 0, 60, 10))):
        stack.push(AddAnnotation(ann))
    shown = track_at([a for _, a in doc.all_annotations()], 5)
    assert shown is not None and not shown.keyframe
    stack.push(keyframe_command(doc, shown, shown.evolve(box=(30.0, 30.0, 40.0, 40.0)), None))
    stored = list(doc.annotations(5).values())
    assert len(stored) == 1 and stored[0].keyframe and stored[0].track_id == 1
    assert stored[0].box == (30.0, 30.0, 40.0, 40.0)
    stack.undo()
    assert not doc.annotations(5)


def test_editing_a_tracked_frame_turns_it_into_a_keyframe() -> None:
    doc = LabelDocument((100, 100), frame_count=20)
    stack = UndoStack(doc)
    add = AddAnnotation(box(4, (0, 0, 10, 10), keyframe=False, source="tracker:ncc"))
    stack.push(add)
    assert add.aid is not None
    tracked = doc.annotation(add.aid)
    stack.push(keyframe_command(doc, tracked, tracked.evolve(box=(1.0, 0.0, 11.0, 10.0)), add.aid))
    assert doc.annotation(add.aid).keyframe
    stack.undo()
    assert not doc.annotation(add.aid).keyframe


def test_plain_data_keeps_its_shape_and_carries_track_keys() -> None:
    plain = Annotation(Kind.BOX, "car", 0, box=(0, 0, 1, 1)).to_dict()
    assert "track_id" not in plain
    data = box(7, (0, 0, 1, 1), track_id=5, outside=True, keyframe=False).to_dict()
    assert (data["track_id"], data["keyframe"], data["outside"], data["occluded"]) == (5, False, True, False)
    back = Annotation.from_dict(data)
    assert back.track_state == (5, False, True, False) and back.same_content(
        box(7, (0, 0, 1, 1), track_id=5, outside=True, keyframe=False)
    )
    assert not back.same_content(back.evolve(outside=False))
    with pytest.raises(ValidationError):
        box(0, (0, 0, 1, 1), track_id=-1)
