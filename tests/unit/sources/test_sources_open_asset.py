"""app.sources.open_asset: one way from (data root, stored path, member) to an opened source."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from app import sample_data
from app.core.errors import NotFoundError
from app.sources import DataRootError, asset_path, open_asset


@dataclass(frozen=True)
class Where:
    root: str
    rel_path: str
    member: str | None = None


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "studies"
    (folder / "ct").mkdir(parents=True)
    (folder / "ct" / "camera.png").write_bytes((sample_data.skimage_images() / "camera.png").read_bytes())
    (tmp_path / "outside.png").write_bytes((sample_data.skimage_images() / "coins.png").read_bytes())
    return folder


def test_opens_in_place_and_names_the_asset(root: Path) -> None:
    with open_asset(Where("studies", "ct/camera.png"), {"studies": root}, max_pixels=10**7) as source:
        assert source.shape == (512, 512) and source.limits.max_pixels == 10**7
        assert source.origin is not None
        assert source.origin.name == "ct/camera.png" and source.origin.root == root


def test_opens_an_archive_member(root: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(root / "ct" / "two.zip", "w") as zf:
        zf.write(root / "ct" / "camera.png", "a/camera.png")
        zf.writestr("b.txt", "not an image")
    asset = Where("studies", "ct/two.zip", "!a/camera.png")
    with open_asset(asset, {"studies": root}) as source:
        assert source.shape == (512, 512) and source.uri.endswith("two.zip!a/camera.png")
        assert source.origin is not None and source.origin.name == "ct/two.zip!a/camera.png"


LEAVING = [
    "../outside.png",
    "ct/../../outside.png",
    "/etc/passwd",
    "\\etc\\passwd",
    "..\\outside.png",
    "C:/x",
]


@pytest.mark.parametrize("bad", LEAVING)
def test_a_stored_path_that_leaves_its_root_is_refused(root: Path, bad: str) -> None:
    with pytest.raises(DataRootError) as refused:
        open_asset(Where("studies", bad), {"studies": root})
    message = str(refused.value)
    assert "\n" not in message and repr(bad) in message and "'studies'" in message
    with pytest.raises(DataRootError):
        asset_path(Where("studies", bad), {"studies": root})


def test_an_unknown_root_or_a_missing_file_is_not_found(root: Path) -> None:
    with pytest.raises(NotFoundError, match="data root 'nas' is not configured on this workstation"):
        open_asset(Where("nas", "ct/camera.png"), {"studies": root})
    with pytest.raises(NotFoundError, match="data root 'nas' is not configured"):
        open_asset(Where("nas", "ct/camera.png"), {})
    with pytest.raises(NotFoundError, match="is missing"):
        open_asset(Where("studies", "ct/gone.png"), {"studies": root})
