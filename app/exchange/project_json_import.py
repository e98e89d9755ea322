"""Restore a ``project.json`` archive onto another database that holds the same data.

    sitelabel import-labels export/project.json --format project-json     # or the export's folder

Set up the target project first with the same data (``sitelabel import`` of the same files, under
the same data root names); this puts back what the archive recorded on top of it:

* **annotations** with their kind, label, frame, geometry, attributes, source, confidence and
  author (people are created by name where the target database lacks them), consensus labels
  included (source ``consensus``), in their stored order. Stored track anchors keep their track id
  and ``keyframe``/``outside``/``occluded`` flags; the interpolated frames the archive lists are
  not stored (the tracks give them back). New rows get new ids and version 1;
* **the queue and reviews** of every queued item: the task's status, priority, labelers needed and
  agreement, every labeler's assignment (status, lease times) and the review history (reviewer,
  verdict, note, details, time; a rejection names its labeler's assignment again). The consensus
  details' ``annotations`` lists name the restored annotations' new ids; ids of annotations the
  archive does not hold (a consensus a requeue superseded) are left out of them.

Assets are matched by data root, path and member (the path relative to the data root), else by
content hash and member; the matched asset must have the same kind, frame count and size. An
asset that already holds annotations here, or whose task was already claimed or reviewed here, is
left as it is and listed as skipped, so a restore never duplicates labels or rewrites work done
on the target. Annotations are checked against the target's ontology (a target project without
classes takes the archive's ontology first); misfits are skipped with the reason. Everything is
written in one transaction: a failure stores nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.annotations import Annotation
from app.core.errors import ValidationError
from app.core.item_status import STORED, parse_status
from app.core.ontology import Ontology
from app.core.records import Asset, AssignmentStatus, TaskStatus, Verdict
from app.exchange import rle
from app.exchange.project_json import FILE, SCHEMAS

if TYPE_CHECKING:
    from app.storage import Database
    from app.storage.uow import UnitOfWork

FORMAT = "project-json"
Progress = Callable[[int, int], bool | None]


class _Skip(Exception):
    """One archived asset (or review) cannot be restored: the message says why."""


@dataclass
class Restored:
    """What a restore did (or, dry run, would do). ``matched``: (item, target asset id, annotations)
    per archived asset put back; ``counts``: annotations, tracks, tasks, assignments, reviews."""

    matched: list[tuple[str, int, int]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    cancelled: bool = False

    def add(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


def archive_file(path: Path) -> Path:
    """``project.json`` itself, or the one in an export's folder."""
    if path.is_dir():
        if not (path / FILE).is_file():
            raise ValidationError(f"{path} holds no {FILE}: give the file or its export's folder")
        return path / FILE
    return path


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"cannot read {path}: {' '.join(str(exc).split())[:200]}") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema not in SCHEMAS or not isinstance(data.get("assets"), list):
        raise ValidationError(
            f"{path} is not a Sitelabel project.json (schema {', '.join(SCHEMAS)}; found "
            f"{data.get('schema') if isinstance(data, dict) else type(data).__name__!r})"
        )
    return data


def _name(entry: Mapping[str, Any]) -> str:
    member = entry.get("member") or ""
    return f"{entry.get('root')}:{entry.get('path')}" + (f"#{member.lstrip('#')}" if member else "")


class _Matcher:
    """Archived asset -> the target's asset: same root, path and member, else same content hash."""

    def __init__(self, assets: Sequence[Asset]) -> None:
        self._path = {(a.root, a.rel_path, a.member or ""): a for a in assets}
        self._hash: dict[tuple[str, str], list[Asset]] = {}
        for a in assets:
            self._hash.setdefault((a.content_hash, a.member or ""), []).append(a)

    def match(self, entry: Mapping[str, Any]) -> Asset:
        member = str(entry.get("member") or "")
        found = self._path.get((str(entry.get("root")), str(entry.get("path")), member))
        if found is None:
            same = self._hash.get((str(entry.get("content_hash")), member), [])
            if len(same) > 1:
                raise _Skip(f"no asset here has its path, and {len(same)} have its content hash")
            if not same:
                raise _Skip("no asset of this project has its data root and path or its content hash")
            found = same[0]
        here = (found.kind.value, found.frame_count, found.width, found.height)
        there = (entry.get("kind"), entry.get("frame_count"), entry.get("width"), entry.get("height"))
        if here != there:
            raise _Skip(
                f"the asset here is a {here[0]} of {here[1]} frames of {here[2]}x{here[3]}, "
                f"the archive's a {there[0]} of {there[1]} frames of {there[2]}x{there[3]}"
            )
        return found


def _annotation(raw: Mapping[str, Any], asset: Asset) -> Annotation:
    data = dict(raw)
    if "mask" in data and isinstance(data["mask"], dict):
        data["mask"] = rle.decode(data["mask"])
    return Annotation.from_dict(
        data, frame_shape=(asset.height, asset.width), id=None, version=0, author=None, asset_id=asset.id
    )


@dataclass
class _Item:
    """One archived asset ready to restore: its target, stored annotations (old id, author,
    annotation; in stored order) and review block."""

    name: str
    asset: Asset
    annotations: list[tuple[int, str | None, Annotation]]
    review: Mapping[str, Any] | None


def _prepare(entry: Mapping[str, Any], asset: Asset, ontology: Ontology, out: Restored) -> _Item:
    name = _name(entry)
    kept: list[tuple[int, str | None, Annotation]] = []
    for raw in entry.get("annotations") or []:
        if raw.get("id") is None:
            continue  # an interpolated frame of a track: the restored anchors give it back
        where = f"{name} annotation {raw['id']}"
        try:
            ann = _annotation(raw, asset)
        except (ValidationError, TypeError, ValueError, KeyError) as exc:
            out.skipped.append((where, f"unreadable: {' '.join(str(exc).split())[:200]}"))
            continue
        problems = ontology.check(ann) if ontology.classes else []
        if ann.frame >= max(asset.frame_count, 1):
            problems = [f"frame {ann.frame} is past the last frame of the asset", *problems]
        if problems:
            out.skipped.append((where, "; ".join(problems)))
            continue
        kept.append((int(raw["id"]), raw.get("author"), ann))
    kept.sort(key=lambda item: item[0])  # the stored order: what label maps paint last stays on top
    return _Item(name, asset, kept, entry.get("review"))


def _time(text: Any, default: datetime) -> datetime:
    if not isinstance(text, str):
        return default
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class _Writer:
    """Writes prepared items in one unit of work, creating people by name on first use."""

    def __init__(self, uow: UnitOfWork, project_id: int, out: Restored) -> None:
        self.uow = uow
        self.project_id = project_id
        self.out = out
        self.now = datetime.now(UTC)
        self._users: dict[str, int] = {}

    def user(self, name: str | None) -> int | None:
        if not name:
            return None
        if name not in self._users:
            self._users[name] = self.uow.users.ensure(name).id
        return self._users[name]

    def busy(self, item: _Item) -> str | None:
        """Why the target asset must be left alone, or None."""
        count = self.uow.annotations.count(item.asset.id)
        if count:
            return (
                f"the asset here already holds {count} annotations (a restore fills unlabelled assets only)"
            )
        task = self.uow.tasks.for_asset(self.project_id, item.asset.id)
        if item.review is not None and task is not None and self.uow.restore.worked_on(task.id):
            return "its task here was already claimed or reviewed"
        return None

    def annotations(self, item: _Item) -> dict[int, int]:
        """Store the item's annotations in their archived order; old id -> new id."""
        new_ids: dict[int, int] = {}
        run: list[tuple[int, Annotation]] = []
        author: str | None = None

        def flush() -> None:
            stored = self.uow.annotations.add_many(item.asset.id, [a for _, a in run], self.user(author))
            new_ids.update((old, int(a.id or 0)) for (old, _), a in zip(run, stored, strict=True))

        for old, who, ann in item.annotations:  # runs of one author: one insert each, order kept
            if run and who != author:
                flush()
                run = []
            author = who
            run.append((old, ann))
        if run:
            flush()
        self.out.add("annotations", len(new_ids))
        self.out.add("track anchors", sum(1 for _, _, a in item.annotations if a.track_id is not None))
        return new_ids

    def review(self, item: _Item, new_ids: Mapping[int, int]) -> None:
        block = item.review
        if block is None:
            return
        status = _task_status(block)
        task_id = self.uow.restore.task(
            self.project_id,
            item.asset.id,
            status=status,
            priority=float(block.get("priority") or 0.0),
            required=int(block.get("required_labelers") or 1),
            agreement=None if block.get("agreement") is None else float(block["agreement"]),
            created_at=_time(block.get("created_at"), self.now),
            updated_at=_time(block.get("updated_at"), self.now),
        )
        self.out.add("tasks")
        assignments: dict[int, int] = {}
        for a in block.get("assignments") or []:
            user_id = self.user(a.get("labeler"))
            if user_id is None:
                self.out.skipped.append((f"{item.name} assignment {a.get('id')}", "it names no labeler"))
                continue
            leased = _time(a.get("leased_at"), self.now)
            assignments[int(a["id"])] = self.uow.restore.assignment(
                task_id,
                user_id,
                status=AssignmentStatus(a["status"]),
                leased_at=leased,
                lease_expires_at=_time(a.get("lease_expires_at"), leased),
                finished_at=None if a.get("finished_at") is None else _time(a["finished_at"], leased),
            )
        self.out.add("assignments", len(assignments))
        for r in block.get("history") or []:
            old = r.get("assignment_id")
            if old is None and r.get("labeler"):
                self.out.skipped.append(
                    (
                        f"{item.name} review {r.get('id')}",
                        f"restored without its labeler {r['labeler']}: the archive lists no assignments "
                        "(exported by an older version)",
                    )
                )
            self.uow.restore.review(
                item.asset.id,
                task_id,
                self.user(r.get("reviewer")),
                Verdict(r["verdict"]),
                note=str(r.get("note") or ""),
                created_at=_time(r.get("created_at"), self.now),
                assignment_id=None if old is None else assignments.get(int(old)),
                details=_details(r.get("details") or {}, new_ids),
            )
            self.out.add("reviews")


def _task_status(block: Mapping[str, Any]) -> TaskStatus:
    if block.get("task_status"):
        return TaskStatus(block["task_status"])
    return STORED.get(parse_status(str(block.get("status") or "new")), TaskStatus.NEW)


def _details(details: Mapping[str, Any], new_ids: Mapping[int, int]) -> dict[str, Any]:
    out = dict(details)
    if isinstance(out.get("annotations"), list):  # a consensus decision names its labels
        out["annotations"] = [new_ids[int(i)] for i in out["annotations"] if int(i) in new_ids]
    return out


def restore_project_json(
    db: Database,
    project_id: int,
    path: Path,
    *,
    user_id: int,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Restored:
    """Put a project.json archive back onto this project's matching assets; see the module doc."""
    source = archive_file(Path(path))
    data = _load(source)
    out = Restored()
    with db.unit_of_work(readonly=True) as uow:
        uow.projects.get(project_id)
        current = uow.ontologies.current(project_id)
        assets = list(uow.assets.list(project_id))
    archived = Ontology.from_dict(data.get("ontology") or {"classes": []})
    adopt = (current is None or not current.classes) and bool(archived.classes)
    ontology = archived if adopt else (current or Ontology(classes=(), version=0))
    matcher = _Matcher(assets)
    items: list[_Item] = []
    entries = data["assets"]
    for done, entry in enumerate(entries):
        if progress is not None and progress(done, len(entries)) is False:
            out.cancelled = True
            return out
        try:
            asset = matcher.match(entry)
        except _Skip as exc:
            out.skipped.append((_name(entry), str(exc)))
            continue
        items.append(_prepare(entry, asset, ontology, out))
    if progress is not None and progress(len(entries), len(entries)) is False:
        out.cancelled = True
        return out
    with db.unit_of_work(readonly=dry_run) as uow:
        if adopt and not dry_run:
            stored = uow.ontologies.add(project_id, archived, user_id)
            uow.audit.record(user_id, "ontology.set", "project", project_id, {"version": stored.version})
        writer = _Writer(uow, project_id, out)
        for item in items:
            why = writer.busy(item)
            if why is not None:
                out.skipped.append((item.name, why))
                continue
            out.matched.append((item.name, item.asset.id, len(item.annotations)))
            if dry_run:
                out.add("annotations", len(item.annotations))
                out.add("tasks", item.review is not None)
                out.add("reviews", len((item.review or {}).get("history") or []))
                continue
            writer.review(item, writer.annotations(item))
        if not dry_run:
            details = {"format": FORMAT, **out.counts}
            uow.audit.record(user_id, "labels.import", "project", project_id, details)
    return out
