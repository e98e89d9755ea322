"""What an export would hold, counted without writing anything (the File > Export dialog shows it
before the export runs).

    preview = preview_export(db, project_id, "coco", filters=ExportFilters(labels="final"))
    preview.items, preview.annotations, preview.per_class     # what the format would be handed
    preview.skipped                                            # items the rule and filters leave out
    preview.unwritable                                         # annotations the format cannot hold

The selection is the export's own (app.exchange.final_labels), so the counts are the export's.
``unwritable`` is told from each format's annotation kinds and asset kinds only: a file that is gone
or a frame that cannot be decoded is found when the export reads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.core.annotations import Annotation, Kind
from app.core.ontology import Ontology
from app.core.records import Asset, AssetKind
from app.exchange.final_labels import LabelChooser, select_assets
from app.exchange.label_rules import ALL, FINAL, LABELER, SOURCE
from app.exchange.selection import ExportFilters, FrameItem, annotation_where, asset_display_path

if TYPE_CHECKING:
    from app.storage import Database, UnitOfWork

Progress = Callable[[int, int], bool | None]
_AREAS = frozenset({Kind.POLYGON, Kind.BOX, Kind.MASK})
_PIXELS = frozenset(Kind) - {Kind.CLASSIFICATION}
#: the annotation kinds each format writes (formats not listed are checked when they export)
HOLDS: dict[str, frozenset[Kind]] = {
    "coco": _AREAS,
    "voc": _AREAS,
    "yolo": _AREAS,
    "png-masks": _PIXELS,
    "nifti": _PIXELS,
    "dicom-seg": _PIXELS,
}
SERIES_ONLY = ("nifti", "dicom-seg")  # label volumes: DICOM series only


@dataclass(frozen=True)
class Reason:
    """Items (or annotations) left out for one reason."""

    why: str
    count: int
    first: str

    def line(self) -> str:
        more = f" and {self.count - 1} more" if self.count > 1 else ""
        return f"{self.count}: {self.why} ({self.first}{more})"


def _grouped(pairs: Sequence[tuple[str, str]]) -> list[Reason]:
    grouped: dict[str, list[str]] = {}
    for item, why in pairs:
        grouped.setdefault(why, []).append(item)
    return [Reason(why, len(items), items[0]) for why, items in grouped.items()]


@dataclass(frozen=True)
class ExportPreview:
    """The counts of an export that has not run: ``items`` with something to export, their
    ``annotations`` (object tracks expanded to every frame, as the formats write them), per class
    and per rule (app.exchange.final_labels), and what would be left out and why."""

    format: str
    labels: str  # the labels rule, e.g. "final"
    items: int
    annotations: int
    per_class: dict[str, int] = field(default_factory=dict)
    rules: dict[str, int] = field(default_factory=dict)  # stored annotations per picking rule
    skipped: list[Reason] = field(default_factory=list)  # items the rule and the filters leave out
    unwritable: list[Reason] = field(default_factory=list)  # what the format could not hold

    @property
    def writable_annotations(self) -> int:
        """The annotations the format would write (``unwritable`` counts annotations)."""
        return self.annotations - sum(r.count for r in self.unwritable)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "labels": self.labels,
            "items": self.items,
            "annotations": self.annotations,
            "per_class": self.per_class,
            "rules": self.rules,
            "skipped": [r.__dict__ for r in self.skipped],
            "unwritable": [r.__dict__ for r in self.unwritable],
        }


def _unwritable(
    fmt: str, holds: frozenset[Kind], known: set[str], asset: Asset, annotations: list[Annotation]
) -> list[tuple[str, str]]:
    """``(annotation, why)`` for each annotation of ``asset`` that ``fmt`` cannot hold."""
    out: list[tuple[str, str]] = []
    for ann in annotations:
        where = annotation_where(FrameItem(asset, ann.frame, []), ann)
        if fmt in SERIES_ONLY and asset.kind is not AssetKind.DICOM_SERIES:
            out.append((where, "label volumes are exported for DICOM series only"))
        elif ann.kind not in holds:
            out.append((where, f"{ann.kind.value} annotations have no {fmt} form"))
        elif known and ann.label not in known:
            out.append((where, f"label {ann.label!r} is not in the current ontology"))
    return out


def preview_export(
    db: Database,
    project_id: int,
    fmt: str,
    *,
    filters: ExportFilters = ExportFilters(),  # noqa: B008 - frozen, immutable default
    progress: Progress | None = None,
) -> ExportPreview:
    """Count what ``export_project(fmt, filters=...)`` would hand the format; writes nothing.
    ``progress(done, total)`` per item; returning False stops early (the counts so far)."""
    filters.check_available()
    with db.unit_of_work(readonly=True) as uow:
        ontology = uow.ontologies.current(project_id) or Ontology(classes=(), version=0)
        chooser = LabelChooser(uow, project_id, ontology, filters, fmt)
        assets, left_out = chooser.select(select_assets(uow, project_id, filters.dataset))
        holds, known = HOLDS.get(fmt), {c.name for c in ontology.classes}
        per_class: Counter[str] = Counter()
        unwritable: list[tuple[str, str]] = []
        items = 0
        for done, asset in enumerate(assets, 1):
            annotations = chooser.load(asset)
            if not annotations:
                left_out.append((asset_display_path(asset), "no annotation matches the filters"))
            else:
                items += 1
                per_class.update(a.label for a in annotations)
            if holds is not None and annotations:
                unwritable += _unwritable(fmt, holds, known, asset, annotations)
            if progress is not None and progress(done, len(assets)) is False:
                break
        rules = chooser.log.rules
        chooser.log.close()
    return ExportPreview(
        format=fmt,
        labels=chooser.rule.text,
        items=items,
        annotations=sum(per_class.values()),
        per_class=dict(sorted(per_class.items())),
        rules=dict(rules.most_common()),
        skipped=_grouped(left_out),
        unwritable=_grouped(unwritable),
    )


def label_choices(uow: UnitOfWork, project_id: int) -> list[str]:
    """The ``labels`` values worth offering: the rules, each labeler of the project's queue and
    each registered model's pre-labels (any other value may still be typed)."""
    out = [FINAL, ALL, f"{SOURCE}:human", f"{SOURCE}:consensus", f"{SOURCE}:model", f"{SOURCE}:import"]
    out += [f"{LABELER}:{name}" for name in uow.activity.facets(project_id)["labelers"]]
    out += [f"{SOURCE}:model:{m.ref}" for m in uow.models.list()]
    return out
