"""On-site micro-models: a fixed filter bank + a tiny per-pixel MLP, trained in seconds on the CPU.

A micro-model segments one class. Its features are the fixed filter bank of
:mod:`app.models.features` on the normalised gray frame.

Everything is separable Gaussian ``Conv`` with fixed kernels, 3x3 ``Conv`` derivatives and a few
element-wise ops, so the whole model exports to one ONNX graph: filters -> 1x1 Conv (features
standardised, folded into the weights) -> ReLU -> 1x1 Conv -> Sigmoid. The classifier is trained
with numpy (Adam, cross-entropy) on pixels sampled from the labeled frames.

Training and inference share one path: :meth:`MicroModel.export` writes the ``.onnx`` and its
manifest, and pre-labels run that file through :class:`app.models.runner.Runner` like any other
model. :meth:`MicroModel.probability` is the numpy twin of the exported graph (same kernels, same
order of operations) used to check the export.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.models.errors import ModelError
from app.models.features import SIGMAS, features
from app.models.manifest import Manifest, Normalisation, write_manifest
from app.models.registry import sha256_bytes
from app.models.runner import preprocess

F32 = npt.NDArray[np.float32]
Progress = Callable[[int, int], bool | None]
OPSET = 17


# --- the model ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MicroModel:
    """A trained per-class micro-model (see the module doc)."""

    label: str
    normalise: Normalisation
    sigmas: tuple[float, ...]
    mean: F32  # (F,) feature means
    std: F32  # (F,) feature standard deviations
    w1: F32  # (hidden, F)
    b1: F32  # (hidden,)
    w2: F32  # (hidden,)
    b2: float
    threshold: float = 0.5
    min_area: int = 16
    training: dict[str, Any] = field(default_factory=dict)

    def manifest(self, name: str, version: str, sha256: str = "0" * 64) -> Manifest:
        return Manifest(
            name=name,
            version=version,
            task="segmentation",
            file=f"{name}-{version}.onnx",
            sha256=sha256,
            classes={0: self.label},
            input_name="image",
            layout="NCHW",
            size=None,
            channels=1,
            channel_order="gray",
            normalise=self.normalise,
            activation="none",
            score_threshold=self.threshold,
            min_area=self.min_area,
            tile=1024,
            overlap=32 + int(np.ceil(3 * max(self.sigmas))),
            description=f"on-site micro-model for {self.label!r}: filter bank + {self.b1.size}-unit MLP",
            training=dict(self.training),
        )

    def folded(self) -> tuple[F32, F32]:
        """First-layer weights and bias with the feature standardisation folded in."""
        w = (self.w1 / self.std[None, :]).astype(np.float32)
        b = (self.b1 - (self.w1 * (self.mean / self.std)[None, :]).sum(axis=1)).astype(np.float32)
        return w, b

    def probability_from_features(self, feats: F32) -> F32:
        """Probabilities for (F, H, W) features, computed like the exported graph (float32)."""
        f, h, w = feats.shape
        w1, b1 = self.folded()
        hidden = np.maximum(w1 @ feats.reshape(f, h * w) + b1[:, None], 0.0, dtype=np.float32)
        logit = self.w2.astype(np.float32) @ hidden + np.float32(self.b2)
        return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32).reshape(h, w)

    def probability(self, frame: npt.ArrayLike, window: tuple[float, float] | None = None) -> F32:
        """The numpy twin of the exported model on one raw frame (same preprocessing as the runner)."""
        x = preprocess(frame, self.manifest("check", "0"), window)[:, :, 0]
        return self.probability_from_features(features(x, self.sigmas))

    def to_onnx(self) -> bytes:
        from app.models.onnx_export import micro_model_graph

        w1, b1 = self.folded()
        return micro_model_graph(self.sigmas, w1, b1, self.w2, self.b2, opset=OPSET)

    def export(self, folder: Path, name: str, version: str) -> tuple[Path, Path, Manifest]:
        """Write ``NAME-VERSION.onnx`` and its JSON manifest (with the sha256) into ``folder``."""
        content = self.to_onnx()
        manifest = self.manifest(name, version, sha256_bytes(content))
        folder.mkdir(parents=True, exist_ok=True)
        model_path = folder / manifest.file
        model_path.write_bytes(content)
        manifest_path = write_manifest(manifest, model_path.with_suffix(".json"))
        return model_path, manifest_path, manifest


@dataclass(frozen=True)
class TrainResult:
    model: MicroModel
    seconds: float
    train_dice: float
    pixels: int  # sampled training pixels


def choose_normalisation(
    frames: Sequence[npt.ArrayLike], window: tuple[float, float] | None = None
) -> Normalisation:
    """A DICOM window when given; 8-bit frames divided by 255; else the 0.5..99.5 percentile range."""
    if window is not None:
        return Normalisation(window=(float(window[0]), float(window[1])))
    arrays = [np.asarray(f) for f in frames]
    if all(a.dtype == np.uint8 for a in arrays):
        return Normalisation(scale=255.0)
    values = np.concatenate([a.reshape(-1)[:: max(1, a.size // 200_000)] for a in arrays]).astype(np.float64)
    low, high = np.percentile(values, [0.5, 99.5])
    if high <= low:
        high = low + 1.0
    return Normalisation(range=(float(low), float(high)))


def _sample(
    masks: Sequence[npt.NDArray[np.bool_]], per_frame: int, rng: np.random.Generator
) -> list[npt.NDArray[np.int64]]:
    """Flat pixel indices per frame: half from the class (when it has pixels), half from the rest."""
    picks = []
    for m in masks:
        flat = m.reshape(-1)
        pos, neg = np.flatnonzero(flat), np.flatnonzero(~flat)
        n_pos = min(pos.size, per_frame // 2)
        n_neg = min(neg.size, per_frame - n_pos)
        chosen = [rng.choice(pos, n_pos, replace=False)] if n_pos else []
        chosen += [rng.choice(neg, n_neg, replace=False)] if n_neg else []
        picks.append(np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64))
    return picks


ROW_BLOCK = 256  # rows per matrix product in training (see _rows_times)


def _rows_times(a: F32, b: F32) -> F32:
    """``a @ b`` in blocks of rows. Each block's product stays under OpenBLAS's threading threshold:
    for these small matrices its threads only cost time (a training ran 4x slower on a busy
    2-core machine), and blocks of rows give the same numbers as one product."""
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.float32)
    for start in range(0, a.shape[0], ROW_BLOCK):
        np.matmul(a[start : start + ROW_BLOCK], b, out=out[start : start + ROW_BLOCK])
    return out


def _cross(a: F32, b: F32) -> F32:
    """``a.T @ b`` summed over blocks of rows (single-threaded, as :func:`_rows_times`)."""
    out = np.zeros((a.shape[1], b.shape[1]), dtype=np.float32)
    for start in range(0, a.shape[0], ROW_BLOCK):
        out += a[start : start + ROW_BLOCK].T @ b[start : start + ROW_BLOCK]
    return out


def _fit_mlp(
    x: F32, y: F32, *, hidden: int, epochs: int, rng: np.random.Generator, progress: Progress | None
) -> tuple[F32, F32, F32, float]:
    """Adam on binary cross-entropy, mini-batches of 2048; returns (w1, b1, w2, b2)."""
    n, f = x.shape
    params = [
        (rng.standard_normal((hidden, f)) * np.sqrt(2.0 / f)).astype(np.float32),
        np.zeros(hidden, dtype=np.float32),
        (rng.standard_normal(hidden) * np.sqrt(1.0 / hidden)).astype(np.float32),
        np.zeros(1, dtype=np.float32),
    ]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    lr, beta1, beta2, decay, step = 0.01, 0.9, 0.999, 1e-4, 0
    batch = 2048
    for epoch in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            xb, yb = x[idx], y[idx]
            w1, b1, w2, b2 = params
            pre = _rows_times(xb, w1.T) + b1
            act = np.maximum(pre, 0)
            p = 1.0 / (1.0 + np.exp(-(_rows_times(act, w2[:, None])[:, 0] + b2[0])))
            g_logit = (p - yb) / len(idx)
            g_w2 = _cross(act, g_logit[:, None])[:, 0] + decay * w2
            g_b2 = np.array([g_logit.sum()], dtype=np.float32)
            g_act = np.outer(g_logit, w2) * (pre > 0)
            grads = [_cross(g_act, xb) + decay * w1, g_act.sum(axis=0), g_w2, g_b2]
            step += 1
            for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
                m, v = moments[i]
                m *= beta1
                m += (1 - beta1) * grad
                v *= beta2
                v += (1 - beta2) * grad * grad
                m_hat = m / (1 - beta1**step)
                v_hat = v / (1 - beta2**step)
                param -= (lr * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(np.float32)  # noqa: PLW2901 - in place
        lr *= 0.85
        if progress is not None and progress(epoch + 1, epochs) is False:
            raise ModelError("training was cancelled")
    w1, b1, w2, b2 = params
    return w1, b1, w2, float(b2[0])


@dataclass(frozen=True)
class Prepared:
    """Labeled frames as the trainer sees them: the untrained model (class, normalisation, filter
    scales), each frame's filter-bank features and its bool mask. Computed once, fitted many times
    (validation trains on several subsets of the same frames)."""

    model0: MicroModel
    features: list[F32]
    masks: list[npt.NDArray[np.bool_]]
    seconds: float


def prepare(
    frames: Sequence[npt.ArrayLike],
    masks: Sequence[npt.ArrayLike],
    *,
    label: str,
    window: tuple[float, float] | None = None,
    normalise: Normalisation | None = None,
    sigmas: Sequence[float] = SIGMAS,
) -> Prepared:
    """Normalise the raw frames (a DICOM window, /255 or a percentile range: the choice of
    :func:`choose_normalisation` over all frames) and compute their features."""
    if not frames or len(frames) != len(masks):
        raise ModelError("training needs at least one frame and one mask per frame")
    start = time.perf_counter()
    norm = normalise or choose_normalisation(frames, window)
    model0 = MicroModel(label, norm, tuple(float(s) for s in sigmas), *(np.zeros(0, np.float32),) * 5, b2=0.0)
    spec = model0.manifest("train", "0")
    bool_masks = [np.asarray(m, dtype=bool) for m in masks]
    if not any(m.any() for m in bool_masks):
        raise ModelError(f"no labeled pixels of {label!r} to learn from")
    feats: list[F32] = []
    for frame, mask in zip(frames, bool_masks, strict=True):
        x = preprocess(frame, spec, window)[:, :, 0]
        if x.shape != mask.shape:
            raise ModelError(f"a mask of shape {mask.shape} does not fit its frame {x.shape}")
        feats.append(features(x, model0.sigmas))
    return Prepared(model0, feats, bool_masks, time.perf_counter() - start)


def overlap(model: MicroModel, feats: F32, mask: npt.NDArray[np.bool_]) -> tuple[int, int, int]:
    """(labeled, predicted, both) pixel counts of the model's mask on one frame's features."""
    pred = model.probability_from_features(feats) >= model.threshold
    return int(np.count_nonzero(mask)), int(np.count_nonzero(pred)), int(np.count_nonzero(pred & mask))


def dice_of(counts: Sequence[tuple[int, int, int]]) -> float:
    """Dice pooled over frames from their (labeled, predicted, both) counts; 1.0 when both are empty."""
    total = sum(labeled + predicted for labeled, predicted, _ in counts)
    return 1.0 if total == 0 else 2.0 * sum(both for _, _, both in counts) / total


def fit(
    prepared: Prepared,
    frames: Sequence[int] | None = None,
    *,
    hidden: int = 32,
    epochs: int = 30,
    pixels_per_frame: int = 40_000,
    min_area: int = 16,
    seed: int = 0,
    progress: Progress | None = None,
) -> TrainResult:
    """Train on the prepared ``frames`` (indices; default all) and measure Dice on them.

    Deterministic for the same inputs and ``seed``. ``progress(epoch, epochs)`` may return False
    to cancel (ModelError).
    """
    start = time.perf_counter()
    chosen = list(range(len(prepared.features))) if frames is None else list(frames)
    feats = [prepared.features[i] for i in chosen]
    bool_masks = [prepared.masks[i] for i in chosen]
    if not any(m.any() for m in bool_masks):
        raise ModelError(f"no labeled pixels of {prepared.model0.label!r} to learn from")
    rng = np.random.default_rng(seed)
    picks = _sample(bool_masks, pixels_per_frame, rng)
    x_train = np.concatenate(
        [f.reshape(f.shape[0], -1)[:, p].T for f, p in zip(feats, picks, strict=True)]
    ).astype(np.float32)
    y_train = np.concatenate([m.reshape(-1)[p] for m, p in zip(bool_masks, picks, strict=True)]).astype(
        np.float32
    )
    mean = x_train.mean(axis=0).astype(np.float32)
    std = np.maximum(x_train.std(axis=0), 1e-6).astype(np.float32)
    w1, b1, w2, b2 = _fit_mlp(
        (x_train - mean) / std, y_train, hidden=hidden, epochs=epochs, rng=rng, progress=progress
    )
    model = replace(prepared.model0, mean=mean, std=std, w1=w1, b1=b1, w2=w2, b2=b2, min_area=min_area)
    dice = dice_of([overlap(model, f, m) for f, m in zip(feats, bool_masks, strict=True)])
    seconds = prepared.seconds + time.perf_counter() - start
    info = {"frames": len(feats), "pixels": len(y_train), "train_dice": round(dice, 4)}
    model = replace(model, training={**info, "seconds": round(seconds, 3)})
    return TrainResult(model, seconds, dice, len(y_train))


def train(
    frames: Sequence[npt.ArrayLike],
    masks: Sequence[npt.ArrayLike],
    *,
    label: str,
    window: tuple[float, float] | None = None,
    normalise: Normalisation | None = None,
    sigmas: Sequence[float] = SIGMAS,
    hidden: int = 32,
    epochs: int = 30,
    pixels_per_frame: int = 40_000,
    min_area: int = 16,
    seed: int = 0,
    progress: Progress | None = None,
) -> TrainResult:
    """Train a micro-model for ``label`` from raw frames and their bool masks of that class, on all
    of them (:func:`app.models.validation.train_validated` holds some out to validate).

    Deterministic for the same inputs and ``seed``. ``progress(epoch, epochs)`` may return False
    to cancel (ModelError).
    """
    prepared = prepare(frames, masks, label=label, window=window, normalise=normalise, sigmas=sigmas)
    return fit(
        prepared,
        hidden=hidden,
        epochs=epochs,
        pixels_per_frame=pixels_per_frame,
        min_area=min_area,
        seed=seed,
        progress=progress,
    )
