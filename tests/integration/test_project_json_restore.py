"""project-json round trips (#17): ``import-labels --format project-json`` restores annotations,
reviews, tracks and consensus onto another database holding the same data.

A team works a project on real data (sample images, a real H.264 clip with two tracks, a 6-slice MR
series built from pydicom's MR_small) through the queue and review: a model pre-label, an accepted
item, a merged consensus, a rejection, an accepted clip with a box track and a polygon track that
leaves the view, a submitted series. Its project.json is imported with the real CLI into a fresh
project on the other backend (SQLite -> PostgreSQL and back) that registered the same files, and
every asset's annotations, task, assignments, reviews and status compare equal field by field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _archive_setup import expected_statuses, key_of, make_worked, new_project, series_folder, snapshot

from app import api
from app.cli import main
from app.core.errors import ValidationError
from app.exchange.export import export_project


@pytest.fixture(
    params=[
        pytest.param(("sqlite", "postgresql"), marks=pytest.mark.postgres, id="sqlite-to-postgresql"),
        pytest.param(("postgresql", "sqlite"), marks=pytest.mark.postgres, id="postgresql-to-sqlite"),
    ]
)
def two_dbs(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(where the project is worked and exported, where it is restored): one on each backend."""
    urls = {"sqlite": str(tmp_path / "labels.db"), "postgresql": str(request.getfixturevalue("pg_url"))}
    source, target = request.param
    return urls[source], urls[target]


def _export(project: api.Project, out: Path) -> dict[str, Any]:
    export_project(
        project.db,
        project.id,
        "project-json",
        out,
        roots=project.config.all_data_roots,
        max_pixels=project.config.max_image_pixels,
    )
    data: dict[str, Any] = json.loads((out / "project.json").read_text())
    return data


def _content(data: dict[str, Any]) -> dict[tuple[str, str, str], Any]:
    """The archive's annotation and review content, without the database's own ids."""

    def review(block: dict[str, Any] | None) -> Any:
        if block is None:
            return None
        history = [
            {k: v for k, v in r.items() if k not in ("id", "assignment_id", "details")}
            for r in block["history"]
        ]
        details = [{k: v for k, v in r["details"].items() if k != "annotations"} for r in block["history"]]
        counts = [len(r["details"].get("annotations", [])) for r in block["history"]]
        assignments = [{k: v for k, v in a.items() if k != "id"} for a in block["assignments"]]
        scalars = {k: v for k, v in block.items() if k not in ("history", "assignments", "consensus")}
        return scalars, history, details, counts, assignments

    return {
        (a["root"], a["path"], a["member"] or ""): (
            [{k: v for k, v in ann.items() if k not in ("id", "version")} for ann in a["annotations"]],
            review(a["review"]),
        )
        for a in data["assets"]
    }


def test_round_trip_onto_the_other_backend(two_dbs: tuple[str, str], tmp_path: Path) -> None:
    source_url, target_url = two_dbs
    series_dir = series_folder(tmp_path)
    worked = make_worked(source_url, series_dir)
    before = snapshot(worked.ada)
    statuses = {k: before[key_of(worked.ada, i)]["status"] for k, i in worked.ids.items()}
    assert statuses == expected_statuses()
    first = _export(worked.ada, tmp_path / "first")

    target, ids = new_project(target_url, series_dir)
    where = ["--db", target_url, "--user", "ada", "--project", "archive", "--quiet"]
    code = main(["import-labels", str(tmp_path / "first"), "--format", "project-json", *where])
    assert code == 0
    after = snapshot(target)
    assert sorted(after) == sorted(before)
    for key, entry in before.items():  # field by field, asset by asset
        for field, value in entry.items():
            assert after[key][field] == value, (key, field)

    clip = after[key_of(target, ids["clip"])]["annotations"]
    assert sorted((a[2], a[8]) for a in clip if a[8][0] == 2) == [
        (20, (2, True, False, False)),
        (30, (2, True, False, True)),
        (35, (2, True, True, False)),
    ]
    camera = after[key_of(target, ids["camera"])]
    assert [a[5] for a in camera["annotations"]].count("consensus") == 1
    assert camera["reviews"][-1][4]["annotations"] == [2]  # the consensus box, by its new id

    # export -> import -> export: the same annotation content
    second = _export(target, tmp_path / "second")
    assert _content(second) == _content(first)


def test_restore_matches_by_hash_and_never_duplicates(db_url: str, tmp_path: Path) -> None:
    series_dir = series_folder(tmp_path)
    worked = make_worked(db_url, series_dir)
    data = _export(worked.ada, tmp_path / "out")
    by_name = {Path(a["path"]).name: a for a in data["assets"]}
    by_name["coins.png"]["path"] = "moved/coins.png"  # matched by its content hash instead
    by_name["astronaut.png"].update(path="gone/astronaut.png", content_hash="0" * 64)  # by nothing
    (tmp_path / "edited.json").write_text(json.dumps(data))

    copy = api.create_project(db_url, "copy", user="ada")  # no ontology: it takes the archive's
    copy.import_data([worked.ada.asset_path(i) for i in worked.ids.values()])
    dry = copy.import_labels("project-json", tmp_path / "edited.json", dry_run=True)
    assert len(dry.matched) == 4 and dry.restored["reviews"] == 3  # coins, camera, clip
    assert all(not entry["annotations"] for entry in snapshot(copy).values())  # nothing stored

    report = copy.import_labels("project-json", tmp_path / "edited.json")
    assert [why for _, why in report.skipped] == [
        "no asset of this project has its data root and path or its content hash"
    ]
    assert report.restored["annotations"] == report.annotations > 0
    assert [c.name for c in copy.ontology.classes] == ["organ", "lesion", "bunny", "tag"]
    coins = snapshot(copy)[key_of(worked.ada, worked.ids["coins"])]
    assert coins == snapshot(worked.ada)[key_of(worked.ada, worked.ids["coins"])]

    # again, unedited: the restored assets are left alone, the astronaut is put back now
    again = copy.import_labels("project-json", tmp_path / "out")
    assert [Path(item).name for item, _, _ in again.matched] == ["astronaut.png"]
    assert len(again.skipped) == 4 and all("already holds" in why for _, why in again.skipped)
    assert snapshot(copy) == snapshot(worked.ada)
    with pytest.raises(ValidationError, match=r"not a Sitelabel project\.json"):
        copy.import_labels("project-json", tmp_path / "out/manifest.json")
