"""The NIfTI label import: one item per ``.nii``/``.nii.gz`` file, matched by name to a DICOM series.

A label volume is checked against its series' own grid, so this reader opens the matched series in
place (``context.roots``); a file that does not fit is skipped with the reason, the others import.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

from app.core.annotations import Annotation
from app.core.errors import SitelabelError
from app.core.ontology import Ontology
from app.core.records import Asset, AssetKind
from app.exchange.label_items import ImportContext, LabelItem, SkipItem
from app.exchange.selection import asset_display_path
from app.exchange.volumes import annotations_from_labels, read_nifti_labels
from app.sources import open_asset


def read_nifti(path: Path, ontology: Ontology, context: ImportContext) -> Iterator[LabelItem]:
    """One import item per ``.nii``/``.nii.gz`` file: matched by name to a series, its grid checked."""
    files = sorted(
        p for p in ([path] if path.is_file() else path.rglob("*")) if p.name.endswith((".nii", ".nii.gz"))
    )

    def build(file: Path, asset: Asset, _frame: int) -> list[Annotation]:
        if asset.kind is not AssetKind.DICOM_SERIES:
            raise SkipItem(f"{asset_display_path(asset)} is not a DICOM series")
        source = open_asset(asset, context.roots, max_pixels=context.max_pixels)
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
