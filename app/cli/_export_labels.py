"""The export verb's options for which labels leave (app.exchange.final_labels), and the line it
prints about them after an export."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from app.core.item_status import status_help

if TYPE_CHECKING:
    from app.exchange.export import ExportReport


def add_label_options(export: argparse.ArgumentParser) -> None:
    export.add_argument(
        "--labels",
        metavar="RULE",
        help="which labels: 'final' (default; project-json: 'all') is per item the accepted review "
        "result (fixes included), a consensus item's consensus label or a single labeler's submission, "
        "never untouched model pre-labels, drafts of items in progress or sent back, or a consensus a "
        "requeue superseded (before anyone claims an item of the project, people's and imported labels "
        "count as final). 'all': every label. 'labeler:NAME': NAME's own labels (pre-labels NAME ran "
        "only with --include-prelabels). 'source:human', 'source:consensus', 'source:model', "
        "'source:model:NAME@VER', 'source:import': by source. provenance.json says why each is there",
    )
    export.add_argument(
        "--status",
        help=f"only items with this status (the words of `sitelabel activity`): {status_help()}",
    )
    export.add_argument(
        "--include-prelabels",
        action="store_true",
        help="also the untouched model pre-labels (and tracker output) of the exported items",
    )
    export.add_argument("--labeler", metavar="NAME", help="the same as --labels labeler:NAME")
    export.add_argument(
        "--consensus",
        help="'consensus': only consensus items' consensus labels (--labels source:consensus on "
        "consensus items); 'agreed-above:0.8': only items whose labelers agree more",
    )


def label_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``Project.export`` these options set."""
    return {
        "labels": args.labels,
        "status": args.status,
        "include_prelabels": args.include_prelabels,
        "labeler": args.labeler,
        "consensus": args.consensus,
    }


def print_label_summary(report: ExportReport) -> None:
    """``labels final: 31 accepted as submitted, 2 consensus merge (staple); why each: provenance.json``
    (counted as picked by the rule; formats leave out what they cannot hold, listed as skipped)."""
    found = report.summary.get("provenance")
    if not found:
        return
    kinds = found.get("rule_kinds") or {}
    parts = ", ".join(f"{n} {rule}" for rule, n in kinds.items()) or "nothing"
    held = found.get("written", found["annotations"])
    lost = f" ({found['annotations'] - held} the format cannot hold)" if held < found["annotations"] else ""
    print(f"labels {found['labels']}: {parts}{lost}; why each: {found['file']}")
