"""Reading a person's value for a project setting: ranges, units, and one-line refusals."""

from __future__ import annotations

import pytest

from app.core.errors import ValidationError
from app.core.records import ProjectSettings
from app.workflow.project_settings import (
    SETTINGS,
    Draft,
    checked,
    format_duration,
    parse_duration,
    parse_share,
    read_draft,
    setting,
    shown,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("90s", 90), ("1h", 3600), ("1h30m", 5400), ("1h 30 min", 5400), ("1.5h", 5400),
     ("45", 2700), (2, 120), ("2 minutes", 120), ("168h", 7 * 24 * 3600)],
)  # fmt: skip
def test_lease_times_take_units_and_a_bare_number_is_minutes(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "0s", "-5m", "10x", "m", "", "169h", "nan", "inf", True])
def test_lease_times_out_of_range_or_without_sense_are_refused(text: object) -> None:
    with pytest.raises(ValidationError, match="lease time"):
        parse_duration(text)


def test_durations_read_back_as_people_write_them() -> None:
    assert [format_duration(s) for s in (45, 1800, 5400, 3600, 3661)] == [
        "45 s", "30 min", "1 h 30 min", "1 h", "1 h 1 min 1 s",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "share"), [("0.25", 0.25), ("25%", 0.25), ("0", 0.0), (1, 1.0), ("100 %", 1.0)]
)
def test_shares_are_fractions_or_percentages(text: object, share: float) -> None:
    assert parse_share(text) == share


@pytest.mark.parametrize("text", ["1.5", "-0.1", "150%", "nan", "half", True])
def test_shares_outside_zero_to_one_are_refused(text: object) -> None:
    with pytest.raises(ValidationError, match="consensus share"):
        parse_share(text)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("consensus_count", "0", "at least 1"), ("consensus-count", "2.5", "whole number"),
     ("batch_size", "-3", "at least 1"), ("batch-size", "ten", "a number"), ("honeypot", "1", "no setting")],
)  # fmt: skip
def test_counts_are_whole_and_positive_and_keys_are_known(key: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        checked({key: value})


def test_keys_take_dashes_and_fields_and_a_field_value_is_in_the_field_unit() -> None:
    assert setting("lease-time") is setting("lease_seconds") is setting("LEASE_TIME")
    assert checked({"lease_seconds": 900, "lease_time": "15m"}) == {"lease_seconds": 900}
    assert checked({"consensus-share": "10%", "batch_size": 4.0}) == {"consensus_share": 0.1, "batch_size": 4}


def test_every_setting_is_described_and_shown() -> None:
    for spec in SETTINGS:
        assert spec.meaning and spec.allowed and spec.on_change and spec.title
    assert shown(ProjectSettings()) == {
        "consensus_share": "0 (0 % of the items)",
        "consensus_count": "2 labelers",
        "batch_size": "10 items",
        "lease_time": "30 min",
    }


def test_a_form_draft_holds_the_changes_and_a_message_per_bad_field() -> None:
    current = ProjectSettings()
    typed = {"consensus_share": "0", "consensus_count": "2", "batch_size": "10", "lease_time": "30m"}
    assert read_draft(current, typed) == Draft({}, {}) and not read_draft(current, typed).savable
    draft = read_draft(current, {**typed, "batch_size": "4", "lease_time": "1h"})
    assert draft.changes == {"batch_size": 4, "lease_seconds": 3600} and draft.savable
    bad = read_draft(current, {**typed, "batch_size": "4", "consensus_share": "2", "lease_time": "soon"})
    assert set(bad.errors) == {"consensus_share", "lease_time"} and not bad.savable
    assert "within 0..1" in bad.errors["consensus_share"]
    assert [spec.parse(spec.edit(getattr(current, spec.field))) for spec in SETTINGS] == [0.0, 2, 10, 1800]
