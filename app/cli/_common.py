"""What every CLI verb shares: the database argument, the project opener, progress and errors."""

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

    configured = load_site_config().database_url()  # password from password_file / keyring; never print it
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


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None


# --- models: pre-labels, on-site training, registry (issue #7) ------------------------------
