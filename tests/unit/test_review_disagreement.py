"""The review pane's disagreement map and the export's review filters, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.core.records import Asset, AssetKind, Task, TaskStatus
from app.exchange.selection import ExportFilters
from app.workflow.review import ReviewItem

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ONTOLOGY = Ontology.from_dict({"classes": [{"name": "liver"}, {"name": "lesion"}]})


def _task(
    status: TaskStatus = TaskStatus.SUBMITTED, required: int = 1, agreement: float | None = None
) -> Task:
    return Task(1, 1, 1, status, 0.0, required, T0, T0, agreement)


def _item(annotations: dict[str, list[Annotation]], frames: int = 2) -> ReviewItem:
    asset = Asset(1, 1, 1, AssetKind.IMAGE, "r", "a.png", None, 1, 1, "h", frames, 8, 6)
    return ReviewItem(_task(), asset, ONTOLOGY, annotations, None, None)


def _rect(label: str, x0: int, x1: int, frame: int = 0) -> Annotation:
    bits = np.zeros((6, 8), dtype=bool)
    bits[1:5, x0:x1] = True
    return Annotation(kind=Kind.MASK, label=label, frame=frame, mask=MaskPatch.from_full(bits))


def test_minority_count_per_pixel_and_worst_class_without_a_label() -> None:
    item = _item(
        {
            "a": [_rect("liver", 0, 4), _rect("lesion", 6, 8)],
            "b": [_rect("liver", 1, 5)],
            "c": [_rect("liver", 2, 6), _rect("lesion", 6, 7, frame=1)],
        }
    )
    liver = item.disagreement(0, "liver")
    # columns 0..5 marked by 1, 2, 3, 3, 2, 1 of 3 labelers -> minorities 1, 1, 0, 0, 1, 1
    assert liver.dtype == np.uint8
    assert liver[1].tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    assert liver[0].tolist() == [0] * 8 and liver[5].tolist() == [0] * 8  # nobody marked these rows
    lesion = item.disagreement(0, "lesion")
    assert lesion[1].tolist() == [0, 0, 0, 0, 0, 0, 1, 1]  # only a: one against two
    assert item.disagreement(0)[1].tolist() == [1, 1, 0, 0, 1, 1, 1, 1]
    assert item.disagreement(1)[1].tolist() == [0, 0, 0, 0, 0, 0, 1, 0]  # c alone on frame 1
    assert not item.disagreement(0, "kidney").any()  # a class nobody used: nobody disagrees


def test_even_split_and_no_labelers() -> None:
    item = _item({"a": [_rect("liver", 0, 4)], "b": [_rect("liver", 2, 6)], "c": [], "d": []})
    assert item.disagreement(0, "liver")[1].tolist() == [1, 1, 2, 2, 1, 1, 0, 0]  # 2 of 4: split
    assert not _item({}).disagreement(0).any()
    with pytest.raises(ValidationError, match="frame 2 is not in asset 1"):
        item.disagreement(2)


def test_review_filters_select_by_task_status_consensus_and_agreement() -> None:
    done_pair = _task(TaskStatus.DONE, required=2, agreement=0.9)
    done_single = _task(TaskStatus.DONE)
    waiting = _task(TaskStatus.SUBMITTED, required=2, agreement=0.4)
    # the item status word each would show in the activity list (app.core.item_status)
    items = [(done_pair, "accepted"), (done_single, "accepted"), (waiting, "submitted"), (None, "unqueued")]
    accepted = ExportFilters(status="accepted")
    assert [accepted.selects(t, s) for t, s in items] == [True, True, False, False]
    assert [ExportFilters(status="done").selects(t, s) for t, s in items] == [True, True, False, False]
    assert [ExportFilters(status="any").selects(t, s) for t, s in items[2:]] == [True, True]
    consensus = ExportFilters(consensus="consensus")
    assert [consensus.selects(t) for t in (done_pair, done_single, waiting)] == [True, False, True]
    agreed = ExportFilters(consensus="agreed-above:0.5")
    assert agreed.agreement_floor() == 0.5
    assert [agreed.selects(t) for t in (done_pair, done_single, waiting)] == [True, False, False]
    assert not ExportFilters().needs_tasks and accepted.needs_tasks
    for bad in (ExportFilters(status="approved"), ExportFilters(consensus="agreed-above:-1")):
        with pytest.raises(ValidationError, match="unknown"):
            bad.check_available()
