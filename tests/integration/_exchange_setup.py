"""Shared set-up of the exchange tests: a project on real sample images with every annotation kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app import api, sample_data
from app.exchange.export import ExportFilters, ExportReport, export_project
from app.exchange.importers import ImportReport, import_labels

ONTOLOGY: dict[str, Any] = {
    "classes": [
        {
            "name": "coin",
            "color": "#c0504d",
            "attributes": [{"name": "grade", "type": "enum", "options": ["fine", "worn"]}],
        },
        {"name": "shadow", "color": "#4f81bd"},
        {"name": "tag", "color": "#9bbb59", "kinds": ["classification", "point", "polyline"]},
    ]
}
IMAGES = ("coins.png", "camera.png", "astronaut.png")


def image_paths() -> list[Path]:
    return [sample_data.skimage_images() / name for name in IMAGES]


def make_project(db_url: str, name: str = "p", user: str = "ann") -> tuple[api.Project, list[int]]:
    project = api.create_project(db_url, name, ontology=ONTOLOGY, user=user)
    ids = project.import_data(image_paths())
    assert len(ids) == len(IMAGES), project.last_import_errors
    return project, ids


def blob(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A ragged mask with a hole and two parts (exercises RLE, holes and multi-part outlines)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    cy, cx = h * 0.45, w * 0.55
    r = np.hypot(yy - cy, xx - cx)
    mask = (r < min(h, w) * 0.22) & (r > min(h, w) * 0.06)
    mask |= rng.random(shape) < 0.002
    mask[5:12, 5:40] = True
    return mask


def annotate(project: api.Project, ids: list[int]) -> None:
    for n, asset_id in enumerate(ids):
        asset = project.asset(asset_id)
        shape = (asset.height, asset.width)
        project.upload_annotations(
            asset_id,
            [
                {
                    "kind": "polygon",
                    "label": "coin",
                    "points": [[10.25, 12.5], [140.0, 30.75], [100.5, 150.0], [40.0, 90.5 + n]],
                    "attributes": {"grade": "worn"},
                },
                {"kind": "box", "label": "shadow", "box": [20.0, 40.5, 120.25, 101.0]},
                {"kind": "mask", "label": "coin", "mask": blob(shape, n), "attributes": {"grade": "fine"}},
                {"kind": "polygon", "label": "shadow", "points": [[200, 10], [260.5, 15], [230, 70.25]]},
                {"kind": "classification", "label": "tag"},
                {"kind": "point", "label": "tag", "point": [7.5, 8.25]},
            ],
            confidence=0.75,
        )


def export(project: api.Project, fmt: str, out: Path, **kwargs: Any) -> ExportReport:
    """``export_project`` skipping what the format cannot hold: the set-up's classifications and
    points have no form in most formats (test_exchange_label_maps checks the refusal without it)."""
    filters = kwargs.pop("filters", ExportFilters())
    kwargs.setdefault("skip_unwritable", True)
    return export_project(
        project.db,
        project.id,
        fmt,
        out,
        roots=project.config.all_data_roots,
        max_pixels=project.config.max_image_pixels,
        filters=filters,
        **kwargs,
    )


def import_(project: api.Project, fmt: str, path: Path, **kwargs: Any) -> ImportReport:
    return import_labels(
        project.db,
        project.id,
        fmt,
        path,
        user_id=project.user.id,
        roots=project.config.all_data_roots,
        max_pixels=project.config.max_image_pixels,
        **kwargs,
    )


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (relative posix path -> bytes)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
