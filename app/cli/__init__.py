"""The ``sitelabel`` command. Headless verbs never import Qt; heavy imports happen inside verbs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.cli._common import (
    CliError,
    Handler,
    _database_arg,
    _open_project,
    _ProgressLine,
    _read_json,
    _report_skipped,
)
from app.cli._export import add_label_map_options, label_map_options, print_export_summary, print_unwritable
from app.cli._export_labels import add_label_options, label_options, print_label_summary
from app.cli._frames import add_frame_options, frame_options
from app.cli._importing import cmd_import, cmd_import_labels
from app.cli._layouts import add_layout_options, add_splits_verbs, layout_options, print_layout_summary
from app.cli._models import add_model_verbs
from app.cli._project import add_project_verbs
from app.cli._team import add_team_verbs


# --- verbs ----------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    """Set a project up in three steps: name (+ database, workflow settings), data, ontology."""
    from app import api
    from app.core.records import ProjectSettings

    ontology = _read_json(args.ontology) if args.ontology else None
    if args.template:
        ontology = _template_ontology(args.template)
    watch = [Path(folder) for folder in args.watch or ()]
    not_folders = [str(folder) for folder in watch if not folder.is_dir()]
    if not_folders:
        raise CliError(f"watch folders must be existing folders: {', '.join(not_folders)}")
    tuned = {
        "consensus_share": args.consensus_share,
        "consensus_count": args.consensus_count,
        "batch_size": args.batch_size,
        "lease_seconds": None if args.lease_minutes is None else round(args.lease_minutes * 60),
    }
    given = {key: value for key, value in tuned.items() if value is not None}
    settings = ProjectSettings(**given) if given else None
    project = api.create_project(
        _database_arg(args), args.name, ontology=ontology, settings=settings, user=args.user
    )
    try:
        print(f"created project {project.name!r} (id {project.id}) in {project.db.url}")
        for warning in project.db.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if watch:
            remembered = project.set_watch_folders(watch)
            print(f"watch folders remembered: {', '.join(str(f) for f in remembered)}")
        # what is already in a watch folder is registered now; the watcher only sees new files
        data = [*(args.data or ()), *watch]
        if not data:
            return 0
        print(f"registering data from {len(data)} location(s)...", flush=True)
        progress = _ProgressLine("scanning", quiet=args.quiet)
        ids = project.import_data(data, progress=progress)
        progress.finish()
        errors = project.last_import_errors
        print(f"registered {len(ids)} assets ({len(errors)} problems)")
        _report_skipped(errors)
        return 0 if ids or not errors else 1
    finally:
        project.close()


def _template_ontology(name: str) -> Any:
    from app.resources import ontology_templates

    templates = ontology_templates()
    if name not in templates:
        raise CliError(f"no ontology template {name!r}; shipped templates: {', '.join(templates)}")
    return _read_json(str(templates[name]))


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

    return run_editor(
        _window_database(args), project=args.project, user=args.user, smoke_test=args.smoke_test
    )


def cmd_setup(args: argparse.Namespace) -> int:
    from app.editor.app import run_setup  # Qt is loaded only here

    return run_setup(_window_database(args), user=args.user)


def _window_database(args: argparse.Namespace) -> str | None:
    """`run DB` or `run --db DB` or the site config; None lets the set-up wizard ask for one."""
    if args.db_path:
        return str(args.db_path)
    try:
        return _database_arg(args)
    except CliError:
        return None


def cmd_ontology_export(args: argparse.Namespace) -> int:
    with _open_project(args) as project:
        ontology = project.ontology
    text = json.dumps(ontology.to_dict(), indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"wrote ontology version {ontology.version} ({len(ontology.classes)} classes) to {args.out}")
    else:
        print(text)
    return 0


def cmd_ontology_import(args: argparse.Namespace) -> int:
    data = _read_json(args.file)
    with _open_project(args) as project:
        stored = project.set_ontology(data)
    print(f"ontology version {stored.version} stored in {project.name!r} ({len(stored.classes)} classes)")
    return 0


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
    from app.exchange.export import UnwritableItems

    project = _open_project(args)
    progress = _ProgressLine(f"exporting {args.format}", quiet=args.quiet)
    try:
        report = project.export(
            args.format,
            args.out,
            dataset=args.dataset,
            classes=args.classes or (),
            progress=progress,
            **label_options(args),
            **label_map_options(args),
            **frame_options(args),
            **layout_options(args),
        )
    except UnwritableItems as exc:  # one line per reason; nothing was written
        progress.finish()
        print_unwritable(exc)
        project.close()
        return 1
    progress.finish()
    print(
        f"{args.format} export in {report.out_dir}: {report.files_written} files written, "
        f"{report.files_unchanged} unchanged, {report.files_removed} removed; "
        f"{report.annotations} annotations of {report.assets} assets"
    )
    print_label_summary(report)  # which labels, by the rule that picked them (provenance.json)
    print_export_summary(report)  # label overlaps; skipped items by reason
    print_layout_summary(report)  # YOLO task and splits, nnU-Net cases
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
    from app.db_admin import upgrade_database

    return upgrade_database(_database_arg(args), assume_yes=args.yes)


def cmd_db_secure(args: argparse.Namespace) -> int:
    from app.db_admin import secure_database

    return secure_database(
        _database_arg(args),
        group=args.group,
        sync_users=args.sync_users,
        password_file=args.password_file,
        dry_run=args.dry_run,
    )


def cmd_config_check(args: argparse.Namespace) -> int:
    from app import site_check
    from app.config import read_site_config

    loaded = read_site_config()
    checks = site_check.run_checks(loaded, components=not args.skip_components)
    print(site_check.report(loaded, checks))
    return 1 if any(check.state == "fail" for check in checks) else 0


def cmd_db_status(args: argparse.Namespace) -> int:
    from app.storage import Database, row_security

    db = Database.open(_database_arg(args), create=False, upgrade=False)
    print(f"database  {db.url} ({db.dialect})")
    print(f"schema    {db.current_revision()} (current for this Sitelabel)")
    print(f"row security  {row_security.describe(_database_arg(args))}")
    for warning in db.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    db.dispose()
    return 0


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
    run.add_argument("db_path", nargs="?", metavar="DB", help="SQLite file or postgresql:// URL")
    run.add_argument("--project", help="project name (when the database holds several)")
    run.add_argument(
        "--smoke-test",
        nargs="?",
        const="",
        metavar="PNG",
        help="installation check: open the window and every asset, optionally save a screenshot, exit",
    )

    demo = verb("demo", cmd_demo, "create the demo project (SQLite, real sample data)", db=False)
    demo.add_argument("--dir", default=".demo", help="folder for the demo database (default: .demo)")
    demo.add_argument("--quiet", action="store_true")

    init = verb("init", cmd_init, "create a database (if new) and a project in it, with data and ontology")
    init.add_argument("name", help="project name")
    labels = init.add_mutually_exclusive_group()
    labels.add_argument("--ontology", help="ontology JSON file")
    labels.add_argument("--template", help="a shipped ontology template (e.g. chest_ct_organs, lesion_boxes)")
    init.add_argument("--data", nargs="+", metavar="PATH", help="files, folders, archives, DICOM folders")
    init.add_argument("--watch", nargs="+", metavar="FOLDER", help="folders new data arrives in")
    init.add_argument("--consensus-share", type=float, help="share of items several labelers get (0..1)")
    init.add_argument("--consensus-count", type=int, help="labelers per consensus item")
    init.add_argument("--batch-size", type=int, help="items handed out per claim")
    init.add_argument("--lease-minutes", type=float, help="how long a claimed item stays reserved")
    init.add_argument("--quiet", action="store_true")

    setup = verb("setup", cmd_setup, "set a project up in a window: name, data, labeling interface")
    setup.add_argument("db_path", nargs="?", metavar="DB", help="SQLite file or postgresql:// URL")

    onto_parser = verbs.add_parser(
        "ontology", help="export or import a project's ontology (JSON)", description="the labeling interface"
    )
    onto_verbs = onto_parser.add_subparsers(dest="ontology_verb", metavar="ACTION", required=True)
    for name, handler, help_text in (
        ("export", cmd_ontology_export, "write the current ontology as JSON (stdout or --out)"),
        ("import", cmd_ontology_import, "store a JSON ontology as the new version (project admins)"),
    ):
        sub = onto_verbs.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--db", help="SQLite file or postgresql:// URL (default: site config `database`)")
        sub.add_argument("--user", help="act as this user (default: the OS user)")
        sub.add_argument("--project")
        sub.set_defaults(handler=handler)
        if name == "export":
            sub.add_argument("--out", help="JSON file to write (default: print)")
        else:
            sub.add_argument("file", help="ontology JSON file")

    imp = verb("import", cmd_import, "register files, folders, archives, DICOM folders and videos in place")
    imp.add_argument("paths", nargs="+")
    imp.add_argument("--project")
    imp.add_argument("--dataset", default="default")
    imp.add_argument("--quiet", action="store_true", help="no progress line")
    imp.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be registered and what not (already known, other file types, unreadable: "
        "with the reason); store nothing",
    )

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
        "--format",
        required=True,
        help="png-masks, coco, yolo, voc, nifti, dicom-seg, nnunet, project-json, csv, tracks-csv",
    )
    export.add_argument("--out", required=True, help="target folder (e.g. on the shared drive)")
    export.add_argument("--project")
    export.add_argument("--dataset")
    export.add_argument("--class", dest="classes", action="append", help="only this class (repeatable)")
    add_label_options(export)  # --labels, --status, --include-prelabels, --labeler, --consensus
    add_label_map_options(export)
    add_frame_options(export)
    add_layout_options(export)
    export.add_argument("--quiet", action="store_true")

    imp_labels = verb("import-labels", cmd_import_labels, "import existing labels onto registered assets")
    imp_labels.add_argument("path", help="a label file or folder (coco: the JSON file or an export's folder)")
    imp_labels.add_argument(
        "--format",
        required=True,
        help="coco, yolo, labelme, png-masks, nifti; project-json restores a Sitelabel project.json "
        "archive (authors, sources, tracks, queue state, reviews, consensus) onto the same data "
        "registered in this project, matched by data root and path or content hash",
    )
    imp_labels.add_argument("--project")
    imp_labels.add_argument("--dry-run", action="store_true", help="report what would match, store nothing")
    imp_labels.add_argument("--quiet", action="store_true", help="no progress line")

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
        if name == "upgrade":
            sub.add_argument("--yes", action="store_true", help="do not ask (scripts; back up first)")
    secure = db_verbs.add_parser(
        "secure",
        help="PostgreSQL: per-user database roles and row-level security (run as the schema owner)",
        description="PostgreSQL: create the app's group role, grants and row-level security policies "
        "so that labelers connecting as themselves cannot read each other's blind labels",
    )
    secure.add_argument("db", nargs="?", help="postgresql:// URL of the schema owner")
    secure.add_argument("--sync-users", action="store_true", help="a login role per active Sitelabel user")
    secure.add_argument("--password-file", type=Path, help="name:password lines (roles without: NOLOGIN)")
    secure.add_argument("--group", help="the group role's name (default sitelabel_app)")
    secure.add_argument("--dry-run", action="store_true", help="print the SQL, change nothing")
    secure.set_defaults(handler=cmd_db_secure)

    cfg_parser = verbs.add_parser(
        "config", help="the site configuration", description="the site configuration"
    )
    cfg_verbs = cfg_parser.add_subparsers(dest="config_verb", metavar="ACTION", required=True)
    check = cfg_verbs.add_parser(
        "check",
        help="validate the site config and test the database, data roots, models and export folders",
        description="validate the site config and test the database, data roots, models and export folders",
    )
    check.add_argument("--skip-components", action="store_true", help="skip the decoder/runtime checks")
    check.set_defaults(handler=cmd_config_check)

    add_team_verbs(verbs, verb)
    add_project_verbs(verbs)
    add_splits_verbs(verbs)
    add_model_verbs(verbs, verb)
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
