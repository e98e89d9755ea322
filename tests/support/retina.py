"""scikit-image's fundus photograph ``retina.jpg`` (1411x1411) and its vessel ground truth, cut into
nine 512x512 tiles at offsets 0/449/898 (neighbours share a 63-pixel strip).

Ground truth, stated: vessels are the pixels where skimage's Sato ridge filter (sigmas 1-3, dark
ridges) on the green channel exceeds 0.03, inside the field of view eroded by 10 px, without
components under 64 px. Five tiles train (the four corners and the centre), four are held out."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from app import sample_data

STARTS = (0, 449, 898)
TRAIN = ((0, 0), (0, 898), (898, 0), (898, 898), (449, 449))
HELD_OUT = ((0, 449), (449, 0), (449, 898), (898, 449))
TILE = 512


@functools.cache
def _derived() -> tuple[np.ndarray, np.ndarray]:
    from skimage import filters, io, morphology

    image = io.imread(sample_data.skimage_images() / "retina.jpg")
    green = image[:, :, 1].astype(np.float64) / 255.0
    fov = morphology.erosion(image.mean(axis=2) > 20, morphology.disk(10))
    vessels = (filters.sato(green, sigmas=[1, 2, 3], black_ridges=True) > 0.03) & fov
    vessels = morphology.remove_small_objects(vessels, max_size=63)
    image.flags.writeable = vessels.flags.writeable = False  # shared by every caller in this process
    return image, vessels


def retina_vessels() -> tuple[np.ndarray, np.ndarray]:
    """The photo (RGB uint8) and its vessel mask (bool), both read-only; derived once per process."""
    return _derived()


def cut(array: np.ndarray, y: int, x: int) -> np.ndarray:
    """The 512x512 tile at (y, x), as its own contiguous (writable) array."""
    return np.ascontiguousarray(array[y : y + TILE, x : x + TILE])


def tiles(array: np.ndarray, where: tuple[tuple[int, int], ...]) -> list[np.ndarray]:
    return [cut(array, y, x) for y, x in where]


def write_tiles(
    folder: Path, image: np.ndarray, where: tuple[tuple[int, int], ...] | None = None
) -> dict[tuple[int, int], Path]:
    """The tiles at ``where`` (default: all nine) as ``retina_YYYY_XXXX.png`` files in ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for y, x in where if where is not None else [(y, x) for y in STARTS for x in STARTS]:
        path = folder / f"retina_{y:04d}_{x:04d}.png"
        Image.fromarray(cut(image, y, x)).save(path)
        paths[(y, x)] = path
    return paths
