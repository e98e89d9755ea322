"""Roles are enforced in the API for every call, systematically: each public method of
``app.api.Project`` and each public function of ``app.api`` is classified in a table
(tests/reliability/_security_setup.py) and called, on a real project, by every role below the one it
needs (refused, database unchanged to the last byte) and by the least role that may (it works).
A call missing from the table fails the first test, so a new call must be classified.

Denials are not written to the audit log today (no call records them), so a refusal must leave
every table exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _security_setup import (
    EXTRA_CALLS,
    FREE,
    MODULE_CALLS,
    MUTATE,
    OTTO_BOX,
    PROJECT_CALLS,
    READ,
    Case,
    World,
    build_world,
    public_module_functions,
    public_project_calls,
    snapshot,
)
from support.ontology_check import assert_ontology_allows

from app import api
from app.cli import main
from app.core.annotations import Annotation
from app.core.errors import NotFoundError, PermissionDenied

BLIND_MARKS = ("otto", "lesion")  # otto's name and the only class otto labels


def test_every_public_api_call_is_classified() -> None:
    assert public_project_calls() == set(PROJECT_CALLS), (
        "classify every public Project call in tests/reliability/_security_setup.py PROJECT_CALLS: "
        f"missing {sorted(public_project_calls() - set(PROJECT_CALLS))}, "
        f"gone {sorted(set(PROJECT_CALLS) - public_project_calls())}"
    )
    assert public_module_functions() == set(MODULE_CALLS), (
        "classify every public app.api function in MODULE_CALLS: "
        f"missing {sorted(public_module_functions() - set(MODULE_CALLS))}, "
        f"gone {sorted(set(MODULE_CALLS) - public_module_functions())}"
    )
    for name, case in {**PROJECT_CALLS, **EXTRA_CALLS, **MODULE_CALLS}.items():
        assert case.kind in (READ, MUTATE, FREE), name
        assert (case.call is None) == (case.kind == FREE), f"{name}: a classified call needs a real call"
        assert case.kind != FREE or case.why, f"{name}: say why it needs no role"


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> World:
    return build_world(db_url, tmp_path)


def _refused(world: World, name: str, case: Case, who: str) -> str | None:
    """None when ``who`` is refused and nothing changed; else what went wrong."""
    assert case.call is not None
    before = snapshot(world.db)
    try:
        case.call(world, world[who])
    except PermissionDenied:
        pass
    except Exception as exc:
        return f"{name} by {who}: {type(exc).__name__} instead of PermissionDenied: {exc}"
    else:
        return f"{name} by {who}: NOT refused"
    changed = [t for t, rows in snapshot(world.db).items() if rows != before[t]]
    return f"{name} by {who}: refused but changed {changed}" if changed else None


def _allowed(world: World, name: str, case: Case, who: str) -> tuple[str | None, Any]:
    assert case.call is not None
    before = snapshot(world.db)
    try:
        result = case.call(world, world[who])
    except Exception as exc:
        return f"{name} by {who} (allowed) failed: {type(exc).__name__}: {exc}", None
    changed = [t for t, rows in snapshot(world.db).items() if rows != before[t]]
    if case.kind == READ and changed:
        return f"{name} by {who}: a read-only call changed {changed}", result
    if case.kind == MUTATE and case.changes_db and not changed:
        return f"{name} by {who}: changed nothing", result
    return None, result


def _leaks(result: Any) -> list[str]:
    text = repr(result)
    return [mark for mark in BLIND_MARKS if mark in text]


def test_every_call_is_refused_below_its_role_and_works_at_it(world: World) -> None:
    problems: list[str] = []
    ordered = [
        *[(n, c) for n, c in PROJECT_CALLS.items() if c.kind == READ],
        *[(n, c) for n, c in PROJECT_CALLS.items() if c.kind == MUTATE],
        *EXTRA_CALLS.items(),
        *[(n, c) for n, c in MODULE_CALLS.items() if c.kind != FREE],
    ]
    for name, case in ordered:
        for who in case.denied():
            problems.append(_refused(world, name, case, who) or "")
        if case.kind == READ:  # every role allowed reads, and none of them writes
            allowed = [p for p in ("lee", "rey", "pam", "ada") if p not in case.denied()]
        else:
            allowed = [case.actor()]
        for who in allowed:
            problem, result = _allowed(world, name, case, who)
            problems.append(problem or "")
            if case.blind and who == "lee" and name != "render" and _leaks(result):
                problems.append(f"{name} by lee shows another labeler's blind work: {_leaks(result)}")
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)
    assert (world.tmp / "exports" / "coco").is_dir()  # the reviewer's export happened


def _box_region(image: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = OTTO_BOX["box"]  # type: ignore[misc]
    return image[y0 - 2 : y1 + 2, x0 - 2 : x1 + 2]


def test_a_labeler_never_sees_another_labelers_blind_consensus_work(world: World) -> None:
    lee, rey, ada = world["lee"], world["rey"], world["ada"]
    coins, coffee = world.ids["coins.png"], world.ids["coffee.png"]
    assert any(a["author"] == "otto" for a in rey.annotations(coins))  # there is something to hide
    for name, case in PROJECT_CALLS.items():
        if case.blind and case.kind == READ and "lee" not in case.denied() and name != "render":
            assert case.call is not None
            assert not _leaks(case.call(world, lee)), name
    # render: otto's box is drawn for the admin, never for lee
    everyone, own = ada.render(coins), lee.render(coins)
    assert not np.array_equal(_box_region(everyone), _box_region(own))
    assert np.array_equal(_box_region(own), _box_region(ada.render(coins, labeler="lee")))
    for ask in (
        lambda: lee.annotations(coins, labeler="otto"),
        lambda: lee.render(coins, labeler="otto"),
        lambda: lee.activity(labeler="otto"),
        lambda: lee.export("coco", world.tmp / "lee-export"),
    ):
        with pytest.raises(PermissionDenied):
            ask()
    # a consensus label made from otto's work, then the item requeued: lee labels it again blind
    rey.choose_consensus(coffee, "otto")
    assert_ontology_allows(rey, rey.review_item(coffee).consensus)
    rey.requeue([coffee])
    assert not _leaks(lee.annotations(coffee))
    assert not _leaks([r for r in lee.activity().rows if r.asset_id in (coins, coffee)])
    assert not _leaks(lee.activity_facets())
    assert np.array_equal(_box_region(lee.render(coffee)), _box_region(ada.render(coffee, labeler="lee")))


def test_calls_cannot_reach_into_another_project(world: World) -> None:
    """Membership of one project gives nothing in another, even by passing the other's ids."""
    assert world.other_project is not None
    with world.db.unit_of_work(readonly=True) as uow:
        theirs = uow.annotations.get(world.other_annotation)
    other_thread = world.other_project.comment(world.other_asset, "elsewhere").id
    new = Annotation.from_dict(
        {"kind": "box", "label": "coin", "box": [20, 20, 40, 40]},
        frame_shape=(10_000, 10_000),
        source="human",
    ).evolve(asset_id=world.other_asset)
    other, box = world.other_asset, {"kind": "box", "label": "coin", "box": [1, 1, 5, 5]}
    attempts: list[Callable[[api.Project], Any]] = [
        lambda me: me.save_annotation(new),
        lambda me: me.save_annotation(theirs.evolve(box=(1.0, 1.0, 5.0, 5.0))),
        lambda me: me.delete_annotation(theirs),
        lambda me: me.upload_annotations(other, [box]),
        lambda me: me.comment(other, "hi"),
        lambda me: me.reply(other_thread, "hi"),
        lambda me: me.resolve(other_thread),
        lambda me: me.annotations(other),
        lambda me: me.render(other),
        lambda me: me.asset_path(other),
        lambda me: me.low_confidence_map(world.other_annotation),
        lambda me: me.review_notes(other),
        lambda me: me.accept(other),
        lambda me: me.reject(other, "lee", "no"),
        lambda me: me.requeue([other]),
        lambda me: me.review_item(other),
        lambda me: me.prelabel(["bright"], [other]),
    ]
    before = snapshot(world.db)
    for who in ("lee", "rey", "pam"):
        for attempt in attempts:
            with pytest.raises((PermissionDenied, NotFoundError)):
                attempt(world[who])
    assert snapshot(world.db) == before


def test_opening_a_project_as_a_stranger_writes_nothing(world: World) -> None:
    before = snapshot(world.db)
    with pytest.raises(PermissionDenied, match="mallory is not a member"):
        api.open_project(world.db, "sec", user="mallory")
    with pytest.raises(PermissionDenied):
        api.open_project(world.db, "sec", user="eve")  # taken off the project
    with pytest.raises(PermissionDenied):
        api.open_project(world.db, "brand-new", user="pam")  # would create a project
    assert snapshot(world.db) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "--format", "coco", "--out", "{tmp}/out"],
        ["review", "list"],
        ["review", "accept", "{coins}"],
        ["review", "reject", "{coins}", "--labeler", "otto", "--reason", "x"],
        ["consensus", "{coins}", "--method", "majority"],
        ["import-labels", "{tmp}", "--format", "coco"],
        ["users", "add", "zed", "--role", "labeler", "--project", "sec"],
        ["project", "set", "batch_size", "5"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_labeler_on_the_command_line_gets_a_one_line_refusal(
    world: World, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = world.db.engine.url.render_as_string(hide_password=False)
    if world.db.path is not None:
        url = str(world.db.path)
    args = [a.format(tmp=world.tmp, coins=world.ids["coins.png"]) for a in argv]
    before = snapshot(world.db)
    capsys.readouterr()
    code = main([*args, "--db", url, "--user", "lee", *(["--project", "sec"] if args[0] != "users" else [])])
    out, err = capsys.readouterr()
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sitelabel: "), err
    assert "lee is a labeler" in lines[0] or "lee" in lines[0], lines[0]
    assert "Traceback" not in err and not out.strip()
    assert snapshot(world.db) == before
    assert not (world.tmp / "out").exists()
