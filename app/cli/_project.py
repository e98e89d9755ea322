"""Project verbs: show a project's workflow settings and change them (project admins, audited)."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from app.cli._common import _open_project


def cmd_project_show(args: argparse.Namespace) -> int:
    from app.workflow.project_settings import SETTINGS, format_duration

    with _open_project(args) as project:
        settings = project.settings
        history = project.settings_history(args.history) if args.history else []
        name = project.name
    if args.json:
        values = {s.key: getattr(settings, s.field) for s in SETTINGS}
        edits = [
            {"at": e.at.isoformat(), "user": e.user, "key": e.key, "old": e.old, "new": e.new}
            for e in history
        ]
        print(json.dumps({"project": name, "settings": values, "history": edits}, indent=2))
        return 0
    print(f"project {name!r}")
    for spec in SETTINGS:
        value = getattr(settings, spec.field)
        print(f"  {spec.key:16} {spec.show(value)}")
    for edit in history:
        old, new = edit.old, edit.new
        if edit.key == "lease_time":
            old, new = format_duration(old), format_duration(new)
        when = edit.at.strftime("%Y-%m-%d %H:%M")
        print(f"  changed {when} by {edit.user or '?'}: {edit.key} {old} -> {new}")
    return 0


def cmd_project_set(args: argparse.Namespace) -> int:
    from app.workflow.project_settings import setting

    spec = setting(args.key)  # an unknown key fails before the database is opened
    with _open_project(args) as project:
        change = project.update_settings(**{spec.key: args.value})
    if not change.changed:
        print(f"{spec.key} is already {spec.show(getattr(change.after, spec.field))}; nothing changed")
        return 0
    old, new = (spec.show(getattr(s, spec.field)) for s in (change.before, change.after))
    print(f"{spec.key}: {old} -> {new}")
    if change.replanned:
        print(f"{change.replanned} queued item(s) nobody had claimed now follow the new consensus plan")
    return 0


def _settings_help() -> str:
    """The keys, what they mean, their ranges and units, and what a change does to the queue."""
    from app.workflow.project_settings import ON_CHANGE, SETTINGS

    def wrapped(text: str, indent: str) -> str:
        return textwrap.fill(text, 96, initial_indent=indent, subsequent_indent=indent)

    lines = ["settings (KEY; dashes work too):"]
    for spec in SETTINGS:
        lines += [
            f"  {spec.key}",
            wrapped(f"{spec.meaning}.", "      "),
            wrapped(f"values: {spec.allowed}", "      "),
            wrapped(f"on a change: {spec.on_change}", "      "),
        ]
    lines += ["", "what a change does to items already in the queue:", wrapped(ON_CHANGE, "  ")]
    lines += ["", "Only project admins may change them; each change is audited (project show --history)."]
    return "\n".join(lines)


def add_project_verbs(verbs: Any) -> None:
    parser = verbs.add_parser(
        "project",
        help="show or change a project's workflow settings (consensus, batch size, lease time)",
        description="show or change a project's workflow settings",
    )
    project_verbs = parser.add_subparsers(dest="project_verb", metavar="ACTION", required=True)

    def action(name: str, handler: Any, help_text: str, epilog: str | None = None) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = project_verbs.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        sub.add_argument("--db", help="SQLite file or postgresql:// URL (default: site config `database`)")
        sub.add_argument("--user", help="act as this user (default: the OS user)")
        sub.add_argument("--project", help="project name (when the database holds several)")
        return sub

    show = action("show", cmd_project_show, "show the project's workflow settings", _settings_help())
    show.add_argument("--history", type=int, default=0, metavar="N", help="also the last N audited changes")
    show.add_argument("--json", action="store_true", help="print JSON (lease_time in seconds)")
    change = action(
        "set",
        cmd_project_set,
        "change one workflow setting (project admins; audited): sitelabel project set KEY VALUE",
        _settings_help(),
    )
    change.add_argument("key", metavar="KEY", help="consensus_share, consensus_count, batch_size, lease_time")
    change.add_argument("value", metavar="VALUE", help="e.g. 0.2 or 20%%, 3, 10, 30m or 1h30m")
