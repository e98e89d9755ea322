"""`sitelabel import` and `sitelabel import-labels`: what was (or would be) brought in, and why not.

Each line names its file once: the reports pair a path with a reason that does not repeat it.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from typing import TYPE_CHECKING

from app.cli._common import _open_project, _ProgressLine, _report_skipped

if TYPE_CHECKING:
    from app.exchange.importers import ImportReport as LabelImportReport
    from app.workflow.importing import Found, ImportReport


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _describe(found: Found) -> str:
    height, width = found.shape
    return f"{found.path} ({found.kind}, {_count(found.frames, 'frame')}, {width} x {height})"


def print_import(report: ImportReport, project: str) -> None:
    """The summary line, then (dry run) every source with what happens to it, then the problems
    (stderr) and one line per file the readers warned about (stderr)."""
    counts = ", ".join(
        [
            f"{len(report.known)} already registered",
            _count(len(report.errors), "problem"),
            _count(len(report.ignored), "file of another type", "files of another type"),
        ]
    )
    if report.dry_run:
        print(f"would register {len(report.new)} new assets in {project!r} ({counts}); nothing was stored")
        for found in report.new:
            print(f"  {'new':<8} {_describe(found)}")
        for path in report.known:
            print(f"  {'known':<8} {path}")
        for path in report.ignored:
            print(f"  {'ignored':<8} {path}: no reader for this file type")
    else:
        print(f"registered {len(report.asset_ids)} new assets in {project!r} ({counts})")
    if report.cancelled:
        print("cancelled: the scan stopped early, so the lists are partial", file=sys.stderr)
    _report_skipped(report.errors)
    noted: dict[str, list[str]] = defaultdict(list)
    for path, warning in report.warnings:
        noted[path].append(warning)
    for path, warnings in noted.items():
        print(f"  warning {path}: {'; '.join(warnings)}", file=sys.stderr, flush=True)


def cmd_import(args: argparse.Namespace) -> int:
    project = _open_project(args)
    try:
        progress = _ProgressLine("scanning", quiet=args.quiet)
        project.import_data(args.paths, dataset=args.dataset, progress=progress, dry_run=args.dry_run)
        progress.finish()
        report = project.last_import
        print_import(report, project.name)
    finally:
        project.close()
    return 0 if report.new or not report.errors else 1


def print_label_import(report: LabelImportReport, dry_run: bool) -> None:
    """Totals (annotations, the assets they land on, the label files read), then one line per asset."""
    verb = "would import" if dry_run else "imported"
    print(
        f"{verb} {report.annotations} annotations onto {len(report.per_asset)} assets from "
        f"{_count(len(report.matched), 'label file')}; {len(report.skipped)} skipped"
    )
    if report.restored:  # project-json: what else the archive put back
        print("restored " + ", ".join(f"{n} {what}" for what, n in report.restored.items()))
    for asset_id, (files, count) in sorted(report.per_asset.items()):
        print(f"  asset {asset_id}: {_count(count, 'annotation')} from {_count(files, 'label file')}")
    _report_skipped(report.skipped)


def cmd_import_labels(args: argparse.Namespace) -> int:
    project = _open_project(args)
    try:
        progress = _ProgressLine("reading labels", quiet=args.quiet)
        report = project.import_labels(args.format, args.path, dry_run=args.dry_run, progress=progress)
        progress.finish()
        print_label_import(report, args.dry_run)
    finally:
        project.close()
    return 0
