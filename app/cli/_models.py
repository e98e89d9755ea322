"""Micro-model verbs: pre-label, train, and the site model folder."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from app.cli._common import (
    _open_project,
    _ProgressLine,
    _report_skipped,
)
from app.workflow.training_guard import DEFAULT_MIN_DICE, DEFAULT_MIN_PIXELS


def cmd_prelabel(args: argparse.Namespace) -> int:
    project = _open_project(args)
    progress = _ProgressLine(f"pre-labeling with {', '.join(args.models)}", quiet=args.quiet)
    try:
        report = project.prelabel(
            args.models,
            dataset=args.dataset,
            frame_stride=args.stride,
            replace=not args.keep_old,
            overwrite_human=args.overwrite_human,
            threads=args.threads,
            progress=progress,
        )
    finally:
        progress.finish()
        project.close()
    state = " (cancelled)" if report.cancelled else ""
    print(
        f"pre-labeled {report.assets} assets ({report.frames} frames) with {', '.join(report.models)}: "
        f"{report.annotations} annotations, {report.withdrawn} earlier pre-labels replaced{state}"
    )
    if report.human_frames:
        print(
            f"{report.human_frames} frames skipped: a person already labeled the class there "
            "(--overwrite-human pre-labels them too)"
        )
    _report_skipped(report.skipped)
    return 0 if not report.skipped else 1


def cmd_train(args: argparse.Namespace) -> int:
    project = _open_project(args)
    if args.every is not None:  # "retrain when N new labels arrive" (e.g. from cron)
        check = project.retrain_due(args.label, every=args.every)
        if not check.due:
            since = f"since {check.model}" if check.model else "and no model yet"
            print(f"not due: {check.new_labels} new {args.label!r} labels {since} (every {args.every})")
            project.close()
            return 0
    progress = _ProgressLine(f"training a micro-model for {args.label!r}", quiet=args.quiet)
    try:
        report = project.train_micro_model(
            args.label,
            labeler=args.from_labeler,
            name=args.name,
            min_dice=args.min_dice,
            min_pixels=args.min_pixels,
            progress=progress,
        )
    finally:
        progress.finish()
        project.close()
    result = report.result
    print(
        f"trained {report.model.ref} on {len(report.items)} labeled frames ({report.label_count} labels) "
        f"in {result.seconds:.1f} s: validation Dice {report.validation_dice:.3f} "
        f"({report.validation.describe()}), training Dice {report.train_dice:.3f}; saved {report.model_path}"
    )
    print(f"pre-label with: sitelabel prelabel --model {report.model.ref}")
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    with _open_project(args) as project:
        infos = project.models(check=args.check)
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    for info in infos:
        state = "registered" if info.registered else "in folder"
        classes = ", ".join(info.classes.values())
        problem = f"  PROBLEM: {info.problem}" if info.problem else ""
        print(f"{info.ref:30} {info.task:14} {state:10} [{classes}]{problem}")
    if not infos:
        print("no models registered or in the models folder")
    return 0


def cmd_models_add(args: argparse.Namespace) -> int:
    with _open_project(args) as project:
        info = project.register_model(args.path)
        print(f"registered {info.ref} ({info.task}, classes {list(info.classes.values())}) as {info.path}")
    return 0


def cmd_models_verify(args: argparse.Namespace) -> int:
    with _open_project(args) as project:
        infos = project.models(check=True)
    bad = [i for i in infos if i.problem]
    for info in infos:
        detail = f": {info.problem}" if info.problem else ""
        print(f"{'REFUSED' if info.problem else 'ok':8} {info.ref}{detail}")
    print(f"{len(infos)} models checked, {len(bad)} refused")
    return 1 if bad else 0


def cmd_models_quality(args: argparse.Namespace) -> int:
    with _open_project(args) as project:
        rows = project.model_quality()
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return 0

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    print(f"{'model':30} {'class':16} {'groups':>6} {'reviewed':>8} {'accept':>7} {'Dice':>6} {'IoU':>6}")
    for r in rows:
        ref = f"{r.model}@{r.version}"
        print(
            f"{ref:30} {r.label:16} {r.groups:6d} {r.reviewed:8d} {pct(r.accept_rate):>7} "
            f"{pct(r.mean_dice):>6} {pct(r.mean_iou):>6}"
        )
    return 0


def add_model_verbs(verbs: Any, verb: Callable[..., argparse.ArgumentParser]) -> None:
    pre = verb("prelabel", cmd_prelabel, "pre-label assets with registered models (chained in one pass)")
    pre.add_argument("--model", dest="models", action="append", required=True, help="NAME or NAME@VERSION")
    pre.add_argument("--project")
    pre.add_argument("--dataset", help="only this dataset's assets")
    pre.add_argument("--stride", type=int, default=1, help="every N-th frame of a video (default 1)")
    pre.add_argument("--threads", type=int, help="inference threads (default: onnxruntime's choice)")
    pre.add_argument("--keep-old", action="store_true", help="keep this model's earlier untouched pre-labels")
    pre.add_argument(
        "--overwrite-human",
        action="store_true",
        help="also pre-label classes on frames a person already labeled with them (default: those "
        "frames are skipped and counted); the person's labels stay as they are",
    )
    pre.add_argument("--quiet", action="store_true")

    train = verb(
        "train",
        cmd_train,
        "train an on-site micro-model for one class from the labels so far; it is validated on "
        "labeled frames it does not learn from (each in turn with fewer than 5, else a fifth of them)"
        " and not registered (exit code 1, with what to label next) below --min-dice or --min-pixels",
    )
    train.add_argument("--class", dest="label", required=True, help="ontology class")
    train.add_argument("--from-labeler", help="learn only from this labeler's labels")
    train.add_argument("--name", help="model name (default: mm-CLASS)")
    train.add_argument("--every", type=int, help="train only when N new labels arrived since the last model")
    train.add_argument(
        "--min-dice",
        type=float,
        default=DEFAULT_MIN_DICE,
        help=f"register only with at least this validation Dice (0..1, default {DEFAULT_MIN_DICE})",
    )
    train.add_argument(
        "--min-pixels",
        type=int,
        default=DEFAULT_MIN_PIXELS,
        help=f"train only from at least this many labeled pixels in all (default {DEFAULT_MIN_PIXELS})",
    )
    train.add_argument("--project")
    train.add_argument("--quiet", action="store_true")

    models = verbs.add_parser("models", help="ONNX models: list, add, verify, quality", description="models")
    model_verbs = models.add_subparsers(dest="models_verb", metavar="ACTION", required=True)
    for name, handler, help_text in (
        ("list", cmd_models_list, "registered models and those in the models folder"),
        ("add", cmd_models_add, "verify a model (.onnx + manifest) and register it"),
        ("verify", cmd_models_verify, "check every model's hash, operators, external data and input"),
        ("quality", cmd_models_quality, "how much labelers changed each model version's pre-labels"),
    ):
        sub = model_verbs.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        sub.add_argument("--db", help="SQLite file or postgresql:// URL (default: site config)")
        sub.add_argument("--user", help="act as this user (default: the OS user)")
        sub.add_argument("--project")
        if name == "add":
            sub.add_argument("path", help="the .onnx file (or its manifest)")
        if name == "list":
            sub.add_argument("--check", action="store_true", help="verify each file (hash, graph)")
        if name in ("list", "quality"):
            sub.add_argument("--json", action="store_true", help="print JSON")


# --- parser ---------------------------------------------------------------------------------
