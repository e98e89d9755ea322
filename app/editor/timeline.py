"""The track timeline under the canvas, and the track actions (track forward, interpolate slices).

One row per object track: a diamond per keyframe, a solid bar where the tracker placed the object,
a lighter bar where the frame is interpolated, nothing where it is outside the view. The current
frame is a vertical line; a click (or drag) seeks. Alt+Left / Alt+Right jump between keyframes.

The canvas shows the interpolated annotations of the current frame dotted (the editing controller
draws app.core.tracks.shown_annotations); dragging one with the select tool, or with the tool of its
kind, stores it as a keyframe with the dragged shape in one undo step (app.core.tools.editing). The
panel redraws them when a change on another frame moves them, and offers, as undoable commands on
the edit session:

* Make keyframe (Ctrl+K): the frame's interpolated / tracked annotations become keyframes as they
  are (an edited frame of a track is a keyframe anyway);
* Object leaves view here (Ctrl+Shift+X): an ``outside`` keyframe for the selected track;
* Track forward (Ctrl+T): the selected box or mask is followed through the next frames on a worker
  (progress and cancel), stopping where the tracker's confidence drops; one undo step;
* Interpolate slices (Ctrl+I): the current class's label-map slices between drawn ones are filled
  (morphological contour interpolation on a worker); one undo step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QLabel, QProgressDialog, QSizePolicy, QVBoxLayout, QWidget

from app.core.annotations import Annotation, Kind
from app.core.commands import AddAnnotation, Command, ReplaceAnnotation
from app.core.conversions import MacroCommand
from app.core.errors import SitelabelError
from app.core.tracks import (
    FrameState,
    TrackSummary,
    interpolated_on,
    new_track_id,
    next_anchor_frame,
    track_at,
    track_summaries,
)
from app.editor.actions import Binding
from app.editor.workers import ProgressJob

if TYPE_CHECKING:
    from app.api import Project
    from app.editor.canvas import Canvas
    from app.editor.editing_controller import EditingController
    from app.sources import Source
    from app.workflow.tracking import TrackResult

Work = Callable[[Callable[[int, int], bool]], object]
ROW, HEADER, LEFT = 18, 16, 96  # px: track row height, frame ruler height, track-name column
_BG, _RULER, _TEXT, _CURSOR = "#16171a", "#2b2d31", "#c8c8c8", "#ffd24d"


class TimelineWidget(QWidget):
    """Paints track summaries over the frames; emits ``frame_requested`` on click or drag."""

    frame_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tracks: list[TrackSummary] = []
        self.colors: dict[str, str] = {}
        self.frame_count = 1
        self.current = 0
        self.setMouseTracking(False)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the canvas and the window

    def set_tracks(self, tracks: Sequence[TrackSummary], frame_count: int, colors: dict[str, str]) -> None:
        self.tracks, self.frame_count, self.colors = list(tracks), max(1, frame_count), colors
        self.updateGeometry()
        self.update()

    def set_current(self, frame: int) -> None:
        self.current = frame
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(600, HEADER + ROW * max(1, len(self.tracks)) + 4)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, HEADER + ROW + 4)

    # --- geometry ----------------------------------------------------------------------------------
    def _x(self, frame: float) -> float:
        width = max(1, self.width() - LEFT - 8)
        return LEFT + width * frame / self.frame_count

    def frame_at(self, x: float) -> int:
        width = max(1, self.width() - LEFT - 8)
        return max(0, min(self.frame_count - 1, int((x - LEFT) * self.frame_count / width)))

    # --- painting ----------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(_BG))
        p.fillRect(QRectF(0, 0, self.width(), HEADER), QColor(_RULER))
        p.setPen(QColor(_TEXT))
        step = self._tick_step()
        for frame in range(0, self.frame_count, step):
            x = self._x(frame)
            p.drawLine(QPointF(x, HEADER - 4), QPointF(x, HEADER))
            p.drawText(QPointF(x + 2, HEADER - 4), str(frame))
        if not self.tracks:
            p.drawText(QRectF(LEFT, HEADER, self.width() - LEFT, ROW), Qt.AlignmentFlag.AlignVCenter,
                       "no tracks: select a box and press Ctrl+T to track it")  # fmt: skip
        for row, track in enumerate(self.tracks):
            self._paint_track(p, track, HEADER + row * ROW)
        x = self._x(self.current + 0.5)
        p.setPen(QPen(QColor(_CURSOR), 2))
        p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        p.end()

    def _tick_step(self) -> int:
        per_tick = 60.0 * self.frame_count / max(1, self.width() - LEFT)  # a label every ~60 px
        for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
            if step >= per_tick:
                return step
        return 10000

    def _paint_track(self, p: QPainter, track: TrackSummary, top: float) -> None:
        color = QColor(self.colors.get(track.label, "#ffcc00"))
        p.setPen(QColor(_TEXT))
        name = f"{track.track_id} {track.label}"
        p.drawText(QRectF(4, top, LEFT - 8, ROW), Qt.AlignmentFlag.AlignVCenter, name)
        faint = QColor(color)
        faint.setAlpha(90)
        unit = self._x(1) - self._x(0)
        for frame, state in sorted(track.states.items()):
            x0 = self._x(frame)
            if state is FrameState.INTERPOLATED:
                p.fillRect(QRectF(x0, top + 6, max(unit, 1.0), ROW - 12), faint)
            elif state is FrameState.TRACKED:
                p.fillRect(QRectF(x0, top + 4, max(unit, 1.0), ROW - 8), color)
        p.setPen(QPen(QColor("#000000"), 1))
        for frame, state in track.states.items():
            if state is FrameState.KEYFRAME:
                self._diamond(p, self._x(frame + 0.5), top + ROW / 2, color)
            elif state is FrameState.OUTSIDE and track.states.get(frame - 1) is not FrameState.OUTSIDE:
                p.setPen(QPen(QColor("#ff6b6b"), 2))
                p.drawLine(QPointF(self._x(frame), top + 3), QPointF(self._x(frame), top + ROW - 3))
                p.setPen(QPen(QColor("#000000"), 1))

    @staticmethod
    def _diamond(p: QPainter, x: float, y: float, color: QColor) -> None:
        r = 5.0
        p.setBrush(color)
        p.drawPolygon(QPolygonF([QPointF(x, y - r), QPointF(x + r, y), QPointF(x, y + r), QPointF(x - r, y)]))

    # --- seeking -----------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and event.position().x() >= LEFT:
            self.frame_requested.emit(self.frame_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton and event.position().x() >= LEFT:
            frame = self.frame_at(event.position().x())
            if frame != self.current:
                self.frame_requested.emit(frame)


class TrackPanel(QWidget):
    """The timeline plus the track actions; wired by the main window (see the module doc)."""

    frame_requested = Signal(int)

    def __init__(
        self,
        project: Project,
        canvas: Canvas,
        editing: EditingController,
        source_of: Callable[[], tuple[Any, Source] | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.project, self.canvas, self.editing, self.source_of = project, canvas, editing, source_of
        self.timeline = TimelineWidget(self)
        self.status = QLabel(self)
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # track and class names come from people
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.timeline, 1)
        layout.addWidget(self.status)
        self.colors = {c.name: c.color for c in project.ontology.classes}
        self.frame = 0
        self.frame_count = 1
        self.selected: int | None = None
        self.job: ProgressJob | None = None
        self.progress: QProgressDialog | None = None
        self.timeline.frame_requested.connect(self.frame_requested)
        editing.session_opened.connect(self._session_opened)
        editing.selection_changed.connect(self._selected)

    # --- following the editor ------------------------------------------------------------------------
    def _session_opened(self, session: Any) -> None:
        self.selected = None
        self.frame_count = session.doc.frame_count
        session.doc.listeners.append(self._document_changed)
        self.refresh()

    def _selected(self, aid: object) -> None:
        self.selected = aid if isinstance(aid, int) else None

    def _document_changed(self, frame: int, bbox: object) -> None:
        self.refresh()

    def frame_shown(self, asset_id: int, frame: int) -> None:
        self.frame = frame
        self.timeline.set_current(frame)
        self._show_interpolated()

    def _all(self) -> list[tuple[int, Annotation]]:
        session = self.editing.session
        return [] if session is None else session.doc.all_annotations()

    def refresh(self) -> None:
        annotations = [a for _, a in self._all()]
        self.timeline.set_tracks(track_summaries(annotations), self.frame_count, self.colors)
        self._show_interpolated()

    def interpolated_here(self) -> list[Annotation]:
        """The tracks' interpolated annotations on the current frame (not stored in the document)."""
        return interpolated_on((a for _, a in self._all()), self.frame)

    def _show_interpolated(self) -> None:
        session = self.editing.session
        if session is not None and self.frame < session.doc.frame_count:
            self.editing.refresh_annotations()  # a keyframe elsewhere may move this frame's ones

    # --- actions ---------------------------------------------------------------------------------------
    def bindings(self) -> list[Binding]:
        m, t = "&Tracks", "sitelabel.tracks."
        return [
            Binding(t + "next_keyframe", m, "Next keyframe", "Alt+Right", lambda: self.jump(1)),
            Binding(t + "previous_keyframe", m, "Previous keyframe", "Alt+Left", lambda: self.jump(-1)),
            Binding(
                t + "make_keyframe",
                m,
                "Make keyframe (interpolated / tracked frame)",
                "Ctrl+K",
                self.make_keyframe,
            ),
            Binding(t + "outside", m, "Object leaves view here (outside)", "Ctrl+Shift+X", self.mark_outside),
            Binding(
                t + "track_forward", m, "Track forward (selected box or mask)", "Ctrl+T", self.track_forward
            ),
            Binding(
                t + "interpolate_slices",
                m,
                "Interpolate slices (current class)",
                "Ctrl+I",
                self.interpolate_slices,
            ),
        ]

    def _say(self, text: str) -> None:
        self.status.setText(text)

    def _push(self, command: Command) -> None:
        session = self.editing.session
        if session is not None:
            session.stack.push(command)

    def jump(self, step: int) -> None:
        target = next_anchor_frame([a for _, a in self._all()], self.frame, step)
        if target is None:
            self._say("no keyframe that way")
        else:
            self.frame_requested.emit(target)

    def make_keyframe(self) -> None:
        commands: list[Command] = []
        for ann in self.interpolated_here():
            commands.append(AddAnnotation(ann.evolve(keyframe=True), text="Make keyframe"))
        session = self.editing.session
        if session is not None:
            for aid, ann in session.doc.annotations(self.frame).items():
                if ann.track_id is not None and not ann.keyframe:
                    commands.append(
                        ReplaceAnnotation(aid, ann, ann.evolve(keyframe=True), text="Make keyframe")
                    )
        if not commands:
            self._say("nothing to turn into a keyframe on this frame")
            return
        self._push(MacroCommand(commands, f"Make {len(commands)} keyframe(s) on frame {self.frame}"))

    def _selected_track(self) -> Annotation | None:
        session = self.editing.session
        if session is None or self.selected is None:
            return None
        try:
            return session.doc.annotation(self.selected)
        except SitelabelError:
            return None

    def mark_outside(self) -> None:
        key = self._selected_track()
        if key is None or key.track_id is None:
            self._say("select an annotation of a track first")
            return
        if key.frame == self.frame:
            self._push(ReplaceAnnotation(self.selected or 0, key, key.evolve(outside=True, keyframe=True)))
        else:
            shown = track_at([a for _, a in self._all() if a.track_id == key.track_id], self.frame) or key
            self._push(AddAnnotation(shown.evolve(frame=self.frame, outside=True, keyframe=True, id=None)))
        self._say(f"track {key.track_id} leaves the view at frame {self.frame}")

    def track_forward(self) -> None:
        key = self._selected_track()
        loaded = self.source_of()
        if key is None or key.kind not in (Kind.BOX, Kind.MASK) or loaded is None:
            self._say("select a box or a mask on this frame to track it")
            return
        if self.job is not None:
            return
        _, source = loaded
        aid = self.selected
        assigned = key.track_id is None
        if assigned:
            key = key.evolve(track_id=new_track_id(a for _, a in self._all()))

        def work(progress: Callable[[int, int], bool]) -> object:
            from app.workflow.tracking import track_forward

            return track_forward(source, key, progress=progress)

        def done(result: object) -> None:
            assert isinstance(result, tuple)
            tracked: list[Annotation] = result[0]
            run: TrackResult = result[1]
            occupied = {a.frame for _, a in self._all() if a.track_id == key.track_id}
            commands: list[Command] = []
            if assigned and aid is not None:
                commands.append(ReplaceAnnotation(aid, self._selected_track() or key, key))
            commands += [
                AddAnnotation(a.evolve(source=key.source)) for a in tracked if a.frame not in occupied
            ]
            if commands:
                self._push(MacroCommand(commands, f"Track forward ({len(tracked)} frames)"))
            last = tracked[-1].frame if tracked else key.frame
            self._say(f"tracked {len(tracked)} frame(s) to {last}; stopped: {run.stopped}")

        self._run("Tracking...", work, done)

    def interpolate_slices(self) -> None:
        session = self.editing.session
        if session is None or self.job is not None:
            return
        from app.workflow.slice_interpolation import drawn_slices, fill_command, interpolate_slices

        index, label = self.editing.tools.class_index, self.editing.tools.label
        drawn = drawn_slices(session.doc, index)  # snapshot on the UI thread; the worker reads only this

        def work(progress: Callable[[int, int], bool]) -> object:
            return interpolate_slices(drawn, progress=progress)

        def done(result: object) -> None:
            if self.editing.session is session:
                self._push(fill_command(session.doc, result, index, label))  # type: ignore[arg-type]
                self._say(f"filled {len(result.masks)} slice(s) of {label or 'the class'}")  # type: ignore[attr-defined]

        self._run("Interpolating slices...", work, done)

    def _run(self, title: str, work: Work, done: Callable[[object], None]) -> None:
        from PySide6.QtCore import QThreadPool

        job = ProgressJob(work)
        dialog = QProgressDialog(title, "Cancel", 0, 0, self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(400)
        dialog.canceled.connect(lambda: setattr(job, "cancelled", True))

        def progressed(done_count: int, total: int) -> None:
            dialog.setMaximum(total)
            dialog.setValue(done_count)

        job.signals.progressed.connect(progressed)

        def finish(result: object) -> None:
            self.job, self.progress = None, None
            dialog.reset()
            done(result)

        def failed(message: str) -> None:
            self.job, self.progress = None, None
            dialog.reset()
            self._say(message)

        job.signals.done.connect(finish)
        job.signals.failed.connect(failed)
        self.job, self.progress = job, dialog
        QThreadPool.globalInstance().start(job)
