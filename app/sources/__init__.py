"""Readers for images, DICOM, video and archives, opened in place and decoded lazily.

``open_source(path)`` reads headers only; ``Source.frame(i)`` decodes on demand (LRU cache,
neighbours prefetched in the background); ``scan(paths)`` walks folders and archives,
groups DICOM files into series and reports one clear error per bad file.

Heavy libraries (pydicom, tifffile, cv2, SimpleITK) are imported by the reader modules,
which load on first use, so ``import app.sources`` stays cheap.
"""

from __future__ import annotations

from app.sources.assets import AssetLocation, asset_path, open_asset
from app.sources.base import ScanResult, Source, SourceRef
from app.sources.dataroots import DataRootError
from app.sources.errors import (
    CorruptFile,
    DecompressionBomb,
    SourceError,
    SourceNotFound,
    SourceUnavailable,
    UnsafeArchive,
    UnsupportedFormat,
)
from app.sources.opening import open_source, scan, supported_patterns
from app.sources.registry import ReaderSpec, find_reader, register_reader
from app.sources.values import WINDOW_PRESETS, SourceKind, SourceLimits, SourceOrigin, VolumeGeometry

__all__ = [
    "WINDOW_PRESETS",
    "AssetLocation",
    "CorruptFile",
    "DataRootError",
    "DecompressionBomb",
    "ReaderSpec",
    "ScanResult",
    "Source",
    "SourceError",
    "SourceKind",
    "SourceLimits",
    "SourceNotFound",
    "SourceOrigin",
    "SourceRef",
    "SourceUnavailable",
    "UnsafeArchive",
    "UnsupportedFormat",
    "VolumeGeometry",
    "asset_path",
    "find_reader",
    "open_asset",
    "open_source",
    "register_reader",
    "scan",
    "supported_patterns",
]
