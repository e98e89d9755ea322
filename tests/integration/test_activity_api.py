"""The activity view through the API on a real project: real images and DICOM files imported, two
labelers claiming, annotating and submitting, a reviewer deciding; rows and filters checked by hand."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app import api, sample_data
from app.core.errors import PermissionDenied, ValidationError
from app.workflow import queue
from app.workflow.activity import ItemFilters, ItemPage

ONTOLOGY = {
    "classes": [
        {"name": "object", "kinds": ["box", "polygon"]},
        {"name": "bone", "kinds": ["polygon", "mask"]},
    ]
}
SQUARE = [[10, 10], [50, 10], [50, 50], [10, 50]]
NAMES = ("coins", "camera", "astronaut", "ct", "mr")


@dataclass
class Team:
    admin: api.Project
    lee: api.Project
    max: api.Project
    rita: api.Project
    ids: dict[str, int]


@pytest.fixture
def team(db_url: str) -> Team:
    """coins/camera/astronaut (photos) and CT_small/MR_small (dicom); CT is a consensus item
    claimed first. lee: coins + CT submitted, camera still leased. max: CT submitted, astronaut
    skipped. rita (reviewer) accepts coins and rejects lee's CT; an open issue on MR."""
    admin = api.create_project(db_url, "activity", ontology=ONTOLOGY, user="ada")
    photos = [sample_data.skimage_images() / n for n in ("coins.png", "camera.png", "astronaut.png")]
    dicoms = [sample_data.dicom_file("CT_small.dcm"), sample_data.dicom_file("MR_small.dcm")]
    admin.import_data(photos, dataset="photos")
    admin.import_data(dicoms, dataset="dicom")
    by_file = {a.rel_path.rsplit("/", 1)[-1]: a.id for a in admin.assets()}  # scans sort their finds
    ids = {n: by_file[f.name] for n, f in zip(NAMES, photos + dicoms, strict=True)}
    queue.set_required(admin.db, admin.id, [ids["ct"]], 2)
    queue.set_priority(admin.db, admin.id, [ids["ct"]], 10.0)
    queue.set_priority(admin.db, admin.id, [ids["mr"]], -1.0)  # last: nobody claims it here
    for name, role in (("lee", "labeler"), ("max", "labeler"), ("rita", "reviewer"), ("nia", "labeler")):
        admin.set_member(name, role)
    lee, max_, rita = (api.open_project(admin.db, "activity", user=n) for n in ("lee", "max", "rita"))

    leases = {lease.asset_id: lease for lease in lee.claim(3)}
    assert set(leases) == {ids["ct"], ids["coins"], ids["camera"]}
    lee.upload_annotations(
        ids["coins"], [{"kind": "box", "label": "object", "frame": 0, "box": [5, 5, 40, 40]}]
    )
    lee.upload_annotations(ids["ct"], [{"kind": "polygon", "label": "bone", "frame": 0, "points": SQUARE}])
    lee.submit(leases[ids["coins"]])
    lee.submit(leases[ids["ct"]])

    theirs = {lease.asset_id: lease for lease in max_.claim(2)}
    assert set(theirs) == {ids["ct"], ids["astronaut"]}
    max_.upload_annotations(ids["ct"], [{"kind": "polygon", "label": "bone", "frame": 0, "points": SQUARE}])
    max_.upload_annotations(
        ids["astronaut"], [{"kind": "box", "label": "object", "frame": 0, "box": [1, 1, 30, 30]}]
    )
    max_.submit(theirs[ids["ct"]])
    max_.skip(theirs[ids["astronaut"]], reason="unsure")

    rita.accept(ids["coins"])
    rita.reject(ids["ct"], "lee", "the cortex is missing")
    rita.comment(ids["mr"], "is this the right series?")
    return Team(admin, lee, max_, rita, ids)


def _ids(page: ItemPage) -> list[int]:
    return [row.asset_id for row in page.rows]


def test_item_rows_hold_the_hand_expected_facts(team: Team) -> None:
    ids = team.ids
    page = team.admin.activity()
    assert page.total == 5
    rows = {row.asset_id: row for row in page.rows}
    assert [row.asset_id for row in page.rows] == sorted(ids.values())  # default: asset order
    coins, camera, astronaut, ct, mr = (rows[ids[n]] for n in ("coins", "camera", "astronaut", "ct", "mr"))

    assert (coins.status, coins.labelers, coins.classes) == ("accepted", ("lee",), ("object",))
    assert (coins.review, coins.reviewer, coins.required, coins.dataset) == ("accepted", "rita", 1, "photos")
    assert coins.seconds is not None and coins.seconds >= 0
    assert coins.path.endswith("skimage/data/coins.png") and coins.kind == "image"

    assert (camera.status, camera.labelers, camera.classes, camera.seconds) == ("leased", ("lee",), (), None)
    # max skipped it: back in the pool, nobody holds it, but his label stays on the item
    assert (astronaut.status, astronaut.labelers, astronaut.classes) == ("new", (), ("object",))

    assert (ct.status, ct.labelers, ct.classes, ct.required) == ("rejected", ("lee", "max"), ("bone",), 2)
    assert (ct.review, ct.reviewer) == ("rejected", "rita")
    assert (ct.modality, ct.study_date, ct.kind) == ("CT", "2004-01-19", "dicom-series")
    assert ct.agreement == pytest.approx(1.0)  # identical polygons, scored when both submitted

    assert (mr.status, mr.open_threads, mr.modality, mr.study_date) == ("new", 1, "MR", "2004-08-26")
    assert (mr.labelers, mr.classes, mr.review, mr.agreement) == ((), (), None, None)
    assert sum(r.open_threads for r in page.rows) == 1


def test_filters_search_sorting_and_paging(team: Team) -> None:
    ids, admin = team.ids, team.admin
    expect = {
        ItemFilters(status="done"): ["coins"],
        ItemFilters(status="leased"): ["camera"],
        ItemFilters(status="new"): ["astronaut", "mr"],
        ItemFilters(status="rejected"): ["ct"],
        ItemFilters(status="unqueued"): [],
        ItemFilters(labeler="lee"): ["coins", "camera", "ct"],
        ItemFilters(labeler="max"): ["ct"],
        ItemFilters(label="object"): ["coins", "astronaut"],
        ItemFilters(label="bone"): ["ct"],
        ItemFilters(modality="CT"): ["ct"],
        ItemFilters(modality="mr"): ["mr"],
        ItemFilters(dataset="dicom"): ["ct", "mr"],
        ItemFilters(dataset="dicom", status="new"): ["mr"],
        ItemFilters(study_from="2004-01-01", study_to="2004-03-01"): ["ct"],
        ItemFilters(study_from="20040301"): ["mr"],
        ItemFilters(search="CAMERA"): ["camera"],
        ItemFilters(search="_small"): ["ct", "mr"],  # "_" is a literal, not a LIKE wildcard
        ItemFilters(search="%"): [],
        ItemFilters(labeler="lee", label="object"): ["coins"],
    }
    for filters, names in expect.items():
        assert _ids(admin.activity(filters)) == sorted(ids[n] for n in names), filters
    # keywords work as well as an ItemFilters, and "class_" is accepted for the class
    assert _ids(admin.activity(class_="bone", modality="ct")) == [ids["ct"]]

    by_path = admin.activity(sort="path")
    paths = [row.path for row in by_path.rows]
    assert paths == sorted(paths)
    first_two = admin.activity(limit=2, offset=1)
    assert _ids(first_two) == sorted(ids.values())[1:3] and first_two.total == 5
    by_threads = admin.activity(sort="threads", descending=True, limit=1)
    assert _ids(by_threads) == [ids["mr"]]
    with pytest.raises(ValidationError, match="sort"):
        admin.activity(sort="colour")
    with pytest.raises(ValidationError, match="status"):
        admin.activity(status="finished")
    with pytest.raises(ValidationError, match="filter"):
        admin.activity(colour="red")
    with pytest.raises(ValidationError, match="date"):
        admin.activity(study_from="last week")


def test_labeler_sees_only_own_rows_and_labels(team: Team) -> None:
    ids = team.ids
    mine = team.lee.activity()
    assert _ids(mine) == sorted([ids["coins"], ids["camera"], ids["ct"]]) and mine.total == 3
    assert all(row.labelers == ("lee",) for row in mine.rows)  # max's part in CT is not shown
    assert _ids(team.lee.activity(labeler="lee")) == _ids(mine)
    with pytest.raises(PermissionDenied):
        team.lee.activity(labeler="max")
    # max's label on the astronaut is his own; he skipped it, so the item is not his any more
    assert _ids(team.max.activity()) == [ids["ct"]]
    assert _ids(team.max.activity(label="object")) == []
    assert [r.name for r in team.lee.labeler_activity()] == ["lee"]
    assert set(team.lee.throughput().counts) == {"lee"}
    assert team.lee.activity_facets().labelers == ["lee"]
    assert set(team.rita.activity_facets().labelers) == {"lee", "max"}


def test_labeler_throughput_rows(team: Team) -> None:
    rows = {r.name: r for r in team.rita.labeler_activity()}
    assert set(rows) == {"lee", "max"}
    lee, max_ = rows["lee"], rows["max"]
    # lee: coins submitted; CT submitted, then returned by review (counted as rejected, not as a
    # standing submission); max: CT, one skip
    assert (lee.submitted, lee.skipped, lee.rejected, lee.consensus_items) == (1, 0, 1, 1)
    assert (max_.submitted, max_.skipped, max_.rejected, max_.consensus_items) == (1, 1, 0, 1)
    assert lee.mean_agreement == pytest.approx(1.0) and max_.mean_agreement == pytest.approx(1.0)
    for row in (lee, max_):
        assert row.lease_seconds > 0 and row.per_hour == pytest.approx(
            row.submitted / (row.lease_seconds / 3600)
        )
    series = team.rita.throughput("day")
    assert {name: sum(counts) for name, counts in series.counts.items()} == {"lee": 1, "max": 1}
    assert all(len(counts) == len(series.starts) for counts in series.counts.values())
    histogram = team.rita.agreement_histogram(bins=10)
    assert histogram.counts == [0] * 9 + [1] and histogram.edges[0] == 0.0 and histogram.edges[-1] == 1.0


def test_requeue_needs_a_reviewer_and_is_audited(team: Team) -> None:
    ids, db = team.ids, team.admin.db
    with pytest.raises(PermissionDenied):
        team.lee.requeue([ids["ct"]])
    assert team.admin.activity(status="rejected").total == 1  # the refused call changed nothing

    assert team.rita.requeue([ids["ct"]]) == 1
    ct = team.admin.activity(search="CT_small").rows[0]
    assert (ct.status, ct.labelers, ct.seconds) == ("new", (), None)
    with db.unit_of_work(readonly=True) as uow:
        entries = [
            e for e in uow.audit.list(entity="asset", entity_id=ids["ct"]) if e.action == "queue.requeue"
        ]
        rita_id = uow.users.get_by_name("rita").id
    assert len(entries) == 1 and entries[0].user_id == rita_id
    assert entries[0].details["from"] == "rejected"

    nia = api.open_project(db, "activity", user="nia")
    assert ids["ct"] in {lease.asset_id for lease in nia.claim(10)}  # claimable again (and first)
    with pytest.raises(api.NotFoundError):
        team.rita.requeue([10_000])
