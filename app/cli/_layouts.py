"""Training layouts on the command line: the export options of YOLO and nnU-Net, and the ``splits``
verb that shows and assigns the project's stored train/val/test splits."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from app.cli._common import _open_project

if TYPE_CHECKING:
    from app.exchange.export import ExportReport

YOLO_TASKS = ("detect", "segment")  # app.exchange.layout_options
NNUNET_KINDS = ("3d", "2d")
_SPLITS_RULE = (
    "Splits are stored in the project and grouped by DICOM PatientID, else StudyInstanceUID, else the "
    "asset itself (a video, a photo), so no patient has slices in both train and val. An asset keeps "
    "its split once assigned; every export assigns the assets that have none yet, so YOLO, nnU-Net "
    "and the other formats all use the same split."
)


def add_layout_options(export: argparse.ArgumentParser) -> None:
    export.add_argument(
        "--yolo-task",
        choices=YOLO_TASKS,
        help="yolo: 'detect' writes a box per object (class cx cy w h), 'segment' polygons (boxes as "
        "four corners). Default: detect when the ontology's classes allow only boxes, else segment. "
        "The export is the Ultralytics layout: images/{train,val}/, labels/{train,val}/ and data.yaml, "
        "split as 'sitelabel splits show' says; Ultralytics reads 8-bit images, so give --frames-window "
        "for CT and MR slices",
    )
    export.add_argument(
        "--nnunet-kind",
        choices=NNUNET_KINDS,
        help="nnunet: '3d' writes DICOM series as NIfTI volumes, '2d' images and video frames as PNG "
        "(nnU-Net reads one kind per dataset). Default: the kind the selection holds; a selection "
        "with both is refused. Writes imagesTr/, labelsTr/, dataset.json and splits_final.json "
        "(the stored split as nnU-Net's fold; copy it into nnUNet_preprocessed/DatasetXXX_Name/)",
    )


def layout_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``Project.export`` these options set."""
    return {"yolo_task": args.yolo_task, "nnunet_kind": args.nnunet_kind}


def print_layout_summary(report: ExportReport) -> None:
    """One line on the YOLO task and splits, or the nnU-Net dataset, when the export wrote one."""
    yolo = report.summary.get("yolo")
    if yolo:
        print(f"yolo {yolo['task']}: splits {', '.join(yolo['splits']) or 'none'} (data.yaml)")
        if "val" not in yolo["splits"]:
            print("  no val images: Ultralytics needs some; see 'sitelabel splits show'")
    nnunet = report.summary.get("nnunet")
    if nnunet:
        print(
            f"nnU-Net {nnunet['kind']} dataset: {nnunet['training']} training cases, {nnunet['cases']} in all"
        )


_GROUP_WORDS = {
    "patient": ("patient", "patients"),
    "study": ("study", "studies"),
    "asset": ("lone asset", "lone assets"),
}


def _print_summary(summary: Any, as_json: bool, assets: bool) -> None:
    if as_json:
        data = summary.as_dict(None if assets else [])
        data["unassigned"] = summary.unassigned
        print(json.dumps(data, indent=2))
        return
    plan = summary.plan
    print(f"plan: train {plan.train:.0%}, val {plan.val:.0%}, test {plan.test:.0%}, seed {plan.seed}")
    for split, count in summary.counts().items():
        kinds = ", ".join(
            f"{count[f'{kind}_groups']} {_GROUP_WORDS[kind][count[f'{kind}_groups'] != 1]}"
            for kind in _GROUP_WORDS
            if count.get(f"{kind}_groups")
        )
        print(
            f"  {split:5} {count['assets']} assets in {count['groups']} groups"
            + (f" ({kinds})" if kinds else "")
        )
    if summary.unassigned:
        print(
            f"  {summary.unassigned} assets have no split yet (assigned by the next export or splits assign)"
        )
    if assets:
        for a in summary.assignments:
            print(f"  asset {a.asset_id}: {a.split} ({a.group})")


def cmd_splits_show(args: argparse.Namespace) -> int:
    with _open_project(args) as project:
        summary = project.splits()
    _print_summary(summary, args.json, args.assets)
    return 0


def cmd_splits_assign(args: argparse.Namespace) -> int:
    with _open_project(args) as project:
        summary = project.assign_splits(val=args.val, test=args.test, seed=args.seed)
    print(f"{summary.added} assets got a split")
    _print_summary(summary, args.json, False)
    return 0


def add_splits_verbs(verbs: Any) -> None:
    parser = verbs.add_parser(
        "splits",
        help="show or assign the project's train/val/test splits (used by every export)",
        description=_SPLITS_RULE,
    )
    actions = parser.add_subparsers(dest="splits_verb", metavar="ACTION", required=True)

    def action(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=f"{help_text}. {_SPLITS_RULE}"
        )
        sub.set_defaults(handler=handler)
        sub.add_argument("--db", help="SQLite file or postgresql:// URL (default: site config `database`)")
        sub.add_argument("--user", help="act as this user (default: the OS user)")
        sub.add_argument("--project", help="project name (when the database holds several)")
        sub.add_argument("--json", action="store_true", help="print JSON")
        return sub

    show = action(
        "show", cmd_splits_show, "show the split plan and how many assets and groups each split holds"
    )
    show.add_argument("--assets", action="store_true", help="also list each asset's split and group")
    assign = action(
        "assign",
        cmd_splits_assign,
        "give every asset without a split one; --val/--test/--seed change the plan for assets "
        "assigned from now on (project admins; audited). Assigned assets never move",
    )
    assign.add_argument("--val", type=float, metavar="SHARE", help="share of assets for val, e.g. 0.2")
    assign.add_argument("--test", type=float, metavar="SHARE", help="share for test (default 0: none)")
    assign.add_argument("--seed", type=int, help="orders new groups before they are dealt out (default 0)")
