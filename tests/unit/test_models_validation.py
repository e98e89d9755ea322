"""Validation of on-site micro-models on labeled frames they did not learn from (issue #16):
which frames are held out, which model is returned, and the Dice pooled over the held-out frames.

Data: 96x96 crops of scikit-image's fundus photograph with the vessel ground truth stated in
tests/support/retina.py (small crops keep the several trainings of a validation quick)."""

from __future__ import annotations

import numpy as np
import pytest
from support.retina import retina_vessels

from app.models.errors import ModelError
from app.models.validation import (
    HOLDOUT,
    LEAVE_ONE_OUT,
    FrameScore,
    Validation,
    holdout_frames,
    train_validated,
)

CORNERS = ((300, 300), (300, 1000), (1000, 300), (1000, 1000), (650, 650), (650, 300))


def _crops(count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    image, vessels = retina_vessels()
    where = CORNERS[:count]
    return (
        [np.ascontiguousarray(image[y : y + 96, x : x + 96]) for y, x in where],
        [np.ascontiguousarray(vessels[y : y + 96, x : x + 96]) for y, x in where],
    )


def test_the_holdout_is_a_seeded_fifth_and_at_least_one_frame() -> None:
    assert holdout_frames(5) == holdout_frames(5) and len(holdout_frames(5)) == 1
    assert len(holdout_frames(10)) == 2 and len(holdout_frames(40)) == 8
    assert holdout_frames(2) != [] and len(holdout_frames(3, share=0.9)) == 2  # one is always trained on
    assert holdout_frames(10, seed=1) != holdout_frames(10, seed=2)
    with pytest.raises(ModelError, match="at least 2 labeled frames"):
        holdout_frames(1)


def test_dice_is_pooled_over_the_held_out_frames() -> None:
    scores = (
        FrameScore(0, labeled=100, predicted=50, both=50),
        FrameScore(1, labeled=10, predicted=0, both=0),
    )
    validation = Validation(LEAVE_ONE_OUT, 2, scores)
    assert validation.dice == pytest.approx(2 * 50 / 160)
    assert scores[0].dice == pytest.approx(100 / 150) and scores[1].dice == 0.0
    assert validation.found == pytest.approx(50 / 110) and validation.precision == 1.0
    assert scores[0].outside == 0 and validation.describe() == "leave-one-frame-out over 2 frames"


def test_few_frames_are_each_held_out_once_and_the_model_learns_them_all() -> None:
    frames, masks = _crops(3)
    result, validation = train_validated(frames, masks, label="vessel", epochs=5)
    assert validation.scheme == LEAVE_ONE_OUT and [s.index for s in validation.scores] == [0, 1, 2]
    assert all(s.labeled == int(m.sum()) for s, m in zip(validation.scores, masks, strict=True))
    assert result.model.training["frames"] == 3  # the returned model learned every frame
    assert result.model.training["validation"] == validation.to_dict()
    assert 0.5 < validation.dice < 1.0  # vessels are learnable from the other crops
    seen: list[tuple[int, int]] = []
    train_validated(
        frames[:2], masks[:2], label="vessel", epochs=2, progress=lambda d, t: seen.append((d, t))
    )
    assert seen[-1] == (6, 6)  # two held-out runs and the final one, two epochs each


def test_with_more_frames_the_returned_model_is_the_validated_one() -> None:
    frames, masks = _crops(6)
    result, validation = train_validated(frames, masks, label="vessel", epochs=5)
    assert validation.scheme == HOLDOUT and [s.index for s in validation.scores] == holdout_frames(6)
    assert result.model.training["frames"] == 5  # the held-out frame was never learned from
    held = validation.scores[0].index
    pred = result.model.probability(frames[held]) >= result.model.threshold
    assert int(np.count_nonzero(pred)) == validation.scores[0].predicted
    assert int(np.count_nonzero(pred & masks[held])) == validation.scores[0].both
