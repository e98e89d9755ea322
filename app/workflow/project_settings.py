"""A project's workflow settings after its creation: what each one means, reading a person's value
for it, changing them (project admins, audited), and what a change does to the queue.

What a change does to the items already in the queue (the API, ``sitelabel project set --help``
and the editor's settings page say the same; :data:`ON_CHANGE` holds the words):

* New items follow the new settings: data queued for the first time from now on (an import, a
  watch folder, queuing an unqueued item), claims made from now on, leases claimed from now on.
* Items in progress keep their plan. An item anyone has claimed (it is leased, or was skipped,
  let expire, submitted, sent back by review or requeued) keeps the number of labelers it had, so
  a consensus item with some copies done still needs exactly as many as before. A running lease
  keeps the length it was claimed with at every renewal. Items a labeler already holds stay held
  when the batch size changes.
* Items queued but never claimed by anyone are planned again when the consensus share or count
  changes: they need ``count`` labelers when the project's hash sample picks them
  (app.workflow.consensus), else one. The sample only grows with the share: raising it from 0.1
  to 0.2 keeps the items picked at 0.1. This also replaces a number set by hand
  (app.workflow.queue.set_required) on such items.
* An editor that is already open keeps the batch size it opened with until the project is opened
  again; its lease renewals follow the leases it holds.

Every change is one audit row (entity :data:`AUDIT_ENTITY`, the project's id): who, when, and each
changed setting's old and new value, plus how many unclaimed items were planned again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from app.core.errors import ValidationError
from app.core.records import ProjectSettings
from app.workflow.clock import Clock, utcnow
from app.workflow.queue import consensus_seed

if TYPE_CHECKING:
    from app.storage import Database
    from app.storage.uow import UnitOfWork

AUDIT_ENTITY = "project_settings"  # audit rows of settings changes: entity id = project id
AUDIT_ACTION = "project.settings"
MAX_LEASE_SECONDS = 7 * 24 * 3600  # a week: longer is a mistake (and overflows no date)

ON_CHANGE = (
    "New items follow a change at once; items in progress keep their plan. An item anyone has "
    "claimed keeps its number of labelers (a consensus item with some copies done still needs as "
    "many); queued items nobody has claimed yet are planned again when the consensus share or count "
    "changes. A running lease keeps its length; claims made from now on get the new batch size and "
    "lease time (an editor already open keeps its batch size until the project is opened again)."
)


@dataclass(frozen=True)
class Setting:
    """One setting a project admin may change: its key, words for people, parser and display."""

    key: str  # what `sitelabel project set` and Project.set_setting take
    field: str  # the ProjectSettings field it changes
    title: str
    meaning: str
    allowed: str  # the range and unit
    on_change: str  # what a change does to items already in the queue
    parse: Callable[[object], Any]
    show: Callable[[Any], str]
    edit: Callable[[Any], str] = str  # the value as a person would type it (parse reads it back)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else str(value)


def _number(value: object, title: str) -> float:
    if isinstance(value, bool):
        raise ValidationError(f"{title} must be a number, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = _text(value)
        percent = text.endswith("%")
        try:
            number = float(text.rstrip("%").strip()) / (100.0 if percent else 1.0)
        except ValueError:
            raise ValidationError(f"{title} must be a number, got {text!r}") from None
    if not math.isfinite(number):
        raise ValidationError(f"{title} must be a finite number, got {value!r}")
    return number


def parse_share(value: object) -> float:
    """A fraction 0..1 (``0.25``, or ``25%``)."""
    share = _number(value, "the consensus share")
    if not 0.0 <= share <= 1.0:
        raise ValidationError(f"the consensus share must be within 0..1 (0 % to 100 %), got {_text(value)}")
    return share


def _whole(title: str, least: int) -> Callable[[object], int]:
    def parse(value: object) -> int:
        number = _number(value, title)
        if not number.is_integer():
            raise ValidationError(f"{title} must be a whole number, got {_text(value)}")
        if number < least:
            raise ValidationError(f"{title} must be at least {least}, got {_text(value)}")
        return int(number)

    return parse


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(hours?|h|minutes?|min|m|seconds?|sec|s)", re.IGNORECASE)
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(value: object) -> int:
    """A lease time in whole seconds: ``30m``, ``90s``, ``1h``, ``1h30m``, ``1.5h``; a bare number is
    minutes (as ``sitelabel init --lease-minutes``). Between 1 second and a week."""
    text = _text(value)
    bare = isinstance(value, int | float) and not isinstance(value, bool)
    if bare or re.fullmatch(r"[\d.]+", text):
        seconds = _number(value, "the lease time") * 60
    else:
        parts = _DURATION.findall(text)
        if not parts or _DURATION.sub("", text).strip():
            raise ValidationError(
                f"the lease time must be a duration such as 30m, 90s, 1h or 1h30m, got {text!r}"
            )
        seconds = sum(float(n) * _UNIT_SECONDS[unit[0].lower()] for n, unit in parts)
    if not (math.isfinite(seconds) and 1 <= round(seconds) <= MAX_LEASE_SECONDS):
        raise ValidationError(f"the lease time must be between 1 second and 7 days, got {text}")
    return round(seconds)


def format_duration(seconds: int) -> str:
    """``1800`` -> ``30 min``; ``5400`` -> ``1 h 30 min``; ``45`` -> ``45 s``."""
    delta = timedelta(seconds=int(seconds))
    hours, rest = divmod(int(delta.total_seconds()), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(p for p in parts if p) or "0 s"


def compact_duration(seconds: int) -> str:
    """``1800`` -> ``30m``; ``5400`` -> ``1h30m``; ``45`` -> ``45s``: what parse_duration reads."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n) or "0s"


def _share_text(share: float) -> str:
    return f"{share:g} ({share * 100:g} % of the items)"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "consensus_share",
        "consensus_share",
        "Consensus share",
        "the share of items that several labelers label independently (for agreement and consensus)",
        "0..1, a fraction (0.1 or 10%); 0: no consensus items",
        "items queued from now on, and queued items nobody has claimed yet, follow it; an item anyone "
        "has claimed keeps its number of labelers",
        parse_share,
        _share_text,
        lambda share: f"{share:g}",
    ),
    Setting(
        "consensus_count",
        "consensus_count",
        "Consensus count",
        "how many different labelers each consensus item gets",
        "a whole number, at least 1 (labelers)",
        "items queued from now on, and queued items nobody has claimed yet, follow it; an item anyone "
        "has claimed keeps its number of labelers",
        _whole("the consensus count", 1),
        lambda count: f"{count} labeler{'s' if count != 1 else ''}",
    ),
    Setting(
        "batch_size",
        "batch_size",
        "Batch size",
        "how many items one claim hands a labeler",
        "a whole number, at least 1 (items)",
        "claims from now on; items a labeler holds stay held (an open editor: once it reopens the project)",
        _whole("the batch size", 1),
        lambda size: f"{size} item{'s' if size != 1 else ''}",
    ),
    Setting(
        "lease_time",
        "lease_seconds",
        "Lease time",
        "how long a claimed item stays reserved for its labeler without a renewal (the editor renews "
        "while it is open)",
        "1 second to 7 days, with a unit: 30m, 90s, 1h, 1h30m (a bare number is minutes)",
        "leases claimed from now on; a running lease keeps its length at every renewal",
        parse_duration,
        format_duration,
        compact_duration,
    ),
)
FIELDS = {f.name for f in fields(ProjectSettings)}
assert {s.field for s in SETTINGS} == FIELDS, "every ProjectSettings field is a setting"


def setting(key: str) -> Setting:
    """The setting called ``key`` (``batch-size`` and ``batch_size`` alike; its field name too)."""
    wanted = key.strip().lower().replace("-", "_")
    for candidate in SETTINGS:
        if wanted in (candidate.key, candidate.field):
            return candidate
    raise ValidationError(f"no setting {key!r}; the settings are: {', '.join(s.key for s in SETTINGS)}")


def shown(settings: ProjectSettings) -> dict[str, str]:
    """Each setting's key and its value in words, in :data:`SETTINGS` order."""
    return {s.key: s.show(getattr(settings, s.field)) for s in SETTINGS}


@dataclass(frozen=True)
class Draft:
    """Settings as typed into a form: the changed fields' values, and what is wrong, per key."""

    changes: dict[str, Any]  # field -> new value, only the fields that differ from the current ones
    errors: dict[str, str]  # setting key -> why its text is refused

    @property
    def savable(self) -> bool:
        return bool(self.changes) and not self.errors


def read_draft(current: ProjectSettings, texts: Mapping[str, str]) -> Draft:
    """Check a form's texts (by setting key) against the ranges: what would change, what is wrong."""
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, text in texts.items():
        spec = setting(key)
        try:
            value = spec.parse(text)
        except ValidationError as exc:
            errors[spec.key] = str(exc)
            continue
        if value != getattr(current, spec.field):
            changes[spec.field] = value
    if changes and not errors:
        try:
            replace(current, **changes)
        except ValidationError as exc:  # ProjectSettings' own checks, should they ever say more
            errors["*"] = str(exc)
    return Draft(changes, errors)


@dataclass(frozen=True)
class SettingsChange:
    """What :func:`change_settings` did."""

    before: ProjectSettings
    after: ProjectSettings
    replanned: int  # queued items nobody had claimed whose number of labelers changed

    @property
    def changed(self) -> dict[str, tuple[Any, Any]]:
        """Field -> (old value, new value), for the fields that changed."""
        return {
            f: (getattr(self.before, f), getattr(self.after, f))
            for f in sorted(FIELDS)
            if getattr(self.before, f) != getattr(self.after, f)
        }


@dataclass(frozen=True)
class SettingsEdit:
    """One audited change of one setting."""

    at: datetime
    user: str | None
    key: str
    old: Any
    new: Any


def checked(values: Mapping[str, Any]) -> dict[str, Any]:
    """Field -> typed value for ``values`` keyed by setting key or field, each parsed and checked."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        spec = setting(key)
        # keyed by its field (lease_seconds), a number is in the field's unit: seconds
        in_seconds = key.strip().lower() == spec.field != spec.key and not isinstance(value, str)
        out[spec.field] = spec.parse(f"{_number(value, spec.title)}s" if in_seconds else value)
    return out


def change_settings(
    db: Database, project_id: int, user_id: int, values: Mapping[str, Any], *, now: Clock = utcnow
) -> SettingsChange:
    """Change some of a project's settings in one transaction, re-plan the queued items nobody has
    claimed when the consensus share or count changed (see the module doc), and audit it.
    ``values`` are keyed by setting key or field; the caller checks the permission."""
    wanted = checked(values)

    def work(uow: UnitOfWork) -> SettingsChange:
        before = uow.projects.get(project_id).settings
        after = replace(before, **wanted)  # ProjectSettings checks the ranges again
        if after == before:
            return SettingsChange(before, after, 0)
        uow.projects.update_settings(project_id, after)
        consensus = (before.consensus_share, before.consensus_count)
        replanned = 0
        if (after.consensus_share, after.consensus_count) != consensus:
            replanned = _replan_unclaimed(uow, project_id, after, now().astimezone(UTC))
        change = SettingsChange(before, after, replanned)
        details = {
            "changes": {f: {"old": old, "new": new} for f, (old, new) in change.changed.items()},
            "replanned": replanned,
        }
        uow.audit.record(user_id, AUDIT_ACTION, AUDIT_ENTITY, project_id, details)
        return change

    return db.run(work)


def _replan_unclaimed(uow: UnitOfWork, project_id: int, settings: ProjectSettings, t: datetime) -> int:
    """Give the never-claimed tasks the labeler count the new consensus plan gives their assets."""
    from app.workflow.consensus import consensus_plan  # numpy: not for `sitelabel --help`

    waiting = uow.tasks.unclaimed(project_id)
    plan = consensus_plan(
        [asset_id for asset_id, _ in waiting.values()],
        share=settings.consensus_share,
        count=settings.consensus_count,
        seed=consensus_seed(project_id),
    )
    moves: dict[int, list[int]] = {}
    for asset_id, required in waiting.values():
        if plan[asset_id] != required:
            moves.setdefault(plan[asset_id], []).append(asset_id)
    for required, asset_ids in moves.items():
        uow.tasks.set_required(project_id, asset_ids, required, t)
    return sum(len(ids) for ids in moves.values())


def settings_history(db: Database, project_id: int, limit: int = 50) -> list[SettingsEdit]:
    """The project's audited settings changes, newest first, one entry per changed setting."""

    def work(uow: UnitOfWork) -> list[SettingsEdit]:
        entries = uow.audit.list(limit, entity=AUDIT_ENTITY, entity_id=project_id)
        names = {u.id: u.name for u in uow.users.list()}
        by_field = {s.field: s.key for s in SETTINGS}
        return [
            SettingsEdit(
                e.at, names.get(e.user_id) if e.user_id else None, by_field.get(f, f), c["old"], c["new"]
            )
            for e in entries
            for f, c in sorted(e.details.get("changes", {}).items())
        ]

    return db.run(work, readonly=True)
