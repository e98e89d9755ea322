"""The Qt-free undo model: diffs, merging, depth, clean state, document events."""

from __future__ import annotations

import numpy as np

from app.core.annotations import Annotation, Kind
from app.core.commands import (
    AddAnnotation,
    LabelDocument,
    PaintCommand,
    RemoveAnnotation,
    ReplaceAnnotation,
    UndoStack,
)
from app.core.raster import stroke_patch


def poly(label: str = "a") -> Annotation:
    return Annotation(kind=Kind.POLYGON, label=label, points=np.array([[1.0, 1], [8, 1], [8, 8]]))


def test_paint_undo_redo_exact_and_events() -> None:
    doc = LabelDocument((20, 30))
    events: list[tuple[int, object]] = []
    doc.listeners.append(lambda f, b: events.append((f, b)))
    stack = UndoStack(doc)
    before = np.random.default_rng(0).integers(0, 3, (20, 30)).astype(np.uint16)
    doc.label_map(0)[:] = before
    patch = stroke_patch([[3.0, 3.0], [20.0, 10.0]], 2.5, doc.shape)
    stack.push(PaintCommand(0, [patch], 7))
    after = doc.label_map(0).copy()
    y0, x0, bits = patch
    expected = before.copy()
    expected[y0 : y0 + bits.shape[0], x0 : x0 + bits.shape[1]][bits] = 7
    np.testing.assert_array_equal(after, expected)
    stack.undo()
    np.testing.assert_array_equal(doc.label_map(0), before)
    stack.redo()
    np.testing.assert_array_equal(doc.label_map(0), after)
    assert len(events) == 3 and all(f == 0 and b is not None for f, b in events)


def test_paint_without_change_is_not_an_undo_step() -> None:
    doc = LabelDocument((10, 10))
    stack = UndoStack(doc)
    doc.label_map(0)[:] = 4
    stack.push(PaintCommand(0, [stroke_patch([[5.0, 5.0]], 2, doc.shape)], 4))
    assert len(stack) == 0 and not stack.can_undo


def test_stroke_on_huge_map_stores_only_a_diff() -> None:
    doc = LabelDocument((16384, 16384))
    stack = UndoStack(doc)
    # A diagonal drag (its bounding box is most of the map) sampled like pointer events.
    xs = np.arange(100.0, 16001.0, 25.0)
    patches = [stroke_patch([[a, a], [a + 25, a + 25]], 3.0, doc.shape) for a in xs[:-1]]
    cmd = PaintCommand(0, patches, 1)
    stack.push(cmd)
    area = cmd.changed_count
    length = float(np.hypot(15900, 15900))
    assert area <= (2 * 3.0 + 1) * (length + 7)  # the stroke's own area bound
    assert cmd.nbytes <= 10 * area  # int32 y, int32 x, uint16 old per changed pixel
    assert cmd.nbytes < doc.label_map(0).nbytes / 300
    stack.undo()
    assert not doc.label_map(0)[90:200, 90:200].any()


def test_compact_blob_uses_packed_bits() -> None:
    doc = LabelDocument((300, 300))
    cmd = PaintCommand(0, [stroke_patch([[150.0, 150.0]], 100.0, doc.shape)], 2)
    UndoStack(doc).push(cmd)
    assert cmd.nbytes < cmd.changed_count * 3  # 2 bytes of old value + 1 bit per pixel of bbox


def test_annotation_add_remove_replace_keep_order() -> None:
    doc = LabelDocument((10, 10))
    stack = UndoStack(doc)
    cmds = [AddAnnotation(poly(s)) for s in "abc"]
    for c in cmds:
        stack.push(c)
    ids = [c.aid for c in cmds]
    assert list(doc.annotations(0)) == ids
    stack.push(RemoveAnnotation(ids[1]))
    assert list(doc.annotations(0)) == [ids[0], ids[2]]
    stack.undo()
    assert list(doc.annotations(0)) == ids
    assert ids[0] is not None
    old = doc.annotation(ids[0])
    stack.push(ReplaceAnnotation(ids[0], old, old.evolve(label="z")))
    assert doc.annotation(ids[0]).label == "z"
    stack.undo()
    assert doc.annotation(ids[0]).label == "a"


def test_merging_by_gesture_and_clean_state() -> None:
    doc = LabelDocument((10, 10))
    stack = UndoStack(doc)
    add = AddAnnotation(poly())
    stack.push(add)
    assert add.aid is not None
    aid = add.aid
    stack.set_clean()
    start = doc.annotation(aid)
    for step in range(1, 6):
        cur = doc.annotation(aid)
        stack.push(ReplaceAnnotation(aid, cur, cur.evolve(points=start.points + step), gesture=9))
    assert len(stack) == 2 and not stack.is_clean
    stack.undo()
    assert stack.is_clean and doc.annotation(aid).same_content(start)
    cur = doc.annotation(aid)
    stack.push(ReplaceAnnotation(aid, cur, cur.evolve(points=start.points + 1), gesture=10))
    cur = doc.annotation(aid)
    stack.push(ReplaceAnnotation(aid, cur, start, gesture=10))  # dragged back: the step vanishes
    assert len(stack) == 1 and stack.is_clean


def test_depth_limit_and_callbacks() -> None:
    doc = LabelDocument((10, 10))
    stack = UndoStack(doc, max_depth=3)
    calls: list[int] = []
    stack.changed.append(lambda: calls.append(stack.index))
    for s in "abcde":
        stack.push(AddAnnotation(poly(s)))
    assert len(stack) == 3 and stack.clean_index is None
    while stack.can_undo:
        stack.undo()
    assert [a.label for a in doc.annotations(0).values()] == ["a", "b"]
    assert calls[-1] == 0 and len(calls) == 8
    stack.push(AddAnnotation(poly("x")))
    assert not stack.can_redo and len(stack) == 1
