"""Plain values the readers, the registry and the callers share: limits, geometry, origin, presets.

A leaf: it imports nothing from ``app.sources``, so every reader can use it without reaching
back into the module that dispatches to readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # numpy is imported lazily so `import app.sources` stays cheap
    import numpy as np

SourceKind = Literal["image", "dicom", "video"]

# (centre, width) in HU.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "abdomen": (40.0, 400.0),
}


@dataclass(frozen=True)
class SourceLimits:
    """Guards against hostile or accidental huge inputs, plus cache/thread budgets."""

    max_pixels: int = 1_200_000_000  # 30k x 40k pixels per frame
    max_archive_members: int = 100_000
    max_archive_bytes: int = 64 * 1024**3  # total uncompressed bytes extracted from one archive
    max_compression_ratio: float = 200.0
    cache_bytes: int = 512 * 1024**2  # decoded-frame LRU budget per source
    prefetch: int = 4  # neighbours queued after each frame() call (video reads ahead 2x this)
    decode_threads: int = 4  # thread pool size for volume() and prefetch


@dataclass(frozen=True)
class VolumeGeometry:
    """Patient geometry of a volume, kept as in DICOM/ITK (LPS, millimetres).

    ``origin`` is the (x, y, z) LPS position of the centre of voxel (0, 0, 0).
    ``spacing`` is in ITK order (x=column, y=row, z=slice), i.e. ``Source.spacing`` reversed.
    ``direction`` is the 3x3 matrix flattened row-major; its columns are the unit
    vectors of the index axes i (columns), j (rows), k (slices), exactly as
    ``SimpleITK.Image.GetDirection()`` returns it.
    """

    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    direction: tuple[float, float, float, float, float, float, float, float, float]

    def matrix(self) -> np.ndarray:
        import numpy as np

        return np.asarray(self.direction, dtype=np.float64).reshape(3, 3)

    def index_to_lps(self, i: float, j: float, k: float) -> tuple[float, float, float]:
        """LPS position of continuous index (i=column, j=row, k=slice)."""
        import numpy as np

        ijk = np.asarray([i, j, k], dtype=np.float64) * np.asarray(self.spacing)
        p = np.asarray(self.origin) + self.matrix() @ ijk
        return (float(p[0]), float(p[1]), float(p[2]))

    def as_dict(self) -> dict[str, list[float]]:
        return {"origin": list(self.origin), "spacing": list(self.spacing), "direction": list(self.direction)}


@dataclass(frozen=True)
class SourceOrigin:
    """Where a registered asset's source lives, for messages people can act on."""

    name: str  # what people know it by: the path relative to its data root, e.g. "CT/series1"
    root: Path  # the data-root folder on this workstation, e.g. /mnt/data
