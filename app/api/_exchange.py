"""Exports to shared drives and imports of existing labels."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.api._project import Progress, ProjectBase
from app.core.permissions import Action

if TYPE_CHECKING:
    from app.exchange.export import ExportReport
    from app.exchange.export_preview import ExportPreview
    from app.exchange.importers import ImportReport as LabelImportReport


class ExchangeMixin(ProjectBase):
    def export(
        self,
        fmt: str,
        out_dir: str | os.PathLike[str],
        *,
        dataset: str | None = None,
        labeler: str | None = None,
        classes: Sequence[str] = (),
        status: str | None = None,
        consensus: str | None = None,
        progress: Progress | None = None,
        labels: str | None = None,
        include_prelabels: bool = False,
        skip_unwritable: bool = False,
        nifti_mode: str = "index",
        class_priority: Sequence[str] = (),
        instances: bool = False,
        images: str = "link",
        frames_window: str | None = None,
        yolo_task: str | None = None,
        nnunet_kind: str | None = None,
    ) -> ExportReport:
        """Export labels to ``out_dir`` (png-masks, coco, yolo, voc, nifti, dicom-seg, nnunet,
        project-json, csv, tracks-csv).

        Files appear atomically with a checksum manifest written last; unchanged files are not
        rewritten; a failed or cancelled export leaves the previous one intact.

        What is exported: ``labels="final"`` (the default; project-json: ``"all"``) holds per item
        the accepted review result (a fix included), the consensus label of a consensus item, or a
        single labeler's submission; never untouched model pre-labels, drafts of items in progress
        or rejected, or a consensus a requeue superseded. Before anyone claims an item of the
        project, its people's labels (and imported ones) count as final. ``"all"``: every label;
        ``"labeler:NAME"``: NAME's own labels; ``"source:SOURCE"``: e.g. ``"source:human"``,
        ``"source:model:NAME@VER"`` (app.exchange.label_rules, app.exchange.final_labels).
        ``status``: only items with that status (the words of ``activity``: ``accepted`` (or
        ``done``), ``submitted``, ... ``any``). ``include_prelabels``: also the untouched pre-labels
        of the exported items. ``labeler=NAME`` is ``labels="labeler:NAME"``. Every export writes
        ``provenance.json``: per annotation the rule that picked it, its source, author, review
        state and version, the options and the split; :meth:`export_preview` counts first.

        Nothing is lost silently: an item the format cannot write raises ``UnwritableItems`` (one
        line per reason) and writes nothing, unless ``skip_unwritable``; the report's ``reasons()``
        and the manifest's summary then list what was left out. Label maps: ``nifti_mode`` "index"
        (one class-index volume), "per-class" (a 0/1 volume per class) or "one-hot" (4-D, a
        channel per class); where classes overlap, index volumes and png-masks keep the class first
        in ``class_priority`` (default: a class later in the ontology wins) and count every
        colliding pixel per class pair (report ``summary["overlaps"]``, ``overlaps.json``).
        ``instances``: png-masks also writes 16-bit instance-id PNGs with a JSON per frame.

        COCO and VOC write each labelled frame's image beside the labels (``file_name`` is a real
        file): 2-D image files as hard links (``images="link"``, a copy across file systems) or
        copies (``images="copy"``), frames of videos and series as ``frames/<asset id>/<frame>.png``,
        16-bit where the source is, or 8-bit through ``frames_window`` ("source", a preset such as
        "lung", or "CENTRE,WIDTH").

        Training layouts: ``yolo`` writes the Ultralytics layout (images/ and labels/ per split,
        data.yaml); ``yolo_task`` "detect" (boxes) or "segment" (polygons), default from the
        ontology's kinds. ``nnunet`` writes an nnU-Net v2 raw dataset (imagesTr, labelsTr,
        dataset.json); ``nnunet_kind`` "3d" (series as NIfTI) or "2d" (images, video frames as PNG),
        default the one kind the selection holds. Both use the project's stored splits
        (``splits()``); every export assigns the assets that have none yet.
        """
        from app.exchange.export import ExportFilters, LabelMapOptions, export_project
        from app.exchange.frames import FrameOptions
        from app.exchange.layout_options import LayoutOptions

        self.require(Action.EXPORT)
        self.config.require_format(fmt)  # the site may allow only some formats

        filters = ExportFilters(
            dataset=dataset,
            labeler=labeler,
            classes=tuple(classes),
            status=status,
            consensus=consensus,
            labels=labels,
            include_prelabels=include_prelabels,
        )
        return export_project(
            self.db,
            self.id,
            fmt,
            Path(out_dir),
            roots=self.config.all_data_roots,
            max_pixels=self.config.max_image_pixels,
            filters=filters,
            progress=progress,
            label_maps=LabelMapOptions(
                nifti_mode=nifti_mode, class_priority=tuple(class_priority), instances=instances
            ),
            skip_unwritable=skip_unwritable,
            frames=FrameOptions(images=images, window=frames_window),
            layout=LayoutOptions(yolo_task=yolo_task, nnunet_kind=nnunet_kind),
        )

    def export_preview(
        self,
        fmt: str,
        *,
        dataset: str | None = None,
        labels: str | None = None,
        status: str | None = None,
        include_prelabels: bool = False,
        classes: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> ExportPreview:
        """What :meth:`export` with these options would hold, counted without writing: items,
        annotations per class and per rule, the items left out and why, and the annotations the
        format cannot hold (app.exchange.export_preview)."""
        from app.exchange.export_preview import preview_export
        from app.exchange.selection import ExportFilters

        self.require(Action.EXPORT)
        filters = ExportFilters(
            dataset=dataset,
            classes=tuple(classes),
            status=status,
            labels=labels,
            include_prelabels=include_prelabels,
        )
        return preview_export(self.db, self.id, fmt, filters=filters, progress=progress)

    def export_label_choices(self) -> list[str]:
        """Values of ``export(labels=...)`` worth offering: the rules, the queue's labelers, the
        registered models' pre-labels."""
        from app.exchange.export_preview import label_choices

        self.require(Action.EXPORT)
        with self.db.unit_of_work(readonly=True) as uow:
            return label_choices(uow, self.id)

    def dataset_names(self) -> list[str]:
        """The names of the project's datasets: what ``export(dataset=...)`` takes."""
        self.require(Action.VIEW)
        with self.db.unit_of_work(readonly=True) as uow:
            return [d.name for d in uow.datasets.list(self.id)]

    def import_labels(
        self,
        fmt: str,
        path: str | os.PathLike[str],
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> LabelImportReport:
        """Bring existing labels in (coco, yolo, labelme, png-masks, nifti) onto registered assets.

        ``project-json`` restores a Sitelabel archive (its ``project.json`` or the export's folder)
        onto the same data registered here: annotations with their authors and sources, tracks,
        the queue state, reviews and consensus (app.exchange.project_json_import); the report's
        ``restored`` counts them.

        The report's ``matched`` has one entry per label item (a frame's PNG mask, a COCO image);
        ``per_asset`` and ``annotations`` give the totals. ``progress(done, total)`` is called per
        item; returning False stops before anything is stored."""
        from app.exchange.importers import import_labels

        self.require(Action.IMPORT_LABELS)
        self.config.require_format(fmt)

        return import_labels(
            self.db,
            self.id,
            fmt,
            Path(path),
            user_id=self.user.id,
            roots=self.config.all_data_roots,
            max_pixels=self.config.max_image_pixels,
            dry_run=dry_run,
            progress=progress,
        )
