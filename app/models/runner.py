"""Run a verified model on numpy frames: preprocessing, batching, tiling, and output decoding.

* **Preprocessing** follows the manifest: channels (gray/RGB/BGR from the source's gray or RGB
  frames), then the DICOM window, a value range or a scale, then mean/std.
* **Segmentation** returns per-class probability maps at the frame's size. Large frames, and
  every frame for a fixed-size model, are cut into overlapping tiles whose probabilities are
  blended with weights that fall off linearly over the overlap (no seams); a frame smaller than
  a fixed input is padded by edge replication.
* **Detection** (YOLO-style) letterboxes the frame to the input size, decodes ``yolov8``
  (``(N, 4 + classes, anchors)``) or ``yolov5`` (``(N, anchors, 5 + classes)``, with objectness)
  boxes, and suppresses overlaps per class with NMS in numpy.
* **Classification** resizes the frame to the input size and returns per-class scores.

Batches hold up to ``batch_size`` frames or tiles of one shape. Everything here works on numpy
arrays only; onnxruntime is imported when a runner is made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from app.models.errors import ModelError
from app.models.manifest import Manifest
from app.models.registry import LoadedModel

FloatImage = npt.NDArray[np.float32]
Cancel = Callable[[], bool]
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_MAX_FULL_PIXELS = 1024 * 1024  # a fully convolutional model sees frames up to this size whole


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image coordinates
    score: float


@dataclass(frozen=True, slots=True)
class FramePrediction:
    """One frame's result; which fields are filled depends on the task."""

    task: str
    shape: tuple[int, int]
    probabilities: Mapping[str, FloatImage] = field(default_factory=dict)  # segmentation
    detections: tuple[Detection, ...] = ()  # detection
    scores: Mapping[str, float] = field(default_factory=dict)  # classification


# --- preprocessing ------------------------------------------------------------------------------------
def resolve_window(manifest: Manifest, window: tuple[float, float] | None) -> tuple[float, float] | None:
    """The numeric window to apply: the caller's (a resolved preset or the file's own) or the manifest's."""
    spec = manifest.normalise.window
    if spec is None:
        return None
    if window is not None:
        return (float(window[0]), float(window[1]))
    if isinstance(spec, str):
        raise ModelError(
            f"model {manifest.ref} wants the DICOM window {spec!r}; resolve it to [centre, width] first"
        )
    return spec


def preprocess(
    frame: npt.ArrayLike, manifest: Manifest, window: tuple[float, float] | None = None
) -> FloatImage:
    """A frame as float32 (H, W, C) with the manifest's channels and normalisation applied."""
    arr = np.asarray(frame)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ModelError(f"model {manifest.ref}: a frame must be (H, W) or (H, W, C), got {arr.shape}")
    img = arr.astype(np.float32, copy=False)
    if img.shape[2] in (2, 4):  # drop alpha
        img = img[:, :, : img.shape[2] - 1]
    if manifest.channels == 1 and img.shape[2] == 3:
        img = (img @ _LUMA)[:, :, None]
    elif manifest.channels == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if manifest.channel_order == "bgr":
        img = img[:, :, ::-1]
    norm = manifest.normalise
    win = resolve_window(manifest, window)
    if win is not None:
        low = np.float32(win[0] - win[1] / 2.0)
        img = np.clip((img - low) / np.float32(win[1]), 0.0, 1.0)
    elif norm.range is not None:
        low, high = np.float32(norm.range[0]), np.float32(norm.range[1])
        img = np.clip((img - low) / (high - low), 0.0, 1.0)
    elif norm.scale is not None:
        img = img / np.float32(norm.scale)
    if norm.mean:
        img = img - np.asarray(norm.mean, dtype=np.float32)
    if norm.std:
        img = np.divide(img, np.asarray(norm.std, dtype=np.float32), dtype=np.float32)
    return np.ascontiguousarray(img, dtype=np.float32)


def uncertainty(probability: npt.ArrayLike) -> FloatImage:
    """1 where the model could not decide (p = 0.5), 0 where it was sure (p = 0 or 1)."""
    p = np.asarray(probability, dtype=np.float32)
    return (1.0 - 2.0 * np.abs(p - 0.5)).astype(np.float32)


# --- tiling -----------------------------------------------------------------------------------------
def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` covering ``length`` with at least ``overlap`` in common."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(length: int, overlap: int) -> npt.NDArray[np.float32]:
    """Blend weights along one tile axis: rising over the overlap at both ends, never zero."""
    if overlap <= 0:
        return np.ones(length, dtype=np.float32)
    i = np.arange(length, dtype=np.float32)
    return np.minimum(1.0, np.minimum(i + 1, length - i) / np.float32(overlap + 1)).astype(np.float32)


# --- numpy NMS ----------------------------------------------------------------------------------------
def nms(boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou_threshold: float) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression, highest score first."""
    order = np.argsort(-scores, kind="stable")
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0)
        h = np.maximum(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
        order = rest[overlap <= iou_threshold]
    return keep


def _activate(values: npt.NDArray[np.float32], activation: str, axis: int) -> npt.NDArray[np.float32]:
    if activation == "sigmoid":
        return (1.0 / (1.0 + np.exp(-values))).astype(np.float32)
    if activation == "softmax":
        shifted = values - values.max(axis=axis, keepdims=True)
        e = np.exp(shifted)
        return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)
    return values.astype(np.float32, copy=False)


def _resize(img: FloatImage, height: int, width: int) -> FloatImage:
    import cv2

    out = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    return (out[:, :, None] if out.ndim == 2 else out).astype(np.float32, copy=False)


class Runner:
    """A verified model with its onnxruntime session. Not thread-safe per call; make one per worker."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        providers: list[str] | None = None,
        threads: int | None = None,
        batch_size: int = 4,
    ) -> None:
        self.model = model
        self.manifest = model.manifest
        self.session = model.session(providers=providers, threads=threads)
        shape = self.session.get_inputs()[0].shape
        fixed_batch = shape[0] if shape and isinstance(shape[0], int) and shape[0] > 0 else None
        self.batch_size = fixed_batch or max(1, int(batch_size))
        self._fixed_batch = fixed_batch

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    # --- raw runs ---------------------------------------------------------------------------------
    def _run(self, batch: Sequence[FloatImage]) -> npt.NDArray[np.float32]:
        """Run (H, W, C) float32 images of one shape; returns the first output, batch first."""
        stacked = np.stack(batch)
        if self.manifest.layout == "NCHW":
            stacked = stacked.transpose(0, 3, 1, 2)
        stacked = np.ascontiguousarray(stacked, dtype=np.float32)
        if self._fixed_batch is not None and len(batch) < self._fixed_batch:
            pad = np.repeat(stacked[-1:], self._fixed_batch - len(batch), axis=0)
            stacked = np.concatenate([stacked, pad])
        try:
            (out,) = self.session.run(self.model.output_names[:1], {self.model.input_name: stacked})
        except Exception as exc:  # onnxruntime's own exception types
            text = str(exc).strip().splitlines()
            raise ModelError(f"model {self.manifest.ref} failed: {text[0][:300] if text else exc}") from None
        return np.asarray(out, dtype=np.float32)[: len(batch)]

    def _batched(
        self, items: Sequence[FloatImage], cancel: Cancel | None
    ) -> list[npt.NDArray[np.float32]] | None:
        results: list[npt.NDArray[np.float32]] = []
        for start in range(0, len(items), self.batch_size):
            if cancel is not None and cancel():
                return None
            results.extend(self._run(items[start : start + self.batch_size]))
        return results

    # --- public -------------------------------------------------------------------------------------
    def predict(
        self,
        frames: Sequence[npt.ArrayLike],
        *,
        window: tuple[float, float] | None = None,
        cancel: Cancel | None = None,
    ) -> list[FramePrediction]:
        """Predictions for frames; an empty list when ``cancel()`` said stop."""
        images = [preprocess(f, self.manifest, window) for f in frames]
        task = self.manifest.task
        if task == "segmentation":
            result = self._segment(images, cancel)
        elif task == "detection":
            result = self._detect(images, cancel)
        else:
            result = self._classify(images, cancel)
        return result or []

    def _class_maps(self, out: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One output (C, H, W) or (H, W, C) after activation, as (C, H, W)."""
        chw = out if self.manifest.layout == "NCHW" else out.transpose(2, 0, 1)
        if chw.ndim != 3:
            raise ModelError(f"model {self.manifest.ref}: a segmentation output must be 4-D, got {out.shape}")
        return _activate(chw, self.manifest.activation, axis=0)

    def _segment(self, images: Sequence[FloatImage], cancel: Cancel | None) -> list[FramePrediction] | None:
        m = self.manifest
        fixed = m.size
        plans: list[tuple[int, int, list[tuple[int, int, int, int]]]] = []  # (H, W, tile boxes)
        tiles: list[FloatImage] = []
        for img in images:
            h, w = img.shape[:2]
            if fixed is None and h * w <= max(_MAX_FULL_PIXELS, m.tile * m.tile):
                plans.append((h, w, [(0, 0, h, w)]))
                tiles.append(img)
                continue
            th, tw = fixed if fixed is not None else (min(m.tile, h), min(m.tile, w))
            boxes = [
                (y, x, min(th, h), min(tw, w))
                for y in tile_starts(h, th, m.overlap)
                for x in tile_starts(w, tw, m.overlap)
            ]
            plans.append((h, w, boxes))
            for y, x, bh, bw in boxes:
                crop = img[y : y + bh, x : x + bw]
                if fixed is not None and (bh, bw) != fixed:
                    crop = np.pad(crop, ((0, th - bh), (0, tw - bw), (0, 0)), mode="edge")
                tiles.append(crop)
        outputs = self._run_grouped(tiles, cancel)
        if outputs is None:
            return None
        results: list[FramePrediction] = []
        k = 0
        for h, w, boxes in plans:
            if len(boxes) == 1 and boxes[0] == (0, 0, h, w) and fixed is None:
                maps = self._class_maps(outputs[k])[:, :h, :w]
                k += 1
            else:
                acc: npt.NDArray[np.float32] | None = None
                weight = np.zeros((h, w), dtype=np.float32)
                for y, x, bh, bw in boxes:
                    probs = self._class_maps(outputs[k])[:, :bh, :bw]
                    k += 1
                    wt = np.outer(_ramp(bh, m.overlap), _ramp(bw, m.overlap))
                    if acc is None:
                        acc = np.zeros((probs.shape[0], h, w), dtype=np.float32)
                    acc[:, y : y + bh, x : x + bw] += probs * wt
                    weight[y : y + bh, x : x + bw] += wt
                assert acc is not None
                maps = acc / weight
            results.append(self._label_maps(maps, (h, w)))
        return results

    def _run_grouped(self, tiles: Sequence[FloatImage], cancel: Cancel | None) -> list[Any] | None:
        """Run tiles batched by shape, results back in the original order."""
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, t in enumerate(tiles):
            by_shape.setdefault(t.shape, []).append(i)
        outputs: list[Any] = [None] * len(tiles)
        for indices in by_shape.values():
            got = self._batched([tiles[i] for i in indices], cancel)
            if got is None:
                return None
            for i, out in zip(indices, got, strict=True):
                outputs[i] = out
        return outputs

    def _label_maps(self, maps: npt.NDArray[np.float32], shape: tuple[int, int]) -> FramePrediction:
        probs: dict[str, FloatImage] = {}
        for index, label in self.manifest.classes.items():
            if index >= maps.shape[0]:
                raise ModelError(
                    f"model {self.manifest.ref}: class index {index} ({label}) but the output has "
                    f"{maps.shape[0]} channel(s)"
                )
            probs[label] = np.ascontiguousarray(maps[index], dtype=np.float32)
        return FramePrediction("segmentation", shape, probabilities=probs)

    def _input_size(self) -> tuple[int, int]:
        if self.manifest.size is None:
            raise ModelError(f"model {self.manifest.ref}: a {self.manifest.task} model needs [input] size")
        return self.manifest.size

    def _detect(self, images: Sequence[FloatImage], cancel: Cancel | None) -> list[FramePrediction] | None:
        th, tw = self._input_size()
        boxed: list[FloatImage] = []
        placement: list[tuple[float, float, float]] = []  # scale, pad x, pad y
        for img in images:
            h, w = img.shape[:2]
            r = min(th / h, tw / w)
            nh, nw = max(1, round(h * r)), max(1, round(w * r))
            canvas = np.full((th, tw, img.shape[2]), 0.5, dtype=np.float32)  # YOLO's grey letterbox
            py, px = (th - nh) // 2, (tw - nw) // 2
            canvas[py : py + nh, px : px + nw] = _resize(img, nh, nw)
            boxed.append(canvas)
            placement.append((r, float(px), float(py)))
        outputs = self._batched(boxed, cancel)
        if outputs is None:
            return None
        return [
            self._decode_boxes(out, img.shape[:2], place)
            for out, img, place in zip(outputs, images, placement, strict=True)
        ]

    def _decode_boxes(
        self, out: npt.NDArray[np.float32], shape: tuple[int, ...], place: tuple[float, float, float]
    ) -> FramePrediction:
        m = self.manifest
        rows = out.T if m.detection_format == "yolov8" else out  # -> (anchors, values)
        if rows.ndim != 2:
            raise ModelError(f"model {m.ref}: a detection output must be 3-D, got {out.shape}")
        if m.detection_format == "yolov5":
            cls = _activate(rows[:, 5:], m.activation, axis=1) * rows[:, 4:5]
        else:
            cls = _activate(rows[:, 4:], m.activation, axis=1)
        if cls.shape[1] == 0:
            raise ModelError(f"model {m.ref}: the detection output has no class scores")
        best = cls.argmax(axis=1)
        score = cls[np.arange(len(cls)), best]
        keep = score >= m.score_threshold
        cx, cy, bw, bh = (rows[keep, i] for i in range(4))
        r, px, py = place
        h, w = shape
        boxes = np.stack(
            [
                np.clip((cx - bw / 2 - px) / r, 0, w),
                np.clip((cy - bh / 2 - py) / r, 0, h),
                np.clip((cx + bw / 2 - px) / r, 0, w),
                np.clip((cy + bh / 2 - py) / r, 0, h),
            ],
            axis=1,
        ).astype(np.float32)
        score, best = score[keep], best[keep]
        found: list[Detection] = []
        for index, label in m.classes.items():
            mine = np.flatnonzero(best == index)
            if mine.size == 0:
                continue
            for i in nms(boxes[mine], score[mine], m.iou_threshold):
                x0, y0, x1, y1 = (float(v) for v in boxes[mine[i]])
                if x1 > x0 and y1 > y0:
                    found.append(Detection(label, (x0, y0, x1, y1), float(score[mine[i]])))
        found.sort(key=lambda d: -d.score)
        return FramePrediction("detection", (int(h), int(w)), detections=tuple(found))

    def _classify(self, images: Sequence[FloatImage], cancel: Cancel | None) -> list[FramePrediction] | None:
        m = self.manifest
        sized = [_resize(img, *m.size) if m.size is not None else img for img in images]
        outputs = self._run_grouped(sized, cancel)
        if outputs is None:
            return None
        results = []
        for out, img in zip(outputs, images, strict=True):
            logits = np.asarray(out, dtype=np.float32).reshape(-1)
            probs = _activate(logits, m.activation, axis=0)
            scores = {label: float(probs[i]) for i, label in m.classes.items() if i < probs.size}
            results.append(FramePrediction("classification", img.shape[:2], scores=scores))
        return results
