"""NIfTI and DICOM SEG exports: label volumes of DICOM series (the NIfTI import is nifti_import).

Each exported series becomes ``NAME.nii.gz`` (on the series grid, RAS affine) or ``NAME.seg.dcm``
(referencing the source slices), named as the other formats name assets, so the importers match
them back. The NIfTI bytes are deterministic (gzip without a timestamp): an unchanged series is
not rewritten by an incremental export. A SEG gets new UIDs each time, as DICOM requires.
"""

from __future__ import annotations

import gzip
import io
from collections import defaultdict
from collections.abc import Iterator

from app.core.annotations import Annotation
from app.core.errors import SitelabelError
from app.core.records import Asset, AssetKind
from app.exchange.selection import ExportJob, asset_display_path
from app.exchange.volumes import label_volume, nifti_image, source_slices
from app.sources import Source, open_asset


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
