"""Open a registered asset in place: the one way from (data root, relative path, member) to a source.

The stored path goes through ``DataRoots.resolve``, so a relative path that leaves its root
(``..``, an absolute path, a drive letter) is refused with ``DataRootError`` before anything is
read, whichever layer asks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.core.errors import NotFoundError
from app.sources.dataroots import DataRoots
from app.sources.opening import ARCHIVE_MARK, open_source
from app.sources.values import SourceLimits, SourceOrigin

if TYPE_CHECKING:
    from app.sources.base import Source

Roots = Mapping[str, "str | os.PathLike[str]"]


class AssetLocation(Protocol):
    """Where a registered asset lives (``app.core.records.Asset`` is one)."""

    @property
    def root(self) -> str: ...

    @property
    def rel_path(self) -> str: ...

    @property
    def member(self) -> str | None: ...


def asset_path(asset: AssetLocation, roots: Roots) -> Path:
    """The asset's file or folder on this workstation.

    ``NotFoundError`` when its data root is not configured here; ``DataRootError`` when the stored
    path would leave the root.
    """
    if asset.root not in roots:
        raise NotFoundError(
            f"data root {asset.root!r} is not configured on this workstation; add it under [data_roots] "
            "in the site config"
        )
    return DataRoots(roots).resolve(asset.root, asset.rel_path)


def asset_name(asset: AssetLocation) -> str:
    """What people know an asset by: its path under the data root, plus the archive member."""
    member = asset.member or ""
    return (asset.rel_path or asset.root) + (member if member.startswith(ARCHIVE_MARK) else "")


def _address(path: Path, member: str | None) -> str:
    """The reader's address: an archive member after '!', a series after '#'."""
    member = member or ""
    if member.startswith(ARCHIVE_MARK):
        return f"{path}{member}"
    if member:  # stored as "series=UID[&part=N]"
        return f"{path}#{member}"
    return str(path)


def open_asset(asset: AssetLocation, roots: Roots, *, max_pixels: int | None = None) -> Source:
    """Open an asset's source in place, wherever this workstation mounts its data root.

    Raises ``NotFoundError`` for an unconfigured root or a missing file, ``DataRootError`` for a
    stored path that leaves its root. The source's ``origin`` names the asset and its data folder,
    so a frame that cannot be read later says which folder to bring back.
    """
    path = asset_path(asset, roots)
    if not path.exists():
        raise NotFoundError(f"{path} is missing: the file was moved or its share is not mounted")
    limits = SourceLimits() if max_pixels is None else SourceLimits(max_pixels=max_pixels)
    source = open_source(_address(path, asset.member), limits=limits)
    source.origin = SourceOrigin(asset_name(asset), Path(roots[asset.root]))
    return source
