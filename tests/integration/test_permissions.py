"""Roles are enforced in the API for every action, not only hidden in the UI."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import api, sample_data
from app.core.errors import PermissionDenied
from app.core.permissions import Action

ONTOLOGY = {"classes": [{"name": "coin", "color": "#ff0000", "kinds": ["box", "polygon", "mask"]}]}
BOX = {"kind": "box", "label": "coin", "box": [10, 10, 50, 50]}


@pytest.fixture
def team(db_url: str) -> dict[str, api.Project]:
    admin = api.create_project(db_url, "coins", ontology=ONTOLOGY, user="ada")
    admin.import_data([sample_data.skimage_images() / "coins.png"])
    for name, role in (("lee", "labeler"), ("rey", "reviewer"), ("pam", "project_admin")):
        admin.set_member(name, role)
    people = {name: api.open_project(admin.db, "coins", user=name) for name in ("lee", "rey", "pam")}
    people["ada"] = admin
    return people


def test_a_labeler_labels_but_cannot_import_export_or_change_the_ontology(team, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lee = team["lee"]
    (asset,) = lee.assets()
    assert lee.role is not None and lee.role.value == "labeler"
    assert len(lee.upload_annotations(asset.id, [BOX])) == 1
    for attempt in (
        lambda: lee.import_data([sample_data.skimage_images() / "camera.png"]),
        lambda: lee.export("coco", tmp_path / "out"),
        lambda: lee.set_ontology(ONTOLOGY),
        lambda: lee.set_member("zed", "labeler"),
        lambda: lee.import_labels("coco", tmp_path),
    ):
        with pytest.raises(PermissionDenied, match="lee is a labeler"):
            attempt()
    assert not (tmp_path / "out").exists()


def test_labelers_are_blind_to_each_other_but_see_prelabels(team) -> None:  # type: ignore[no-untyped-def]
    lee, rey, ada = team["lee"], team["rey"], team["ada"]
    (asset,) = ada.assets()
    ada.upload_annotations(asset.id, [BOX], source="model:coins@1", confidence=0.6)
    rey.upload_annotations(asset.id, [dict(BOX, box=[60, 60, 90, 90])])
    lee.upload_annotations(asset.id, [dict(BOX, box=[100, 100, 140, 140])])
    seen_by_lee = {(a["author"], a["source"]) for a in lee.annotations(asset.id)}
    assert seen_by_lee == {("ada", "model:coins@1"), ("lee", "human")}
    with pytest.raises(PermissionDenied):
        lee.annotations(asset.id, labeler="rey")
    assert {a["author"] for a in rey.annotations(asset.id)} == {"ada", "rey", "lee"}  # a reviewer sees all


def test_only_reviewers_change_someone_elses_labels(team) -> None:  # type: ignore[no-untyped-def]
    lee, rey = team["lee"], team["rey"]
    (asset,) = lee.assets()
    lee.upload_annotations(asset.id, [BOX])
    (mine,) = lee.annotation_objects(asset.id)
    moved = lee.save_annotation(mine.evolve(box=(12.0, 12.0, 52.0, 52.0)))
    assert moved.version == 2
    rey.upload_annotations(asset.id, [dict(BOX, box=[60, 60, 90, 90])])
    theirs = next(a for a in rey.annotation_objects(asset.id) if a.author == "rey")
    with pytest.raises(PermissionDenied, match="review"):
        lee.save_annotation(theirs.evolve(box=(61.0, 61.0, 91.0, 91.0)))
    fixed = rey.save_annotation(moved.evolve(box=(14.0, 14.0, 54.0, 54.0)))  # a reviewer's fix
    assert fixed.version == 3


def test_strangers_and_non_admins_are_refused(team, db_url: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDenied, match="eve is not a member of project 'coins'"):
        api.open_project(team["ada"].db, "coins", user="eve")
    with pytest.raises(PermissionDenied, match="only a site admin can create projects"):
        api.create_project(team["ada"].db, "other", user="pam")
    with pytest.raises(PermissionDenied, match="only a site admin"):
        api.set_site_role(team["ada"].db, "pam", "admin", user="pam")
    assert team["pam"].can(Action.IMPORT_DATA) and not team["rey"].can(Action.IMPORT_DATA)
