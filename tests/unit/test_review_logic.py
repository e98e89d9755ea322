"""The review pane's logic without Qt: which decisions may start in which mode, what each one sends
to the review API, one decision at a time, the fix and merge modes, and copying a labeler's labels."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.commands import AddAnnotation, PaintCommand
from app.core.ontology import Ontology
from app.core.records import Asset, AssetKind, Review, Task, TaskStatus, Verdict
from app.editor.review_logic import (
    NO_ITEM,
    NO_REASON,
    NOT_SAVED,
    STILL_OPENING,
    Decision,
    Mode,
    Refusal,
    ReviewLogic,
    item_title,
)
from app.workflow.consensus import Consensus
from app.workflow.review import ReviewItem

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ONTOLOGY = Ontology.from_dict(
    {"classes": [{"name": "coin", "kinds": ["mask", "box"]}, {"name": "scratch", "kinds": ["mask"]}]}
)


def _item(
    asset_id: int = 7, labelers: tuple[str, ...] = ("lee", "max"), review: Review | None = None
) -> ReviewItem:
    asset = Asset(
        asset_id, 1, 1, AssetKind.IMAGE, "data", f"scans/coins{asset_id}.png", None, 1, 1, "h", 1, 8, 6
    )
    task = Task(asset_id + 100, 1, asset_id, TaskStatus.SUBMITTED, 0.0, len(labelers), T0, T0)
    box = Annotation(Kind.BOX, "coin", box=(1.0, 1.0, 4.0, 3.0), author="lee", id=11, version=2)
    return ReviewItem(task, asset, ONTOLOGY, {name: [box] for name in labelers}, None, review)


@dataclass
class _Session:
    conflicts: list[object] = field(default_factory=list)
    pending_count: int = 0


def _open(item: ReviewItem | None = None) -> ReviewLogic:
    logic = ReviewLogic(ONTOLOGY)
    logic.open(item or _item())
    return logic


def test_the_logic_module_loads_no_qt() -> None:
    """The point of the cut: the pane's rules run where there is no display."""
    code = (
        "import sys, app.editor.review_logic\n"
        "print(sorted(m for m in sys.modules if m.startswith('PySide6')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_nothing_is_decided_without_an_open_item() -> None:
    logic = ReviewLogic(ONTOLOGY)
    assert not logic.ready and not logic.can_choose and not logic.can_preview
    assert logic.accept("fine") == Refusal(NO_ITEM)
    assert logic.choose("lee") == Refusal(NO_ITEM)
    assert not logic.deciding  # a refusal starts nothing
    assert logic.start_fix(7) is None and logic.mode is Mode.REVIEW


def test_accept_sends_the_trimmed_note_and_one_decision_at_a_time() -> None:
    logic = _open()
    assert logic.ready and logic.can_choose and logic.can_preview
    step = logic.accept("  looks fine ")
    assert step == Decision("accept", 7, "coins7.png", "accepted", {"note": "looks fine"})
    assert isinstance(step, Decision) and step.done_text == "coins7.png: accepted."
    assert logic.deciding and not logic.ready
    assert logic.accept("again") is None  # a second one waits for the first
    assert logic.reject("lee", "off by 10 px") is None
    logic.settled()
    assert logic.ready and logic.mode is Mode.REVIEW


def test_reject_needs_a_reason_and_names_the_labeler() -> None:
    logic = _open()
    assert logic.reject("max", "   ") == Refusal(NO_REASON)
    assert not logic.deciding
    step = logic.reject("max", " edge is off ")
    assert step == Decision(
        "reject", 7, "coins7.png", "sent back to max", {"labeler": "max", "reason": "edge is off"}
    )


def test_consensus_from_one_labeler_needs_two_labelers() -> None:
    single = _open(_item(labelers=("lee",)))
    assert single.ready and not single.can_choose and not single.can_preview
    both = _open()
    assert both.choose("lee") == Decision(
        "choose_consensus", 7, "coins7.png", "consensus taken from lee", {"labeler": "lee"}
    )


def test_merge_preview_then_confirm_stores_its_method() -> None:
    logic = _open()
    consensus = Consensus("staple", [], ties=[("normal", 0)])
    text = logic.show_preview("staple", consensus)
    assert "Merge preview (staple)" in text and "normal (frame 1)" in text
    assert logic.mode == "merge" and not logic.ready and not logic.can_choose
    assert logic.can_preview  # another method may be previewed instead
    assert logic.accept("fine") is None  # accept is for reviewing only
    step = logic.confirm("", None)
    assert step == Decision(
        "merge_consensus", 7, "coins7.png", "merged by staple and accepted", {"method": "staple"}
    )
    logic.settled()
    assert logic.leave_mode() is True  # the preview overlay goes
    assert logic.mode is Mode.REVIEW and logic.preview is None
    assert logic.leave_mode() is False


def test_merge_preview_names_what_the_ontology_kept_out() -> None:
    why = "class 'coin' does not allow mask, box or polygon; allowed: ['point']"
    consensus = Consensus("majority", [], skipped=[("coin", 0, why), ("coin", 2, why)])
    text = _open().show_preview("majority", consensus)
    assert "Left out, as the ontology does not allow them: coin (frame 1), coin (frame 3)." in text


def test_fix_waits_for_the_session_and_confirms_only_what_is_saved() -> None:
    logic = _open()
    assert logic.start_fix(None) == Refusal(STILL_OPENING)  # the editor has not opened it yet
    assert logic.start_fix(8) == Refusal(STILL_OPENING)  # another item's session
    assert logic.mode is Mode.REVIEW
    assert isinstance(logic.start_fix(7), str) and logic.mode is Mode.FIX
    assert not logic.can_preview and not logic.ready
    assert not logic.looking_only((7, 0))  # the tools stay on while fixing
    assert logic.confirm("", _Session(pending_count=2)) == Refusal(NOT_SAVED)
    assert logic.confirm("", _Session(conflicts=[object()])) == Refusal(NOT_SAVED)
    assert not logic.deciding
    step = logic.confirm(" redrawn ", _Session())
    assert step == Decision("fix_and_accept", 7, "coins7.png", "fixed and accepted", {"note": "redrawn"})


def test_looking_only_while_the_canvas_shows_the_open_item() -> None:
    logic = _open()
    assert logic.looking_only((7, 3))
    assert not logic.looking_only((8, 0))  # the canvas still shows the item before
    assert not logic.looking_only(None)
    assert logic.is_open(7) and not logic.is_open(8)
    logic.close()
    assert not logic.looking_only((7, 0)) and not logic.is_open(7)


def test_copying_a_labelers_labels_into_the_reviewers_session() -> None:
    bits = np.zeros((2, 3), dtype=bool)
    bits[0, 1:] = True
    mask = Annotation(Kind.MASK, "coin", mask=MaskPatch(2, 1, bits, (6, 8)), author="max", id=12)
    elsewhere = Annotation(Kind.BOX, "coin", frame=4, box=(0.0, 0.0, 1.0, 1.0))  # no frame 4
    item = _item()
    item.annotations["max"] = [mask, elsewhere, item.annotations["lee"][0]]
    logic = _open(item)
    assert logic.copy_commands("max", None) is None  # no session on the item
    assert logic.copy_commands("nia", 7) is None  # no such labeler
    commands = logic.copy_commands("max", 7)
    assert commands is not None and [type(c) for c in commands] == [PaintCommand, AddAnnotation]
    add = commands[1]
    assert isinstance(add, AddAnnotation)
    copy = add.annotation  # now the reviewer's: new, unsaved, human
    assert (copy.id, copy.version, copy.author, copy.source, copy.asset_id) == (None, 0, None, "human", 7)


def test_the_title_says_how_many_labelers_and_the_last_decision() -> None:
    review = Review(1, 7, 107, "rita", Verdict.REJECTED, "redo the rim", T0)
    assert item_title(_item(labelers=("lee",), review=review)) == (
        "coins7.png  -  1 labeler  -  submitted; last review: rejected by rita (redo the rim)"
    )
    assert item_title(_item()).endswith("2 labelers  -  submitted")
