"""16 labelers claim, annotate and submit against PostgreSQL for a while; nothing may be lost.

Each labeler is a process of its own (tests/reliability/_load_worker.py: own Database, own journal,
own user) working one project of real image tiles through the editor's real save path. Leases are
short and a few labelers walk away mid-item, so leases run out and others re-claim the items.
Afterwards the database is checked against every worker's log: every annotation a worker saved is
there with the content it last saved (or deleted, when that labeler deleted it), versions only
grew, no task was held by more labelers than it needs, consensus tasks have their N distinct
submitters, a skipped item never came back to its skipper while the queue had other items (it goes
to the others first), every submit/skip/claim is audited, and the local journals are empty.

``SITELABEL_LOAD_SECONDS`` sets the run (40 s in ``make test``, 300 s in ``make soak``). The figures
(counts, p50/p95 latencies, lost = 0) are printed and written to build/reliability/load.json.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _load_skips import SkipOrder, check_skips
from _load_worker import ONTOLOGY, USER_PREFIX, content_hash
from PIL import Image
from sqlalchemy import insert, select, update

from app import api, sample_data
from app.core.records import ProjectSettings
from app.storage import Database
from app.storage.tables import AnnotationRow, AssetRow, AssignmentRow, AuditRow, TaskRow, UserRow
from app.workflow.journal import Journal

WORKER = Path(__file__).with_name("_load_worker.py")
FIGURES = Path(__file__).resolve().parents[2] / "build" / "reliability" / "load.json"
SECONDS = float(os.environ.get("SITELABEL_LOAD_SECONDS", "40"))
LABELERS = 16
LEASE_SECONDS = 20
BATCH = 3
TILE = 128


def _tiles(folder: Path, count: int) -> list[Path]:
    """``count`` 128x128 PNG tiles cut from the real scikit-image sample photographs."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for name in ("camera.png", "astronaut.png", "coffee.png", "chelsea.png", "coins.png", "moon.png"):
        path = sample_data.skimage_images() / name
        if path.exists():
            sources.append(np.asarray(Image.open(path).convert("L")))
    paths: list[Path] = []
    i = 0
    while len(paths) < count:
        image = sources[i % len(sources)]
        h, w = image.shape
        step = i // len(sources)
        y = (step * 37) % (h - TILE)
        x = (step * 53) % (w - TILE)
        path = folder / f"tile_{i:05d}.png"
        Image.fromarray(image[y : y + TILE, x : x + TILE]).save(path)
        paths.append(path)
        i += 1
    return paths


def _assets_needed(seconds: float) -> int:
    """Enough work that the queue does not run dry (16 labelers finish up to 13 items a second here)."""
    return int(os.environ.get("SITELABEL_LOAD_ASSETS", max(560, int(seconds * 14))))


@dataclass
class WorkerLog:
    name: str
    events: list[dict[str, Any]]

    def of(self, *kinds: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["ev"] in kinds]


@dataclass
class Figures:
    values: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))

    def problem(self, kind: str, detail: Any) -> None:
        self.problems[kind].append(detail)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    arr = np.asarray(values)
    return {
        "p50": round(float(np.percentile(arr, 50)), 1),
        "p95": round(float(np.percentile(arr, 95)), 1),
        "n": len(values),
    }


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- set-up and the run -------------------------------------------------------------------------------
def _make_project(url: str, tiles: list[Path]) -> api.Project:
    settings = ProjectSettings(
        consensus_share=0.3, consensus_count=2, batch_size=BATCH, lease_seconds=LEASE_SECONDS
    )
    project = api.create_project(url, "load", ontology=ONTOLOGY, settings=settings, user="lead")
    for i in range(LABELERS):
        project.set_member(f"{USER_PREFIX}{i:02d}", "labeler")
    # data arrives in batches, as from a watch folder: each one queues its consensus share after its
    # single-labeler items, so consensus items come up all through the run, not only at its end
    for start in range(0, len(tiles), 40):
        ids = project.import_data(tiles[start : start + 40])
        assert len(ids) == len(tiles[start : start + 40]), project.last_import_errors
    return project


def _run_workers(url: str, work: Path, seed: int) -> list[WorkerLog]:
    names = [f"{USER_PREFIX}{i:02d}" for i in range(LABELERS)]
    for i, name in enumerate(names):
        config = {
            "url": url,
            "project": "load",
            "user": name,
            "lease_seconds": LEASE_SECONDS,
            "batch": BATCH,
            "log": str(work / f"{name}.jsonl"),
            "stderr": str(work / f"{name}.stderr"),
            "journal": str(work / name / "journal.db"),  # a workstation of its own
            "go": str(work / "go"),
            "seed": seed * 100 + i,
            "walk_first": 1 if i % 6 == 0 else 0,  # three labelers walk away from their first item
            "walk_p": 0.01,
            "skip_p": 0.08,
        }
        (work / f"{name}.json").write_text(json.dumps(config), encoding="utf-8")
    out = work / "launcher.out"
    with out.open("wb") as sink:  # one launcher forks the 16 labelers after importing the app once
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), *(str(work / f"{n}.json") for n in names)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills the labelers too
        )
    try:
        _start_together(work, names, proc)
        code = proc.wait(timeout=SECONDS + 180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if code != 0:
        details = [out.read_text(errors="replace")]
        details += [f"{n}: {(work / f'{n}.stderr').read_text(errors='replace')[-3000:]}" for n in names]
        raise AssertionError("\n".join(details))
    logs = []
    for name in names:
        lines = (work / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        logs.append(WorkerLog(name, [json.loads(line) for line in lines]))
    return logs


def _start_together(work: Path, names: list[str], proc: subprocess.Popen[bytes]) -> None:
    """Wait until every labeler has opened its project, then give them all the same deadline."""
    deadline = time.monotonic() + 180
    waiting = set(names)
    while waiting:
        if proc.poll() is not None:
            raise AssertionError(f"the labelers exited early:\n{(work / 'launcher.out').read_text()}")
        waiting = {
            name
            for name in waiting
            if not (work / f"{name}.jsonl").exists() or '"ready"' not in (work / f"{name}.jsonl").read_text()
        }
        assert time.monotonic() < deadline, f"labelers not ready: {sorted(waiting)}"
        time.sleep(0.1)
    go = work / "go.tmp"
    go.write_text(str(time.time() + SECONDS), encoding="utf-8")
    go.rename(work / "go")  # atomic: a labeler never reads a half-written deadline


# --- checks -------------------------------------------------------------------------------------------
def _check_annotations(db: Database, project_id: int, logs: list[WorkerLog], fig: Figures) -> None:
    """Every annotation a worker saved holds what it last saved; versions grew; nothing unlogged."""
    history: dict[int, list[tuple[str, int, str | None]]] = defaultdict(list)  # id -> (worker, v, hash)
    owner: dict[int, str] = {}
    for log in logs:
        for event in log.of("flush"):
            for item in event["saved"]:
                history[item["id"]].append((log.name, item["v"], item["h"]))
            for item in event["deleted"]:
                history[item["id"]].append((log.name, item["v"] + 1, None))  # a delete bumps the version
            for item in event["saved"] + event["deleted"]:
                if owner.setdefault(item["id"], log.name) != log.name:
                    fig.problem("annotation saved by two labelers", item["id"])
    for aid, steps in history.items():
        versions = [v for _, v, _ in steps]
        if any(b <= a for a, b in itertools.pairwise(versions)):
            fig.problem("versions not strictly increasing", {"id": aid, "versions": versions})

    with db.unit_of_work(readonly=True) as uow:
        users = {int(i): str(n) for i, n in uow.session.execute(select(UserRow.id, UserRow.name))}
        rows = uow.session.execute(
            select(AnnotationRow.id, AnnotationRow.version, AnnotationRow.deleted, AnnotationRow.author_id)
            .join(AssetRow, AssetRow.id == AnnotationRow.asset_id)
            .where(AssetRow.project_id == project_id)
        ).all()
        assets = {
            int(a)
            for a in uow.session.execute(
                select(AssetRow.id).where(AssetRow.project_id == project_id)
            ).scalars()
        }
        live = {a.id: a for asset_id in sorted(assets) for a in uow.annotations.list(asset_id)}
    stored = {int(r.id): (int(r.version), bool(r.deleted), users.get(r.author_id)) for r in rows}

    lost = 0
    for aid, steps in history.items():
        name, version, digest = steps[-1]
        row = stored.get(aid)
        if row is None:
            fig.problem("lost: row missing", {"id": aid, "worker": name})
            lost += 1
            continue
        db_version, deleted, author = row
        if author != name:
            fig.problem("wrong author", {"id": aid, "worker": name, "author": author})
        if digest is None:  # the labeler deleted it: it must stay deleted
            if not deleted or db_version != version:
                fig.problem("deleted annotation came back", {"id": aid, "version": db_version})
                lost += 1
            continue
        if deleted:
            fig.problem("lost: deleted by nobody's action", {"id": aid, "worker": name, "version": version})
            lost += 1
        elif db_version != version or content_hash(live[aid]) != digest:
            fig.problem(
                "lost: content differs from the last save",
                {"id": aid, "worker": name, "logged_v": version, "db_v": db_version},
            )
            lost += 1
    # what each labeler's document showed when they closed the item is what their saves wrote
    saves = {(aid, v): h for aid, steps in history.items() for _, v, h in steps}
    for log in logs:
        for event in log.of("closed"):
            for item in event["shown"]:
                if saves.get((item["id"], item["v"]), "missing") != item["h"]:
                    fig.problem("document differs from what was saved", {"worker": log.name, **item})
                    lost += 1
    unlogged = [aid for aid, (_, _, author) in stored.items() if aid not in history and author]
    for aid in unlogged:
        fig.problem("annotation in the database that no worker logged", aid)
    fig.values["annotations_saved"] = len(history)
    fig.values["annotation_versions_saved"] = sum(len(s) for s in history.values())
    fig.values["annotations_live"] = sum(1 for s in history.values() if s[-1][2] is not None)
    fig.values["lost"] = lost


def _lock_order(
    assignments: list[Any], audits: list[Any], fig: Figures
) -> tuple[dict[int, int], dict[int, int]]:
    """The audit row id of each assignment's claim and of each skip. Claims, submits and skips lock
    the task row and write their audit row while holding it, so on one task the audit ids give the
    order the locks were taken in. (The rows' timestamps do not: each is the clock reading at the
    start of its transaction, before the lock wait.)"""
    claims: dict[tuple[int, int], list[int]] = defaultdict(list)
    skips: dict[tuple[int, int], list[int]] = defaultdict(list)
    for row in sorted(audits, key=lambda r: r.id):
        if row.action == "queue.claim":
            for task in row.details.get("tasks", []):
                claims[(int(row.user_id), int(task))].append(int(row.id))
        elif row.action == "queue.skip":
            skips[(int(row.user_id), int(row.details["task_id"]))].append(int(row.id))
    mine: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for a in sorted(assignments, key=lambda r: r.id):
        mine[(int(a.user_id), int(a.task_id))].append(a)
    claimed_at: dict[int, int] = {}
    skipped_at: dict[int, int] = {}
    for key, theirs in mine.items():
        skipped = [a for a in theirs if a.status == "skipped"]
        if len(claims[key]) != len(theirs) or len(skips[key]) != len(skipped):
            fig.problem("claim/skip audit rows do not match the assignments", {"user_task": key})
            continue
        claimed_at.update((int(a.id), c) for a, c in zip(theirs, claims[key], strict=True))
        skipped_at.update((int(a.id), c) for a, c in zip(skipped, skips[key], strict=True))
    return claimed_at, skipped_at


def _held_when_claimed(x: Any, y: Any, claimed_at: dict[int, int], skipped_at: dict[int, int]) -> bool:
    """Whether assignment ``x`` still held its slot when ``y`` (a later claim of the task) was made.

    A submitted one holds for good (a lease that ran out before ``y`` could not be submitted: ``y``'s
    claim marks it expired). An active or expired one holds while its lease ran at ``y``'s claim
    time, which is exactly the test the claim made. A skipped one also needs its skip to come after
    ``y``'s claim.
    """
    if claimed_at.get(int(x.id), 0) > claimed_at.get(int(y.id), 0):
        return False
    live = _aware(x.lease_expires_at) > _aware(y.leased_at)
    if x.status == "submitted":
        return True
    if x.status == "skipped":
        return live and skipped_at.get(int(x.id), 0) > claimed_at.get(int(y.id), 0)
    return live


def _check_skips(
    assignments: list[Any],
    logs: list[WorkerLog],
    claimed_at: dict[int, int],
    skipped_at: dict[int, int],
    fig: Figures,
) -> None:
    """A skipped item goes to the others first (tests/reliability/_load_skips.py says how it is
    checked)."""

    def held(x: Any, y: Any) -> bool:
        return _held_when_claimed(x, y, claimed_at, skipped_at)

    order = SkipOrder(claimed_at, skipped_at, held, timedelta(seconds=LEASE_SECONDS))
    figures, problems = check_skips(assignments, order, never_claimed=fig.values["tasks_never_claimed"])
    for detail in problems:
        fig.problem("skipped item came back to its skipper while others could take it", detail)
    notes = [lease for log in logs for c in log.of("claim") for lease in c["leases"] if lease.get("skipped")]
    fig.values.update(figures, leases_saying_skipped_earlier=len(notes))


def _check_queue(db: Database, project_id: int, logs: list[WorkerLog], fig: Figures) -> None:
    with db.unit_of_work(readonly=True) as uow:
        tasks = {
            int(t.id): (int(t.required_labelers), str(t.status))
            for t in uow.session.execute(select(TaskRow).where(TaskRow.project_id == project_id)).scalars()
        }
        assignments = list(
            uow.session.execute(
                select(
                    AssignmentRow.id,
                    AssignmentRow.task_id,
                    AssignmentRow.user_id,
                    AssignmentRow.status,
                    AssignmentRow.leased_at,
                    AssignmentRow.lease_expires_at,
                    AssignmentRow.finished_at,
                ).where(AssignmentRow.task_id.in_(list(tasks)))
            ).all()
        )
        audits = list(
            uow.session.execute(
                select(AuditRow.id, AuditRow.action, AuditRow.user_id, AuditRow.details).where(
                    AuditRow.action.like("queue.%")
                )
            ).all()
        )
    per_task: dict[int, list[Any]] = defaultdict(list)
    for a in assignments:
        per_task[int(a.task_id)].append(a)
    claimed_at, skipped_at = _lock_order(assignments, audits, fig)
    fig.values["tasks_never_claimed"] = len(set(tasks) - set(per_task))
    _check_skips(assignments, logs, claimed_at, skipped_at, fig)

    # no task held by more labelers than it needs, never twice by one labeler at once
    now = datetime.now(UTC)
    expired = reclaimed = 0
    for task_id, items in per_task.items():
        required = tasks[task_id][0]
        for y in items:
            holders = [x for x in items if x.id != y.id and _held_when_claimed(x, y, claimed_at, skipped_at)]
            users = [int(x.user_id) for x in [*holders, y]]
            if len(users) > required or len(set(users)) != len(users):
                fig.problem(
                    "task held beyond its labeler count",
                    {
                        "task": task_id,
                        "claim": int(y.id),
                        "required": required,
                        "assignments": [
                            (
                                x.id,
                                x.user_id,
                                x.status,
                                str(x.leased_at),
                                str(x.lease_expires_at),
                                str(x.finished_at),
                                claimed_at.get(x.id),
                                skipped_at.get(x.id),
                            )
                            for x in items
                        ],
                    },
                )
        by_user: dict[int, list[Any]] = defaultdict(list)
        for a in sorted(items, key=lambda x: x.id):
            by_user[int(a.user_id)].append(a)
        for user, theirs in by_user.items():
            for earlier in theirs[:-1]:
                if earlier.status not in ("skipped", "expired") and not (
                    earlier.status == "active" and _aware(earlier.lease_expires_at) <= now
                ):
                    fig.problem("labeler got a task twice", {"task": task_id, "user": user})
            if sum(1 for a in theirs if a.status == "submitted") > 1:
                fig.problem("labeler submitted a task twice", {"task": task_id, "user": user})
        ran_out = [
            a
            for a in items
            if a.status == "expired" or (a.status == "active" and _aware(a.lease_expires_at) <= now)
        ]
        expired += len(ran_out)
        if ran_out and any(b.id > min(a.id for a in ran_out) for b in items):
            reclaimed += 1
        # consensus: a submitted task has exactly its N distinct submitters; an open one fewer
        submitters = {int(a.user_id) for a in items if a.status == "submitted"}
        status = tasks[task_id][1]
        if status == "submitted" and len(submitters) != required:
            fig.problem(
                "submitted task without its labelers", {"task": task_id, "submitters": len(submitters)}
            )
        if status == "new" and len(submitters) >= required:
            fig.problem("task complete but not submitted", task_id)

    # the database against the logs
    logged_claims = {lease["a"] for log in logs for c in log.of("claim") for lease in c["leases"]}
    db_ids = {int(a.id) for a in assignments}
    if not logged_claims <= db_ids:
        fig.problem("claimed assignment missing from the database", sorted(logged_claims - db_ids)[:10])
    if db_ids - logged_claims:
        fig.problem("assignment in the database that no worker logged", sorted(db_ids - logged_claims)[:10])
    logged_submits = [e["a"] for log in logs for e in log.of("submit")]
    db_submitted = {int(a.id) for a in assignments if a.status == "submitted"}
    if len(logged_submits) != len(set(logged_submits)) or set(logged_submits) != db_submitted:
        fig.problem(
            "submits logged != submitted in the database",
            {"logged": len(logged_submits), "db": len(db_submitted)},
        )
    db_skipped = {int(a.id) for a in assignments if a.status == "skipped"}
    logged_skips = {e["a"] for log in logs for e in log.of("skip")}
    if not db_skipped <= logged_skips:
        fig.problem("skipped in the database but not by any worker", sorted(db_skipped - logged_skips))
    per_task_submits = Counter(e["task"] for log in logs for e in log.of("submit"))
    done_logged = sum(1 for t, n in per_task_submits.items() if n >= tasks[t][0])
    done_db = sum(1 for _, status in tasks.values() if status == "submitted")
    if done_logged != done_db:
        fig.problem("submitted tasks != tasks the logs completed", {"logged": done_logged, "db": done_db})

    # audit: one row per claim call that leased something, per submit, per skip that applied
    actions = Counter(str(a.action) for a in audits)
    claim_calls = sum(1 for log in logs for c in log.of("claim") if c["fresh"])
    claimed_in_audit = sum(len(a.details.get("tasks", [])) for a in audits if a.action == "queue.claim")
    if actions["queue.claim"] != claim_calls or claimed_in_audit != len(assignments):
        fig.problem(
            "claim audit",
            {
                "rows": actions["queue.claim"],
                "calls": claim_calls,
                "tasks": claimed_in_audit,
                "assignments": len(assignments),
            },
        )
    if actions["queue.submit"] != len(db_submitted):
        fig.problem("submit audit", {"rows": actions["queue.submit"], "submitted": len(db_submitted)})
    if actions["queue.skip"] != len(db_skipped):
        fig.problem("skip audit", {"rows": actions["queue.skip"], "skipped": len(db_skipped)})

    consensus = [t for t, (req, status) in tasks.items() if req > 1]
    fig.values.update(
        tasks=len(tasks),
        consensus_tasks=len(consensus),
        consensus_tasks_submitted=sum(1 for t in consensus if tasks[t][1] == "submitted"),
        tasks_submitted=done_db,
        assignments=len(assignments),
        leases_expired=expired,
        tasks_reclaimed_after_expiry=reclaimed,
        audit_rows=dict(actions),
    )


def _check_workers(logs: list[WorkerLog], work: Path, fig: Figures) -> None:
    errors = [(log.name, e) for log in logs for e in log.of("error")]
    for name, e in errors:
        if not e["expected"]:
            fig.problem(
                "unexpected worker error",
                {"worker": name, "op": e["op"], "type": e["type"], "msg": e["msg"], "tb": e["tb"]},
            )
    for log in logs:
        end = log.of("end")
        if not end or end[-1]["journal_left"] != 0:
            fig.problem("local journal not empty", log.name)
        for e in log.of("flush"):
            if e["conflicts"] or e["error"] or e["pending"] or e["journal"]:
                fig.problem(
                    "flush left work behind",
                    {"worker": log.name, **{k: e[k] for k in ("conflicts", "error", "pending", "journal")}},
                )
        # a swallowed failure (e.g. a consensus score that could not be stored) is logged here
        stderr = (work / f"{log.name}.stderr").read_text(errors="replace").strip()
        if stderr:
            fig.problem("worker wrote to stderr", {"worker": log.name, "text": stderr[-2000:]})
    for log in logs:  # open each workstation's journal afresh: nothing may be waiting there
        journal = Journal(work / log.name / "journal.db")
        try:
            if journal.count():
                fig.problem("local journal not empty on disk", log.name)
        finally:
            journal.close()
    flushes = [e for log in logs for e in log.of("flush")]
    counts = Counter(f"{e['op']}:{e['type']}" for _, e in errors)
    fig.values.update(
        claims=sum(len(log.of("claim")) for log in logs),
        claims_empty=sum(1 for log in logs for e in log.of("claim") if not e["leases"]),
        items_opened=sum(len(log.of("open")) for log in logs),
        submits=sum(len(log.of("submit")) for log in logs),
        skips=sum(len(log.of("skip")) for log in logs),
        renews=sum(len(log.of("renew")) for log in logs),
        walkaways=sum(len(log.of("walkaway")) for log in logs),
        flushes=len(flushes),
        expected_errors=dict(counts),
        conflicts=sum(len(e["conflicts"]) for e in flushes),
        latency_ms={
            "claim": _percentiles([e["ms"] for log in logs for e in log.of("claim")]),
            "flush": _percentiles([e["ms"] for e in flushes]),
            "submit": _percentiles([e["ms"] for log in logs for e in log.of("submit")]),
            "renew": _percentiles([e["ms"] for log in logs for e in log.of("renew")]),
        },
    )


def _break_and_recheck(project: api.Project, logs: list[WorkerLog]) -> dict[str, Any]:
    """Do to the database what a bug would (a stray delete, an overwrite, a second labeler on a
    finished single-labeler task, a skipped item handed back to its skipper) and run the checks
    again: they must report each one."""
    saved = [item for log in logs for e in log.of("flush") for item in e["saved"]]
    gone = {item["id"] for log in logs for e in log.of("flush") for item in e["deleted"]}
    live = sorted({item["id"] for item in saved} - gone)
    submitted = [e["task"] for log in logs for e in log.of("submit")]
    with project.db.unit_of_work() as uow:
        for aid, change in ((live[0], {"deleted": True}), (live[-1], {"label": "finding"})):
            uow.session.execute(
                update(AnnotationRow)
                .where(AnnotationRow.id == aid)
                .values(version=AnnotationRow.version + 1, **change)
            )
        required = {
            int(t): int(r) for t, r in uow.session.execute(select(TaskRow.id, TaskRow.required_labelers))
        }
        single = next(t for t in submitted if required[t] == 1)
        intruder = uow.users.ensure("intruder")
        now = datetime.now(UTC)
        uow.session.execute(
            insert(AssignmentRow).values(
                task_id=single,
                user_id=intruder.id,
                status="active",
                leased_at=now,
                lease_expires_at=now + timedelta(seconds=LEASE_SECONDS),
            )
        )
        uow.audit.record(
            intruder.id, "queue.claim", "project", project.id, {"tasks": [single], "returned": []}
        )
        # a skipped item handed straight back to its skipper, a second after the skip
        users = {str(n): int(i) for i, n in uow.session.execute(select(UserRow.id, UserRow.name))}
        skip = next(((log.name, e["task"], e["t"]) for log in logs for e in log.of("skip")), None)
        if skip is not None:
            name, task, at = skip[0], int(skip[1]), datetime.fromtimestamp(skip[2] + 1.0, UTC)
            uow.session.execute(
                insert(AssignmentRow).values(
                    task_id=task,
                    user_id=users[name],
                    status="active",
                    leased_at=at,
                    lease_expires_at=at + timedelta(seconds=LEASE_SECONDS),
                )
            )
            uow.audit.record(
                users[name], "queue.claim", "project", project.id, {"tasks": [task], "returned": []}
            )
    fig = Figures()
    _check_annotations(project.db, project.id, logs, fig)
    _check_queue(project.db, project.id, logs, fig)
    came_back = "skipped item came back to its skipper while others could take it" in fig.problems
    return {
        "lost": fig.values["lost"],
        "double hold": "task held beyond its labeler count" in fig.problems,
        "skip came back": came_back if skip is not None else None,
    }


@pytest.mark.soak
@pytest.mark.postgres
@pytest.mark.timeout(int(SECONDS) + 400)
def test_sixteen_labelers_lose_nothing(pg_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    seed = int(os.environ.get("SITELABEL_LOAD_SEED", str(int(time.time()) % 100_000)))
    tiles = _tiles(tmp_path / "tiles", _assets_needed(SECONDS))
    project = _make_project(pg_url, tiles)
    setup_seconds = time.monotonic() - started
    work = tmp_path / "run"
    work.mkdir()
    caught: dict[str, Any] = {}
    try:
        logs = _run_workers(pg_url, work, seed)
        run_seconds = time.monotonic() - started - setup_seconds
        fig = Figures()
        fig.values.update(
            seconds=SECONDS, labelers=LABELERS, assets=len(tiles), lease_seconds=LEASE_SECONDS, seed=seed
        )
        _check_workers(logs, work, fig)
        _check_annotations(project.db, project.id, logs, fig)
        _check_queue(project.db, project.id, logs, fig)
        fig.values["check_seconds"] = round(time.monotonic() - started - setup_seconds - run_seconds, 1)
        if not fig.problems:
            caught = _break_and_recheck(project, logs)
    finally:
        project.close()
    fig.values.update(
        setup_seconds=round(setup_seconds, 1),
        run_seconds=round(run_seconds, 1),
        problems={k: len(v) for k, v in fig.problems.items()},
    )
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(fig.values, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(fig.values, indent=2, default=str))
    assert fig.values["lost"] == 0
    assert not fig.problems, json.dumps({k: v[:5] for k, v in fig.problems.items()}, indent=2, default=str)
    # the run really exercised what it is meant to (a walked-away lease runs out after 20 s)
    if SECONDS >= 30:
        assert fig.values["submits"] > 0 and fig.values["skips"] > 0 and fig.values["walkaways"] >= 3
        assert fig.values["leases_expired"] > 0 and fig.values["tasks_reclaimed_after_expiry"] > 0
        assert fig.values["consensus_tasks_submitted"] > 0
        assert fig.values["skipped_items_taken_by_others"] > 0
        assert fig.values["expected_errors"], "no late renew/submit was refused"
    # and the checks are not vacuous: damage done to the database afterwards is found
    skipped_any = True if fig.values["skips"] else None
    assert caught == {"lost": 2, "double hold": True, "skip came back": skipped_any}, caught
