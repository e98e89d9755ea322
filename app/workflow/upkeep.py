"""Keeping a project's registered data in step with the disks: report assets whose files went
missing, changed or were re-copied since import."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from app.core.records import Asset
from app.workflow.importing import location_fingerprint

if TYPE_CHECKING:
    from app.storage import Database

AssetState = Literal["ok", "missing", "changed", "moved?", "unmapped"]


@dataclass(frozen=True)
class AssetCheck:
    asset: Asset
    state: AssetState
    path: Path | None
    detail: str = ""


def verify_assets(
    db: Database, project_id: int, roots: Mapping[str, Path], assets: list[Asset] | None = None
) -> list[AssetCheck]:
    """Compare each asset's file(s) with the size/mtime/hash recorded at import."""
    from app.sources import DataRootError, asset_path
    from app.sources.dataroots import FileFingerprint, check

    if assets is None:
        with db.unit_of_work(readonly=True) as uow:
            assets = list(uow.assets.list(project_id))
    results: list[AssetCheck] = []
    for asset in assets:
        if asset.root not in roots:
            results.append(
                AssetCheck(asset, "unmapped", None, f"data root {asset.root!r} is not configured here")
            )
            continue
        try:
            path = asset_path(asset, roots)
        except DataRootError as exc:  # a stored path that leaves its root is never followed
            results.append(AssetCheck(asset, "unmapped", None, str(exc)))
            continue
        if asset.content_hash.startswith("files:"):  # a series folder: compare its file list
            if not path.is_dir():
                results.append(AssetCheck(asset, "missing", path, "series folder is gone"))
                continue
            now = location_fingerprint(path, asset.member)
            state: AssetState = "ok" if now is not None and now[2] == asset.content_hash else "changed"
            results.append(AssetCheck(asset, state, path))
            continue
        expected = FileFingerprint(asset.size, asset.mtime_ns, asset.content_hash)
        results.append(AssetCheck(asset, check(path, expected), path))
    return results
