"""``provenance.json``: why each exported annotation is in the export.

Written by every export beside its files (and listed in ``manifest.json`` like them)::

    {"schema": "sitelabel-provenance/1", "format": "coco",
     "options": {"labels": "final", "status": null, "include_prelabels": false, ...},
     "rules": {"accepted as submitted (review #12)": 31, ...},       # annotations per rule
     "counts": {"items": 7, "annotations": 40, "sources": {"human": 38, "consensus": 2}},  # picked
     "items": [{"asset_id": 3, "path": "studies/ct/...", "split": "train",
                "status": "accepted", "required_labelers": 1, "labelers": ["lee"],
                "review": {"id": 12, "verdict": "fixed", "reviewer": "rey", "at": "...", ...},
                "rule": "fixed and accepted by rey (review #12): the reviewer's labels",
                "annotations": [{"id": 88, "frame": 0, "label": "lesion", "kind": "box",
                                 "source": "human", "author": "rey", "version": 2,
                                 "rule": "...", "written": true}, ...]}],
     "written": 40,                                                # picked and held by the format
     "skipped": [{"reason": "rejected: ...", "count": 1, "first": "..."}],
     "splits": {...}}                                               # the stored train/val/test split

``items`` are the items with at least one picked annotation, in the order the format read them;
the items the rule or the filters left out are counted by reason under ``skipped``. An item lists
the annotations the rule picked as stored: an object track's keyframes, which the formats expand
to every frame between them. ``written`` is false (with ``why``) for one the format could not hold
(also listed in ``skipped``; ``counts`` has both numbers). Nothing in it depends on when the export
ran, so an unchanged re-export leaves the file unchanged.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from app.exchange.final_labels import LabelChooser
from app.exchange.selection import ExportFilters
from app.exchange.staging import ExportTransaction

FILE = "provenance.json"
SCHEMA = "sitelabel-provenance/1"
_ANNOTATION = re.compile(r" annotation (\d+)$")  # selection.annotation_where's ending
_REVIEW = re.compile(r" \((review #\d+|no review recorded)\)")


def rule_kind(rule: str) -> str:
    """A rule without its review number: what a summary counts (``accepted as submitted``)."""
    return _REVIEW.sub("", rule)


class Splits(Protocol):
    """The stored train/val/test split (app.exchange.splits.SplitSummary)."""

    def split_of(self, asset_id: int) -> str | None: ...

    def as_dict(self, asset_ids: Sequence[int] | None = None) -> dict[str, Any]: ...


def options(filters: ExportFilters, rule: str) -> dict[str, Any]:
    """The selection options as provenance and the manifest name them."""
    return {
        "labels": rule,
        "status": filters.status,
        "include_prelabels": filters.include_prelabels,
        "dataset": filters.dataset,
        "classes": list(filters.classes),
        "consensus": filters.consensus,
        "labeler": filters.labeler,
    }


def write_provenance(
    tx: ExportTransaction,
    chooser: LabelChooser,
    *,
    fmt: str,
    skipped: Sequence[tuple[str, str]],
    skip_summary: list[dict[str, Any]],
    splits: Splits | None = None,
) -> dict[str, Any]:
    """Write ``provenance.json`` for the items the format loaded (streamed: memory stays flat);
    returns its counts (for the manifest's summary). ``skipped``: the export's ``(item, why)``
    list; ``skip_summary``: the same by reason. ``splits``: the stored split, where the export has
    one (each item's ``split``)."""
    not_written: dict[int, str] = {}
    whole: dict[str, str] = {}  # an item the format left out as a whole, by its display path
    for where, why in skipped:
        found = _ANNOTATION.search(where)
        if found:
            not_written[int(found.group(1))] = why
        else:
            whole.setdefault(where, why)
    log = chooser.log
    counts = {
        "items": len(log.assets),
        "annotations": log.annotations,
        "sources": dict(sorted(log.sources.items())),
    }
    head = {
        "schema": SCHEMA,
        "format": fmt,
        "options": options(chooser.filters, chooser.rule.text),
        "rules": dict(log.rules.most_common()),
        "counts": counts,
    }
    written = 0
    with tx.stream(FILE) as out:
        out.write((json.dumps(head, ensure_ascii=False)[:-1] + ', "items": [').encode())
        for n, item in enumerate(log.entries()):
            gone = whole.get(item["path"])
            split = splits.split_of(item["asset_id"]) if splits is not None else None
            entry = {"asset_id": item["asset_id"], "path": item["path"], "split": split, **item}
            for ann in entry["annotations"]:
                reason = gone or not_written.get(ann["id"])
                ann["written"] = reason is None
                if reason is not None:
                    ann["why"] = reason
            if gone:
                entry.update(written=False, why=gone)
            written += sum(1 for ann in entry["annotations"] if ann["written"])
            text = json.dumps(entry, ensure_ascii=False, allow_nan=False)
            out.write(((",\n" if n else "\n") + text).encode())
        tail = {
            "written": written,  # the picked annotations the format could hold
            "skipped": skip_summary,
            # the stored train/val/test split of the exported items (None: the export has no splits)
            "splits": splits.as_dict(log.assets) if splits is not None else None,
        }
        out.write(("], " + json.dumps(tail, ensure_ascii=False)[1:] + "\n").encode())
    log.close()
    kinds: Counter[str] = Counter()
    for rule, n in log.rules.items():
        kinds[rule_kind(rule)] += n
    return {
        **counts,
        "written": written,  # the picked annotations the format could hold
        "labels": chooser.rule.text,
        "rule_kinds": dict(kinds.most_common()),
        "file": FILE,
    }
