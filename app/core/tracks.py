"""Object tracks across frames: keyframes, linear interpolation and the per-frame state of a track.

An annotation with a ``track_id`` belongs to a track (one object of a video or a series). The stored
annotations of a track are its *anchors*: keyframes (placed by a person) and tracked frames (tracker
output, ``keyframe=False``). Frames between two anchors are *interpolated* here, never stored.

Rules (the same in the editor, the timeline and every export):

* between two visible anchors of the same kind, boxes, points, polygons and polylines interpolate
  linearly; polygons of different vertex counts are matched by arc length (see
  :func:`polygon_correspondence`);
* an anchor with ``outside=True`` means the object left the view at that frame: the frames after it,
  up to the next anchor, have no annotation; the frames *before* an outside anchor hold the previous
  anchor's geometry (the object is still there until it leaves);
* a track ends at its last anchor (nothing is extended to the end of the video);
* masks are not interpolated in time (there is no sound linear blend of two masks): the frames
  between two mask anchors are empty until the tracker fills them (``app.workflow.tracking``), and
  slices of a series are filled with ``app.workflow.slice_interpolation``;
* an interpolated frame takes label, attributes, source, author and ``occluded`` from the anchor
  before it; it has no id and ``keyframe=False``. Editing one makes it a keyframe
  (:func:`keyframe_command`; the tools see interpolated annotations through
  :func:`shown_annotations`, under negative ids, and store one as an :class:`AddKeyframe` when the
  user drags it: the whole drag is one undo step).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from app.core.annotations import Annotation, Kind, Points
from app.core.commands import (
    REPLACE_ANNOTATION_ID,
    AddAnnotation,
    Command,
    LabelDocument,
    ReplaceAnnotation,
)
from app.core.errors import ValidationError

__all__ = [
    "AddKeyframe",
    "FrameState",
    "TrackSummary",
    "annotations_at",
    "interpolate_annotation",
    "interpolate_points",
    "interpolated_on",
    "is_interpolated_id",
    "keyframe_command",
    "materialise_tracks",
    "new_track_id",
    "next_anchor_frame",
    "polygon_correspondence",
    "shown_annotations",
    "track_at",
    "track_frames",
    "track_summaries",
]

_INTERPOLABLE = (Kind.BOX, Kind.POINT, Kind.POLYGON, Kind.POLYLINE)
_ALIGN_SAMPLES = 64  # samples used to choose start vertex and orientation (not the output count)
_SAME_PARAM = 1e-9


class FrameState(StrEnum):
    KEYFRAME = "keyframe"
    TRACKED = "tracked"  # stored, but placed by the tracker (keyframe=False)
    INTERPOLATED = "interpolated"
    OUTSIDE = "outside"


# --- polygons with vertex correspondence ------------------------------------------------------------
def _vertex_params(pts: Points, closed: bool) -> tuple[np.ndarray, float]:
    """Arc-length position of each vertex in [0, 1) (closed) or [0, 1] (open), and the length."""
    ring = np.vstack([pts, pts[:1]]) if closed else pts
    lengths = np.hypot(*np.diff(ring, axis=0).T)
    total = float(lengths.sum())
    n = len(pts)
    if total <= 0.0:  # all vertices on one spot: spread them evenly
        return (np.arange(n) / (n if closed else max(n - 1, 1))), 0.0
    cum = np.concatenate([[0.0], np.cumsum(lengths)]) / total
    return (cum[:n] if closed else cum), total


def _evaluate(pts: Points, closed: bool, params: np.ndarray, s: np.ndarray) -> Points:
    """Points at arc-length positions ``s`` along the (closed) polyline with vertex ``params``."""
    if closed:
        knots = np.concatenate([params, [1.0]])
        ring = np.vstack([pts, pts[:1]])
        s = np.mod(s, 1.0)
    else:
        knots, ring = params, pts
        s = np.clip(s, 0.0, 1.0)
    seg = np.clip(np.searchsorted(knots, s, side="right") - 1, 0, len(ring) - 2)
    span = knots[seg + 1] - knots[seg]
    t = np.divide(s - knots[seg], span, out=np.zeros_like(s), where=span > 0)
    return np.asarray(ring[seg] + (ring[seg + 1] - ring[seg]) * t[:, None], dtype=np.float64)


def polygon_correspondence(a: Sequence[Sequence[float]] | Points, b: Sequence[Sequence[float]] | Points,
                           *, closed: bool = True) -> tuple[Points, Points]:  # fmt: skip
    """Two point lists of one length whose i-th points correspond (for vertex-wise blending).

    Both shapes are parameterised by normalised arc length. The start and the direction of ``b``
    are chosen to minimise the summed squared distance to ``a`` over evenly spaced samples (so a
    polygon drawn from another corner or the other way round does not twist while it moves);
    translation does not change that choice. The output holds every vertex of ``a`` and every vertex
    of ``b`` (the union of their arc-length positions), so the blend equals ``a`` at t=0 and ``b`` at
    t=1 exactly, whatever the vertex counts. Shapes with the same vertex positions along the
    outline (e.g. a moved or scaled copy) correspond vertex for vertex.
    """
    pa, pb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if pa.ndim != 2 or pb.ndim != 2 or pa.shape[1] != 2 or pb.shape[1] != 2 or not len(pa) or not len(pb):
        raise ValidationError("polygon correspondence needs two non-empty (N, 2) point lists")
    par_a, _ = _vertex_params(pa, closed)
    m = max(_ALIGN_SAMPLES, 2 * max(len(pa), len(pb)))
    grid = np.arange(m) / m if closed else np.linspace(0.0, 1.0, m)
    sa = _evaluate(pa, closed, par_a, grid)
    best: tuple[float, Points, np.ndarray, float] | None = None
    for candidate in (pb, pb[::-1].copy()):
        par_b, _ = _vertex_params(candidate, closed)
        sb = _evaluate(candidate, closed, par_b, grid)
        if closed:
            # cost[k] = sum_i |sa[i] - sb[i + k]|^2 = const - 2 * sum_i sa[i] . sb[i + k]: one
            # circular cross-correlation (FFT) gives it for every cyclic shift k at once
            corr = sum(
                np.fft.irfft(np.conj(np.fft.rfft(sa[:, d])) * np.fft.rfft(sb[:, d]), n=m) for d in (0, 1)
            )
            costs = float((sa**2).sum() + (sb**2).sum()) - 2.0 * np.asarray(corr)
            k = int(np.argmin(costs))
            cost, shift = float(costs[k]), k / m
        else:
            cost, shift = float(((sa - sb) ** 2).sum()), 0.0
        if best is None or cost < best[0] - 1e-12:
            best = (cost, candidate, par_b, shift)
    assert best is not None
    _, pb, par_b, shift = best
    mine = np.mod(par_b - shift, 1.0) if closed else par_b
    union = np.unique(np.concatenate([par_a, mine]))
    keep = np.concatenate([[True], np.diff(union) > _SAME_PARAM])
    s = union[keep]
    if closed and len(s) > 1 and s[-1] > 1.0 - _SAME_PARAM:  # 1.0 is 0.0 again on a ring
        s = s[:-1]
    return _evaluate(pa, closed, par_a, s), _evaluate(pb, closed, par_b, s + shift)


def interpolate_points(a: Points, b: Points, t: float, *, closed: bool = True) -> Points:
    """The shape a fraction ``t`` of the way from ``a`` to ``b`` (see polygon_correspondence)."""
    if len(a) == len(b) and len(a) <= 1:
        out = a + (b - a) * t
    else:
        ca, cb = polygon_correspondence(a, b, closed=closed)
        out = ca + (cb - ca) * t
    out = np.asarray(out, dtype=np.float64)
    out.setflags(write=False)
    return out


# --- annotations ---------------------------------------------------------------------------------
class _Between:
    """Interpolates one pair of anchors; the vertex correspondence is worked out once per pair."""

    def __init__(self, before: Annotation, after: Annotation) -> None:
        if before.kind is not after.kind or before.kind not in _INTERPOLABLE:
            raise ValidationError(f"cannot interpolate a {before.kind} into a {after.kind}")
        self.before, self.after = before, after
        self._pair: tuple[Points, Points] | None = None
        if before.points is not None and after.points is not None:
            if len(before.points) == len(after.points) == 1:
                self._pair = (before.points, after.points)
            else:
                self._pair = polygon_correspondence(
                    before.points, after.points, closed=before.kind is Kind.POLYGON
                )

    def at(self, frame: int) -> Annotation:
        before, after = self.before, self.after
        if not before.frame < frame < after.frame:
            raise ValidationError(f"frame {frame} is not between keyframes {before.frame} and {after.frame}")
        t = (frame - before.frame) / (after.frame - before.frame)
        changes: dict[str, object] = {}
        if before.box is not None and after.box is not None:
            changes["box"] = tuple(a + (b - a) * t for a, b in zip(before.box, after.box, strict=True))
        elif self._pair is not None:
            ca, cb = self._pair
            points = np.asarray(ca + (cb - ca) * t, dtype=np.float64)
            points.setflags(write=False)
            changes["points"] = points
        return before.evolve(frame=frame, id=None, version=0, keyframe=False, confidence=None, **changes)


def interpolate_annotation(before: Annotation, after: Annotation, frame: int) -> Annotation:
    """The in-between annotation of a track at ``frame`` (before.frame < frame < after.frame)."""
    return _Between(before, after).at(frame)


def _anchors(track: Iterable[Annotation]) -> list[Annotation]:
    """A track's stored annotations by frame (one per frame: a later id replaces an earlier one)."""
    by_frame: dict[int, Annotation] = {}
    for ann in sorted(track, key=lambda a: (a.frame, a.id or 0)):
        by_frame[ann.frame] = ann
    return [by_frame[f] for f in sorted(by_frame)]


def _interpolable(before: Annotation, after: Annotation) -> bool:
    return before.kind is after.kind and before.kind in _INTERPOLABLE


def _gap(before: Annotation, after: Annotation, frames: Iterable[int] | None = None) -> Iterator[Annotation]:
    """What frames strictly between two anchors show, in order (frames showing nothing skipped).

    ``frames`` defaults to the whole gap. The one place a track's in-between frames are made: the
    exports (:func:`materialise_tracks`), render and the editor (:func:`track_at`) all come here.
    """
    wanted = range(before.frame + 1, after.frame) if frames is None else frames
    wanted = [f for f in wanted if before.frame < f < after.frame]
    if before.outside or not wanted:
        return
    if after.outside:  # still in view until it leaves: hold the last geometry
        for frame in wanted:
            yield before.evolve(frame=frame, id=None, version=0, keyframe=False, confidence=None)
    elif _interpolable(before, after):
        between = _Between(before, after)
        for frame in wanted:
            yield between.at(frame)


def track_frames(track: Iterable[Annotation], *, keep_outside: bool = False) -> list[Annotation]:
    """Every frame of one track from its first to its last anchor, anchors included, by frame.

    Outside anchors are left out unless ``keep_outside`` (they mark where the object is NOT).
    """
    anchors = _anchors(track)
    out: list[Annotation] = []
    for i, anchor in enumerate(anchors):
        if keep_outside or not anchor.outside:
            out.append(anchor)
        if i + 1 < len(anchors):
            out.extend(_gap(anchor, anchors[i + 1]))
    return out


def track_at(track: Iterable[Annotation], frame: int) -> Annotation | None:
    """The track's annotation at ``frame`` (stored or interpolated), None when it has none there:
    the frame ``frame`` of :func:`track_frames`, without expanding the others."""
    anchors = _anchors(track)
    for i, anchor in enumerate(anchors):
        if anchor.frame == frame:
            return None if anchor.outside else anchor
        if anchor.frame > frame:
            return None if i == 0 else next(_gap(anchors[i - 1], anchor, (frame,)), None)
    return None


_TrackKey = tuple[int | None, int]  # (asset id, track id): track ids are per asset


def _tracks(annotations: Iterable[Annotation]) -> tuple[list[Annotation], dict[_TrackKey, list[Annotation]]]:
    plain: list[Annotation] = []
    tracks: dict[_TrackKey, list[Annotation]] = defaultdict(list)
    for ann in annotations:
        if ann.track_id is None:
            plain.append(ann)
        else:
            tracks[(ann.asset_id, ann.track_id)].append(ann)
    return plain, tracks


def materialise_tracks(
    annotations: Iterable[Annotation], frame_count: int | None = None, *, keep_outside: bool = False
) -> list[Annotation]:
    """Annotations with every track expanded to real per-frame annotations (for exports).

    Plain annotations pass through unchanged; tracks are replaced by :func:`track_frames` (outside
    anchors dropped unless ``keep_outside``). Frames at or past ``frame_count`` are dropped. The
    result is ordered by frame, then plain annotations before tracks in their stored order.
    """
    plain, tracks = _tracks(annotations)
    out = list(plain)
    for key in sorted(tracks, key=lambda k: (k[0] or 0, k[1])):
        out.extend(track_frames(tracks[key], keep_outside=keep_outside))
    if frame_count is not None:
        out = [a for a in out if a.frame < frame_count]
    return sorted(out, key=lambda a: a.frame)  # stable: keeps the order within a frame


def annotations_at(
    annotations: Iterable[Annotation], frame: int, frame_count: int | None = None
) -> list[Annotation]:
    """What ``frame`` holds with every track expanded: exactly the frame ``frame`` of
    :func:`materialise_tracks` (same annotations, same order), without expanding the other frames.

    Headless render uses it, so a rendered frame shows what every export holds there.
    """
    if frame_count is not None and frame >= frame_count:
        return []
    plain, tracks = _tracks(annotations)
    out = [a for a in plain if a.frame == frame]
    for key in sorted(tracks, key=lambda k: (k[0] or 0, k[1])):
        shown = track_at(tracks[key], frame)
        if shown is not None:
            out.append(shown)
    return out


# --- the timeline's view of a track ------------------------------------------------------------------
@dataclass(frozen=True)
class TrackSummary:
    """Per frame state of one track, for the timeline (frames without an entry show nothing)."""

    track_id: int
    label: str
    kind: Kind
    states: Mapping[int, FrameState]

    @property
    def keyframes(self) -> list[int]:
        return sorted(f for f, s in self.states.items() if s is FrameState.KEYFRAME)

    @property
    def first(self) -> int:
        return min(self.states)

    @property
    def last(self) -> int:
        return max(self.states)


def track_summaries(annotations: Iterable[Annotation]) -> list[TrackSummary]:
    """One summary per track id, by id."""
    _, tracks = _tracks(annotations)
    out: list[TrackSummary] = []
    for (_, track_id), members in sorted(tracks.items(), key=lambda kv: kv[0][1]):
        anchors = _anchors(members)
        states: dict[int, FrameState] = {}
        for i, anchor in enumerate(anchors):
            if anchor.outside:
                states[anchor.frame] = FrameState.OUTSIDE
            else:
                states[anchor.frame] = FrameState.KEYFRAME if anchor.keyframe else FrameState.TRACKED
            if i + 1 < len(anchors):
                after = anchors[i + 1]
                shown = not anchor.outside and (after.outside or _interpolable(anchor, after))
                for frame in range(anchor.frame + 1, after.frame):
                    states[frame] = FrameState.INTERPOLATED if shown else FrameState.OUTSIDE
        out.append(TrackSummary(track_id, anchors[-1].label, anchors[-1].kind, states))
    return out


def next_anchor_frame(
    annotations: Iterable[Annotation], frame: int, step: int, *, keyframes_only: bool = True
) -> int | None:
    """The nearest keyframe (of any track) after ``frame`` (step > 0) or before it (step < 0)."""
    frames = {a.frame for a in annotations if a.track_id is not None and (a.keyframe or not keyframes_only)}
    ahead = [f for f in frames if (f - frame) * step > 0]
    if not ahead:
        return None
    return min(ahead) if step > 0 else max(ahead)


class AddKeyframe(AddAnnotation):
    """Stores an edited interpolated annotation as a keyframe. The ``ReplaceAnnotation`` commands of
    the same drag (same ``gesture``, same local id) merge into it, so the drag is one undo step."""

    id = REPLACE_ANNOTATION_ID

    def __init__(self, annotation: Annotation, gesture: int | None = None, text: str = "") -> None:
        super().__init__(annotation, text=text or f"Keyframe {annotation.frame}")
        self.gesture = gesture

    def merge_with(self, other: Command) -> bool:
        if (
            not isinstance(other, ReplaceAnnotation)
            or self.gesture is None
            or other.gesture != self.gesture
            or other.aid != self.aid
        ):
            return False
        self.annotation = other.after  # redo re-adds the shape the drag ended with
        return True


def keyframe_command(
    doc: LabelDocument, shown: Annotation, edited: Annotation, aid: int | None, gesture: int | None = None
) -> AddKeyframe | ReplaceAnnotation:
    """The command that records an edit of a track's annotation on one frame as a keyframe.

    ``shown`` is what the frame showed (``aid`` None: an interpolated one, not in the document),
    ``edited`` the new geometry. An interpolated frame becomes a new stored keyframe; a tracked frame
    is replaced by a keyframe. Later commands of the same ``gesture`` (a drag) merge into it.
    """
    if shown.track_id is None:
        raise ValidationError("only an annotation of a track can become a keyframe")
    after = edited.evolve(track_id=shown.track_id, keyframe=True, outside=False, frame=shown.frame)
    if aid is None:
        return AddKeyframe(after.evolve(id=None, version=0), gesture)
    return ReplaceAnnotation(aid, doc.annotation(aid), after, gesture, text=f"Keyframe {shown.frame}")


def interpolated_on(annotations: Iterable[Annotation], frame: int) -> list[Annotation]:
    """The tracks' interpolated annotations on ``frame`` (tracks with an anchor there show that)."""
    by_track: dict[int, list[Annotation]] = {}
    for ann in annotations:
        if ann.track_id is not None:
            by_track.setdefault(ann.track_id, []).append(ann)
    out: list[Annotation] = []
    for members in by_track.values():
        if any(a.frame == frame for a in members):
            continue  # stored here: that is what the frame shows
        shown = track_at(members, frame)
        if shown is not None:
            out.append(shown)
    return out


def is_interpolated_id(aid: int) -> bool:
    """Whether a local id from :func:`shown_annotations` names an interpolated (unstored) one."""
    return aid < 0


def shown_annotations(doc: LabelDocument, frame: int) -> dict[int, Annotation]:
    """What ``frame`` shows, in drawing order: the stored annotations by local id, then the tracks'
    interpolated ones under ids -1, -2, ... (never stored; editing one adds a keyframe)."""
    shown = dict(doc.annotations(frame))
    extra = interpolated_on((a for _, a in doc.all_annotations()), frame)
    shown.update({-(i + 1): ann for i, ann in enumerate(extra)})
    return shown


def new_track_id(annotations: Iterable[Annotation]) -> int:
    """One more than the largest track id in use (ids start at 1)."""
    return max((a.track_id for a in annotations if a.track_id is not None), default=0) + 1
