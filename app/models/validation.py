"""Validate a micro-model on labeled frames it did not learn from.

Dice on the training frames says little (a model can learn them by heart), so training holds frames
out and measures Dice there:

* **leave-one-frame-out** with few labeled frames (fewer than ``LEAVE_ONE_OUT_BELOW``): one model per
  frame is trained on all the other frames and scored on that one; the Dice is pooled over them all.
  The model returned is then trained on every frame, so the figure estimates how a model trained
  this way does on a frame it has not seen.
* **holdout** otherwise: a fixed share of the frames (``HOLDOUT_SHARE``, at least one), drawn with
  a fixed seed, is never trained on. The model returned is the one trained on the rest, so the
  figure is measured on the very model returned.

Pooled Dice: ``2 * sum(both) / (sum(labeled) + sum(predicted))`` over the held-out frames, the
model's mask being its probability at or above its threshold. One labeled frame cannot be validated.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from app.models.errors import ModelError
from app.models.features import SIGMAS
from app.models.manifest import Normalisation
from app.models.trainer import Progress, TrainResult, dice_of, fit, overlap, prepare

LEAVE_ONE_OUT_BELOW = 5  # frames: fewer than this, each frame is held out in turn
HOLDOUT_SHARE = 0.2  # of the frames, with LEAVE_ONE_OUT_BELOW or more
LEAVE_ONE_OUT = "leave-one-frame-out"
HOLDOUT = "holdout"


@dataclass(frozen=True)
class FrameScore:
    """How a model not trained on frame ``index`` (of the frames given) did there."""

    index: int
    labeled: int  # pixels of the class in the labels
    predicted: int  # pixels the model marked
    both: int

    @property
    def dice(self) -> float:
        return dice_of([(self.labeled, self.predicted, self.both)])

    @property
    def found(self) -> float:
        """Share of the labeled pixels the model marked (recall)."""
        return self.both / self.labeled if self.labeled else 1.0

    @property
    def outside(self) -> int:
        """Pixels the model marked outside the labels."""
        return self.predicted - self.both


@dataclass(frozen=True)
class Validation:
    scheme: str  # LEAVE_ONE_OUT or HOLDOUT
    frames: int  # labeled frames in all
    scores: tuple[FrameScore, ...]  # one per held-out frame

    @property
    def dice(self) -> float:
        return dice_of([(s.labeled, s.predicted, s.both) for s in self.scores])

    @property
    def found(self) -> float:
        labeled = sum(s.labeled for s in self.scores)
        return sum(s.both for s in self.scores) / labeled if labeled else 1.0

    @property
    def precision(self) -> float:
        """Share of what the model marked that is labeled."""
        predicted = sum(s.predicted for s in self.scores)
        return sum(s.both for s in self.scores) / predicted if predicted else 1.0

    def describe(self) -> str:
        """E.g. "leave-one-frame-out over 3 frames" or "1 of 6 frames held out"."""
        if self.scheme == LEAVE_ONE_OUT:
            return f"leave-one-frame-out over {self.frames} frames"
        return f"{len(self.scores)} of {self.frames} frames held out"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "frames": self.frames,
            "held_out": [s.index for s in self.scores],
            "dice": round(self.dice, 4),
        }


def holdout_frames(count: int, *, share: float = HOLDOUT_SHARE, seed: int = 0) -> list[int]:
    """The frames the holdout scheme keeps out: ``round(share * count)``, at least 1, seeded."""
    if count < 2:
        raise ModelError("validation needs at least 2 labeled frames")
    size = min(count - 1, max(1, round(share * count)))
    return sorted(int(i) for i in np.random.default_rng(seed).permutation(count)[:size])


def train_validated(
    frames: Sequence[npt.ArrayLike],
    masks: Sequence[npt.ArrayLike],
    *,
    label: str,
    window: tuple[float, float] | None = None,
    normalise: Normalisation | None = None,
    sigmas: Sequence[float] = SIGMAS,
    leave_one_out_below: int = LEAVE_ONE_OUT_BELOW,
    share: float = HOLDOUT_SHARE,
    seed: int = 0,
    epochs: int = 30,
    pixels_per_frame: int = 40_000,
    progress: Progress | None = None,
) -> tuple[TrainResult, Validation]:
    """Train a micro-model and validate it on held-out frames (see the module doc); the model
    returned and its validation. ``progress(done, total)`` counts epochs over every training run
    and may return False to cancel (ModelError)."""
    start = time.perf_counter()
    prepared = prepare(frames, masks, label=label, window=window, normalise=normalise, sigmas=sigmas)
    count = len(prepared.features)
    if count < 2:
        raise ModelError("validation needs at least 2 labeled frames")
    if count < leave_one_out_below:
        scheme, folds = LEAVE_ONE_OUT, [[i] for i in range(count)]
    else:
        scheme, folds = HOLDOUT, [holdout_frames(count, share=share, seed=seed)]
    runs = len(folds) + (1 if scheme == LEAVE_ONE_OUT else 0)
    finished = 0

    def report(epoch: int, total: int) -> bool | None:
        return None if progress is None else progress(finished * total + epoch, runs * total)

    def run(frames: list[int] | None) -> TrainResult:
        nonlocal finished
        done = fit(
            prepared, frames, epochs=epochs, pixels_per_frame=pixels_per_frame, seed=seed, progress=report
        )
        finished += 1
        return done

    scores: list[FrameScore] = []
    result: TrainResult | None = None
    for held in folds:
        kept = [i for i in range(count) if i not in held]
        if not any(prepared.masks[i].any() for i in kept):  # nothing to learn from: it marks nothing
            scores += [FrameScore(i, int(prepared.masks[i].sum()), 0, 0) for i in held]
            finished += 1
            continue
        result = run(kept)
        for i in held:
            scores.append(FrameScore(i, *overlap(result.model, prepared.features[i], prepared.masks[i])))
    if scheme == LEAVE_ONE_OUT or result is None:
        result = run(None)
    validation = Validation(scheme, count, tuple(sorted(scores, key=lambda s: s.index)))
    seconds = time.perf_counter() - start
    info = {**result.model.training, "seconds": round(seconds, 3), "validation": validation.to_dict()}
    return replace(result, model=replace(result.model, training=info), seconds=seconds), validation
