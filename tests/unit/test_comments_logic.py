"""The comments panel's logic without Qt: numbering, the "only mentioning me" filter, the next open
thread, which pins a frame shows, the pin being written, and the messages of refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.core.errors import PermissionDenied, SitelabelError
from app.core.records import Asset, AssetKind, Comment, Thread, ThreadStatus
from app.editor.comments_logic import CommentsLogic

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ASSET = Asset(3, 1, 1, AssetKind.IMAGE, "data", "scans/coins.png", None, 1, 1, "h", 1, 8, 6)


def _thread(
    tid: int, *, frame: int = 0, point: bool = True, resolved: bool = False, mention: str = ""
) -> Thread:
    comment = Comment(tid * 10, tid, "lee", f"issue {tid} @{mention}", T0, (mention,) if mention else ())
    status = ThreadStatus.RESOLVED if resolved else ThreadStatus.OPEN
    x, y = (10.5 + tid, 20.5) if point else (None, None)
    return Thread(tid, ASSET.id, frame, x, y, status, "lee", T0, None, (comment,))


class _Project:
    """The API calls the logic makes, recorded; ``refuse`` makes them raise."""

    user_name = "rey"

    def __init__(self, threads: list[Thread]) -> None:
        self.stored, self.calls, self.refuse = threads, [], None  # type: ignore[var-annotated]

    def _call(self, *call: Any) -> None:
        self.calls.append(call)
        if self.refuse is not None:
            raise self.refuse

    def threads(self, asset_id: int) -> list[Thread]:
        self._call("threads", asset_id)
        return list(self.stored)

    def reply(self, thread_id: int, body: str) -> None:
        self._call("reply", thread_id, body)

    def resolve(self, thread_id: int, *, reopen: bool = False) -> None:
        self._call("resolve", thread_id, reopen)

    def comment(self, asset_id: int, body: str, **where: Any) -> Thread:
        self._call("comment", asset_id, body, where)
        return _thread(99)


def _logic(*threads: Thread) -> tuple[CommentsLogic, _Project]:
    project = _Project(list(threads))
    logic = CommentsLogic(project)  # type: ignore[arg-type]
    logic.set_asset(ASSET)
    assert logic.reload() is None
    return logic, project


def test_threads_are_numbered_by_id_and_the_filter_keeps_mentions_of_me() -> None:
    logic, _ = _logic(_thread(7), _thread(4, mention="rey"), _thread(5, resolved=True))
    assert logic.numbers == {4: 1, 5: 2, 7: 3}
    assert logic.summary() == "2 open / 3"
    assert logic.label(logic.threads[1]) == ("@1", True)
    assert logic.label(logic.threads[0]) == ("3", False)
    logic.only_mine = True
    assert [t.id for t in logic.visible()] == [4]


def test_next_open_wraps_and_skips_resolved_threads() -> None:
    logic, _ = _logic(_thread(1), _thread(2, resolved=True), _thread(3))
    assert logic.next_open(None) == 1
    assert logic.next_open(1) == 3
    assert logic.next_open(3) == 1  # wraps
    assert logic.next_open(2) == 1  # a resolved one selected: the first open one
    none_open, _ = _logic(_thread(2, resolved=True))
    assert none_open.next_open(None) is None


def test_pins_of_the_frame_on_screen_with_the_selected_one_drawn_last() -> None:
    logic, _ = _logic(_thread(1), _thread(2), _thread(3, frame=1), _thread(4, point=False))
    logic.show_frame(0)
    assert logic.on_screen
    assert [(p[0], p[5]) for p in logic.pins(selected=1)] == [(2, False), (1, True)]
    logic.show_frame(1)
    assert [p[0] for p in logic.pins(selected=None)] == [3]


def test_a_draft_pin_stays_on_its_frame_and_is_posted_once() -> None:
    logic, project = _logic()
    logic.show_frame(2)
    logic.place_draft(30.5, 40.5)
    assert logic.draft_here() == (30.5, 40.5)
    logic.show_frame(3)
    assert logic.draft_here() is None  # drawn only on the frame it was placed on
    logic.show_frame(2)
    project.refuse = PermissionDenied("viewers may not comment")
    with pytest.raises(SitelabelError):
        logic.post_draft("look here")
    assert logic.draft is not None  # kept for another try
    project.refuse = None
    posted = logic.post_draft("look here")
    assert posted is not None and logic.draft is None
    assert project.calls[-1] == ("comment", ASSET.id, "look here", {"frame": 2, "x": 30.5, "y": 40.5})
    assert logic.post_draft("again") is None and logic.drop_draft() is False


def test_refusals_come_back_as_one_line_messages() -> None:
    logic, project = _logic(_thread(1), _thread(2, resolved=True))
    project.refuse = PermissionDenied("only the author or a reviewer may")
    assert logic.toggle_resolved(logic.threads[0]) == "Not resolved: only the author or a reviewer may"
    assert logic.toggle_resolved(logic.threads[1]) == "Not reopened: only the author or a reviewer may"
    assert logic.reply(1, "ok") == "Reply not sent: only the author or a reviewer may"
    assert logic.reload() == "only the author or a reviewer may" and logic.threads == []
    project.refuse = None
    assert logic.toggle_resolved(_thread(2, resolved=True)) is None
    assert project.calls[-1] == ("resolve", 2, True)
