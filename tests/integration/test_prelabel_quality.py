"""Quality tracking: how much a labeler changed a model version's pre-labels, checked against
Dice and IoU computed by hand on real images (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _prelabel_setup import ADMIN, LABELER, make_team_project
from support.models import threshold_model

from app import sample_data
from app.core.annotations import Annotation
from app.core.commands import RemoveAnnotation, ReplaceAnnotation
from app.core.raster import rasterize_annotation
from app.workflow.editing import EditSession
from app.workflow.journal import Journal

IMAGES = ("coins.png", "camera.png", "page.png")  # edited / accepted as is / rejected


def _union(anns: list[Annotation], shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    for ann in anns:
        out |= rasterize_annotation(ann, shape)
    return out


def test_quality_numbers_equal_hand_computed_dice(db_url: str, tmp_path: Path) -> None:
    people = make_team_project(db_url)
    admin, ana = people[ADMIN], people[LABELER]
    ids = admin.import_data([sample_data.skimage_images() / name for name in IMAGES])
    admin.register_model(threshold_model(tmp_path / "incoming"))
    report = admin.prelabel(["bright"], asset_ids=ids)
    pre = {asset_id: admin.annotation_objects(asset_id) for asset_id in ids}
    assert all(len(p) >= 2 for p in pre.values()), {a: len(p) for a, p in pre.items()}
    (row,) = admin.model_quality()
    assert (row.model, row.version, row.label, row.groups, row.reviewed) == ("bright", "1", "vessel", 3, 0)
    assert row.accept_rate is None and row.mean_dice is None  # nobody has looked yet: all pending

    edited, accepted, rejected = ids
    sessions = []
    for asset_id in ids:
        asset = ana.asset(asset_id)
        journal = Journal(tmp_path / f"j{asset_id}.db")
        session = EditSession(ana.db, ana.id, asset, ana.user, ana.ontology, journal=journal).load()
        sessions.append(session)
        shown = session.prelabels()
        if asset_id == edited:  # move the largest outline 3 px left and 2 px down, drop one, keep the rest
            (big, big_ann), (small, _) = sorted(shown.items(), key=lambda kv: -len(kv[1].points))[:2]
            assert big_ann.points is not None
            session.stack.push(
                ReplaceAnnotation(big, big_ann, big_ann.evolve(points=big_ann.points + np.array([-3.0, 2.0])))
            )
            session.stack.push(RemoveAnnotation(small))
            session.accept_prelabels()
        elif asset_id == accepted:
            session.accept_prelabels()
        else:
            for aid in shown:
                session.stack.push(RemoveAnnotation(aid))
        result = session.flush()
        assert result.error is None and not result.conflicts

    shape = {a: (ana.asset(a).height, ana.asset(a).width) for a in ids}
    final = {a: ana.annotation_objects(a, labeler=LABELER) for a in ids}
    assert not final[rejected] and len(final[accepted]) == len(pre[accepted])
    assert len(final[edited]) == len(pre[edited]) - 1
    a, b = _union(pre[edited], shape[edited]), _union(final[edited], shape[edited])
    inter, na, nb = np.count_nonzero(a & b), np.count_nonzero(a), np.count_nonzero(b)
    dice_edited, iou_edited = 2 * inter / (na + nb), inter / (na + nb - inter)
    assert 0.5 < dice_edited < 1.0

    (row,) = admin.model_quality()
    assert row.groups == 3 and row.reviewed == 3 and row.accepted == 1
    assert row.accept_rate == pytest.approx(1 / 3)
    assert row.mean_dice == pytest.approx((dice_edited + 1.0 + 0.0) / 3, abs=1e-12)
    assert row.mean_iou == pytest.approx((iou_edited + 1.0 + 0.0) / 3, abs=1e-12)
    assert report.models == ["bright@1"]

    # the editor's highlight: where the model was unsure about a pre-label (also once it was edited)
    first = pre[edited][0]
    assert first.id is not None
    unsure = ana.low_confidence_map(first.id)
    assert unsure.shape == shape[edited] and unsure.dtype == np.float32
    assert float(unsure.min()) >= 0.0 and float(unsure.max()) <= 1.0 and float(unsure.max()) > 0.5
    for session in sessions:
        session.close()
    for project in people.values():
        project.close()
