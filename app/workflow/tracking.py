"""Propagate a box or a mask forward through a video (or a series) from the current frame.

Boxes: the OpenCV wheel we ship (opencv-python-headless 5.x) has no CSRT or KCF tracker (those are in
opencv-contrib), and its MIL tracker reports no confidence. So the box tracker is our own
**normalised cross-correlation (NCC) template matcher**: each frame searches a window around the
position predicted from the last motion, at three scales, with a template that adapts slowly to
appearance changes. The peak NCC score is the per-frame confidence (cross-checked against the
keyframe's own appearance so drift is noticed); tracking stops at the first frame whose
confidence falls below ``min_confidence``. When an OpenCV build has ``TrackerCSRT_create`` (contrib
wheels), ``engine="csrt"`` uses it for the position and the same NCC score for the confidence.

Masks: propagated with **dense optical flow** (``cv2.calcOpticalFlowFarneback``) computed on a padded
window around the mask: the mask is pulled along the backward flow (next -> previous frame). The
confidence is the share of mask pixels whose forward-then-backward flow returns within 1 px of its
start (a forward-backward consistency check); tracking stops below ``min_confidence`` or when the
mask shrinks away.

The work runs on a worker thread (the editor's ``ProgressJob``): ``progress(done, total)`` is called
per frame and returning False cancels, keeping the frames tracked so far.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.errors import ValidationError

Progress = Callable[[int, int], bool | None]
Box = tuple[float, float, float, float]
Gray = npt.NDArray[np.float32]
Engine = Literal["ncc", "csrt"]

TRACKER_SOURCE = "tracker:{engine}"
_SCALES = (1 / 1.04, 1.0, 1.04)
_TEMPLATE_RATE = 0.15  # share of the new appearance blended into the template per frame
_UPDATE_ABOVE = 0.65  # the template learns only from confident frames
DEFAULT_MIN_CONFIDENCE = 0.6  # real clips: a followed object scores >= 0.73, a scene cut ~0.5
_MIN_SIDE = 8  # boxes smaller than this (px) carry too little texture to match
_FLOW_PAD = 32


class FrameSource(Protocol):
    """What the tracker needs from a source (``app.sources.base.Source`` satisfies it)."""

    frame_count: int
    shape: tuple[int, int]

    def frame(self, index: int) -> np.ndarray: ...


class TrackingError(ValidationError):
    """The tracker cannot start (e.g. a box too small or outside the frame)."""


@dataclass(frozen=True)
class TrackStep:
    frame: int
    confidence: float
    box: Box | None = None
    mask: MaskPatch | None = None


@dataclass
class TrackResult:
    """Frames tracked after the start frame, and why tracking stopped."""

    steps: list[TrackStep] = field(default_factory=list)
    stopped: Literal["end", "low-confidence", "cancelled", "lost"] = "end"
    engine: str = "ncc"

    def annotations(self, key: Annotation, source: str | None = None) -> list[Annotation]:
        """The steps as tracked (``keyframe=False``) annotations of ``key``'s track; ``source``
        defaults to ``tracker:ENGINE`` (the editor keeps the labeler's own source instead)."""
        source = source or TRACKER_SOURCE.format(engine=self.engine)
        out: list[Annotation] = []
        for step in self.steps:
            changes: dict[str, Any] = {"box": step.box} if step.box is not None else {"mask": step.mask}
            out.append(
                key.evolve(
                    frame=step.frame,
                    id=None,
                    version=0,
                    keyframe=False,
                    outside=False,
                    source=source,
                    confidence=float(np.clip(step.confidence, 0.0, 1.0)),
                    **changes,
                )
            )
        return out


def _gray(frame: np.ndarray) -> Gray:
    import cv2

    arr = np.asarray(frame)
    if arr.ndim == 3 and arr.shape[2] >= 3:
        arr = cv2.cvtColor(np.ascontiguousarray(arr[..., :3]), cv2.COLOR_RGB2GRAY)
    elif arr.ndim == 3:
        arr = arr[..., 0]
    arr = arr.astype(np.float32, copy=False)
    lo, hi = float(arr.min()), float(arr.max())
    if arr.dtype != np.uint8 and hi > lo and (lo < 0.0 or hi > 255.0):  # CT/MR: to 0..255
        arr = (arr - lo) * (255.0 / (hi - lo))
    return np.ascontiguousarray(arr, dtype=np.float32)


def _ncc(a: Gray, b: Gray) -> float:
    """Zero-mean normalised cross-correlation of two same-sized patches (0 for flat ones)."""
    da, db = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((da * da).sum() * (db * db).sum()))
    return float((da * db).sum() / denom) if denom > 1e-6 else 0.0


def _crop(gray: Gray, box: Box) -> Gray:
    import cv2

    x0, y0, x1, y1 = box
    w, h = max(1, round(x1 - x0)), max(1, round(y1 - y0))
    centre = ((x0 + x1) / 2.0, (y0 + y1) / 2.0)
    return np.asarray(cv2.getRectSubPix(gray, (w, h), centre), dtype=np.float32)


def _resized(patch: Gray, shape: tuple[int, ...]) -> Gray:
    import cv2

    out = cv2.resize(patch, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)
    return np.asarray(out, dtype=np.float32)


def _clip_box(box: Box, shape: tuple[int, int]) -> Box | None:
    h, w = shape
    x0, y0, x1, y1 = max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3])
    return (x0, y0, x1, y1) if x1 - x0 >= 1 and y1 - y0 >= 1 else None


class _NccTracker:
    """Template matching in a search window at three scales (see the module doc)."""

    def __init__(self, gray: Gray, box: Box) -> None:
        self.box = box
        self.key = _crop(gray, box)  # the keyframe's appearance: the drift check
        self.template = self.key.copy()
        self.velocity = (0.0, 0.0)

    def step(self, gray: Gray) -> tuple[Box, float]:
        import cv2

        x0, y0, x1, y1 = self.box
        w, h = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2 + self.velocity[0], (y0 + y1) / 2 + self.velocity[1]
        margin = max(16.0, 0.5 * max(w, h))
        height, width = gray.shape
        sx0, sy0 = max(0, int(cx - w / 2 - margin)), max(0, int(cy - h / 2 - margin))
        sx1, sy1 = (
            min(width, int(np.ceil(cx + w / 2 + margin))),
            min(height, int(np.ceil(cy + h / 2 + margin))),
        )
        window = gray[sy0:sy1, sx0:sx1]
        best: tuple[float, Box] | None = None
        for scale in _SCALES:
            tw, th = max(_MIN_SIDE, round(w * scale)), max(_MIN_SIDE, round(h * scale))
            if tw > window.shape[1] or th > window.shape[0]:
                continue
            template = cv2.resize(self.template, (tw, th), interpolation=cv2.INTER_LINEAR)
            scores = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
            _, score, _, (mx, my) = cv2.minMaxLoc(scores)
            score *= 1.0 if scale == 1.0 else 0.995  # a scale change must earn its keep
            nx0, ny0 = sx0 + mx + (tw - w * scale) / 2, sy0 + my + (th - h * scale) / 2
            candidate = (nx0, ny0, nx0 + w * scale, ny0 + h * scale)
            if best is None or score > best[0]:
                best = (float(score), candidate)
        if best is None:  # the object ran into the border: nothing left to match
            return self.box, 0.0
        score, box = best
        patch = _crop(gray, box)
        key = _resized(self.key, patch.shape)
        # the adaptive template follows slow appearance change; the keyframe check stops drift
        confidence = min(score, 0.5 + 0.5 * max(_ncc(patch, key), 0.0)) if score > 0 else 0.0
        old = ((x0 + x1) / 2, (y0 + y1) / 2)
        new = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        self.velocity = (new[0] - old[0], new[1] - old[1])
        current = _resized(self.template, patch.shape)
        if confidence >= _UPDATE_ABOVE:  # never learn the look of what may be the wrong thing
            self.template = (1 - _TEMPLATE_RATE) * current + _TEMPLATE_RATE * patch
        else:
            self.template = current
        self.box = box
        return box, float(confidence)


class _CsrtTracker:  # pragma: no cover - only with opencv-contrib builds (not the wheel we ship)
    def __init__(self, frame: np.ndarray, box: Box) -> None:
        import cv2

        self._tracker = cv2.TrackerCSRT_create()  # type: ignore[attr-defined]
        x0, y0, x1, y1 = box
        self._tracker.init(frame, (round(x0), round(y0), round(x1 - x0), round(y1 - y0)))
        self.key = _crop(_gray(frame), box)

    def step(self, frame: np.ndarray, gray: Gray) -> tuple[Box, float]:

        ok, (x, y, w, h) = self._tracker.update(frame)
        if not ok or w <= 0 or h <= 0:
            return (0.0, 0.0, 1.0, 1.0), 0.0
        box = (float(x), float(y), float(x + w), float(y + h))
        patch = _crop(gray, box)
        key = _resized(self.key, patch.shape)
        return box, max(_ncc(patch, key), 0.0)


def csrt_available() -> bool:
    import cv2

    return hasattr(cv2, "TrackerCSRT_create")


def _frames_to_run(source: FrameSource, start: int, max_frames: int | None) -> int:
    if not 0 <= start < source.frame_count:
        raise TrackingError(f"frame {start} is outside the video (0..{source.frame_count - 1})")
    last = source.frame_count - 1 if max_frames is None else min(source.frame_count - 1, start + max_frames)
    return last - start


def track_box(
    source: FrameSource,
    start: int,
    box: Box,
    *,
    max_frames: int | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    engine: Engine = "ncc",
    progress: Progress | None = None,
) -> TrackResult:
    """Follow ``box`` (x0, y0, x1, y1 on frame ``start``) forward frame by frame (see module doc)."""
    clipped = _clip_box(box, source.shape)
    if clipped is None or min(clipped[2] - clipped[0], clipped[3] - clipped[1]) < _MIN_SIDE:
        raise TrackingError(
            f"a box to track must lie in the frame and be at least {_MIN_SIDE} px wide and tall"
        )
    if engine == "csrt" and not csrt_available():
        raise TrackingError("this OpenCV build has no CSRT tracker; use the built-in NCC tracker")
    total = _frames_to_run(source, start, max_frames)
    result = TrackResult(engine=engine)
    first = source.frame(start)
    ncc = _NccTracker(_gray(first), clipped) if engine == "ncc" else None
    csrt = _CsrtTracker(np.asarray(first), clipped) if engine == "csrt" else None
    for done, frame in enumerate(range(start + 1, start + 1 + total), 1):
        image = source.frame(frame)
        gray = _gray(image)
        if ncc is not None:
            found, confidence = ncc.step(gray)
        else:
            assert csrt is not None
            found, confidence = csrt.step(np.asarray(image), gray)
        placed = _clip_box(found, source.shape)
        if placed is None:
            result.stopped = "lost"
            break
        if confidence < min_confidence:
            result.stopped = "low-confidence"
            break
        result.steps.append(TrackStep(frame, confidence, box=placed))
        if progress is not None and progress(done, total) is False:
            result.stopped = "cancelled"
            break
    return result


def _flow(a: Gray, b: Gray) -> npt.NDArray[np.float32]:
    import cv2

    # An output array rather than None: OpenCV 4's stubs have no overload taking None here, 5's do.
    out = np.zeros((*a.shape[:2], 2), dtype=np.float32)
    flow = cv2.calcOpticalFlowFarneback(a.astype(np.uint8), b.astype(np.uint8), out, 0.5, 3, 21, 3, 5, 1.1, 0)
    return np.asarray(flow, dtype=np.float32)


def _propagate_mask(
    prev: Gray, nxt: Gray, mask: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.bool_], float]:
    """The mask moved from ``prev`` to ``nxt`` along the dense flow, and its consistency score."""
    import cv2

    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    y0, y1 = max(0, int(rows.min()) - _FLOW_PAD), min(height, int(rows.max()) + 1 + _FLOW_PAD)
    x0, x1 = max(0, int(cols.min()) - _FLOW_PAD), min(width, int(cols.max()) + 1 + _FLOW_PAD)
    a, b, m = prev[y0:y1, x0:x1], nxt[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    forward, backward = _flow(a, b), _flow(b, a)
    gy, gx = np.mgrid[0 : m.shape[0], 0 : m.shape[1]].astype(np.float32)
    # pull: the new mask at q is the old mask at q + backward(q)
    pulled = cv2.remap(m.astype(np.float32), gx + backward[..., 0], gy + backward[..., 1], cv2.INTER_LINEAR)
    # forward-backward check on the old mask's pixels: p -> p + F(p) -> + B(p + F(p)) should be p
    py, px = np.nonzero(m)
    qx, qy = px + forward[py, px, 0], py + forward[py, px, 1]
    back = cv2.remap(backward, qx.reshape(1, -1).astype(np.float32), qy.reshape(1, -1).astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]  # fmt: skip
    error = np.hypot(qx + back[:, 0] - px, qy + back[:, 1] - py)
    consistency = float(np.mean(error < 1.0)) if error.size else 0.0
    out = np.zeros_like(mask)
    out[y0:y1, x0:x1] = pulled >= 0.5
    return out, consistency


def track_mask(
    source: FrameSource,
    start: int,
    mask: MaskPatch,
    *,
    max_frames: int | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    progress: Progress | None = None,
) -> TrackResult:
    """Carry ``mask`` (on frame ``start``) forward with optical flow (see module doc)."""
    if tuple(mask.frame_shape) != tuple(source.shape):
        raise TrackingError("the mask does not fit the frames of this source")
    current = mask.to_full()
    key_area = int(current.sum())
    if key_area == 0:
        raise TrackingError("an empty mask cannot be tracked")
    total = _frames_to_run(source, start, max_frames)
    result = TrackResult(engine="flow")
    prev = _gray(source.frame(start))
    for done, frame in enumerate(range(start + 1, start + 1 + total), 1):
        nxt = _gray(source.frame(frame))
        current, confidence = _propagate_mask(prev, nxt, current)
        if current.sum() < 0.2 * key_area:  # flowed away or collapsed
            result.stopped = "lost"
            break
        if confidence < min_confidence:
            result.stopped = "low-confidence"
            break
        result.steps.append(TrackStep(frame, confidence, mask=MaskPatch.from_full(current)))
        prev = nxt
        if progress is not None and progress(done, total) is False:
            result.stopped = "cancelled"
            break
    return result


def track_forward(
    source: FrameSource,
    key: Annotation,
    *,
    max_frames: int | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    progress: Progress | None = None,
) -> tuple[list[Annotation], TrackResult]:
    """Track a box or mask annotation forward; returns tracked annotations of its track and the run.

    ``key`` must carry a ``track_id`` (the caller assigns a new one to an annotation outside a track).
    """
    if key.track_id is None:
        raise TrackingError("give the annotation a track before tracking it")
    if key.kind is Kind.BOX and key.box is not None:
        run = track_box(
            source,
            key.frame,
            key.box,
            max_frames=max_frames,
            min_confidence=min_confidence,
            progress=progress,
        )
    elif key.kind is Kind.MASK and key.mask is not None:
        run = track_mask(
            source,
            key.frame,
            key.mask,
            max_frames=max_frames,
            min_confidence=min_confidence,
            progress=progress,
        )
    else:
        raise TrackingError(f"only boxes and masks can be tracked, not a {key.kind.value}")
    return run.annotations(key), run
