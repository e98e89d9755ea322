"""The export verb's label-map options and what it prints after an export: the classes that
overlap in the label maps, and what was left out, one line per reason (never one per frame)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.exchange.export import ExportReport, UnwritableItems

NIFTI_MODES = ("index", "per-class", "one-hot")  # app.exchange.export_options.NIFTI_MODES


def add_label_map_options(export: argparse.ArgumentParser) -> None:
    export.add_argument(
        "--nifti-mode",
        choices=NIFTI_MODES,
        default="index",
        help="how nifti writes a series: 'index' (default) one class-index volume, what nnU-Net and "
        "most training tools read; where classes overlap it keeps the class of higher priority and "
        "the summary, manifest.json and overlaps.json count the overlapping voxels per class pair. "
        "'per-class': one 0/1 volume per class (NAME/CLASS.nii.gz), nothing is lost. 'one-hot': one "
        "4-D volume with a 0/1 channel per class (legend.json names the channels)",
    )
    export.add_argument(
        "--class-priority",
        metavar="A,B,C",
        help="which class index volumes and png-masks keep where classes overlap, highest first; "
        "classes not named rank below. Default: the ontology order reversed (a class listed later "
        "wins, so list enclosing structures such as organs first)",
    )
    export.add_argument(
        "--instances",
        action="store_true",
        help="png-masks: also write a 16-bit instance-id PNG per frame (instances/NAME.png) and a "
        "JSON naming each instance's class, author and annotation id",
    )
    export.add_argument(
        "--skip-unwritable",
        action="store_true",
        help="write what the format can hold and list the rest by reason. Without it an item the "
        "format cannot write (a classification in masks, a photo in dicom-seg, a missing file) fails "
        "the export and nothing is written",
    )


def label_map_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``Project.export`` these options set."""
    names = [n.strip() for n in (args.class_priority or "").split(",") if n.strip()]
    return {
        "nifti_mode": args.nifti_mode,
        "class_priority": names,
        "instances": args.instances,
        "skip_unwritable": args.skip_unwritable,
    }


def print_unwritable(error: UnwritableItems) -> None:
    print(f"sitelabel: {error}", file=sys.stderr)
    print("--skip-unwritable writes the rest and lists what it left out, by reason", file=sys.stderr)


def print_export_summary(report: ExportReport) -> None:
    """Label overlaps (stdout) and the skipped items by reason (stderr)."""
    overlaps = report.summary.get("overlaps")
    if overlaps and overlaps["pairs"]:
        unit = overlaps["unit"]
        print(
            f"classes overlap: where they do, the index maps keep the class of higher priority "
            f"({', '.join(overlaps['priority'])}); {overlaps['file']} lists every frame"
        )
        for pair in overlaps["pairs"]:
            a, b = pair["classes"]
            print(f"  {a} + {b}: {pair['count']} {unit}, the index maps keep {pair['kept']}")
    for reason in report.reasons():
        print(f"  skipped {reason.line()}", file=sys.stderr, flush=True)
