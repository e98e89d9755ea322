"""The item status vocabulary (app.core.item_status): its words, synonyms and refusals."""

from __future__ import annotations

import pytest

from app.core.errors import ValidationError
from app.core.item_status import (
    STATUSES,
    ItemStatus,
    counts_line,
    parse_status,
    parse_status_filter,
    status_help,
    stored_status_word,
)
from app.core.records import TaskStatus


def test_every_word_and_synonym_names_one_status() -> None:
    assert STATUSES == ("unqueued", "new", "leased", "in_progress", "submitted", "rejected", "accepted")
    for word in STATUSES:
        assert parse_status(word).value == word
    assert parse_status("done") is ItemStatus.ACCEPTED  # what activity printed before
    assert parse_status(" Accepted ") is ItemStatus.ACCEPTED
    assert parse_status("in progress") is parse_status("In-Progress") is ItemStatus.IN_PROGRESS
    assert parse_status("returned") is ItemStatus.REJECTED
    assert parse_status_filter("any") is parse_status_filter("ALL") is parse_status_filter(None) is None


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("reviewed", r"status 'reviewed' is ambiguous \(it could mean accepted or rejected\); use one of "),
        ("open", r"ambiguous \(it could mean new or leased or in_progress\)"),
        ("approved", r"unknown status 'approved'; use one of unqueued, new, leased, in_progress, submitted"),
    ],
)
def test_ambiguous_and_unknown_words_are_refused_with_the_valid_words(word: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_status(word)


def test_stored_statuses_read_in_the_vocabulary_and_counts_read_the_same_everywhere() -> None:
    assert stored_status_word(TaskStatus.DONE) == "accepted"
    assert stored_status_word(TaskStatus.SUBMITTED) == "submitted"
    counts = {"new": 2, "in_progress": 3, "accepted": 1}
    assert counts_line(counts) == "2 new · 0 leased · 3 in progress · 0 submitted · 0 rejected · 1 accepted"
    assert "done (= accepted)" in status_help() and "in_progress (" in status_help()
