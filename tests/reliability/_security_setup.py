"""Shared set-up of the security tests: a real project with every role, real sample images, a real
DICOM series, consensus items labeled by two labelers (so there are blind items), a registered ONNX
model with a pre-label, comment threads and live leases; and the table of every public API call.

People: ``ada`` site admin, ``pam`` project admin, ``rey`` reviewer, ``lee`` and ``otto`` labelers,
``eve`` a labeler whose membership was removed after she opened the project (a non-member holding an
open Project). ``lee`` labels the class "coin", ``otto`` only the class "lesion" and the name
"otto": either showing up in what ``lee`` reads of a consensus item is a blindness leak.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, text
from support.labeling import label_batch
from support.models import threshold_model

from app import api, sample_data
from app.core.annotations import Annotation
from app.core.records import Role
from app.sources.synthetic import build_ct_series
from app.storage import Database
from app.storage.tables import Base, MemberRow
from app.workflow import queue

ONTOLOGY: dict[str, Any] = {
    "classes": [
        {"name": "coin", "color": "#c0504d", "kinds": ["box", "polygon", "mask"]},
        {"name": "lesion", "color": "#4f81bd", "kinds": ["box", "polygon", "mask"]},
    ]
}
CONSENSUS = ("coins.png", "camera.png", "astronaut.png", "chelsea.png", "coffee.png", "moon.png")
SINGLE = ("page.png", "horse.png")
LEE_BOX = {"kind": "box", "label": "coin", "box": [10, 10, 50, 50]}
OTTO_BOX = {"kind": "box", "label": "lesion", "box": [120, 120, 180, 180]}
ROLE_OF = {
    "eve": None,
    "lee": Role.LABELER,
    "rey": Role.REVIEWER,
    "pam": Role.PROJECT_ADMIN,
    "ada": Role.ADMIN,
}
LADDER = ("eve", "lee", "rey", "pam", "ada")  # from no role to site admin
RANK = {None: 0, Role.LABELER: 1, Role.REVIEWER: 2, Role.PROJECT_ADMIN: 3, Role.ADMIN: 4}


@dataclass
class World:
    """The project as everyone sees it, and the handles the table's calls use."""

    db: Database
    tmp: Path
    people: dict[str, api.Project]
    ids: dict[str, int]  # file name (or "ct") -> asset id
    leases: dict[int, Any]  # lee's live leases by asset id
    threads: dict[str, int] = field(default_factory=dict)
    annotations: dict[str, int] = field(default_factory=dict)
    other_project: api.Project | None = None
    other_asset: int = 0
    other_annotation: int = 0

    def __getitem__(self, name: str) -> api.Project:
        return self.people[name]

    def annotation(self, key: str) -> Annotation:
        with self.db.unit_of_work(readonly=True) as uow:
            return uow.annotations.get(self.annotations[key])


def build_world(db_url: str, tmp: Path) -> World:
    ada = api.create_project(db_url, "sec", ontology=ONTOLOGY, user="ada")
    images = sample_data.skimage_images()
    series = build_ct_series(tmp / "data" / "ct", 4)
    files = [images / name for name in (*CONSENSUS, *SINGLE)]
    ids = ada.import_data([*files, series[0].parent])
    assert len(ids) == len(files) + 1, ada.last_import_errors
    by_name = dict(zip([*CONSENSUS, *SINGLE, "ct"], ids, strict=True))
    queue.set_required(ada.db, ada.id, [by_name[n] for n in CONSENSUS], 2)
    for name, role in (("pam", "project_admin"), ("rey", "reviewer"), ("lee", "labeler")):
        ada.set_member(name, role)
    for name in ("otto", "eve"):
        ada.set_member(name, "labeler")
    people = {n: api.open_project(ada.db, "sec", user=n) for n in ("pam", "rey", "lee", "otto", "eve")}
    people["ada"] = ada
    world = World(ada.db, tmp, people, by_name, {})

    # both labelers label every consensus item and submit it: they wait for review, blind
    consensus = {by_name[n] for n in CONSENSUS}
    for who, box in (("lee", LEE_BOX), ("otto", OTTO_BOX)):
        worked = label_batch(
            people[who], lambda lease, box=box: [box] if lease.asset_id in consensus else None, batch=100
        )
        if who == "lee":
            world.leases.update({lease.asset_id: lease for lease in worked.kept})
    assert set(world.leases) == {by_name[n] for n in (*SINGLE, "ct")}, world.leases
    page = by_name["page.png"]
    (world.annotations["lee_own"],) = people["lee"].upload_annotations(page, [LEE_BOX])
    (world.annotations["lee_gone"],) = people["lee"].upload_annotations(
        page, [dict(LEE_BOX, box=[5, 5, 9, 9])]
    )
    pam_ids = people["pam"].upload_annotations(page, [dict(LEE_BOX, box=[60, 60, 90, 90])] * 2)
    world.annotations["pam_fix"], world.annotations["pam_gone"] = pam_ids
    world.threads["by_ada"] = ada.comment(page, "is this readable?").id
    world.threads["by_lee"] = people["lee"].comment(page, "check the corner").id

    # a registered model and one of its pre-labels (coins: bright on dark)
    pam = people["pam"]
    pam.register_model(threshold_model(tmp / "incoming", label="coin"))
    report = ada.prelabel(["bright"], [by_name["horse.png"]])
    assert report.annotations > 0
    prelabels = [a for a in ada.annotation_objects(by_name["horse.png"]) if a.source.startswith("model:")]
    world.annotations["prelabel"] = prelabels[0].id or 0

    # a second project lee, rey and pam are not members of
    other = api.create_project(ada.db, "other", ontology=ONTOLOGY, user="ada")
    (world.other_asset,) = other.import_data([images / "text.png"])
    (world.other_annotation,) = other.upload_annotations(world.other_asset, [LEE_BOX])
    world.other_project = other

    # eve opened the project as a labeler; then she was taken off it
    with ada.db.unit_of_work() as uow:
        uow.session.execute(delete(MemberRow).where(MemberRow.user_id == people["eve"].user.id))
    assert people["eve"].role is None
    (tmp / "inbox").mkdir()
    return world


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: equal snapshots mean nothing changed."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            keys = list(table.primary_key.columns) or list(table.columns)
            out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*keys))]
        out["alembic_version"] = [tuple(r) for r in conn.execute(text("SELECT * FROM alembic_version"))]
    return out


def audit_rows(db: Database) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM audit_log ORDER BY id"))]


# --- the table of every public call ------------------------------------------------------------
Call = Callable[[World, api.Project], Any]
READ, MUTATE, FREE = "read-only", "mutating", "no role"


@dataclass(frozen=True)
class Case:
    """How one public call is classified and called. ``least``: the least role that may make it
    ("owner": only the lease owner ``lee``; "author": the author ``lee`` or a reviewer). ``changes_db``:
    the permitted call must change the database (False: it writes files or starts a thread)."""

    kind: str
    call: Call | None = None
    least: Role | str | None = None
    changes_db: bool = True
    blind: bool = False  # returns annotations or their traces: scanned for otto's labels
    why: str = ""

    def denied(self) -> list[str]:
        """Who must be refused."""
        if self.least == "owner":
            return [p for p in LADDER if p != "lee"]
        if self.least == "author":
            return ["eve"]
        if isinstance(self.least, Role):
            return [p for p in LADDER if RANK[ROLE_OF[p]] < RANK[self.least]]
        return []

    def actor(self) -> str:
        """Who makes the call that must work: the least role allowed."""
        if self.least in ("owner", "author"):
            return "lee"
        return next((p for p in LADDER if isinstance(self.least, Role) and ROLE_OF[p] is self.least), "ada")


def _new_annotation(w: World, asset: int) -> Annotation:
    raw = dict(LEE_BOX, box=[20, 20, 40, 40])
    return Annotation.from_dict(raw, frame_shape=(512, 512), source="human").evolve(asset_id=asset)


def _export_dir(w: World) -> Path:
    return w.tmp / "exports" / "coco"


def _coco_file(w: World) -> Path:
    found = _export_dir(w) / "annotations.json"
    assert found.is_file(), f"no COCO file in {_export_dir(w)}"
    return found


def _id(w: World, name: str) -> int:
    return w.ids[name]


PROJECT_CALLS: dict[str, Case] = {
    # reads: anyone in the project (labelers see only their own and machine-made labels)
    "annotations": Case(READ, lambda w, p: p.annotations(_id(w, "coins.png")), Role.LABELER, blind=True),
    "annotation_objects": Case(
        READ, lambda w, p: p.annotation_objects(_id(w, "coins.png")), Role.LABELER, blind=True
    ),
    "render": Case(READ, lambda w, p: p.render(_id(w, "coins.png")), Role.LABELER, blind=True),
    "assets": Case(READ, lambda w, p: p.assets(), Role.LABELER),
    "dataset_names": Case(READ, lambda w, p: p.dataset_names(), Role.LABELER),
    "asset": Case(READ, lambda w, p: p.asset(_id(w, "coins.png")), Role.LABELER),
    "asset_path": Case(READ, lambda w, p: p.asset_path(_id(w, "coins.png")), Role.LABELER),
    "splits": Case(READ, lambda w, p: p.splits(), Role.LABELER),
    # training access and the export's dry count read what an export reads: reviewers and above
    "iter_labels": Case(READ, lambda w, p: list(p.iter_labels()), Role.REVIEWER, blind=True),
    "label_volume": Case(
        READ, lambda w, p: p.label_volume(_id(w, "ct"), final=False), Role.REVIEWER, blind=True
    ),
    "export_preview": Case(
        READ, lambda w, p: p.export_preview("coco", labels="all"), Role.REVIEWER, blind=True
    ),
    "export_label_choices": Case(READ, lambda w, p: p.export_label_choices(), Role.REVIEWER),
    "open_asset": Case(READ, lambda w, p: p.open_asset(_id(w, "ct")).close(), Role.LABELER),
    "verify": Case(READ, lambda w, p: p.verify(), Role.LABELER),
    "threads": Case(READ, lambda w, p: p.threads(), Role.LABELER),
    "open_thread_counts": Case(READ, lambda w, p: p.open_thread_counts(), Role.LABELER),
    "queue_stats": Case(READ, lambda w, p: p.queue_stats(), Role.LABELER),
    "users": Case(READ, lambda w, p: p.users(), Role.LABELER),
    "activity": Case(READ, lambda w, p: p.activity(), Role.LABELER, blind=True),
    "labeler_activity": Case(READ, lambda w, p: p.labeler_activity(), Role.LABELER, blind=True),
    "throughput": Case(READ, lambda w, p: p.throughput(), Role.LABELER, blind=True),
    "agreement_histogram": Case(READ, lambda w, p: p.agreement_histogram(), Role.LABELER, blind=True),
    "activity_facets": Case(READ, lambda w, p: p.activity_facets(), Role.LABELER, blind=True),
    "review_notes": Case(READ, lambda w, p: p.review_notes(_id(w, "coins.png")), Role.LABELER, blind=True),
    "models": Case(READ, lambda w, p: p.models(), Role.LABELER),
    "score_thresholds": Case(READ, lambda w, p: p.score_thresholds(), Role.LABELER),
    "low_confidence_map": Case(
        READ, lambda w, p: p.low_confidence_map(w.annotations["prelabel"]), Role.LABELER
    ),
    "retrain_due": Case(READ, lambda w, p: p.retrain_due("coin"), Role.LABELER),
    "model_quality": Case(READ, lambda w, p: p.model_quality(), Role.LABELER),
    "settings_history": Case(READ, lambda w, p: p.settings_history(), Role.LABELER),
    # reads for reviewers: they show every labeler's work
    "review_queue": Case(READ, lambda w, p: p.review_queue(), Role.REVIEWER, blind=True),
    "review_item": Case(READ, lambda w, p: p.review_item(_id(w, "coins.png")), Role.REVIEWER, blind=True),
    "disagreement": Case(
        READ, lambda w, p: p.disagreement(_id(w, "coins.png"), 0), Role.REVIEWER, blind=True
    ),
    "review_history": Case(
        READ, lambda w, p: p.review_history(_id(w, "coins.png")), Role.REVIEWER, blind=True
    ),
    # no data behind them: role questions and closing one's own handle
    "can": Case(FREE, why="answers whether the acting user's role allows an action"),
    "require": Case(FREE, why="raises PermissionDenied by design: it is the check itself"),
    "close": Case(FREE, why="disposes the acting user's own connection pool"),
    "data_root_reachable": Case(
        FREE, why="whether a folder of this workstation's site config can be read; no project data"
    ),
    # labeling
    "upload_annotations": Case(
        MUTATE, lambda w, p: p.upload_annotations(_id(w, "page.png"), [LEE_BOX]), Role.LABELER
    ),
    "save_annotation": Case(
        MUTATE,
        lambda w, p: p.save_annotation(w.annotation("lee_own").evolve(box=(12.0, 12.0, 52.0, 52.0))),
        "author",
    ),
    "delete_annotation": Case(MUTATE, lambda w, p: p.delete_annotation(w.annotation("lee_gone")), "author"),
    "comment": Case(MUTATE, lambda w, p: p.comment(_id(w, "page.png"), "a note"), Role.LABELER),
    "reply": Case(MUTATE, lambda w, p: p.reply(w.threads["by_ada"], "agreed"), Role.LABELER),
    "resolve": Case(MUTATE, lambda w, p: p.resolve(w.threads["by_ada"]), Role.REVIEWER),
    "claim": Case(MUTATE, lambda w, p: p.claim(), Role.LABELER, changes_db=False),
    "renew": Case(MUTATE, lambda w, p: p.renew(w.leases[_id(w, "ct")]), "owner"),
    "submit": Case(MUTATE, lambda w, p: p.submit(w.leases[_id(w, "ct")]), "owner"),
    "skip": Case(MUTATE, lambda w, p: p.skip(w.leases[_id(w, "horse.png")], "blurred"), "owner"),
    # review
    "accept": Case(MUTATE, lambda w, p: p.accept(_id(w, "camera.png")), Role.REVIEWER),
    "reject": Case(MUTATE, lambda w, p: p.reject(_id(w, "astronaut.png"), "lee", "redo"), Role.REVIEWER),
    "fix_and_accept": Case(MUTATE, lambda w, p: p.fix_and_accept(_id(w, "chelsea.png")), Role.REVIEWER),
    "choose_consensus": Case(
        MUTATE, lambda w, p: p.choose_consensus(_id(w, "coffee.png"), "otto"), Role.REVIEWER
    ),
    "merge_consensus": Case(MUTATE, lambda w, p: p.merge_consensus(_id(w, "moon.png")), Role.REVIEWER),
    "requeue": Case(MUTATE, lambda w, p: p.requeue([_id(w, "coffee.png")]), Role.REVIEWER),
    "prelabel": Case(MUTATE, lambda w, p: p.prelabel(["bright"], [_id(w, "coins.png")]), Role.REVIEWER),
    "export": Case(
        # every label, not only the final ones: import_labels below re-imports this file and must add some
        MUTATE,
        lambda w, p: p.export("coco", _export_dir(w), labels="all"),
        Role.REVIEWER,
        changes_db=False,
        blind=True,
    ),
    # project administration
    "set_ontology": Case(
        MUTATE,
        lambda w, p: p.set_ontology(
            {"classes": [*ONTOLOGY["classes"], {"name": "cyst", "color": "#00ff00", "kinds": ["box"]}]}
        ),
        Role.PROJECT_ADMIN,
    ),
    "set_watch_folders": Case(
        MUTATE, lambda w, p: p.set_watch_folders([w.tmp / "inbox"]), Role.PROJECT_ADMIN
    ),
    "watch": Case(
        MUTATE,
        lambda w, p: p.watch(w.tmp / "inbox", polling=True).stop(),
        Role.PROJECT_ADMIN,
        changes_db=False,
    ),
    "import_data": Case(
        MUTATE, lambda w, p: p.import_data([sample_data.skimage_images() / "brick.png"]), Role.PROJECT_ADMIN
    ),
    "import_labels": Case(MUTATE, lambda w, p: p.import_labels("coco", _coco_file(w)), Role.PROJECT_ADMIN),
    "set_member": Case(MUTATE, lambda w, p: p.set_member("newbie", "labeler"), Role.PROJECT_ADMIN),
    # a plan change is the admins' (a reviewer may only deal out splits under the current plan)
    "assign_splits": Case(MUTATE, lambda w, p: p.assign_splits(val=0.3), Role.PROJECT_ADMIN),
    "update_settings": Case(MUTATE, lambda w, p: p.update_settings(batch_size=7), Role.PROJECT_ADMIN),
    "set_setting": Case(MUTATE, lambda w, p: p.set_setting("lease_time", "45m"), Role.PROJECT_ADMIN),
    "register_model": Case(
        MUTATE,
        lambda w, p: p.register_model(threshold_model(w.tmp / "incoming2", "dim", label="coin")),
        Role.PROJECT_ADMIN,
    ),
    # the same box on every item is no structure a model can learn: the floor is off here, the
    # roles are what this checks
    "train_micro_model": Case(
        MUTATE, lambda w, p: p.train_micro_model("coin", min_dice=0.0), Role.PROJECT_ADMIN
    ),
}

#: a second case for calls whose needed role depends on whose data it touches
EXTRA_CALLS: dict[str, Case] = {
    "save_annotation (someone else's)": Case(
        MUTATE,
        lambda w, p: p.save_annotation(w.annotation("pam_fix").evolve(box=(62.0, 62.0, 92.0, 92.0))),
        Role.REVIEWER,
    ),
    "delete_annotation (someone else's)": Case(
        MUTATE, lambda w, p: p.delete_annotation(w.annotation("pam_gone")), Role.REVIEWER
    ),
    "resolve (own thread)": Case(MUTATE, lambda w, p: p.resolve(w.threads["by_lee"]), "author"),
}


def _open_other(w: World, p: api.Project) -> Any:
    return api.open_project(w.db, "other", user=p.user_name, create=False)


#: the module functions of app.api: they act on a database, not inside an open project
MODULE_CALLS: dict[str, Case] = {
    "open_project": Case(READ, _open_other, Role.ADMIN, why="opening a project one is not in"),
    "create_project": Case(
        MUTATE, lambda w, p: api.create_project(w.db, "third", user=p.user_name), Role.ADMIN
    ),
    "set_site_role": Case(
        MUTATE, lambda w, p: api.set_site_role(w.db, "otto", "labeler", user=p.user_name), Role.ADMIN
    ),
    "check_database": Case(
        FREE, why="a connection test; reads no project data (needs the database credentials)"
    ),
    "open_database": Case(FREE, why="opens/creates a database file or URL: whoever holds the credentials"),
    "open_source": Case(FREE, why="reads a file the caller names; no database"),
    "scan_data": Case(FREE, why="a dry run over files the caller names; no database"),
    "people": Case(
        FREE,
        why="users and their roles, which every database user may read (the users and "
        "project_members policies allow it); no project data",
    ),
}


def public_project_calls() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(api.Project)
        if not name.startswith("_") and (inspect.isfunction(member) or inspect.ismethod(member))
    }


def public_module_functions() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(api, inspect.isfunction)
        if not name.startswith("_") and member.__module__ == api.__name__
    }
