"""A consensus project worked through the whole workflow, for the tests of what an export holds by
default (issue #17): real sample images, a real ONNX threshold model's pre-labels, the queue, review,
consensus and a requeue. The final labels of every item are recorded here as the set-up made them,
so a test checks the export against them without the export's own selection code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from _review_setup import Team, box, make_team, mask, square
from support.labeling import work_on
from support.models import threshold_model

from app import api, sample_data
from app.core.annotations import HUMAN
from app.workflow.editing import EditSession
from app.workflow.journal import Journal

MODEL = "model:bright@1"
ASTRONAUT = (512, 512)
CHELSEA = (300, 451)


@dataclass
class Worked:
    """The project and, per item, the ids of its final labels (empty: none are final)."""

    team: Team
    items: dict[str, int]  # name -> asset id
    final: dict[int, set[int]] = field(default_factory=dict)
    reviews: dict[int, int] = field(default_factory=dict)  # asset -> the review that decided it
    accepted_prelabels: int = 0  # pre-labels lee accepted on coins (now lee's, source human)

    def project(self, name: str) -> api.Project:
        return self.team[name]

    def prelabels(self) -> dict[int, set[int]]:
        """The untouched model pre-labels (all run by ada), per item."""
        out: dict[int, set[int]] = {}
        for asset_id in self.items.values():
            found = {a.id for a in self.team.ada.annotation_objects(asset_id) if a.source == MODEL}
            if found:
                out[asset_id] = {i for i in found if i is not None}
        return out


def work_the_project(db_url: str, tmp_path: Path) -> Worked:
    """Six items:

    * ``coins``: pre-labeled; lee accepts half the pre-labels, adds a box, submits; rey accepts.
    * ``camera``: pre-labeled; kim draws a square, submits; rey rejects it back to kim.
    * ``astronaut`` (consensus of 2): lee and kim paint masks; rey merges them with STAPLE.
    * ``coffee``: max draws a box; rey draws the corrected box himself and fixes and accepts it.
    * ``moon``: pre-labeled; max draws a square and submits (not reviewed yet); ada, who ran the
      pre-label pass, also draws a box there (a label, but not the item's labeler's).
    * ``chelsea`` (consensus of 2): lee and max paint masks, rey merges them, then requeues the item
      (the consensus is superseded); max relabels and submits: it waits for its second labeler.
    """
    team = make_team(db_url, images=5, consensus={2: 2, 3: 2})
    coins, camera, astronaut, chelsea, coffee = team.assets
    ada, lee, kim, max_, rey = team.ada, team["lee"], team["kim"], team["max"], team["rey"]
    (moon,) = ada.import_data([sample_data.skimage_images() / "moon.png"])
    items = {"coins": coins, "camera": camera, "astronaut": astronaut, "chelsea": chelsea}
    items |= {"coffee": coffee, "moon": moon}
    worked = Worked(team, items)

    ada.register_model(threshold_model(tmp_path / "incoming", "bright", label="coin"))
    report = ada.prelabel(["bright"], asset_ids=[coins, camera, moon])
    assert report.annotations > 10, report

    # coins: lee takes over half the pre-labels in the editor's session, adds a box, submits
    session = EditSession(
        lee.db, lee.id, lee.asset(coins), lee.user, lee.ontology, journal=Journal(tmp_path / "lee.db")
    ).load()
    shown = sorted(session.prelabels())
    taken = shown[: len(shown) // 2]
    assert len(taken) >= 3 and session.accept_prelabels(taken) == len(taken)
    result = session.flush()
    assert result.error is None and not result.conflicts
    session.close()
    worked.accepted_prelabels = len(taken)
    work_on(lee, coins, [box(200, 30, 260, 90, label="coin")])
    mine = {a.id for a in lee.annotation_objects(coins, labeler="lee") if a.id is not None}
    assert len(mine) == len(taken) + 1
    assert all(a.source == HUMAN for a in lee.annotation_objects(coins, labeler="lee"))
    worked.reviews[coins] = rey.accept(coins).id
    worked.final[coins] = mine

    # camera: submitted by kim, rejected back to her
    work_on(kim, camera, [square(40, 40, 120, 120)])
    rey.reject(camera, "kim", "trace the tripod, not the coat")
    worked.final[camera] = set()

    # astronaut: a consensus of lee and kim, merged by STAPLE
    work_on(lee, astronaut, [mask(ASTRONAUT, slice(10, 60), slice(10, 60))])
    work_on(kim, astronaut, [mask(ASTRONAUT, slice(12, 62), slice(14, 64))])
    merged = rey.merge_consensus(astronaut, method="staple")
    worked.reviews[astronaut] = merged.id
    worked.final[astronaut] = set(merged.details["annotations"])
    assert worked.final[astronaut]

    # coffee: max's box, replaced by the reviewer's own corrected box
    work_on(max_, coffee, [box(50, 50, 150, 150)])
    fixed = rey.upload_annotations(coffee, [box(55, 48, 160, 150)])
    worked.reviews[coffee] = rey.fix_and_accept(coffee, note="the box missed the handle").id
    worked.final[coffee] = set(fixed)

    # moon: max's submission, not reviewed; ada's own box beside it
    work_on(max_, moon, [square(100, 100, 200, 200)])
    ada.upload_annotations(moon, [box(300, 300, 360, 360)])
    worked.final[moon] = {a.id for a in max_.annotation_objects(moon, labeler="max") if a.id is not None}
    assert len(worked.final[moon]) == 1

    # chelsea: merged, requeued (the consensus superseded), relabeled by max only so far
    work_on(lee, chelsea, [mask(CHELSEA, slice(20, 80), slice(20, 80))])
    work_on(max_, chelsea, [mask(CHELSEA, slice(25, 85), slice(20, 80))])
    superseded = rey.merge_consensus(chelsea, method="majority").details["annotations"]
    assert superseded and rey.requeue([chelsea]) == 1
    work_on(max_, chelsea, [mask(CHELSEA, slice(100, 140), slice(100, 140))])
    worked.final[chelsea] = set()
    return worked
