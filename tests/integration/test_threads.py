"""Comments and issues on assets: pinned threads, replies with mentions, resolve by author or reviewer."""

from __future__ import annotations

import pytest

from app import api, sample_data
from app.core.errors import NotFoundError, PermissionDenied, ValidationError
from app.core.records import ThreadStatus


@pytest.fixture
def team(db_url: str) -> dict[str, api.Project]:
    ada = api.create_project(db_url, "review", user="ada")
    ada.import_data([sample_data.dicom_file("emri_small.dcm"), sample_data.skimage_images() / "coins.png"])
    ada.set_member("lee", "labeler")
    ada.set_member("kim", "labeler")
    ada.set_member("rey", "reviewer")
    return {"ada": ada, **{n: api.open_project(ada.db, "review", user=n) for n in ("lee", "kim", "rey")}}


def test_a_pinned_issue_with_replies_and_mentions(team) -> None:  # type: ignore[no-untyped-def]
    lee, rey = team["lee"], team["rey"]
    series = next(a for a in lee.assets() if a.frame_count > 1)
    thread = lee.comment(series.id, "Is this <b>artefact</b> or lesion? @rey", frame=4, x=31.5, y=20.25)
    assert (thread.frame, thread.x, thread.y, thread.status) == (4, 31.5, 20.25, ThreadStatus.OPEN)
    assert thread.comments[0].body == "Is this <b>artefact</b> or lesion? @rey"  # stored as plain text
    assert thread.comments[0].mentions == ("rey",)
    rey.reply(thread.id, "Motion artefact, leave it unlabeled. @lee")
    (again,) = rey.threads(series.id)
    assert [c.author for c in again.comments] == ["lee", "rey"]
    assert [t.id for t in lee.threads(open_only=True)] == [thread.id]
    with pytest.raises(ValidationError, match="frame 12"):
        lee.comment(series.id, "past the end", frame=12)
    with pytest.raises(ValidationError, match="needs some text"):
        lee.reply(thread.id, "   ")


def test_only_the_author_or_a_reviewer_resolves(team) -> None:  # type: ignore[no-untyped-def]
    lee, kim, rey = team["lee"], team["kim"], team["rey"]
    (coins,) = [a for a in lee.assets() if a.rel_path.endswith("coins.png")]
    thread = lee.comment(coins.id, "two coins touch here")
    with pytest.raises(PermissionDenied, match="kim is a labeler"):
        kim.resolve(thread.id)
    assert rey.resolve(thread.id).status is ThreadStatus.RESOLVED
    assert lee.threads(coins.id, open_only=True) == []
    reopened = lee.resolve(thread.id, reopen=True)
    assert reopened.status is ThreadStatus.OPEN and reopened.resolved_at is None


def test_threads_stay_inside_their_project(team) -> None:  # type: ignore[no-untyped-def]
    ada = team["ada"]
    (coins,) = [a for a in ada.assets() if a.rel_path.endswith("coins.png")]
    thread = ada.comment(coins.id, "check the border")
    other = api.create_project(ada.db, "other", user="ada")
    with pytest.raises(NotFoundError):
        other.reply(thread.id, "not here")
