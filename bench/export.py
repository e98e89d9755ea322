"""Benchmark: exports of a large project, and our COCO RLE encoder against pycocotools.

Prints one JSON object. Times are medians of several runs in seconds (ms for per-mask figures).

* ``coco_100k_polygons_s``: 1,000 assets x 100 polygons (1024x1024 frames) exported as COCO
  (every polygon rasterised by the core rasteriser and RLE-encoded, JSON written, manifest).
* ``png_1000_masks_s``: 1,000 assets with one 1024x1024 mask each exported as PNG masks (class-index
  and colour PNG per frame). Goal: under 15 s on 2 cores.
* ``rle_*``: the same 1,000 full-frame masks encoded by ``app.exchange.rle.encode`` and by
  ``pycocotools.mask.encode`` (its input converted to Fortran uint8, as it requires); ``ratio`` is
  peer time / our time (above 1: we are faster). Outputs are asserted identical.

Assets are registered directly in a temporary SQLite database (no pixels are read by an export).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.core.annotations import Annotation, Kind, MaskPatch
from app.exchange import rle
from app.exchange.export import export_project
from app.storage import Database

RUNS = 3
SIZE = 1024
ASSETS = 1000
POLYGONS_PER_ASSET = 100


def _masks(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    out = []
    for _ in range(count):
        cy, cx = rng.uniform(200, 824, 2)
        r = np.hypot(yy - cy, xx - cx)
        mask = r < rng.uniform(60, 180)
        y0, x0 = rng.integers(0, 900, 2)
        mask[y0 : y0 + 80, x0 : x0 + 120] = True
        out.append(mask)
    return out


def _polygons(rng: np.random.Generator) -> list[Annotation]:
    out = []
    for _ in range(POLYGONS_PER_ASSET):
        n = int(rng.integers(5, 30))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radius = rng.uniform(5, 40) * rng.uniform(0.6, 1.0, n)
        cx, cy = rng.uniform(50, SIZE - 50, 2)
        pts = np.round(np.column_stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)]) * 4) / 4
        out.append(Annotation(kind=Kind.POLYGON, label="a", points=pts))
    return out


def _project(db: Database, name: str) -> tuple[int, int]:
    with db.unit_of_work() as uow:
        project = uow.projects.create(name, None)
        from app.core.ontology import Ontology

        uow.ontologies.add(project.id, Ontology.from_dict({"classes": [{"name": "a"}, {"name": "b"}]}))
        user = uow.users.ensure("bench")
        return project.id, user.id


def _add_assets(db: Database, project_id: int, prefix: str) -> list[int]:
    with db.unit_of_work() as uow:
        dataset = uow.datasets.ensure(project_id, "default")
        return [
            uow.assets.add(
                project_id,
                dataset.id,
                kind="image",
                root="bench",
                rel_path=f"{prefix}/img{i:05d}.png",
                size=1,
                mtime_ns=1,
                content_hash="x",
                frame_count=1,
                width=SIZE,
                height=SIZE,
            ).id
            for i in range(ASSETS)
        ]


def _median_export(db: Database, project_id: int, fmt: str, work: Path) -> float:
    times = []
    for run in range(RUNS):
        out = work / f"{fmt}-{run}"
        t0 = time.perf_counter()
        export_project(db, project_id, fmt, out, roots={"bench": work}, max_pixels=10**9)
        times.append(time.perf_counter() - t0)
        shutil.rmtree(out)
    return statistics.median(times)


def main() -> dict[str, Any]:
    from pycocotools import mask as coco_mask

    work = Path(tempfile.mkdtemp(prefix="sitelabel-bench-export-"))
    try:
        db = Database.open(work / "bench.db")
        masks = _masks(ASSETS)
        poly_project, user = _project(db, "polygons")
        rng = np.random.default_rng(1)
        for asset_id in _add_assets(db, poly_project, "poly"):
            with db.unit_of_work() as uow:
                uow.annotations.add_many(asset_id, _polygons(rng), user)
        mask_project, user = _project(db, "masks")
        mask_assets = _add_assets(db, mask_project, "mask")
        with db.unit_of_work() as uow:
            for asset_id, mask in zip(mask_assets, masks, strict=True):
                ann = Annotation(kind=Kind.MASK, label="b", mask=MaskPatch.from_full(mask))
                uow.annotations.add(asset_id, ann, user)
        coco_s = _median_export(db, poly_project, "coco", work)
        png_s = _median_export(db, mask_project, "png-masks", work)

        def ours() -> list[dict[str, Any]]:
            return [rle.encode(m) for m in masks]

        def theirs() -> list[dict[str, Any]]:
            return [coco_mask.encode(np.asfortranarray(m, dtype=np.uint8)) for m in masks]

        assert [r["counts"] for r in ours()] == [r["counts"].decode() for r in theirs()]
        rle_ours, rle_theirs = [], []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            ours()
            rle_ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            theirs()
            rle_theirs.append(time.perf_counter() - t0)
        db.dispose()
        ours_ms = statistics.median(rle_ours) / ASSETS * 1000
        theirs_ms = statistics.median(rle_theirs) / ASSETS * 1000
        return {
            "benchmark": "export",
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "runs": RUNS,
            "coco_100k_polygons_s": round(coco_s, 3),
            "png_1000_masks_s": round(png_s, 3),
            "png_goal_s": 15.0,
            "rle_ours_ms_per_1024_mask": round(ours_ms, 3),
            "rle_pycocotools_ms_per_1024_mask": round(theirs_ms, 3),
            "rle_ratio": round(theirs_ms / ours_ms, 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(main()))
