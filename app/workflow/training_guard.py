"""When a trained micro-model is not registered, and what to label next.

A training run is refused, and nothing is written or registered, when

* the class is labeled on one frame only: no frame is left to validate on (label at least 2);
* its labels cover fewer than ``min_pixels`` pixels in all (default ``DEFAULT_MIN_PIXELS``): too
  little to learn a structure from; checked before training;
* the model's validation Dice (on labeled frames it did not learn from, see
  :mod:`app.models.validation`) is below ``min_dice`` (default ``DEFAULT_MIN_DICE``): its
  pre-labels would cost labelers more than they save.

Each refusal is a :class:`TrainingRefused` whose message gives the figures and says what to label
next: how many more frames, and which frames the model failed on, so the labeler can add frames like
those.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.errors import ValidationError

if TYPE_CHECKING:
    from app.models.validation import Validation

DEFAULT_MIN_DICE = 0.5
DEFAULT_MIN_PIXELS = 1000  # labeled pixels in all, e.g. a 32 x 32 region
ENOUGH_FRAMES = 5  # labeled frames a class should have before a model is worth much
WORST_SHOWN = 3  # held-out frames named in the advice


@dataclass(frozen=True)
class LabeledFrame:
    """One frame the class is labeled on, as the advice names it."""

    asset_id: int
    frame: int
    name: str  # "coins.png", "ct.dcm slice 3", "clip.mp4 frame 40"
    pixels: int  # labeled pixels of the class


class TrainingRefused(ValidationError):
    """A training run that registered nothing; the figures are kept for callers (None: not measured)."""

    def __init__(
        self,
        message: str,
        *,
        label: str,
        frames: int,
        pixels: int,
        validation_dice: float | None = None,
        train_dice: float | None = None,
    ) -> None:
        super().__init__(message)
        self.label = label
        self.frames = frames
        self.pixels = pixels
        self.validation_dice = validation_dice
        self.train_dice = train_dice


def more_frames(frames: int) -> int:
    """How many more frames to label: up to ENOUGH_FRAMES, or half as many again as there are."""
    return max(2, ENOUGH_FRAMES - frames, frames // 2)


def _items(labeled: Sequence[LabeledFrame]) -> str:
    """'' or a hint to spread labels over items when they all come from one or two."""
    items = {f.asset_id for f in labeled}
    if len(items) >= 3:
        return ""
    return f", and on other items too (the {len(labeled)} labeled frames come from {len(items)} item(s))"


def check_labels(label: str, labeled: Sequence[LabeledFrame], *, min_pixels: int) -> None:
    """Refuse before training: one labeled frame, or fewer than ``min_pixels`` labeled pixels."""
    total = sum(f.pixels for f in labeled)
    count = len(labeled)
    if count < 2:
        where = f" ({labeled[0].name})" if labeled else ""
        raise TrainingRefused(
            f"not trained: {label!r} is labeled on {count} frame{where} only, and a model is validated "
            f"on labeled frames it did not learn from. Label {label!r} on at least 2 frames "
            f"({ENOUGH_FRAMES} or more, on different items, are better), then train again.",
            label=label,
            frames=count,
            pixels=total,
        )
    if total < min_pixels:
        per_frame = max(1, total // count)
        more = max(1, math.ceil((min_pixels - total) / per_frame))
        raise TrainingRefused(
            f"not trained: the labels of {label!r} cover {total} pixels on {count} frames, fewer than "
            f"the {min_pixels} a micro-model needs to learn from (--min-pixels). Label about {more} more "
            f"frames of {label!r} (yours have about {per_frame} pixels each), or outline the whole "
            f"structure where it is labeled, then train again.",
            label=label,
            frames=count,
            pixels=total,
        )


def _diagnosis(label: str, validation: Validation, train_dice: float, min_dice: float) -> str:
    if train_dice < min_dice:
        return (
            f"The model does not even fit the frames it learned from: "
            f"the labels of {label!r} do not follow what the images show in one consistent way. "
            f"Check that every label outlines the same kind of structure, all of it."
        )
    found, outside = validation.found, 1.0 - validation.precision
    if found < 0.5 and outside < 0.5:
        return f"On frames it did not learn from, the model finds only {found:.0%} of the labeled pixels."
    if outside >= 0.5 and found >= 0.5:
        return (
            f"On frames it did not learn from, {outside:.0%} of what the model marks is outside the "
            f"labels: label every {label!r} on each frame you label (unlabeled pixels count as not "
            f"{label!r})."
        )
    return (
        f"On frames it did not learn from, the model finds {found:.0%} of the labeled pixels and "
        f"{outside:.0%} of what it marks is outside the labels: it learned the training frames, "
        f"not the structure."
    )


def check_validation(
    label: str, labeled: Sequence[LabeledFrame], validation: Validation, train_dice: float, *, min_dice: float
) -> None:
    """Refuse a trained model whose validation Dice is below ``min_dice``; the message names the
    held-out frames it did worst on (``labeled`` in the order the model was trained on)."""
    dice = validation.dice
    if dice >= min_dice:
        return
    worst = sorted(validation.scores, key=lambda s: (s.dice, s.index))[:WORST_SHOWN]
    examples = ", ".join(
        f"{labeled[s.index].name} (Dice {s.dice:.2f}: it found {s.found:.0%} of {s.labeled} labeled pixels"
        f" and marked {s.outside} outside)"
        for s in worst
    )
    raise TrainingRefused(
        f"not registered: validation Dice {dice:.3f} ({validation.describe()}) is below the floor of "
        f"{min_dice:.2f} (--min-dice); training Dice {train_dice:.3f}. "
        f"{_diagnosis(label, validation, train_dice, min_dice)} "
        f"Label {more_frames(validation.frames)} more frames of {label!r}, especially frames like "
        f"{examples}{_items(labeled)}, then train again.",
        label=label,
        frames=validation.frames,
        pixels=sum(f.pixels for f in labeled),
        validation_dice=dice,
        train_dice=train_dice,
    )
