"""The ``sitelabel`` command. Headless verbs never import Qt; heavy imports happen inside verbs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Handler = Callable[[argparse.Namespace], int]
ROLES = ("admin", "project_admin", "reviewer", "labeler")


class CliError(Exception):
    """A user-facing error raised by the CLI itself (bad arguments beyond argparse's reach)."""


# --- helpers --------------------------------------------------------------------------------
def _database_arg(args: argparse.Namespace) -> str:
    if getattr(args, "db", None):
        return str(args.db)
    from app.config import load_site_config

    configured = load_site_config().database
    if configured:
        return configured
    raise CliError("no database given: pass --db PATH_OR_URL or set `database` in the site config")


def _open_project(args: argparse.Namespace) -> Any:
    """The project a verb works on; never creates one (a mistyped name must not make a project)."""
    from app import api

    return api.open_project(_database_arg(args), args.project, user=args.user, create=False)


def _report_skipped(items: Sequence[tuple[Any, str]]) -> None:
    for item, why in items:
        print(f"  skipped {item}: {why}", file=sys.stderr, flush=True)


class _ProgressLine:
    """A one-line progress display on stderr (only when stderr is a terminal, else silent)."""

    def __init__(self, label: str, quiet: bool = False) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty() and not quiet

    def __call__(self, done: int, total: int) -> bool:
        if self.enabled:
            pct = 100.0 * done / total if total else 100.0
            sys.stderr.write(f"\r{self.label}: {done}/{total} ({pct:5.1f}%)")
            sys.stderr.flush()
        return True

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


# --- verbs ----------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    from app import api

    ontology = _read_json(args.ontology) if args.ontology else None
    project = api.create_project(_database_arg(args), args.name, ontology=ontology, user=args.user)
    print(f"created project {project.name!r} (id {project.id}) in {project.db.url}")
    for warning in project.db.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    project.close()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import build_demo

    progress = _ProgressLine("importing demo data", quiet=args.quiet)
    db_path, created = build_demo(Path(args.dir), progress=progress)
    progress.finish()
    if not args.quiet or created:
        state = "created" if created else "already there"
        print(f"demo project {state}: {db_path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from app.editor.app import run_editor  # Qt is loaded only here

    return run_editor(_database_arg(args), project=args.project, user=args.user)


def cmd_import(args: argparse.Namespace) -> int:

    project = _open_project(args)
    progress = _ProgressLine("scanning", quiet=args.quiet)
    ids = project.import_data(args.paths, dataset=args.dataset, progress=progress)
    progress.finish()
    errors = project.last_import_errors
    print(
        f"registered {len(ids)} new assets in {project.name!r} "
        f"({project.last_import_skipped} already known, {len(errors)} problems)"
    )
    _report_skipped(errors)
    project.close()
    return 0 if ids or not errors else 1


def cmd_watch(args: argparse.Namespace) -> int:
    import time

    project = _open_project(args)

    def report(result: Any) -> None:
        print(f"registered {len(result.asset_ids)} new assets", flush=True)
        _report_skipped(result.errors)

    watcher = project.watch(
        args.folder, dataset=args.dataset, settle_seconds=args.settle, polling=args.polling, on_import=report
    )
    print(f"watching {args.folder} for project {project.name!r}; Ctrl+C to stop", flush=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
        project.close()
    return 0


def cmd_verify(args: argparse.Namespace) -> int:

    project = _open_project(args)
    checks = project.verify()
    problems = [c for c in checks if c.state != "ok"]
    for check in problems:
        detail = f" ({check.detail})" if check.detail else ""
        print(f"{check.state:9} asset {check.asset.id}: {check.path or check.asset.rel_path}{detail}")
    print(f"{len(checks)} assets checked, {len(problems)} need attention")
    project.close()
    return 1 if any(c.state in ("missing", "changed", "unmapped") for c in problems) else 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from app import api

    with api.open_source(args.path) as source:
        info: dict[str, Any] = {
            "kind": source.kind,
            "uri": source.uri,
            "shape": list(source.shape),
            "channels": source.channels,
            "dtype": str(source.dtype),
            "frame_count": source.frame_count,
            "spacing": list(source.spacing) if source.spacing else None,
            "window": list(source.window) if source.window else None,
            "warnings": list(source.warnings),
            "metadata": source.metadata,
        }
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        for key, value in info.items():
            if key != "metadata":
                print(f"{key:12} {value}")
        for key, value in sorted(info["metadata"].items()):
            print(f"  {key}: {value}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:

    project = _open_project(args)
    progress = _ProgressLine(f"exporting {args.format}", quiet=args.quiet)
    report = project.export(
        args.format,
        args.out,
        dataset=args.dataset,
        labeler=args.labeler,
        classes=args.classes or (),
        status=args.status,
        progress=progress,
    )
    progress.finish()
    print(
        f"{args.format} export in {report.out_dir}: {report.files_written} files written, "
        f"{report.files_unchanged} unchanged, {report.files_removed} removed; "
        f"{report.annotations} annotations of {report.assets} assets"
    )
    _report_skipped(report.skipped)
    project.close()
    return 0


def cmd_import_labels(args: argparse.Namespace) -> int:

    project = _open_project(args)
    report = project.import_labels(args.format, args.path, dry_run=args.dry_run)
    total = sum(count for _, _, count in report.matched)
    verb = "would import" if args.dry_run else "imported"
    print(
        f"{verb} {total} annotations onto {len(report.matched)} assets; {len(report.skipped)} items skipped"
    )
    for item, asset_id, count in report.matched:
        print(f"  {item} -> asset {asset_id}: {count}")
    _report_skipped(report.skipped)
    project.close()
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from app.exchange.render import save_png

    project = _open_project(args)
    picture = project.render(args.asset, args.frame, labeler=args.labeler)
    save_png(picture, Path(args.out))
    print(f"wrote {args.out} ({picture.shape[1]} x {picture.shape[0]})")
    project.close()
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from app.storage import Database, SchemaOutdated

    target = _database_arg(args)
    try:
        db = Database.open(target, create=True, upgrade=False)
    except SchemaOutdated:
        db = Database.open(target, create=True, upgrade=True)
        print(f"{db.url}: schema upgraded to {db.current_revision()}")
    else:
        print(f"{db.url}: schema already at {db.current_revision()}")
    db.dispose()
    return 0


def cmd_db_status(args: argparse.Namespace) -> int:
    from app.storage import Database

    db = Database.open(_database_arg(args), create=False, upgrade=False)
    print(f"database  {db.url} ({db.dialect})")
    print(f"schema    {db.current_revision()} (current for this Sitelabel)")
    for warning in db.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    db.dispose()
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
    from app.storage import Database

    db = Database.open(_database_arg(args))
    with db.unit_of_work() as uow:
        project = uow.projects.by_name(args.project) if args.project else None
        for user in uow.users.list():
            role = uow.users.role_in(user.id, project.id) if project else user.role
            print(f"{user.name:20} {role.value if role else '-'}")
    db.dispose()
    return 0


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None


# --- parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sitelabel",
        description="Sitelabel: on-premises labeling of images, DICOM and video. Data never leaves the site.",
    )
    parser.add_argument("--version", action="version", version=f"sitelabel {_version()}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, handler: Handler, help_text: str, *, db: bool = True) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        if db:
            sub.add_argument(
                "--db", help="SQLite file or postgresql:// URL (default: site config `database`)"
            )
            sub.add_argument("--user", help="act as this user (default: the OS user)")
        return sub

    run = verb("run", cmd_run, "open the labeling window")
    run.add_argument("db", nargs="?", help="SQLite file or postgresql:// URL")
    run.add_argument("--project", help="project name (when the database holds several)")

    demo = verb("demo", cmd_demo, "create the demo project (SQLite, real sample data)", db=False)
    demo.add_argument("--dir", default=".demo", help="folder for the demo database (default: .demo)")
    demo.add_argument("--quiet", action="store_true")

    init = verb("init", cmd_init, "create a database (if new) and a project in it")
    init.add_argument("name", help="project name")
    init.add_argument("--ontology", help="ontology JSON file")

    imp = verb("import", cmd_import, "register files, folders, archives, DICOM folders and videos in place")
    imp.add_argument("paths", nargs="+")
    imp.add_argument("--project")
    imp.add_argument("--dataset", default="default")
    imp.add_argument("--quiet", action="store_true")

    watch = verb("watch", cmd_watch, "register new files and series appearing in a folder")
    watch.add_argument("folder")
    watch.add_argument("--project")
    watch.add_argument("--dataset", default="default")
    watch.add_argument("--settle", type=float, default=5.0, help="seconds a folder must stay quiet")
    watch.add_argument("--polling", action="store_true", help="poll (network shares)")

    verify = verb("verify", cmd_verify, "report assets whose files are missing, changed or moved")
    verify.add_argument("--project")

    inspect = verb("inspect", cmd_inspect, "show what Sitelabel reads from a file or folder", db=False)
    inspect.add_argument("path")
    inspect.add_argument("--json", action="store_true", help="print JSON")

    export = verb("export", cmd_export, "export labels (masks, COCO, YOLO, VOC, NIfTI, DICOM SEG, ...)")
    export.add_argument(
        "--format", required=True, help="png-masks, coco, yolo, voc, nifti, dicom-seg, project-json, csv"
    )
    export.add_argument("--out", required=True, help="target folder (e.g. on the shared drive)")
    export.add_argument("--project")
    export.add_argument("--dataset")
    export.add_argument("--labeler")
    export.add_argument("--class", dest="classes", action="append", help="only this class (repeatable)")
    export.add_argument("--status", help="only items with this review status (e.g. accepted)")
    export.add_argument("--quiet", action="store_true")

    imp_labels = verb("import-labels", cmd_import_labels, "import existing labels onto registered assets")
    imp_labels.add_argument("path")
    imp_labels.add_argument("--format", required=True, help="coco, yolo, labelme, png-masks, nifti")
    imp_labels.add_argument("--project")
    imp_labels.add_argument("--dry-run", action="store_true", help="report what would match, store nothing")

    render = verb("render", cmd_render, "draw an asset frame with its annotations to a PNG (headless)")
    render.add_argument("--project")
    render.add_argument("--asset", type=int, required=True)
    render.add_argument("--frame", type=int, default=0)
    render.add_argument("--labeler", help="only this labeler's annotations")
    render.add_argument("--out", required=True)

    db_parser = verbs.add_parser("db", help="database administration", description="database administration")
    db_verbs = db_parser.add_subparsers(dest="db_verb", metavar="ACTION", required=True)
    for name, handler, help_text in (
        ("upgrade", cmd_db_upgrade, "migrate the schema to this version of Sitelabel (back up first)"),
        ("status", cmd_db_status, "show the schema version"),
    ):
        sub = db_verbs.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("db", nargs="?", help="SQLite file or postgresql:// URL")
        sub.set_defaults(handler=handler)

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
    lst = user_verbs.add_parser("list", help="list users and roles", description="list users and roles")
    lst.add_argument("--project")
    lst.add_argument("--db")
    lst.set_defaults(handler=cmd_users_list)
    return parser


def _version() -> str:
    from app import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CliError as exc:
        print(f"sitelabel: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or folder problem the user can fix: one line, no traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"sitelabel: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except Exception as exc:
        from app.core.errors import SitelabelError

        if isinstance(exc, SitelabelError):
            print(f"sitelabel: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    raise SystemExit(main())
