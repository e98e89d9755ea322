"""Repositories on both backends: records in, records out; annotations of every kind."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.errors import ConflictError, NotFoundError, ValidationError
from app.core.ontology import Ontology
from app.core.records import AssetKind, ProjectSettings, Role
from app.storage import Database

ONTOLOGY = {
    "classes": [
        {
            "name": "liver",
            "color": "#c0504d",
            "hotkey": "1",
            "kinds": ["polygon", "mask"],
            "attributes": [
                {
                    "name": "confidence",
                    "type": "enum",
                    "options": ["sure", "unsure"],
                    "children": {"unsure": [{"name": "why", "type": "text"}]},
                }
            ],
        },
        {"name": "lesion", "kinds": ["box"]},
    ]
}


def _asset(uow: Any, project_id: int, rel_path: str = "ct/001.dcm", member: str | None = None) -> Any:
    dataset = uow.datasets.ensure(project_id, "train")
    return uow.assets.add(
        project_id,
        dataset.id,
        kind=AssetKind.DICOM_SERIES,
        root="studies",
        rel_path=rel_path,
        member=member,
        size=123456789012,
        mtime_ns=1_700_000_000_123_456_789,
        content_hash="sha256:ab",
        frame_count=120,
        width=512,
        height=512,
        metadata={"Modality": "CT", "StudyDate": "20240101", "tags": {"0008,0060": "CT"}},
    )


def test_users_and_roles(db: Database) -> None:
    with db.unit_of_work() as uow:
        ana = uow.users.ensure("ana", "Ana Silva")
        assert uow.users.ensure("ana").id == ana.id
        bo = uow.users.ensure("bo")
        project = uow.projects.create("liver")
        assert ana.role is Role.LABELER and ana.display_name == "Ana Silva" and bo.display_name == "bo"
        assert uow.users.role_in(ana.id, project.id) is None
        uow.users.set_role(ana.id, Role.REVIEWER, project.id)
        uow.users.set_role(ana.id, Role.PROJECT_ADMIN, project.id)
        uow.users.set_role(bo.id, Role.ADMIN)
    with db.unit_of_work(readonly=True) as uow:
        assert uow.users.role_in(ana.id, project.id) is Role.PROJECT_ADMIN
        assert uow.users.role_in(bo.id, project.id) is Role.ADMIN  # global admins may do anything
        assert uow.users.get_by_name("bo").role is Role.ADMIN
        assert [u.name for u in uow.users.list()] == ["ana", "bo"]
        assert [(u.name, r) for u, r in uow.users.members(project.id)] == [("ana", Role.PROJECT_ADMIN)]
        with pytest.raises(NotFoundError):
            uow.users.get_by_name("nobody")


def test_projects_and_settings(db: Database) -> None:
    settings = ProjectSettings(consensus_share=0.1, consensus_count=3, batch_size=5, lease_seconds=600)
    with db.unit_of_work() as uow:
        project = uow.projects.create("liver", settings)
        with pytest.raises(ConflictError):
            uow.projects.create("liver")
    with db.unit_of_work() as uow:
        assert uow.projects.get(project.id).settings == settings
        assert uow.projects.by_name("liver").id == project.id
        changed = uow.projects.update_settings(project.id, ProjectSettings(batch_size=20))
        assert changed.settings.batch_size == 20 and changed.settings.consensus_count == 2
        assert [p.name for p in uow.projects.list()] == ["liver"]
        with pytest.raises(NotFoundError):
            uow.projects.by_name("kidney")
    with pytest.raises(ValidationError):
        ProjectSettings(consensus_share=1.5)


def test_ontology_versions(db: Database) -> None:
    with db.unit_of_work() as uow:
        project = uow.projects.create("liver")
        assert uow.ontologies.current(project.id) is None
        first = uow.ontologies.add(project.id, Ontology.from_dict(ONTOLOGY))
        changed = {"classes": [*ONTOLOGY["classes"], {"name": "kidney", "color": "#00ff00"}]}
        second = uow.ontologies.add(project.id, Ontology.from_dict(changed))
    assert (first.version, second.version) == (1, 2)
    with db.unit_of_work(readonly=True) as uow:
        current = uow.ontologies.current(project.id)
        assert current is not None and current.version == 2 and len(current.classes) == 3
        assert current.get("liver").attributes[0].children["unsure"][0].name == "why"
        assert [o.version for o in uow.ontologies.history(project.id)] == [1, 2]
        assert uow.ontologies.history(project.id)[0] == Ontology.from_dict(ONTOLOGY, 1)


def test_datasets_roots_and_assets(db: Database) -> None:
    with db.unit_of_work() as uow:
        project = uow.projects.create("liver")
        asset = _asset(uow, project.id)
        series = _asset(uow, project.id, "ct/002", member="1.2.840.113619.2.55.3")
        assert uow.datasets.ensure(project.id, "train").id == asset.dataset_id
        assert uow.data_roots.ensure("studies") == uow.data_roots.ensure("studies")
        with pytest.raises(ConflictError):
            _asset(uow, project.id)
    with db.unit_of_work(readonly=True) as uow:
        got = uow.assets.get(asset.id)
        assert got == asset
        assert got.size == 123456789012 and got.mtime_ns == 1_700_000_000_123_456_789
        assert got.metadata["tags"] == {"0008,0060": "CT"} and got.member is None
        assert uow.assets.find(project.id, "studies", "ct/002", "1.2.840.113619.2.55.3") == series
        assert uow.assets.find(project.id, "studies", "ct/002") is None
        assert uow.assets.count(project.id) == 2
        assert [a.id for a in uow.assets.list(project.id, limit=1, offset=1)] == [series.id]
        assert [a.id for a in uow.assets.list(project.id, dataset_id=asset.dataset_id)] == [
            asset.id,
            series.id,
        ]
        assert [r.name for r in uow.data_roots.list()] == ["studies"]
        assert [d.name for d in uow.datasets.list(project.id)] == ["train"]


def _blob(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((xx - w / 2) / (w / 4)) ** 2 + ((yy - h / 2) / (h / 5)) ** 2 <= 1


def test_annotations_of_every_kind_round_trip(db: Database) -> None:
    anns = [
        Annotation(
            Kind.POLYGON,
            "liver",
            frame=3,
            points=np.array([[0.5, 1.5], [100, 2], [50, 80.25]]),
            attributes={"confidence": "unsure", "confidence/unsure": {"why": "blurry"}},
        ),
        Annotation(
            Kind.BOX, "lesion", frame=12, box=(1.0, 2.0, 30.0, 40.0), source="model:les@2", confidence=0.75
        ),
        Annotation(Kind.MASK, "liver", frame=3, mask=MaskPatch.from_full(_blob(512, 512))),
        Annotation(Kind.POINT, "landmark", points=np.array([[4.0, 5.0]])),
        Annotation(Kind.POLYLINE, "vessel", points=np.array([[0.0, 0.0], [3.0, 4.0], [8.0, 1.0]])),
        Annotation(Kind.CLASSIFICATION, "normal", attributes={"quality": "good"}),
    ]
    with db.unit_of_work() as uow:
        ana = uow.users.ensure("ana")
        asset = _asset(uow, uow.projects.create("liver").id)
        saved = [uow.annotations.add(asset.id, a, ana.id) for a in anns]
    assert all(s.version == 1 and s.asset_id == asset.id and s.author == "ana" for s in saved)
    with db.unit_of_work(readonly=True) as uow:
        loaded = uow.annotations.list(asset.id)
        assert len(loaded) == len(anns)
        for original, back in zip(anns, loaded, strict=True):
            assert back.same_content(original)
            assert (back.source, back.confidence, back.author) == (
                original.source,
                original.confidence,
                "ana",
            )
        assert [a.label for a in uow.annotations.list(asset.id, frame=3)] == ["liver", "liver"]
        assert [a.label for a in uow.annotations.list(asset.id, source="model:les@2")] == ["lesion"]
        assert len(uow.annotations.list(asset.id, author_id=ana.id)) == 6
        assert uow.annotations.get(saved[2].id).mask == anns[2].mask


def test_add_many_bulk_keeps_order(db: Database) -> None:
    rng = np.random.default_rng(1)
    anns = [
        Annotation(Kind.POLYGON, "liver", frame=i % 7, points=rng.uniform(0, 512, (50, 2)))
        for i in range(2000)
    ]
    with db.unit_of_work() as uow:
        asset = _asset(uow, uow.projects.create("liver").id)
        saved = uow.annotations.add_many(asset.id, anns, None)
    assert len({s.id for s in saved}) == 2000
    with db.unit_of_work(readonly=True) as uow:
        by_id = {a.id: a for a in uow.annotations.list(asset.id)}
        assert all(by_id[s.id].same_content(s) for s in saved)
        assert by_id[saved[0].id].author is None
        assert uow.audit.list(1)[0].details["count"] == 2000


def test_annotation_writes_audit_themselves(db: Database) -> None:
    with db.unit_of_work() as uow:
        ana = uow.users.ensure("ana")
        asset = _asset(uow, uow.projects.create("liver").id)
        saved = uow.annotations.add(asset.id, Annotation(Kind.BOX, "lesion", box=(0, 0, 1, 1)), ana.id)
        updated = uow.annotations.update(saved.evolve(box=(0, 0, 2, 2)), editor_id=ana.id)
        uow.annotations.delete(updated.id or 0, updated.version, user_id=ana.id)
        uow.audit.record(ana.id, "project.export", "project", asset.project_id, {"format": "coco"})
    with db.unit_of_work(readonly=True) as uow:
        entries = uow.audit.list()
        assert [e.action for e in entries] == [
            "project.export",
            "annotation.delete",
            "annotation.update",
            "annotation.add",
        ]
        assert all(e.user_id == ana.id for e in entries)
        assert [e.action for e in uow.audit.list(entity="annotation", entity_id=saved.id)][
            -1
        ] == "annotation.add"
        with pytest.raises(NotFoundError):
            uow.annotations.get(saved.id or 0)
        assert uow.annotations.get(saved.id or 0, include_deleted=True).version == 3  # history kept
