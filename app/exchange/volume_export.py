"""NIfTI and DICOM SEG exports: label volumes of DICOM series (the NIfTI import is nifti_import).

Each exported series is written, by the job's label-map options (``app.exchange.export_options``)::

    NAME.nii.gz          nifti index: uint16 class indices (legend.json), the higher-priority class
                         where classes overlap; every collision counted in overlaps.json
    NAME/CLASS.nii.gz    nifti per-class: one uint8 0/1 volume per class (legend.json names the files)
    NAME.nii.gz          nifti one-hot: uint8 (i, j, k, channel), a 0/1 channel per class
    NAME.seg.dcm         dicom-seg: one segment per class, each with its own binary frames

on the series grid (RAS affine for NIfTI; the SEG references the source slices), named as the
other formats name assets, so the importers match them back. The NIfTI bytes are deterministic
(gzip without a timestamp): an unchanged series is not rewritten by an incremental export. A SEG
gets new UIDs each time, as DICOM requires. Annotations without pixels (classifications) and
assets that are not series cannot be written: they are recorded as unwritable.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation
from app.core.errors import SitelabelError, ValidationError
from app.core.ontology import LabelClass, Ontology
from app.core.records import Asset, AssetKind
from app.exchange.label_maps import (
    ClassLayer,
    ClassPriority,
    OverlapTally,
    class_layers,
    collisions,
    drawable,
    paint_index,
    pixel_classes,
)
from app.exchange.selection import ExportJob, asset_display_path
from app.exchange.volumes import nifti_image, nifti_mask_image, source_slices
from app.sources import Source, VolumeGeometry, open_asset

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class _Series:
    asset: Asset
    source: Source
    geometry: VolumeGeometry
    shape: tuple[int, int, int]  # (z, y, x)
    layers: dict[int, list[ClassLayer]]  # frame -> the classes drawn on it
    annotations: int

    def class_volume(self, index: int) -> npt.NDArray[np.uint8]:
        """0/1 ``(z, y, x)`` volume of one class."""
        out = np.zeros(self.shape, dtype=np.uint8)
        for frame, layers in self.layers.items():
            for layer in layers:
                if layer.index == index:
                    layer.paint(out[frame], 1)
        return out

    @property
    def present(self) -> list[int]:
        return sorted(
            {layer.index for layers in self.layers.values() for layer in layers if layer.bits.any()}
        )


def _layers(
    job: ExportJob, asset: Asset, annotations: list[Annotation], depth: int
) -> tuple[dict[int, list[ClassLayer]], int]:
    """The series' class layers per frame and how many annotations they hold; what cannot be
    drawn is recorded as unwritable."""
    where = asset_display_path(asset)
    drawn = drawable(job, annotations, lambda ann: f"{where} frame {ann.frame} annotation {ann.id}")
    by_frame: dict[int, list[Annotation]] = {}
    for ann in drawn:
        if 0 <= ann.frame < depth:
            by_frame.setdefault(ann.frame, []).append(ann)
        else:
            job.skip(
                f"{where} annotation {ann.id}", f"annotation on frame {ann.frame}, past the series' slices"
            )
    shape = (asset.height, asset.width)
    layers = {frame: class_layers(items, job.ontology, shape) for frame, items in sorted(by_frame.items())}
    return layers, sum(len(v) for v in by_frame.values())


def _series(job: ExportJob) -> Iterator[_Series]:
    """Each selected DICOM series with drawable annotations, its source open while it is used."""
    total = len(job.assets)
    job.tick(0, total)
    for done, asset in enumerate(job.assets, 1):
        where = asset_display_path(asset)
        annotations = job.load(asset)
        if not annotations:
            job.skip(where, "no annotation matches the filters", unwritable=False)
        elif asset.kind is not AssetKind.DICOM_SERIES:
            job.skip(where, "label volumes are exported for DICOM series only")
        else:
            try:
                source = open_asset(asset, job.roots, max_pixels=job.max_pixels)
            except SitelabelError as exc:
                job.skip(where, str(exc))
            else:
                try:
                    if source.geometry is None:
                        job.skip(
                            where, "the series has no consistent geometry: " + "; ".join(source.warnings)
                        )
                    else:
                        depth = source.frame_count
                        layers, count = _layers(job, asset, annotations, depth)
                        if layers:
                            shape = (depth, asset.height, asset.width)
                            yield _Series(asset, source, source.geometry, shape, layers, count)
                except ValidationError as exc:
                    job.skip(where, str(exc))
                finally:
                    source.close()
        job.tick(done, total)


def _class_entry(cls_: LabelClass, index: int) -> dict[str, Any]:
    return {"index": index, "name": cls_.name, "color": cls_.color}


def _file_names(classes: list[LabelClass]) -> dict[str, str]:
    """Class name -> its per-class file name (``liver.nii.gz``; numbered when names clash)."""
    safe = {c.name: _UNSAFE.sub("_", c.name).strip("._") or "class" for c in classes}
    clash = len(set(safe.values())) < len(safe)
    return {
        c.name: f"{n:02d}_{safe[c.name]}.nii.gz" if clash else f"{safe[c.name]}.nii.gz"
        for n, c in enumerate(classes, 1)
    }


def _gz(image: Any) -> bytes:
    return gzip.compress(image.to_bytes(), compresslevel=1, mtime=0)


def export_nifti(job: ExportJob) -> None:
    mode = job.label_maps.nifti_mode
    ontology = job.ontology
    channels = pixel_classes(ontology, job.filters.classes)
    files = _file_names(channels)
    priority = ClassPriority.of(ontology, job.label_maps.class_priority)
    tally = OverlapTally(ontology, priority, "voxels")
    for series in _series(job):
        name = str(job.name_of(series.asset))
        if mode == "per-class":
            for cls_ in channels:
                volume = series.class_volume(ontology.index_of(cls_.name))
                image = nifti_mask_image(volume, series.geometry, description=f"Sitelabel mask: {cls_.name}")
                job.tx.write_bytes(f"{name}/{files[cls_.name]}", _gz(image))
        elif mode == "one-hot":
            stack = np.stack([series.class_volume(ontology.index_of(c.name)) for c in channels])
            image = nifti_mask_image(stack, series.geometry, description="Sitelabel one-hot labels")
            job.tx.write_bytes(f"{name}.nii.gz", _gz(image))
        else:
            labels = np.zeros(series.shape, dtype=np.uint16)
            for frame, layers in series.layers.items():
                paint_index(layers, priority, labels[frame])
                tally.add(series.asset.id, name, frame, collisions(layers))
            job.tx.write_bytes(f"{name}.nii.gz", _gz(nifti_image(labels, series.geometry)))
        job.exported_assets.add(series.asset.id)
        job.exported_annotations += series.annotations
    legend: dict[str, Any] = {"mode": mode, "background": 0}
    if mode == "per-class":
        legend["values"] = {"0": "absent", "1": "present"}
        legend["classes"] = [
            {**_class_entry(c, ontology.index_of(c.name)), "file": files[c.name]} for c in channels
        ]
    elif mode == "one-hot":
        legend["values"] = {"0": "absent", "1": "present"}
        legend["classes"] = [
            {"channel": k, **_class_entry(c, ontology.index_of(c.name))} for k, c in enumerate(channels)
        ]
    else:
        legend["classes"] = [_class_entry(c, i) for i, c in enumerate(ontology.classes, 1)]
        legend["priority"] = list(priority.names)
        tally.write(job)
    job.tx.write_json("legend.json", legend, indent=2)


def _seg_dataset(series: _Series, ontology: Ontology) -> Any:
    """The SEG of a series: each class a segment of its own frames. Without overlapping classes a
    class-index volume says the same and costs highdicom far less than a 4-D stack."""
    from app.exchange.volumes_seg import dicom_seg_dataset, dicom_seg_from_masks

    files = [path for path, _uid in source_slices(series.source)]
    if any(collisions(layers) for layers in series.layers.values()):
        masks = {index: series.class_volume(index).view(bool) for index in series.present}
        return dicom_seg_from_masks(masks, files, ontology)
    labels = np.zeros(series.shape, dtype=np.uint16)
    for frame, layers in series.layers.items():
        for layer in layers:
            layer.paint(labels[frame], layer.index)
    return dicom_seg_dataset(labels, files, ontology)


def export_dicom_seg(job: ExportJob) -> None:
    for series in _series(job):
        try:
            dataset = _seg_dataset(series, job.ontology)
        except SitelabelError as exc:
            job.skip(asset_display_path(series.asset), str(exc))
            continue
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        job.tx.write_bytes(f"{job.name_of(series.asset)}.seg.dcm", buffer.getvalue())
        job.exported_assets.add(series.asset.id)
        job.exported_annotations += series.annotations
    job.tx.write_json(
        "legend.json",
        {
            "background": 0,
            "classes": [_class_entry(c, i) for i, c in enumerate(job.ontology.classes, 1)],
        },
        indent=2,
    )
