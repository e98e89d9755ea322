"""What a refused training run says (issue #16): the figures, and what to label next, for each way
a run is refused; and the one-line reports of the models panel."""

from __future__ import annotations

import pytest

from app.editor.models_logic import prelabel_text
from app.models.validation import HOLDOUT, LEAVE_ONE_OUT, FrameScore, Validation
from app.workflow.prelabel import PrelabelReport
from app.workflow.training_guard import LabeledFrame, TrainingRefused, check_labels, check_validation

FRAMES = [
    LabeledFrame(1, 0, "liver/ct-01 slice 0", 900),
    LabeledFrame(1, 4, "liver/ct-01 slice 4", 700),
    LabeledFrame(2, 0, "liver/ct-02 slice 0", 800),
]


def test_one_labeled_frame_asks_for_a_second() -> None:
    with pytest.raises(TrainingRefused) as caught:
        check_labels("liver", FRAMES[:1], min_pixels=100)
    assert str(caught.value).startswith(
        "not trained: 'liver' is labeled on 1 frame (liver/ct-01 slice 0) only, and a model is validated"
    )
    assert "Label 'liver' on at least 2 frames" in str(caught.value)
    assert caught.value.validation_dice is None and caught.value.pixels == 900


def test_too_few_pixels_says_how_many_frames_more() -> None:
    check_labels("liver", FRAMES, min_pixels=2400)  # 2400 labeled pixels: enough
    with pytest.raises(TrainingRefused) as caught:
        check_labels("liver", FRAMES, min_pixels=5000)
    # 2400 pixels on 3 frames, 800 a frame: 2600 more is about 4 frames
    assert "cover 2400 pixels on 3 frames, fewer than the 5000 a micro-model needs" in str(caught.value)
    assert "Label about 4 more frames of 'liver' (yours have about 800 pixels each)" in str(caught.value)


def _validation(*scores: FrameScore, scheme: str = LEAVE_ONE_OUT) -> Validation:
    return Validation(scheme, len(FRAMES), scores)


def test_a_model_that_misses_the_structure_names_the_frames_it_missed() -> None:
    validation = _validation(
        FrameScore(0, 900, 100, 90), FrameScore(1, 700, 300, 280), FrameScore(2, 800, 300, 250)
    )
    with pytest.raises(TrainingRefused) as caught:
        check_validation("liver", FRAMES, validation, 0.9, min_dice=0.5)
    message = str(caught.value)
    assert caught.value.validation_dice == pytest.approx(validation.dice) and validation.dice < 0.5
    assert message.startswith(
        f"not registered: validation Dice {validation.dice:.3f} (leave-one-frame-out over 3 frames) is "
        "below the floor of 0.50 (--min-dice); training Dice 0.900. On frames it did not learn from, "
        "the model finds only 26% of the labeled pixels."
    )
    # the worst frames first, each with what went wrong there; all from two items: spread out
    assert (
        "Label 2 more frames of 'liver', especially frames like liver/ct-01 slice 0 (Dice 0.18: it "
        "found 10% of 900 labeled pixels and marked 10 outside), liver/ct-02 slice 0 (Dice 0.45: it "
        "found 31% of 800 labeled pixels and marked 50 outside), liver/ct-01 slice 4 (Dice 0.56: it "
        "found 40% of 700 labeled pixels and marked 20 outside)"
    ) in message
    assert message.endswith(
        ", and on other items too (the 3 labeled frames come from 2 item(s)), then train again."
    )
    check_validation("liver", FRAMES, validation, 0.9, min_dice=0.3)  # a lower floor passes


def test_marks_outside_the_labels_and_labels_that_do_not_fit_get_their_own_advice() -> None:
    spill = _validation(FrameScore(2, 800, 3500, 700), scheme=HOLDOUT)
    with pytest.raises(
        TrainingRefused, match="80% of what the model marks is outside the labels: label every"
    ):
        check_validation("liver", FRAMES, spill, 0.8, min_dice=0.5)
    random = _validation(FrameScore(0, 900, 0, 0), FrameScore(1, 700, 10, 0), FrameScore(2, 800, 0, 0))
    with pytest.raises(TrainingRefused, match="does not even fit the frames it learned from") as caught:
        check_validation("liver", FRAMES, random, 0.05, min_dice=0.5)
    assert "validation Dice 0.000 (leave-one-frame-out over 3 frames)" in str(caught.value)


def test_the_panel_says_how_many_frames_a_pass_left_to_the_person() -> None:
    report = PrelabelReport(models=["mm@1"], assets=2, frames=5, annotations=7, human_frames=5)
    assert prelabel_text(report) == (
        "Pre-label pass done: 7 pre-label(s) on 2 item(s) (5 frame(s)). "
        "5 frame(s) left alone: a person had already labeled the class there."
    )
    assert "left alone" not in prelabel_text(PrelabelReport(models=["mm@1"], assets=1, frames=1))
