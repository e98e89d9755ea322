"""A project's workflow settings change after creation (issue #16, item 8), on SQLite and PostgreSQL:
new items follow a change, items in progress keep their plan, only project admins may change them,
every change is audited, and `sitelabel project show/set` does the same from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from app import api, sample_data
from app.cli import main
from app.core.errors import PermissionDenied, ValidationError
from app.core.records import ProjectSettings, TaskStatus
from app.workflow import queue
from app.workflow.consensus import consensus_plan

IMAGES = ["coins.png", "camera.png", "astronaut.png", "retina.jpg", "chelsea.png", "coffee.png", "moon.png"]


def _images(names: list[str]) -> list[str]:
    return [str(sample_data.skimage_images() / name) for name in names]


def _tasks(project: api.Project) -> dict[int, tuple[int, TaskStatus]]:
    """Asset id -> (required labelers, status) of every queued item."""
    return project.db.run(
        lambda uow: {a: (t.required_labelers, t.status) for a, t in uow.tasks.by_asset(project.id).items()},
        readonly=True,
    )


def _required(project: api.Project) -> dict[int, int]:
    return {asset: required for asset, (required, _) in _tasks(project).items()}


def _settings_audit(project: api.Project) -> list[tuple[int | None, dict[str, object]]]:
    from app.workflow.project_settings import AUDIT_ENTITY

    rows = project.db.run(
        lambda uow: uow.audit.list(entity=AUDIT_ENTITY, entity_id=project.id), readonly=True
    )
    return [(row.user_id, row.details) for row in rows]


def test_a_consensus_change_replans_unclaimed_items_and_started_ones_keep_their_plan(db_url: str) -> None:
    ada = api.create_project(db_url, "settings", settings=ProjectSettings(consensus_share=1.0), user="ada")
    ids = ada.import_data(_images(IMAGES[:6]))
    for name in ("lee", "kim", "pam"):
        ada.set_member(name, "project_admin" if name == "pam" else "labeler")
    lee, kim, pam = (api.open_project(ada.db, "settings", user=n) for n in ("lee", "kim", "pam"))
    assert set(_required(ada).values()) == {2}

    # started: one consensus copy of the first item submitted (1 of 2), the second leased, the third skipped
    (first,) = lee.claim(batch=1)
    lee.submit(first)
    second, third = lee.claim(batch=2)
    lee.skip(third, "blurred")
    started = [first.asset_id, second.asset_id, third.asset_id]
    assert started == ids[:3]
    waiting = ids[3:]

    change = ada.set_setting("consensus_count", 3)
    assert change.consensus_count == 3
    assert _required(ada) == {**dict.fromkeys(started, 2), **dict.fromkeys(waiting, 3)}

    # new data follows the change, also when imported through a handle opened before it
    (new,) = pam.import_data(_images(IMAGES[6:]))
    assert _required(ada)[new] == 3

    # a share below 1: the unclaimed items follow the project's hash sample
    replanned = ada.update_settings(consensus_share=0.5)
    plan = consensus_plan([*waiting, new], share=0.5, count=3, seed=f"project-{ada.id}")
    assert _required(ada) == {**dict.fromkeys(started, 2), **plan}
    assert replanned.replanned == sum(1 for needed in plan.values() if needed != 3)

    ada.update_settings(consensus_share=0.0)
    assert _required(ada) == {**dict.fromkeys(started, 2), **dict.fromkeys([*waiting, new], 1)}

    # the half-done consensus item still needs its second labeler: kim's copy completes it
    kim_leases = {lease.asset_id: lease for lease in kim.claim(batch=10)}
    assert set(kim_leases) == {*ids, new}  # lee's leased item has a free consensus slot
    kim.submit(kim_leases[first.asset_id])
    kim.submit(kim_leases[waiting[0]])
    tasks = _tasks(ada)
    assert tasks[first.asset_id] == (2, TaskStatus.SUBMITTED)
    assert tasks[waiting[0]] == (1, TaskStatus.SUBMITTED)
    for project in (ada, lee, kim, pam):
        project.close()


def test_batch_size_and_lease_time_apply_to_new_claims_and_running_leases_keep_theirs(db_url: str) -> None:
    settings = ProjectSettings(batch_size=2, lease_seconds=600)
    ada = api.create_project(db_url, "leases", settings=settings, user="ada")
    ada.import_data(_images(IMAGES[:6]))
    ada.set_member("lee", "labeler")
    ada.set_member("kim", "labeler")
    lee, kim = (api.open_project(ada.db, "leases", user=n) for n in ("lee", "kim"))
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)  # clocks of our own: exact expiries

    def at(seconds: int) -> datetime:
        return t0 + timedelta(seconds=seconds)

    held = queue.claim(ada.db, ada.id, lee.user.id, now=lambda: t0)
    assert [(lease.lease_seconds, lease.expires_at) for lease in held] == [(600, at(600))] * 2

    ada.update_settings(batch_size=3, lease_time="2m")
    assert lee.settings == ProjectSettings(batch_size=3, lease_seconds=120)  # an open handle sees it

    # lee's running lease keeps its 10 minutes at each renewal
    renewed = queue.renew(ada.db, held[0], now=lambda: at(60))
    assert (renewed.lease_seconds, renewed.expires_at) == (600, at(660))
    renewed = queue.renew(ada.db, renewed, now=lambda: at(120))
    assert renewed.expires_at == at(720)

    # a claim made now gets the new batch size and lease time, and renews by 2 minutes
    fresh = queue.claim(ada.db, ada.id, kim.user.id, now=lambda: at(60))
    assert [(lease.lease_seconds, lease.expires_at) for lease in fresh] == [(120, at(180))] * 3
    assert queue.renew(ada.db, fresh[0], now=lambda: at(120)).expires_at == at(240)

    # lee's held items stay held: the next claim tops them up to the new batch size
    again = queue.claim(ada.db, ada.id, lee.user.id, now=lambda: at(120))
    assert [lease.assignment_id for lease in again[:2]] == [lease.assignment_id for lease in held]
    assert len(again) == 3
    for project in (ada, lee, kim):
        project.close()


def test_only_project_admins_change_settings_and_every_change_is_audited(db_url: str) -> None:
    ada = api.create_project(db_url, "audited", user="ada")
    for name, role in (("pam", "project_admin"), ("rey", "reviewer"), ("lee", "labeler")):
        ada.set_member(name, role)
    pam, rey, lee = (api.open_project(ada.db, "audited", user=n) for n in ("pam", "rey", "lee"))

    for who, role in ((lee, "labeler"), (rey, "reviewer")):
        with pytest.raises(
            PermissionDenied, match=f"{who.user_name} is a {role} .*change the project's settings"
        ):
            who.set_setting("batch_size", 5)
        with pytest.raises(PermissionDenied, match="needs project admin"):
            who.update_settings(consensus_share=0.5)
    assert ada.settings == ProjectSettings() and _settings_audit(ada) == []

    before = datetime.now(UTC) - timedelta(seconds=5)
    pam.update_settings(batch_size=4, lease_time="1h30m")
    assert ada.settings == ProjectSettings(batch_size=4, lease_seconds=5400)
    ((user_id, details),) = _settings_audit(ada)
    assert user_id == pam.user.id
    assert details == {
        "changes": {"batch_size": {"old": 10, "new": 4}, "lease_seconds": {"old": 1800, "new": 5400}},
        "replanned": 0,
    }
    history = lee.settings_history()
    assert [(e.user, e.key, e.old, e.new) for e in history] == [
        ("pam", "batch_size", 10, 4),
        ("pam", "lease_time", 1800, 5400),
    ]
    assert all(before <= e.at.replace(tzinfo=e.at.tzinfo or UTC) <= datetime.now(UTC) for e in history)

    # refused values change nothing and write nothing; the same value writes no audit row
    for key, value in (
        ("consensus_share", 1.5),
        ("consensus_count", 0),
        ("batch_size", "x"),
        ("lease_time", "0"),
    ):
        with pytest.raises(ValidationError):
            pam.set_setting(key, value)
    assert pam.set_setting("batch_size", "4").batch_size == 4
    assert ada.settings == ProjectSettings(batch_size=4, lease_seconds=5400)
    assert len(_settings_audit(ada)) == 1
    for project in (ada, pam, rey, lee):
        project.close()


def test_the_command_line_shows_and_sets_settings(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: str, user: str = "ada") -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*args, "--db", db_url, "--user", user])
        out, err = capsys.readouterr()
        return code, out, err

    assert run("init", "cli")[0] == 0
    assert run("users", "add", "lee", "--role", "labeler", "--project", "cli")[0] == 0

    code, out, _ = run("project", "show")
    assert code == 0 and "batch_size       10 items" in out and "lease_time       30 min" in out
    code, out, _ = run("project", "set", "consensus-share", "25%")
    assert code == 0 and out.strip() == "consensus_share: 0 (0 % of the items) -> 0.25 (25 % of the items)"
    assert run("project", "set", "lease-time", "45m")[1].strip() == "lease_time: 30 min -> 45 min"
    assert "already 45 min" in run("project", "set", "lease_time", "2700s")[1]

    code, out, err = run("project", "set", "batch-size", "0")
    assert code == 1 and err.strip() == "sitelabel: the batch size must be at least 1, got 0" and not out
    code, _, err = run("project", "set", "honeypot_rate", "0.1")
    assert code == 1 and "no setting 'honeypot_rate'; the settings are: consensus_share" in err
    code, _, err = run("project", "set", "batch_size", "5", user="lee")
    assert code == 1 and "lee is a labeler" in err and len(err.strip().splitlines()) == 1

    code, out, _ = run("project", "show", "--history", "5", "--json")
    shown = json.loads(out)
    assert shown["settings"] == {
        "consensus_share": 0.25, "consensus_count": 2, "batch_size": 10, "lease_time": 2700
    }  # fmt: skip
    assert [(e["user"], e["key"], e["old"], e["new"]) for e in shown["history"]] == [
        ("ada", "lease_time", 1800, 2700),
        ("ada", "consensus_share", 0.0, 0.25),
    ]
    code, out, _ = run("project", "show", "--history", "1")
    assert "by ada: lease_time 30 min -> 45 min" in out

    code, _, err = run("init", "cli")
    assert code == 1 and "already exists" in err and "sitelabel project set KEY VALUE" in err


def test_the_set_help_lists_keys_ranges_units_and_what_a_change_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["project", "set", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for key in ("consensus_share", "consensus_count", "batch_size", "lease_time"):
        assert key in text
    wanted = ("0..1", "at least 1", "30m, 90s, 1h, 1h30m", "a bare number is minutes")
    for words in (*wanted, "items in progress keep their plan", "Only project admins"):
        assert words in text, words
