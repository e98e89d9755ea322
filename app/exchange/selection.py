"""What an export contains: filters, the selected assets and annotations, and stable file names.

Selection rule: an asset (and a frame of it) is exported when at least one of its annotations passes
the filters. Unlabelled assets are NOT written as empty "negatives" (they are unlabelled, not
empty) except by formats that archive everything (project JSON); they are listed as skipped.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.errors import NotFoundError, ValidationError
from app.core.item_status import ItemStatus, parse_status_filter
from app.core.ontology import Ontology
from app.core.raster import polygon_mask_in_bbox
from app.core.records import CONSENSUS_SOURCE, Asset, Task
from app.core.tracks import materialise_tracks
from app.exchange.export_options import LabelMapOptions
from app.exchange.frames import FrameOptions, FrameWriter, ImageFile, Unwritable
from app.exchange.label_rules import LabelRule
from app.exchange.layout_options import LayoutOptions
from app.exchange.names import item_names
from app.exchange.splits import SplitSummary
from app.exchange.staging import ExportCancelled, ExportTransaction
from app.sources import DataRootError, asset_path

Progress = Callable[[int, int], bool | None]
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


_AGREED_ABOVE = "agreed-above:"


@dataclass(frozen=True)
class ExportFilters:
    """Which annotations to export.

    ``status``: items with this status (a word of app.core.item_status, e.g. ``accepted``, or a
    synonym such as ``done``; ``any``: every item). ``consensus``: ``"consensus"`` exports only the
    consensus labels of consensus items (one per item, as a reviewer chose or merged them);
    ``"agreed-above:0.8"`` only items whose stored agreement score is above 0.8 (so consensus items only).

    (#17) ``labels``: which annotations (app.exchange.label_rules): ``final`` (the default, None;
    project-json: ``all``), ``all``, ``labeler:NAME``, ``source:SOURCE``; ``labeler=NAME`` is
    ``labels="labeler:NAME"``. ``include_prelabels``: also the untouched model pre-labels and
    tracker output of the exported items. The rule per item is app.exchange.final_labels'.
    """

    dataset: str | None = None
    labeler: str | None = None
    classes: tuple[str, ...] = ()
    status: str | None = None
    consensus: str | None = None
    labels: str | None = None
    include_prelabels: bool = False

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["classes"] = list(self.classes)
        return out

    def check_available(self) -> None:
        """Refuse filter values this version does not know (rather than ignore them)."""
        self.statuses()
        self.agreement_floor()
        LabelRule.parse(self.labels)

    def statuses(self) -> ItemStatus | None:
        """The item status the ``status`` filter keeps (None: no status filter); ValidationError
        for a word that names no status or several."""
        return parse_status_filter(self.status)

    @property
    def consensus_only(self) -> bool:
        """Only consensus labels: the set a reviewer chose or merged since the item was last queued.
        An item without one (requeued, relabeled and accepted as labeled) exports nothing and is
        listed as skipped; a consensus a requeue superseded never comes back."""
        return self.consensus == CONSENSUS_SOURCE

    def agreement_floor(self) -> float | None:
        """The ``agreed-above:X`` threshold, None when not given."""
        if self.consensus is None or self.consensus_only:
            return None
        text = self.consensus.strip()
        if text.startswith(_AGREED_ABOVE):
            try:
                floor = float(text[len(_AGREED_ABOVE) :])
            except ValueError:
                floor = float("nan")
            if 0.0 <= floor <= 1.0:
                return floor
        raise ValidationError(
            f"unknown consensus filter {self.consensus!r}; use 'consensus' or 'agreed-above:X' with X in 0..1"
        )

    def selects(self, task: Task | None, status: str = ItemStatus.UNQUEUED.value) -> bool:
        """Whether an asset with this queue task (None: never queued) and item status (the word
        the activity list shows, app.core.item_status) passes the status and consensus filters."""
        wanted = self.statuses()
        if wanted is not None and status != wanted.value:
            return False
        if self.consensus_only and (task is None or task.required_labelers < 2):
            return False
        floor = self.agreement_floor()
        return floor is None or (task is not None and task.agreement is not None and task.agreement > floor)

    @property
    def needs_tasks(self) -> bool:
        return self.statuses() is not None or self.consensus is not None


@dataclass(frozen=True)
class FrameItem:
    """One frame of one asset with its selected annotations, in stored order."""

    asset: Asset
    frame: int
    annotations: list[Annotation]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.asset.height, self.asset.width)

    @property
    def multi_frame(self) -> bool:
        return self.asset.frame_count > 1


def asset_display_path(asset: Asset) -> str:
    """The asset's path relative to its data root, with an archive member or series appended."""
    member = asset.member or ""
    if member.startswith("!"):
        return f"{asset.rel_path}{member}"
    return f"{asset.rel_path}#{member}" if member else asset.rel_path


def expand_tracks(asset: Asset, annotations: list[Annotation]) -> list[Annotation]:
    """Every frame of the asset's object tracks as a real annotation (interpolated ones included,
    outside frames left out: app.core.tracks), so every format exports what the labeler saw."""
    return materialise_tracks(annotations, asset.frame_count)


def annotation_patch(annotation: Annotation, shape: tuple[int, int]) -> MaskPatch:
    """The rasterised pixels of a polygon, box or mask as a crop (the core rasteriser's rule).

    A box is rasterised as its four-corner polygon: the same centre rule as ``rasterize_box``.
    """
    if annotation.kind is Kind.MASK and annotation.mask is not None:
        if tuple(annotation.mask.frame_shape) != shape:
            raise ValidationError(f"mask of annotation {annotation.id} does not fit its {shape} frame")
        return annotation.mask
    if annotation.kind is Kind.POLYGON and annotation.points is not None:
        return polygon_mask_in_bbox(annotation.points, shape)
    if annotation.kind is Kind.BOX and annotation.box is not None:
        x0, y0, x1, y1 = annotation.box
        return polygon_mask_in_bbox([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], shape)
    raise ValidationError(f"a {annotation.kind} annotation has no area to rasterise")


@dataclass
class ExportJob:
    """Handed to an exporter: the selection, a transaction to write into, and bookkeeping."""

    tx: ExportTransaction
    ontology: Ontology
    assets: list[Asset]
    roots: Mapping[str, Path]
    max_pixels: int
    filters: ExportFilters
    load: Callable[[Asset], list[Annotation]]
    progress: Progress | None = None
    # the asset's queue status, review history and consensus (None: never queued); project JSON
    review: Callable[[Asset], dict[str, Any] | None] = lambda asset: None
    # the selected annotations as stored (``load`` before tracks are expanded: outside anchors
    # kept); project JSON archives these so that its import restores tracks exactly
    stored: Callable[[Asset], list[Annotation]] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # (#17) label-map options (export_options); what the format could not write (also in
    # ``skipped``: the export fails on it unless skipping is allowed); figures a format reports
    # beside its files (e.g. label overlaps), copied to manifest.json and the report
    label_maps: LabelMapOptions = field(default_factory=LabelMapOptions)
    unwritable: list[tuple[str, str]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    exported_assets: set[int] = field(default_factory=set)
    exported_annotations: int = 0
    # (#17) how image files of frames are written (frames.py); the stable names of the project's
    # assets (names.py, over the whole project so filters and new assets never change them)
    frame_options: FrameOptions = field(default_factory=FrameOptions)
    names: Mapping[int, PurePosixPath] | None = None
    # (#17) training layouts (YOLO task, nnU-Net kind) and the project's stored splits (splits.py)
    layout: LayoutOptions = field(default_factory=LayoutOptions)
    splits: SplitSummary | None = None

    def split_of(self, asset: Asset) -> str | None:
        """The asset's stored train/val/test split; None when it was registered during the export."""
        return None if self.splits is None else self.splits.split_of(asset.id)

    def name_of(self, asset: Asset) -> PurePosixPath:
        if self.names is None:
            self.names = item_names(self.assets)
        return self.names[asset.id]

    def skip(self, item: str, why: str, *, unwritable: bool = True) -> None:
        """Leave ``item`` out. ``unwritable``: the format cannot hold it (the export fails unless
        skipping is allowed); False: the filters did not select it (only reported)."""
        self.skipped.append((item, why))
        if unwritable:
            self.unwritable.append((item, why))

    def tick(self, done: int, total: int) -> None:
        if self.progress is not None and self.progress(done, total) is False:
            raise ExportCancelled("the export was cancelled; the previous export is unchanged")

    def absolute_path(self, asset: Asset) -> Path | None:
        """Where the asset's file is on this workstation, or None when its data root is unknown here
        or its stored path would leave the root."""
        try:
            return asset_path(asset, self.roots).resolve()
        except (NotFoundError, DataRootError):
            return None

    def frames(self, *, include_empty: bool = False) -> Iterator[FrameItem]:
        """Every selected (asset, frame) in asset-id then frame order; ticks progress per asset."""
        total = len(self.assets)
        self.tick(0, total)
        for done, asset in enumerate(self.assets, 1):
            annotations = self.load(asset)
            by_frame: dict[int, list[Annotation]] = defaultdict(list)
            for ann in annotations:
                by_frame[ann.frame].append(ann)
            if not by_frame:
                if include_empty:
                    yield FrameItem(asset, 0, [])
                else:
                    self.skip(asset_display_path(asset), self._why_empty(), unwritable=False)
            for frame in sorted(by_frame):
                yield FrameItem(asset, frame, by_frame[frame])
            self.tick(done, total)

    def _why_empty(self) -> str:
        if self.filters.consensus_only:
            return "no consensus label: none was chosen or merged since the item was last queued"
        return "no annotation matches the filters"

    def count(self, item: FrameItem, annotations: int) -> None:
        """Record that ``annotations`` of ``item`` were written."""
        self.exported_assets.add(item.asset.id)
        self.exported_annotations += annotations

    def category_id(self, annotation: Annotation, where: str) -> int | None:
        """1-based class index in the ontology; None (and a skip) for labels it no longer has."""
        try:
            return self.ontology.index_of(annotation.label)
        except ValidationError:
            self.skip(where, f"label {annotation.label!r} is not in the current ontology")
            return None

    def exportable(
        self, item: FrameItem, kinds: Collection[Kind], no_form: str
    ) -> Iterator[tuple[Annotation, int]]:
        """``item``'s annotations a format can hold, with their class index; the rest are reported
        as skipped (``no_form`` says why, e.g. "have no YOLO form")."""
        for ann in item.annotations:
            where = annotation_where(item, ann)
            if ann.kind not in kinds:
                self.skip(where, f"{ann.kind.value} annotations {no_form}")
                continue
            category = self.category_id(ann, where)
            if category is not None:
                yield ann, category

    def pictured(
        self, frames: FrameWriter, kinds: Collection[Kind], no_form: str
    ) -> Iterator[tuple[FrameItem, list[tuple[Annotation, int]], ImageFile]]:
        """Each selected frame with the annotations a format can hold (see :meth:`exportable`) and
        its image file from ``frames``; a frame whose image cannot be written is a skip."""
        for item in self.frames():
            chosen = list(self.exportable(item, kinds, no_form))
            if not chosen:
                continue
            try:
                image = frames.image(item.asset, item.frame)
            except Unwritable as exc:
                self.skip(asset_display_path(item.asset), f"its image cannot be written: {exc}")
                continue
            yield item, chosen, image


def annotation_where(item: FrameItem, annotation: Annotation) -> str:
    """How a report names one annotation."""
    return f"{asset_display_path(item.asset)} frame {item.frame} annotation {annotation.id}"
