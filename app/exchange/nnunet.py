"""nnU-Net v2 export: a raw dataset folder nnU-Net trains on as it is.

Layout (name the export folder ``DatasetXXX_Name`` inside ``nnUNet_raw``)::

    dataset.json            channel_names, labels (background 0, then 1..K), numTraining, file_ending
    imagesTr/<case>_0000.nii.gz  or  .png     the image of a train or val case
    labelsTr/<case>.nii.gz       or  .png     its integer label map, same grid
    imagesTs/, labelsTs/    cases of the test split (when the split plan has one)
    splits_final.json       the project's stored split as nnU-Net's one fold (train, val case ids);
                            copy it into nnUNet_preprocessed/DatasetXXX_Name/ to train on that split
    cases.json              case id -> asset id, frame, data root, path, stable name and split
    overlaps.json           every pixel where classes collided, per class pair (see below)

One kind per dataset (:mod:`app.exchange.layout_options`): ``3d`` writes each DICOM series with labels
as a NIfTI volume ``a<asset id>_0000.nii.gz`` (the series' values, e.g. HU, with the affine of
app.exchange.volumes: DICOM orientation, spacing and position in RAS) and its label volume on the same
grid; ``2d`` writes each labelled image or frame of a video as ``a<asset id>[_f<frame>]_0000.png``
(nnU-Net's natural-image reader; values as the frame writer stores them) with a PNG label map. nnU-Net
needs one file ending and the same channels in every case: a selection holding series and 2-D items
is refused unless the kind is given, and a 2-D case whose channels differ from the first case's (a
colour frame in a grey dataset) cannot be written.

Labels: nnU-Net wants consecutive values, so the ontology's pixel classes (those the export selects)
become 1..K in ontology order; dataset.json names them. Where classes overlap the label map keeps
the class of higher priority (``--class-priority``, app.exchange.export_options) and every colliding
pixel is counted per class pair in the summary, manifest.json and overlaps.json. Slices of a series
without annotations are background in the label volume.
"""

from __future__ import annotations

import gzip
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation
from app.core.errors import SitelabelError, ValidationError
from app.core.records import Asset, AssetKind
from app.exchange.frames import FrameWriter, Unwritable, encode_png
from app.exchange.label_maps import (
    ClassPriority,
    OverlapTally,
    class_layers,
    collisions,
    drawable,
    paint_index,
    pixel_classes,
)
from app.exchange.selection import ExportJob, FrameItem, asset_display_path
from app.exchange.volumes import nifti_image, ras_affine
from app.sources import Source, VolumeGeometry, open_asset

DATASET_FILE = "dataset.json"
CASES_FILE = "cases.json"
SPLITS_FINAL = "splits_final.json"
NIFTI_ENDING, PNG_ENDING = ".nii.gz", ".png"
_CHANNEL_NAMES = {3: ["R", "G", "B"], 4: ["R", "G", "B", "A"]}


@dataclass
class _Dataset:
    """The cases written so far and how label values map (ontology index -> 1..K)."""

    job: ExportJob
    ending: str
    lut: npt.NDArray[np.uint16]
    priority: ClassPriority
    tally: OverlapTally
    cases: list[dict[str, Any]] = field(default_factory=list)
    channels: int | None = None
    modalities: set[str] = field(default_factory=set)

    def folders(self, split: str) -> tuple[str, str]:
        return ("imagesTs", "labelsTs") if split == "test" else ("imagesTr", "labelsTr")

    def add_case(self, case: str, asset: Asset, frame: int | None, split: str) -> None:
        entry: dict[str, Any] = {
            "case": case,
            "asset_id": asset.id,
            "root": asset.root,
            "source": asset_display_path(asset),
            "name": str(self.job.name_of(asset)),
            "split": split,
        }
        if frame is not None:
            entry["frame"] = frame
        self.cases.append(entry)


def _gz(image: Any) -> bytes:
    return gzip.compress(image.to_bytes(), compresslevel=1, mtime=0)  # deterministic bytes


def _nibabel() -> Any:
    return importlib.import_module("nibabel")  # on first use; its partial hints are not checked


def image_nifti(volume_zyx: npt.NDArray[Any], geometry: VolumeGeometry) -> Any:
    """The series' values as a NIfTI image on the grid its label volume uses (app.exchange.volumes:
    the same RAS affine in qform and sform, code 1, millimetres)."""
    nib = _nibabel()
    affine = ras_affine(geometry)
    img = nib.Nifti1Image(np.asarray(volume_zyx).transpose(2, 1, 0), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units(xyz="mm")
    img.header["descrip"] = b"Sitelabel image"
    return img


def _labelled(job: ExportJob, assets: list[Asset]) -> int:
    return sum(1 for asset in assets if job.load(asset))


def dataset_kind(job: ExportJob) -> str:
    """``3d`` or ``2d``: the option, else the one kind the selection's labelled items hold."""
    if job.layout.nnunet_kind is not None:
        return job.layout.nnunet_kind
    series = [a for a in job.assets if a.kind is AssetKind.DICOM_SERIES]
    flat = [a for a in job.assets if a.kind is not AssetKind.DICOM_SERIES]
    if not series or not flat:
        return "3d" if series else "2d"
    volumes, images = _labelled(job, series), _labelled(job, flat)
    if volumes and images:
        raise ValidationError(
            f"nnU-Net reads one kind of data per dataset, and the selection holds {volumes} labelled DICOM "
            f"series (3d, NIfTI) and {images} labelled images or videos (2d, PNG): export each kind on "
            "its own with --nnunet-kind 3d or --nnunet-kind 2d (the other kind is listed as not selected)"
        )
    return "3d" if volumes else "2d"


def export_nnunet(job: ExportJob) -> None:
    kind = dataset_kind(job)
    ontology = job.ontology
    classes = pixel_classes(ontology, job.filters.classes)
    if any(c.name == "background" for c in classes):
        raise ValidationError("nnU-Net's label 0 is called 'background': rename the class 'background' first")
    lut = np.zeros(len(ontology.classes) + 1, dtype=np.uint16)
    for value, cls_ in enumerate(classes, 1):
        lut[ontology.index_of(cls_.name)] = value
    priority = ClassPriority.of(ontology, job.label_maps.class_priority)
    unit = "voxels" if kind == "3d" else "pixels"
    data = _Dataset(
        job,
        NIFTI_ENDING if kind == "3d" else PNG_ENDING,
        lut,
        priority,
        OverlapTally(ontology, priority, unit),
    )
    if kind == "3d":
        _export_series(data)
    else:
        _export_frames(data)
    training = [c for c in data.cases if c["split"] != "test"]
    job.tx.write_json(DATASET_FILE, _dataset_json(data, classes, len(training)), indent=2)
    job.tx.write_json(CASES_FILE, {"cases": data.cases}, indent=1)
    fold = {s: [c["case"] for c in training if c["split"] == s] for s in ("train", "val")}
    job.tx.write_json(SPLITS_FINAL, [fold], indent=1)
    data.tally.write(job)
    job.notes["nnunet"] = {"kind": kind, "cases": len(data.cases), "training": len(training)}


def _dataset_json(data: _Dataset, classes: list[Any], training: int) -> dict[str, Any]:
    if data.ending == NIFTI_ENDING or (data.channels or 1) == 1:
        modality = "CT" if data.modalities == {"CT"} else "/".join(sorted(data.modalities)) or "grey"
        channel_names = {"0": modality}
    else:
        names = _CHANNEL_NAMES.get(data.channels or 1) or [f"channel{k}" for k in range(data.channels or 1)]
        channel_names = {str(k): n for k, n in enumerate(names)}
    return {
        "channel_names": channel_names,
        "labels": {"background": 0, **{c.name: k for k, c in enumerate(classes, 1)}},
        "numTraining": training,
        "file_ending": data.ending,
        "name": data.job.tx.out_dir.name,
        "description": "Sitelabel export (cases.json maps each case to its asset)",
        "ontology_version": data.job.ontology.version,
    }


def _case(asset: Asset, frame: int | None = None) -> str:
    return f"a{asset.id:06d}" if frame is None else f"a{asset.id:06d}_f{frame:06d}"


def _split(data: _Dataset, asset: Asset) -> str | None:
    split = data.job.split_of(asset)
    if split is None:
        data.job.skip(
            asset_display_path(asset), "registered while the export ran, so it has no split yet: export again"
        )
    return split


def _drawn(job: ExportJob, asset: Asset, annotations: list[Annotation]) -> list[Annotation]:
    where = asset_display_path(asset)
    return drawable(job, annotations, lambda ann: f"{where} frame {ann.frame} annotation {ann.id}")


# --- 3d: DICOM series as NIfTI volumes ------------------------------------------------------------
def _export_series(data: _Dataset) -> None:
    job = data.job
    total = len(job.assets)
    job.tick(0, total)
    for done, asset in enumerate(job.assets, 1):
        where = asset_display_path(asset)
        if asset.kind is not AssetKind.DICOM_SERIES:
            job.skip(
                where, "not a DICOM series: not in a 3d nnU-Net dataset (--nnunet-kind 2d)", unwritable=False
            )
        else:
            annotations = job.load(asset)
            if not annotations:
                job.skip(where, "no annotation matches the filters", unwritable=False)
            else:
                _write_series(data, asset, annotations)
        job.tick(done, total)


def _write_series(data: _Dataset, asset: Asset, annotations: list[Annotation]) -> None:
    job, where = data.job, asset_display_path(asset)
    drawn = _drawn(job, asset, annotations)
    split = _split(data, asset) if drawn else None
    if split is None:
        return
    try:
        source = open_asset(asset, job.roots, max_pixels=job.max_pixels)
    except SitelabelError as exc:
        job.skip(where, str(exc))
        return
    try:
        _series_case(data, asset, source, drawn, split)
    except (SitelabelError, OSError) as exc:
        job.skip(where, f"its volume cannot be read: {exc}")
    finally:
        source.close()


def _series_case(data: _Dataset, asset: Asset, source: Source, drawn: list[Annotation], split: str) -> None:
    job, where = data.job, asset_display_path(asset)
    if source.geometry is None:
        job.skip(where, "the series has no consistent geometry: " + "; ".join(source.warnings))
        return
    if source.channels != 1:
        job.skip(
            where, f"a series of {source.channels}-channel slices: nnU-Net volumes hold one value per voxel"
        )
        return
    depth, shape = source.frame_count, (asset.height, asset.width)
    by_frame: dict[int, list[Annotation]] = {}
    for ann in drawn:
        if 0 <= ann.frame < depth:
            by_frame.setdefault(ann.frame, []).append(ann)
        else:
            job.skip(
                f"{where} annotation {ann.id}", f"annotation on frame {ann.frame}, past the series' slices"
            )
    if not by_frame:
        return
    case = _case(asset)
    labels = np.zeros((depth, *shape), dtype=np.uint16)
    for frame, items in sorted(by_frame.items()):
        labels[frame] = _paint(data, items, shape, asset=asset, case=case, frame=frame)
    volume = source.volume()
    images, label_dir = data.folders(split)
    job.tx.write_bytes(f"{images}/{case}_0000{NIFTI_ENDING}", _gz(image_nifti(volume, source.geometry)))
    job.tx.write_bytes(f"{label_dir}/{case}{NIFTI_ENDING}", _gz(nifti_image(labels, source.geometry)))
    modality = str((asset.metadata or {}).get("Modality") or "").strip()
    data.modalities.add(modality or "image")
    data.add_case(case, asset, None, split)
    job.exported_assets.add(asset.id)
    job.exported_annotations += sum(len(v) for v in by_frame.values())


def _paint(
    data: _Dataset, items: list[Annotation], shape: tuple[int, int], *, asset: Asset, case: str, frame: int
) -> npt.NDArray[np.uint16]:
    """One frame's label values (1..K, 0 background); overlaps painted by priority and counted."""
    layers = class_layers(items, data.job.ontology, shape)
    plane = np.zeros(shape, dtype=np.uint16)
    paint_index(layers, data.priority, plane)
    data.tally.add(asset.id, case, frame, collisions(layers))
    return data.lut[plane]


# --- 2d: images and frames of videos as PNG -------------------------------------------------------
def _export_frames(data: _Dataset) -> None:
    job = data.job
    channels: dict[int, int] = {}  # asset id -> channels of its frames
    with FrameWriter(job.tx, job.roots, job.max_pixels, job.frame_options) as frames:
        for item in job.frames():
            where = asset_display_path(item.asset)
            if item.asset.kind is AssetKind.DICOM_SERIES:
                if item.asset.id not in channels:  # once per series, not per slice
                    channels[item.asset.id] = 0
                    job.skip(
                        where,
                        "a DICOM series: not in a 2d nnU-Net dataset (--nnunet-kind 3d)",
                        unwritable=False,
                    )
                continue
            drawn = _drawn(job, item.asset, item.annotations)
            split = _split(data, item.asset) if drawn else None
            if split is None:
                continue
            if item.asset.id not in channels:  # 0: it cannot be opened (reported once)
                channels[item.asset.id] = _channels(job, item.asset) or 0
            depth = channels[item.asset.id]
            if depth < 1:
                continue
            if data.channels is None:
                data.channels = depth
            if depth != data.channels:
                job.skip(
                    where,
                    f"{depth}-channel frames in a dataset whose first case has {data.channels} channel(s): "
                    "nnU-Net needs the same channels in every case (export them apart with --dataset)",
                )
                continue
            _frame_case(data, frames, item, drawn, split)


def _channels(job: ExportJob, asset: Asset) -> int | None:
    """The channels of an asset's frames (a header read), None (and a skip) when it cannot open."""
    try:
        source = open_asset(asset, job.roots, max_pixels=job.max_pixels)
    except SitelabelError as exc:
        job.skip(asset_display_path(asset), f"its image cannot be written: {exc}")
        return None
    try:
        return int(source.channels)
    finally:
        source.close()


def _frame_case(
    data: _Dataset, frames: FrameWriter, item: FrameItem, drawn: list[Annotation], split: str
) -> None:
    job, asset = data.job, item.asset
    case = _case(asset, item.frame if item.multi_frame else None)
    images, label_dir = data.folders(split)
    target: Callable[[str], str] = lambda _default: f"{images}/{case}_0000{PNG_ENDING}"  # noqa: E731
    try:
        image = frames.image(asset, item.frame, place=target, decode=True)
    except Unwritable as exc:
        job.skip(asset_display_path(asset), f"its image cannot be written: {exc}")
        return
    plane = _paint(data, drawn, (image.height, image.width), asset=asset, case=case, frame=item.frame)
    values = plane.astype(np.uint8) if int(data.lut.max(initial=0)) <= 255 else plane
    job.tx.write_bytes(f"{label_dir}/{case}{PNG_ENDING}", encode_png(values))
    modality = str((asset.metadata or {}).get("Modality") or "").strip()
    data.modalities.add(modality or "grey")
    data.add_case(case, asset, item.frame if item.multi_frame else None, split)
    job.count(item, len(drawn))
