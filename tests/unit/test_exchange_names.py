"""Export names: whole series UIDs, and no name changes when assets arrive or filters select."""

from __future__ import annotations

from pathlib import PurePosixPath

from app.core.records import Asset, AssetKind
from app.exchange.names import base_name, item_names, legacy_names

UID = "1.2.826.0.1.3680043.8.498.11"


def _asset(asset_id: int, rel: str, member: str | None = None, kind: AssetKind = AssetKind.IMAGE) -> Asset:
    return Asset(asset_id, 1, 1, kind, "studies", rel, member, 1, 1, "x", 1, 8, 8)


def test_a_series_keeps_its_whole_uid_and_a_folder_its_dots() -> None:
    series = _asset(1, "ct.v2/mri", f"series={UID}", AssetKind.DICOM_SERIES)
    part = _asset(2, "ct.v2/mri", f"series={UID}&part=2", AssetKind.DICOM_SERIES)
    assert item_names([series, part]) == {
        1: PurePosixPath(f"studies/ct.v2/mri/series={UID}"),
        2: PurePosixPath(f"studies/ct.v2/mri/series={UID}_part=2"),
    }
    assert legacy_names(series) == [PurePosixPath("studies/ct.v2/mri/series=1.2.826.0.1.3680043.8.498")]
    zipped = _asset(3, "a.zip", f"!scans/b.png#series={UID}", AssetKind.DICOM_SERIES)
    assert base_name(zipped) == PurePosixPath(f"studies/a.zip/scans/b.png/series={UID}")
    assert base_name(_asset(4, "a.zip", "!scans/b.png")) == PurePosixPath("studies/a.zip/scans/b")


def test_names_do_not_change_when_assets_arrive_or_are_filtered() -> None:
    first = _asset(5, "x/scan.png")
    alone = item_names([first])
    later = [_asset(9, "x/scan.jpg"), _asset(12, "x/scan"), _asset(14, "x/scan.jpg.png")]
    grown = item_names([*later, first])  # any order
    assert grown[5] == alone[5] == PurePosixPath("studies/x/scan")
    assert grown[9] == PurePosixPath("studies/x/scan.jpg")  # the later namesake keeps its extension
    assert grown[12] == PurePosixPath("studies/x/scan~12")  # no extension to keep: its id
    assert grown[14] == PurePosixPath("studies/x/scan.jpg.png")
    assert len(set(grown.values())) == 4
    assert item_names(later)[9] == PurePosixPath("studies/x/scan")  # ... computed over what is given
