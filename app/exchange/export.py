"""Export entry point and format registry.

    report = export_project(db, project_id, "coco", Path("out"), roots=config.all_data_roots,
                            max_pixels=config.max_image_pixels, filters=ExportFilters(dataset="train"))

Every format writes through an :class:`~app.exchange.staging.ExportTransaction`: a failed or
cancelled export leaves the previous one intact, a re-export rewrites only changed files, and
``manifest.json`` (sha256 and size per file) is written last. Adding a format is one line::

    register_format("nifti", export_nifti)       # or @register_format("nifti") on the function

An exporter is ``def exporter(job: ExportJob) -> None`` (see :mod:`app.exchange.selection`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from app.core.errors import ValidationError
from app.core.item_status import ItemStatus
from app.core.ontology import Ontology
from app.exchange.coco import export_coco
from app.exchange.export_options import LabelMapOptions
from app.exchange.final_labels import LabelChooser, select_assets
from app.exchange.frames import FrameOptions
from app.exchange.label_maps import ClassPriority
from app.exchange.layout_options import LayoutOptions
from app.exchange.names import item_names
from app.exchange.nnunet import export_nnunet
from app.exchange.png_masks import export_png_masks
from app.exchange.project_json import export_project_json, review_loader
from app.exchange.provenance import write_provenance
from app.exchange.selection import ExportFilters, ExportJob, Progress
from app.exchange.splits import ensure_splits, snapshot
from app.exchange.staging import MANIFEST, ExportCancelled, ExportError, ExportTransaction
from app.exchange.tables import export_csv
from app.exchange.tracks_csv import export_tracks_csv
from app.exchange.voc import export_voc
from app.exchange.volume_export import export_dicom_seg, export_nifti
from app.exchange.yolo import export_yolo

UNQUEUED = ItemStatus.UNQUEUED.value

if TYPE_CHECKING:
    from app.storage import Database

Exporter = Callable[[ExportJob], None]
FORMATS: dict[str, Exporter] = {}

__all__ = [
    "FORMATS",
    "ExportCancelled",
    "ExportError",
    "ExportFilters",
    "ExportReport",
    "Exporter",
    "LabelMapOptions",
    "SkipReason",
    "UnwritableItems",
    "by_reason",
    "export_project",
    "register_format",
]


@overload
def register_format(name: str, exporter: Exporter) -> Exporter: ...
@overload
def register_format(name: str, exporter: None = None) -> Callable[[Exporter], Exporter]: ...
def register_format(name: str, exporter: Exporter | None = None) -> Exporter | Callable[[Exporter], Exporter]:
    """Register ``exporter`` under ``name``; without ``exporter`` it is a decorator."""

    def add(fn: Exporter) -> Exporter:
        if name in FORMATS and FORMATS[name] is not fn:
            raise ValueError(f"export format {name!r} is already registered")
        FORMATS[name] = fn
        return fn

    return add if exporter is None else add(exporter)


register_format("png-masks", export_png_masks)
register_format("coco", export_coco)
register_format("yolo", export_yolo)
register_format("voc", export_voc)
register_format("project-json", export_project_json)
register_format("csv", export_csv)
register_format("nifti", export_nifti)
register_format("dicom-seg", export_dicom_seg)
register_format("tracks-csv", export_tracks_csv)
register_format("nnunet", export_nnunet)


@dataclass(frozen=True)
class SkipReason:
    """Items left out for one reason: how many, and the first of them."""

    why: str
    count: int
    first: str

    def line(self) -> str:
        more = f" and {self.count - 1} more" if self.count > 1 else ""
        return f"{self.count} item{'s' if self.count > 1 else ''}: {self.why} ({self.first}{more})"

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.why, "count": self.count, "first": self.first}


def by_reason(items: Sequence[tuple[str, str]]) -> list[SkipReason]:
    """``(item, why)`` pairs grouped by reason, in the order the reasons first appear."""
    grouped: dict[str, list[str]] = {}
    for item, why in items:
        grouped.setdefault(why, []).append(item)
    return [SkipReason(why, len(names), names[0]) for why, names in grouped.items()]


class UnwritableItems(ExportError):
    """The format cannot write some of the selected items: the export wrote nothing (the previous
    one is intact). ``causes`` groups the items by reason; ``skip_unwritable`` exports the rest."""

    def __init__(self, fmt: str, causes: list[SkipReason]) -> None:
        total = sum(c.count for c in causes)
        head = f"the {fmt} export cannot write {total} item{'s' if total > 1 else ''}, so it wrote nothing:"
        super().__init__("\n".join([head, *(f"  {c.line()}" for c in causes)]))
        self.causes = causes


@dataclass
class ExportReport:
    format: str
    out_dir: Path
    files_written: int
    files_unchanged: int
    files_removed: int
    assets: int
    annotations: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    manifest: Path = Path(MANIFEST)
    # what the format could not write (a part of ``skipped``; only with skip_unwritable)
    unwritable: list[tuple[str, str]] = field(default_factory=list)
    # what manifest.json's "summary" holds: skips by reason, label overlaps (label_maps) ...
    summary: dict[str, Any] = field(default_factory=dict)

    def reasons(self) -> list[SkipReason]:
        """The skipped items grouped by reason."""
        return by_reason(self.skipped)


def export_project(
    db: Database,
    project_id: int,
    fmt: str,
    out_dir: Path,
    *,
    roots: Mapping[str, Path],
    max_pixels: int,
    filters: ExportFilters = ExportFilters(),  # noqa: B008 - frozen, immutable default
    progress: Progress | None = None,
    label_maps: LabelMapOptions = LabelMapOptions(),  # noqa: B008 - frozen, immutable default
    skip_unwritable: bool = False,
    frames: FrameOptions = FrameOptions(),  # noqa: B008 - frozen, immutable default
    layout: LayoutOptions = LayoutOptions(),  # noqa: B008 - frozen, immutable default
) -> ExportReport:
    """Export a project's selected annotations as ``fmt`` into ``out_dir`` safely (see module doc).

    An item the format cannot write (a classification in a mask, a photo in a DICOM SEG, a file
    that is gone) fails the export with :class:`UnwritableItems`, one line per reason, and writes
    nothing, unless ``skip_unwritable``: then the rest is written and the report and the manifest
    list the skipped items by reason. ``label_maps``: how NIfTI and png-masks write classes that
    overlap (export_options).

    ``frames``: how COCO and VOC write the image file of each labelled frame beside the labels
    (2-D files hard-linked or copied, frames of videos and series as PNG; app.exchange.frames).

    ``layout``: the YOLO task and the nnU-Net dataset kind (layout_options). Every export first gives
    the project's assets that have none a train/val/test split (app.exchange.splits: stored, grouped
    by patient, never changed), so YOLO, nnU-Net and the rest use the same split each time.

    ``progress(done, total)`` is called per asset; returning False cancels: the staged files are
    removed, the previous export stays intact and :class:`ExportCancelled` is raised. Write failures
    (full disk, read-only or vanished target) raise :class:`ExportError` with a clear message.
    """
    exporter = FORMATS.get(fmt)
    if exporter is None:
        raise ValidationError(f"unknown export format {fmt!r}; known: {sorted(FORMATS)}")
    filters.check_available()
    out = Path(out_dir)
    db.run(lambda uow: ensure_splits(uow, project_id))  # its own short write transaction
    # One read-only unit of work for the whole export: on SQLite it reads one consistent snapshot.
    with db.unit_of_work(readonly=True) as uow:
        uow.projects.get(project_id)
        ontology = uow.ontologies.current(project_id) or Ontology(classes=(), version=0)
        # which annotations of which items, and the rule that picked each (labels, status, pre-labels)
        chooser = LabelChooser(uow, project_id, ontology, filters, fmt)
        assets, left_out = chooser.select(select_assets(uow, project_id, filters.dataset))
        ClassPriority.of(ontology, label_maps.class_priority)  # refuse unknown names before writing
        with ExportTransaction(out, fmt=fmt, filters=filters.as_dict()) as tx:
            job = ExportJob(
                tx=tx,
                ontology=ontology,
                assets=assets,
                roots=roots,
                max_pixels=max_pixels,
                filters=filters,
                load=chooser.load,
                stored=chooser.stored,  # before track expansion: project JSON archives these
                progress=progress,
                review=review_loader(uow, project_id),
                label_maps=label_maps,
                frame_options=frames,
                names=item_names(uow.assets.list(project_id)),  # stable: over the whole project
                layout=layout,
                splits=snapshot(uow, project_id),
            )
            for item, why in left_out:  # listed by reason, never an error
                job.skip(item, why, unwritable=False)
            exporter(job)
            if job.unwritable and not skip_unwritable:
                raise UnwritableItems(fmt, by_reason(job.unwritable))
            job.tick(len(assets), len(assets))  # last chance to cancel before anything changes
            summary = dict(job.notes)
            if job.skipped:
                summary["skipped"] = [r.as_dict() for r in by_reason(job.skipped)]
            summary["provenance"] = write_provenance(
                tx,
                chooser,
                fmt=fmt,
                skipped=job.skipped,
                skip_summary=summary.get("skipped", []),
                splits=job.splits,
            )
            tx.summary.update(summary)
            result = tx.commit()
    return ExportReport(
        format=fmt,
        out_dir=out,
        files_written=result.written,
        files_unchanged=result.unchanged,
        files_removed=result.removed,
        assets=len(job.exported_assets),
        annotations=job.exported_annotations,
        skipped=job.skipped,
        manifest=out / MANIFEST,
        unwritable=job.unwritable,
        summary=summary,
    )
