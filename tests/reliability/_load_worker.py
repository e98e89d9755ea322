"""One simulated labeler for the load test (tests/reliability/test_load_labelers.py).

Run as a script, ``python _load_worker.py CONFIG.json...``, it forks one labeler process per config
after importing the application once; each is a workstation of its own: its own
Database (engine, connection pool), its own local edit journal, its own user. Until the deadline
(all workers start together when the test writes it to ``config["go"]``) it claims a batch, and for
each item opens the editor's real save path (:class:`app.workflow.editing.EditSession`), paints
strokes with the real brush and eraser tools, draws polygons and boxes with the real vector tools,
moves and deletes them with the editor's undo commands, flushes several times (so annotations get
several versions), renews the lease now and then, and submits the item (or skips it with a reason;
an item that comes back after it skipped it, which the queue allows only when nobody else could take
it, it labels).
Some items it walks away from mid-way: the lease runs out, someone else claims the item, and the
late renew/submit is refused.

Everything it does goes to a JSON-lines log (one object per line, ``ev`` says what): every claim
(its leases), every flush (the annotation ids, versions and content hashes it saved or deleted),
every renew, submit and skip with its answer, and every error. The test reads the logs back and
checks the database against them.

The database ids and versions a flush saved are read from the session's bookkeeping
(``_db_ids``, ``_layer``): the editor has no public accessor for them and the log needs them. The
content hashes come from the document the labeler sees, not from that bookkeeping.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

USER_PREFIX = "lab"
ONTOLOGY: dict[str, Any] = {
    "classes": [
        {"name": "organ", "color": "#c0504d"},
        {"name": "lesion", "color": "#4f81bd"},
        {"name": "vessel", "color": "#9bbb59"},
        {"name": "finding", "color": "#8064a2"},
    ]
}
MASK_CLASSES = ("organ", "lesion")  # painted into the label layer
VECTOR_CLASSES = ("vessel", "finding")
EXPECTED_ERRORS = ("LeaseExpired",)  # a lease that ran out: refused by design, counted
SKIP_REASONS = ("image too blurry", "wrong body part", "not sure, second opinion")


def content_hash(annotation: Any) -> str:
    """What an annotation shows (kind, label, frame, geometry, attributes), ids and versions left out.
    Geometry is on a 0.5-pixel grid in this test, so it survives the database exactly."""
    digest = hashlib.sha256()
    head = [annotation.kind.value, annotation.label, annotation.frame, dict(annotation.attributes)]
    digest.update(json.dumps(head, sort_keys=True).encode())
    if annotation.points is not None:
        digest.update(b"p" + np.asarray(annotation.points, dtype=np.float64).round(3).tobytes())
    if annotation.box is not None:
        digest.update(b"b" + np.asarray(annotation.box, dtype=np.float64).round(3).tobytes())
    if annotation.mask is not None:
        full = annotation.mask.to_full()
        digest.update(b"m" + repr(full.shape).encode() + np.packbits(full).tobytes())
    return digest.hexdigest()[:20]


class Labeler:
    """One labeler's loop; see the module doc."""

    def __init__(self, config: dict[str, Any]) -> None:
        from app import api
        from app.workflow.journal import Journal

        self.config = config
        self.rng = random.Random(config["seed"])
        self.lease_seconds = int(config["lease_seconds"])
        self.deadline = 0.0  # wall clock (time.time), set by the test's go file: all start together
        self.log_file = Path(config["log"]).open("a", encoding="utf-8")  # noqa: SIM115 (closed in run)
        self.project = api.open_project(config["url"], config["project"], user=config["user"], create=False)
        self.ontology = self.project.ontology
        self.journal = Journal(Path(config["journal"]))
        self.walks_left = int(config.get("walk_first", 0))

    # --- logging ------------------------------------------------------------------------------------
    def log(self, ev: str, **fields: Any) -> None:
        fields.update(ev=ev, t=time.time())
        self.log_file.write(json.dumps(fields) + "\n")
        self.log_file.flush()

    @contextmanager
    def timed(self, fields: dict[str, Any]) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            fields["ms"] = round((time.perf_counter() - start) * 1000, 3)

    def error(self, op: str, exc: BaseException, **fields: Any) -> None:
        name = type(exc).__name__
        self.log(
            "error",
            op=op,
            type=name,
            msg=str(exc),
            expected=name in EXPECTED_ERRORS,
            tb=None if name in EXPECTED_ERRORS else traceback.format_exc(),
            **fields,
        )

    # --- the loop -----------------------------------------------------------------------------------
    def wait_for_go(self) -> None:
        """Tell the test this workstation is up, then wait until it starts everyone at once."""
        self.log("ready", user=self.config["user"], user_id=self.project.user.id, pid=os.getpid())
        go = Path(self.config["go"])
        while not go.exists():
            time.sleep(0.05)
        self.deadline = float(go.read_text(encoding="utf-8"))
        self.log("start")

    def run(self) -> int:
        self.wait_for_go()
        held: set[int] = set()  # assignment ids this labeler already had in hand
        try:
            while time.time() < self.deadline:
                fields: dict[str, Any] = {}
                try:
                    with self.timed(fields):
                        leases = self.project.claim(batch=int(self.config["batch"]))
                except Exception as exc:
                    self.error("claim", exc)
                    time.sleep(0.5)
                    continue
                fresh = [lease.assignment_id for lease in leases if lease.assignment_id not in held]
                held.update(fresh)
                self.log("claim", leases=[_lease_dict(lease) for lease in leases], fresh=fresh, **fields)
                if not leases:
                    time.sleep(0.5)  # nothing left for this labeler right now
                    continue
                for index, lease in enumerate(leases):
                    if time.time() >= self.deadline:
                        self.log("left", assignments=[x.assignment_id for x in leases[index:]])
                        break
                    try:
                        outcome = self.item(lease)
                    except Exception as exc:  # a crash mid-item: logged (the test fails), the run goes on
                        self.error("item", exc, task=lease.task_id, a=lease.assignment_id)
                        continue
                    if outcome == "walked":
                        rest = leases[index + 1 :]
                        self.log("abandon", assignments=[x.assignment_id for x in rest])
                        break
        finally:
            self.log("end", journal_left=self.journal.count())
            self.journal.close()
            self.project.close()
            self.log_file.close()
        return 0

    def item(self, lease: Any) -> str:
        """Label one item; returns 'submitted', 'skipped', 'walked' or 'failed'."""
        from app.workflow.editing import EditSession

        asset = self.project.asset(lease.asset_id)
        session = EditSession(
            self.project.db, self.project.id, asset, self.project.user, self.ontology, journal=self.journal
        ).load()
        self.log("open", task=lease.task_id, asset=lease.asset_id, a=lease.assignment_id)
        # a random walk-away only when the lease can run out before the end of the run
        room = time.time() + self.lease_seconds + 5 < self.deadline
        walk = self.walks_left > 0 or (room and self.rng.random() < float(self.config["walk_p"]))
        outcome = "failed"
        try:
            for round_ in range(self.rng.randint(2, 4)):
                for _ in range(self.rng.randint(1, 4)):
                    edit(session, self.rng)
                self.flush(session, lease)
                time.sleep(self.rng.uniform(0.05, 0.3))  # looking at the image
                if walk and round_ == 0:
                    self.walks_left -= 1
                    pause = self.lease_seconds + self.rng.uniform(1.0, 3.0)
                    self.log("walkaway", task=lease.task_id, a=lease.assignment_id, seconds=pause)
                    time.sleep(pause)  # the lease runs out; someone else may take the item
                    outcome = "walked"
                left = (lease.expires_at - datetime.now(UTC)).total_seconds()
                if left < self.lease_seconds / 2 or self.rng.random() < 0.15:
                    lease = self.renew(lease)
            # an item that came back after this labeler skipped it is labeled, not skipped again
            came_back = lease.skipped is not None
            if outcome == "walked" or came_back or self.rng.random() >= float(self.config["skip_p"]):
                if self.submit(lease) and outcome != "walked":
                    outcome = "submitted"
            else:
                self.skip(lease)
                outcome = "skipped"
        finally:
            result = session.close()
            if result.saved or result.conflicts or result.error:  # close flushes only what is pending
                self.log("close_flush", saved=result.saved, conflicts=len(result.conflicts))
            # what the labeler sees at the end, as saved items: the test finds each among the saves
            shown = [
                {"id": ids[0], "v": ids[1], "h": _shown_hash(session, key)}
                for key, ids in sorted(_saved_state(session).items())
            ]
            self.log(
                "closed", task=lease.task_id, outcome=outcome, pending=session.pending_count, shown=shown
            )
        return outcome

    # --- the actions, each logged --------------------------------------------------------------------
    def flush(self, session: Any, lease: Any) -> None:
        before = _saved_state(session)
        fields: dict[str, Any] = {}
        try:
            with self.timed(fields):
                result = session.flush()
        except Exception as exc:
            self.error("flush", exc, task=lease.task_id)
            return
        after = _saved_state(session)
        saved = [
            {"id": ids[0], "v": ids[1], "h": _shown_hash(session, key), "key": list(key)}
            for key, ids in sorted(after.items())
            if before.get(key) != ids
        ]
        deleted = [
            {"id": ids[0], "v": ids[1], "key": list(key)}
            for key, ids in sorted(before.items())
            if key not in after
        ]
        self.log(
            "flush",
            task=lease.task_id,
            asset=lease.asset_id,
            a=lease.assignment_id,
            saved=saved,
            deleted=deleted,
            n_saved=result.saved,
            conflicts=[c.message for c in result.conflicts],
            error=result.error,
            pending=session.pending_count,
            journal=self.journal.count(session.key),
            **fields,
        )

    def renew(self, lease: Any) -> Any:
        fields: dict[str, Any] = {}
        try:
            with self.timed(fields):
                renewed = self.project.renew(lease)
        except Exception as exc:
            self.error("renew", exc, task=lease.task_id, a=lease.assignment_id)
            return lease
        self.log(
            "renew",
            task=lease.task_id,
            a=lease.assignment_id,
            expires=renewed.expires_at.isoformat(),
            **fields,
        )
        return renewed

    def submit(self, lease: Any) -> bool:
        fields: dict[str, Any] = {}
        late = lease.expires_at <= datetime.now(UTC)
        try:
            with self.timed(fields):
                self.project.submit(lease)
        except Exception as exc:
            self.error("submit", exc, task=lease.task_id, a=lease.assignment_id, late=late)
            return False
        self.log("submit", task=lease.task_id, a=lease.assignment_id, late=late, **fields)
        return True

    def skip(self, lease: Any) -> None:
        fields: dict[str, Any] = {}
        late = lease.expires_at <= datetime.now(UTC)
        reason = self.rng.choice(SKIP_REASONS)
        try:
            with self.timed(fields):
                self.project.skip(lease, reason)
        except Exception as exc:
            self.error("skip", exc, task=lease.task_id, a=lease.assignment_id, late=late)
            return
        self.log("skip", task=lease.task_id, a=lease.assignment_id, reason=reason, late=late, **fields)


def _lease_dict(lease: Any) -> dict[str, Any]:
    return {
        "a": lease.assignment_id,
        "task": lease.task_id,
        "asset": lease.asset_id,
        "expires": lease.expires_at.isoformat(),
        "skipped": lease.skipped,  # this labeler skipped it before (their reason), else None
    }


# --- what the session saved, what the document shows ---------------------------------------------------
def _saved_state(session: Any) -> dict[tuple[Any, ...], tuple[int, int]]:
    """(database id, version) of every item the session holds as saved: vectors by local id, label-layer
    masks by (frame, class)."""
    state: dict[tuple[Any, ...], tuple[int, int]] = {}
    with session.ledger.lock:
        for aid, ids in session.ledger.db_ids.items():
            state[("v", aid)] = (int(ids[0]), int(ids[1]))
        for (frame, label), item in session.ledger.layer.items():
            state[("m", frame, label)] = (int(item.id), int(item.version))
    return state


def _shown_hash(session: Any, key: tuple[Any, ...]) -> str:
    from app.core.annotations import HUMAN, Annotation, Kind, MaskPatch

    if key[0] == "v":
        shown = session.doc.annotations(0).get(key[1])
        return "absent" if shown is None else content_hash(shown)
    _, frame, label = key
    bits = session.doc.label_map(frame) == session.ontology.index_of(label)
    return content_hash(
        Annotation(kind=Kind.MASK, label=label, frame=frame, mask=MaskPatch.from_full(bits), source=HUMAN)
    )


# --- editing the way the editor does -------------------------------------------------------------------
def _spot(rng: random.Random, size: int, margin: int) -> float:
    return rng.randrange(margin * 2, (size - margin) * 2) / 2  # on the 0.5 grid


def edit(session: Any, rng: random.Random) -> str:
    """One user gesture on frame 0 through the real tools and commands; returns what it was."""
    from app.core.annotations import Annotation
    from app.core.commands import RemoveAnnotation, ReplaceAnnotation
    from app.core.tools.base import ToolContext
    from app.core.tools.paint import BrushTool, EraserTool
    from app.core.tools.vector import BoxTool, PolygonTool

    h, w = session.doc.shape
    vectors = dict(session.doc.annotations(0))
    what = rng.choices(
        ["paint", "erase", "polygon", "box", "move", "delete", "undo"], [32, 10, 15, 15, 15, 9, 4]
    )[0]
    if what in ("move", "delete") and not vectors:
        what = "polygon"
    if what == "undo" and not session.stack.can_undo:
        what = "paint"
    ctx = ToolContext(session.doc, session.stack, frame=0)
    if what in ("paint", "erase"):
        label = rng.choice(MASK_CLASSES)
        ctx.class_index = session.ontology.index_of(label)
        radius = rng.choice([3.0, 4.5, 6.0])
        tool = BrushTool(ctx, radius) if what == "paint" else EraserTool(ctx, radius)
        x, y = _spot(rng, w, 8), _spot(rng, h, 8)
        tool.press(x, y)
        for _ in range(rng.randint(2, 6)):
            x = min(max(x + rng.randrange(-24, 25) / 2, 0.5), w - 0.5)
            y = min(max(y + rng.randrange(-24, 25) / 2, 0.5), h - 0.5)
            tool.move(x, y)
        tool.release(x, y)
    elif what == "polygon":
        ctx.label = rng.choice(VECTOR_CLASSES)
        poly = PolygonTool(ctx)
        cx, cy = _spot(rng, w, 20), _spot(rng, h, 20)
        for k in range(rng.randint(3, 6)):
            angle = 2 * np.pi * k / 6
            radius = rng.randrange(12, 36) / 2
            poly.press(
                round((cx + radius * np.cos(angle)) * 2) / 2, round((cy + radius * np.sin(angle)) * 2) / 2
            )
        if not poly.key("Return"):
            poly.cancel()
    elif what == "box":
        ctx.label = rng.choice(VECTOR_CLASSES)
        box = BoxTool(ctx)
        x0, y0 = _spot(rng, w, 16), _spot(rng, h, 16)
        x1 = min(x0 + rng.randrange(6, 40) / 2, w - 0.5)
        y1 = min(y0 + rng.randrange(6, 40) / 2, h - 0.5)
        box.press(x0, y0)
        box.move((x0 + x1) / 2, (y0 + y1) / 2)
        box.release(x1, y1)
        box.cancel()
    elif what == "move":  # a drag of the whole shape: one ReplaceAnnotation, as the select tool pushes
        aid = rng.choice(sorted(vectors))
        before: Annotation = vectors[aid]
        dx, dy = rng.randrange(-6, 7) / 2, rng.randrange(-6, 7) / 2
        after = _shifted(before, dx, dy, (h, w))
        if after is not None:
            session.stack.push(ReplaceAnnotation(aid, before, after))
    elif what == "delete":
        session.stack.push(RemoveAnnotation(rng.choice(sorted(vectors))))
    else:
        session.stack.undo()
    return what


def _shifted(ann: Any, dx: float, dy: float, shape: tuple[int, int]) -> Any:
    h, w = shape
    if ann.points is not None:
        points = np.asarray(ann.points, dtype=np.float64) + np.array([dx, dy])
        if points.min() < 0 or points[:, 0].max() > w or points[:, 1].max() > h:
            return None
        return ann.evolve(points=points)
    if ann.box is not None:
        x0, y0, x1, y1 = ann.box
        moved = (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
        if min(moved) < 0 or moved[2] > w or moved[3] > h:
            return None
        return ann.evolve(box=moved)
    return None


def _preload() -> None:
    """Import what every labeler needs once, before forking (saves 16 interpreters' start-up)."""
    import app.api
    import app.core.tools.paint
    import app.core.tools.vector
    import app.workflow.editing
    import app.workflow.journal  # noqa: F401


def _child(config: dict[str, Any]) -> int:
    """One forked labeler: its own stderr file, its own Database and journal (opened after the fork)."""
    err = os.open(config["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(err, 2)
    os.dup2(err, 1)
    try:
        return Labeler(config).run()
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def main(argv: list[str]) -> int:
    """``python _load_worker.py CONFIG.json...``: one labeler process per config, forked from this
    one after the imports. Waits for all; exits 1 when any failed (their stderr files say why)."""
    configs = [json.loads(Path(arg).read_text(encoding="utf-8")) for arg in argv]
    _preload()
    sys.stdout.flush()
    sys.stderr.flush()
    children: dict[int, str] = {}
    for config in configs:
        pid = os.fork()
        if pid == 0:  # no database connection or thread exists yet in the parent: safe to fork
            os._exit(_child(config))
        children[pid] = config["user"]
    failed = []
    while children:
        pid, status = os.wait()
        code = os.waitstatus_to_exitcode(status)
        user = children.pop(pid)
        if code != 0:
            failed.append(f"{user} exited with {code}")
    print("\n".join(failed) or "all labelers finished", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
