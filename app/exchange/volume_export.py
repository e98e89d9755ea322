"""NIfTI and DICOM SEG exports and the NIfTI import: label volumes of DICOM series.

Each exported series becomes ``NAME.nii.gz`` (on the series grid, RAS affine) or ``NAME.seg.dcm``
(referencing the source slices), named as the other formats name assets, so the importers match
them back. The NIfTI bytes are deterministic (gzip without a timestamp): an unchanged series is
not rewritten by an incremental export. A SEG gets new UIDs each time, as DICOM requires.
"""

from __future__ import annotations

import gzip
import io
from collections import defaultdict
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.annotations import Annotation
from app.core.errors import SitelabelError
from app.core.ontology import Ontology
from app.core.records import Asset, AssetKind
from app.exchange.selection import ExportJob, asset_display_path
from app.exchange.volumes import label_volume, nifti_image, read_nifti_labels, source_slices
from app.sources import Source, open_asset

if TYPE_CHECKING:
    from app.exchange.importers import LabelItem


def _series(job: ExportJob) -> Iterator[tuple[Asset, Source, dict[int, list[Annotation]]]]:
    """Each selected DICOM series with annotations, its opened source and annotations by slice."""
    total = len(job.assets)
    job.tick(0, total)
    for done, asset in enumerate(job.assets, 1):
        where = asset_display_path(asset)
        annotations = job.load(asset)
        if asset.kind is not AssetKind.DICOM_SERIES:
            job.skip(where, "label volumes are exported for DICOM series only")
        elif not annotations:
            job.skip(where, "no annotation matches the filters")
        else:
            try:
                source = open_asset(asset, job.roots, max_pixels=job.max_pixels)
            except SitelabelError as exc:
                job.skip(where, str(exc))
            else:
                by_frame: dict[int, list[Annotation]] = defaultdict(list)
                for annotation in annotations:
                    by_frame[annotation.frame].append(annotation)
                try:
                    if source.geometry is None:
                        job.skip(
                            where, "the series has no consistent geometry: " + "; ".join(source.warnings)
                        )
                    else:
                        yield asset, source, dict(by_frame)
                finally:
                    source.close()
        job.tick(done, total)


def _legend(job: ExportJob) -> None:
    job.tx.write_json(
        "legend.json",
        {
            "background": 0,
            "classes": [
                {"index": i, "name": c.name, "color": c.color} for i, c in enumerate(job.ontology.classes, 1)
            ],
        },
        indent=2,
    )


def export_nifti(job: ExportJob) -> None:
    for asset, source, by_frame in _series(job):
        shape = (source.frame_count, *source.shape)
        labels = label_volume(by_frame, job.ontology, shape)
        assert source.geometry is not None
        raw = nifti_image(labels, source.geometry).to_bytes()
        job.tx.write_bytes(f"{job.name_of(asset)}.nii.gz", gzip.compress(raw, compresslevel=1, mtime=0))
        job.exported_assets.add(asset.id)
        job.exported_annotations += sum(len(v) for v in by_frame.values())
    _legend(job)


def export_dicom_seg(job: ExportJob) -> None:
    from app.exchange.volumes_seg import dicom_seg_dataset

    for asset, source, by_frame in _series(job):
        try:
            files = [path for path, _uid in source_slices(source)]
            labels = label_volume(by_frame, job.ontology, (source.frame_count, *source.shape))
            dataset = dicom_seg_dataset(labels, files, job.ontology)
        except SitelabelError as exc:
            job.skip(asset_display_path(asset), str(exc))
            continue
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        job.tx.write_bytes(f"{job.name_of(asset)}.seg.dcm", buffer.getvalue())
        job.exported_assets.add(asset.id)
        job.exported_annotations += sum(len(v) for v in by_frame.values())
    _legend(job)


def nifti_reader(roots: Mapping[str, Path], max_pixels: int) -> partial[Iterator[LabelItem]]:
    """The NIfTI import reader, bound to this workstation's data roots (it opens the series)."""
    return partial(read_nifti_items, roots=roots, max_pixels=max_pixels)


def read_nifti_items(
    path: Path, ontology: Ontology, *, roots: Mapping[str, Path], max_pixels: int
) -> Iterator[LabelItem]:
    """One import item per ``.nii``/``.nii.gz`` file: matched by name to a series, its grid checked."""
    from app.exchange.importers import LabelItem, SkipItem  # at run time: importers imports this module
    from app.exchange.volumes import annotations_from_labels

    files = sorted(
        p for p in ([path] if path.is_file() else path.rglob("*")) if p.name.endswith((".nii", ".nii.gz"))
    )

    def build(file: Path, asset: Asset, _frame: int) -> list[Annotation]:
        if asset.kind is not AssetKind.DICOM_SERIES:
            raise SkipItem(f"{asset_display_path(asset)} is not a DICOM series")
        source = open_asset(asset, roots, max_pixels=max_pixels)
        try:
            if source.geometry is None:
                raise SkipItem("the series has no consistent geometry")
            labels = read_nifti_labels(file, source.geometry, shape_zyx=(source.frame_count, *source.shape))
        except SkipItem:
            raise
        except SitelabelError as exc:
            raise SkipItem(str(exc)) from None
        finally:
            source.close()
        try:
            by_slice = annotations_from_labels(labels, ontology)
        except SitelabelError as exc:  # a label value past the ontology skips this file, not the import
            raise SkipItem(str(exc)) from None
        return [a for anns in by_slice.values() for a in anns]

    for file in files:
        stem = file.name.removesuffix(".gz").removesuffix(".nii")
        relative = file.relative_to(path).with_name(stem) if path.is_dir() else Path(stem)
        yield LabelItem(item=str(file), path=relative.as_posix(), build=partial(build, file))
