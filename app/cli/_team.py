"""Team verbs: review, consensus, activity and people."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from app.cli._common import (
    ROLES,
    Handler,
    _database_arg,
    _open_project,
)
from app.core.item_status import counts_line, status_help
from app.core.records import Role


def cmd_review_list(args: argparse.Namespace) -> int:
    with _open_project(args) as project:
        items = project.review_queue(limit=args.limit)
    if args.json:
        rows = [
            {
                "asset_id": i.asset_id,
                "labelers": list(i.labelers),
                "agreement": i.agreement,
                "open_threads": i.open_threads,
                "waiting_since": i.waiting_since.isoformat(),
            }
            for i in items
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'asset':>7}  {'agreement':>9}  {'issues':>6}  labelers")
    for i in items:
        score = "-" if i.agreement is None else f"{i.agreement:.3f}"
        print(f"{i.asset_id:>7}  {score:>9}  {i.open_threads:>6}  {', '.join(i.labelers)}")
    print(f"{len(items)} item(s) waiting for review")
    return 0


def cmd_review_decide(args: argparse.Namespace) -> int:
    with _open_project(args) as project:
        if args.review_verb == "reject":
            review = project.reject(args.asset, args.labeler, args.reason)
            print(f"item {args.asset} sent back to {args.labeler}: {review.note}")
        else:
            project.accept(args.asset, note=args.note)
            print(f"item {args.asset} accepted")
    return 0


def cmd_consensus(args: argparse.Namespace) -> int:
    with _open_project(args) as project:
        if args.labeler:
            review = project.choose_consensus(args.asset, args.labeler)
        else:
            review = project.merge_consensus(args.asset, method=args.method)
    count = len(review.details.get("annotations", ()))
    print(f"item {args.asset}: {review.note} ({count} consensus annotations); accepted")
    for label, frame, why in review.details.get("skipped", ()):
        print(f"  not written: {label} on frame {frame}: {why}")
    return 0


def cmd_users_add(args: argparse.Namespace) -> int:
    from app import api

    db = _database_arg(args)
    if args.project:
        project = api.open_project(db, args.project, user=args.user, create=False)
        project.set_member(args.name, args.role)
        project.close()
        print(f"user {args.name!r} is {args.role} in project {args.project!r}")
    else:
        api.set_site_role(db, args.name, args.role, user=args.user)
        print(f"user {args.name!r} is {args.role} site-wide")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    """Everyone with their site-wide role and their role in each project (or in --project): a
    project reviewer is a labeler site-wide, and the project role is what counts there."""
    from app import api

    db = api.open_database(_database_arg(args), create=False)
    try:
        people = api.people(db, project=args.project)
    finally:
        db.dispose()
    if args.json:
        rows = [
            {
                "name": p.name,
                "site_role": p.site_role.value,
                "projects": {name: role.value for name, role in sorted(p.projects.items())},
                **({"role": _role_text(p.role_in(args.project))} if args.project else {}),
            }
            for p in people
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if args.project:
        print(f"{'user':20} {'role in ' + args.project:24} site role")
        for p in people:
            print(f"{p.name:20} {_role_text(p.role_in(args.project)) or '-':24} {p.site_role.value}")
        return 0
    print(f"{'user':20} {'site role':14} project roles")
    for p in people:
        roles = ", ".join(f"{name}: {role.value}" for name, role in sorted(p.projects.items()))
        if p.site_role is Role.ADMIN:  # admin in every project, whatever the memberships say
            roles = "admin in every project" + (f" (member: {roles})" if roles else "")
        print(f"{p.name:20} {p.site_role.value:14} {roles or '-'}")
    return 0


def _role_text(role: Role | None) -> str | None:
    return None if role is None else role.value


def cmd_activity(args: argparse.Namespace) -> int:
    """Items with their status, labelers, time, agreement and review; or, with --labelers, people."""
    with _open_project(args) as project:
        if args.labelers:
            people = project.labeler_activity()
            if args.json:
                print(json.dumps([p.as_dict() for p in people], indent=2))
                return 0
            print(f"{'labeler':20} {'submitted':>9} {'per hour':>8} {'lease h':>7} ", end="")
            print(f"{'agreement':>9} {'rejected':>8} skipped")
            for p in people:
                rate = "-" if p.per_hour is None else f"{p.per_hour:.1f}"
                score = "-" if p.mean_agreement is None else f"{p.mean_agreement:.3f}"
                print(
                    f"{p.name:20} {p.submitted:>9} {rate:>8} {p.lease_seconds / 3600:>7.2f} {score:>9} "
                    f"{p.rejected:>8} {p.skipped:>7}"
                )
            return 0
        filters = {
            "status": args.status, "labeler": args.labeler, "label": args.label, "dataset": args.dataset,
            "modality": args.modality, "body_part": args.body_part, "search": args.search,
        }  # fmt: skip
        page = project.activity(
            sort=args.sort, descending=args.desc, limit=args.limit or None, offset=args.offset, **filters
        )
        counts = project.queue_stats()  # the numbers the queue panel and the API show
    if args.json:
        rows = [r.as_dict() for r in page.rows]
        print(json.dumps({"total": page.total, "items": rows, "counts": counts}, indent=2))
        return 0
    print(f"{'asset':>7} {'status':10} {'time':>7} {'need':>4} {'agree':>5} ", end="")
    print(f"{'review':9} {'issues':>6}  labelers / classes / path")
    for r in page.rows:
        held = "-" if r.seconds is None else f"{int(r.seconds // 60)}:{int(r.seconds % 60):02d}"
        score = "-" if r.agreement is None else f"{r.agreement:.2f}"
        tags = " ".join(t for t in (r.modality, r.body_part, r.study_date) if t)
        print(
            f"{r.asset_id:>7} {r.status:10} {held:>7} {r.required or '-':>4} {score:>5} {r.review or '-':9} "
            f"{r.open_threads:>6}  {', '.join(r.labelers) or '-'} / {', '.join(r.classes) or '-'} / "
            f"{r.path}{'  ' + tags if tags else ''}"
        )
    print(f"{len(page.rows)} of {page.total} item(s)")
    print(f"queue: {counts_line(counts)} ({counts['total']} queued, {counts['unqueued']} not queued)")
    return 0


CONSENSUS_HELP = """\
make a consensus item's label: merge every labeler's work, or take one labeler's; the item is then
accepted. A consensus holds only kinds the ontology allows for each class (app.workflow.consensus):

  mask allowed            a mask: pixels MORE than half of the labelers marked (majority), or
                          STAPLE's pixels with foreground probability over 0.5 (staple)
  box, no mask            boxes: the labelers' boxes are matched by IoU >= 0.5 (greedy, every two
                          in a group overlap that much, one box per labeler); each group more than
                          half of the labelers drew becomes the per-coordinate median of its boxes.
                          staple gives the same boxes (STAPLE's pixel probability says nothing
                          about box edges). A class allowing box and polygon gets boxes when
                          everyone drew boxes, else polygons.
  polygon, no mask        polygons: the majority or STAPLE mask outlined, one per region (holes
                          filled)
  none of these           nothing is written; the class and frame are listed as not written
  classification          kept when more than half of the labelers chose it (an exact half is a
                          tie, listed for review), with the attributes they all agree on

A consensus the ontology would refuse (e.g. --labeler whose masks a now box-only class does not
allow) is refused as a direct upload would be. Requeuing an item supersedes its consensus."""


def add_team_verbs(verbs: Any, verb: Callable[..., argparse.ArgumentParser]) -> None:
    review = verbs.add_parser("review", help="review submitted items", description="review submitted items")
    review_verbs = review.add_subparsers(dest="review_verb", metavar="ACTION", required=True)

    def review_action(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = review_verbs.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        sub.add_argument("--db", help="SQLite file or postgresql:// URL (default: site config `database`)")
        sub.add_argument("--user", help="act as this user (default: the OS user)")
        sub.add_argument("--project")
        return sub

    review_list = review_action("list", cmd_review_list, "items waiting for review, lowest agreement first")
    review_list.add_argument("--limit", type=int, default=50)
    review_list.add_argument("--json", action="store_true", help="print JSON")
    accept = review_action("accept", cmd_review_decide, "accept an item's labels")
    accept.add_argument("asset", type=int)
    accept.add_argument("--note", default="")
    reject = review_action("reject", cmd_review_decide, "send an item back to one labeler with a reason")
    reject.add_argument("asset", type=int)
    reject.add_argument("--labeler", required=True, help="whose work goes back")
    reject.add_argument("--reason", required=True, help="shown to the labeler")

    consensus = verb("consensus", cmd_consensus, "make a consensus item's label: merge or pick a labeler")
    consensus.formatter_class = argparse.RawDescriptionHelpFormatter
    consensus.description = CONSENSUS_HELP
    consensus.add_argument("asset", type=int)
    consensus.add_argument("--project")
    how = consensus.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--method",
        choices=("majority", "staple"),
        help="merge every labeler's annotations: majority vote or STAPLE (what each writes: above)",
    )
    how.add_argument(
        "--labeler", help="take this labeler's annotations (refused if the ontology no longer allows them)"
    )

    act = verb("activity", cmd_activity, "who labeled what: status, labelers, time, agreement, review")
    act.add_argument("--project")
    act.add_argument("--labelers", action="store_true", help="per labeler: throughput, agreement, ...")
    act.add_argument("--status", help=f"items with this status: {status_help()}")
    act.add_argument("--labeler", help="items this labeler took part in")
    act.add_argument("--class", dest="label", help="items with a label of this class")
    act.add_argument("--dataset")
    act.add_argument("--modality", help="DICOM modality (CT, MR, ...)")
    act.add_argument("--body-part", help="DICOM body part examined")
    act.add_argument("--search", help="text in the path or the DICOM series description")
    act.add_argument("--sort", default="asset", help="asset, path, status, time, agreement, threads, ...")
    act.add_argument("--desc", action="store_true", help="sort descending")
    act.add_argument("--limit", type=int, default=100, help="rows to show (0: all; default 100)")
    act.add_argument("--offset", type=int, default=0)
    act.add_argument("--json", action="store_true", help="print JSON")

    users = verbs.add_parser("users", help="people and roles", description="people and roles")
    user_verbs = users.add_subparsers(dest="users_verb", metavar="ACTION", required=True)
    add = user_verbs.add_parser(
        "add", help="add a user or change a role", description="add a user or set a role"
    )
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="labeler")
    add.add_argument("--project", help="role within this project (default: site-wide)")
    add.add_argument("--db")
    add.add_argument("--user", help="act as this user (default: the OS user)")
    add.set_defaults(handler=cmd_users_add)
    lst = user_verbs.add_parser(
        "list",
        help="list users with their site-wide and project roles",
        description="list users with their site-wide role and their role in each project; what someone "
        "may do in a project is their role there (a site admin is admin in every project)",
    )
    lst.add_argument("--project", help="only this project: each user's role in it ('-': not a member)")
    lst.add_argument("--db")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(handler=cmd_users_list)
