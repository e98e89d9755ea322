from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from app.sample_data import dicom_file, skimage_images
from app.sources import DecompressionBomb, SourceLimits, UnsafeArchive, open_source, scan
from app.sources.archives import extract_all, safe_member_name


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITELABEL_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../x.png", "a/../../x", "C:/x.png", "c:evil", "\\\\srv\\x", "a\\..\\..\\b"]
)
def test_unsafe_names(name: str) -> None:
    with pytest.raises(UnsafeArchive):
        safe_member_name(name)


def test_safe_names() -> None:
    assert safe_member_name("./a//b/c.dcm") == "a/b/c.dcm"
    assert safe_member_name("dir/") == "dir"
    assert safe_member_name("./") is None


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_members_read_from_cache(tmp_path: Path) -> None:
    png = (skimage_images() / "camera.png").read_bytes()
    arc = _zip(tmp_path / "a.zip", {"img/cam.png": png, "ct.dcm": dicom_file("CT_small.dcm").read_bytes()})
    result = scan([arc])
    assert result.errors == []
    uris = sorted(r.uri for r in result.items)
    assert uris == [f"{arc}!ct.dcm", f"{arc}!img/cam.png"]
    with open_source(f"{arc}!img/cam.png") as src:
        assert src.shape == (512, 512) and src.uri == f"{arc}!img/cam.png"
    root, members = extract_all(arc)
    assert root.is_relative_to(tmp_path / "cache") and sorted(members) == ["ct.dcm", "img/cam.png"]


def test_zip_slip_refused_and_nothing_written(tmp_path: Path) -> None:
    arc = _zip(tmp_path / "slip.zip", {"ok.txt": b"x", "../../evil.txt": b"pwned"})
    with pytest.raises(UnsafeArchive, match="escapes"):
        extract_all(arc)
    assert not list(tmp_path.rglob("evil.txt"))
    result = scan([arc])
    assert len(result.errors) == 1 and "escapes" in result.errors[0][1]


def test_zip_symlink_refused(tmp_path: Path) -> None:
    arc = tmp_path / "link.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        info = zipfile.ZipInfo("link.png")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        extract_all(arc)


@pytest.mark.parametrize("kind", ["sym", "hard", "fifo", "abs"])
def test_tar_links_devices_absolute_refused(tmp_path: Path, kind: str) -> None:
    arc = tmp_path / f"{kind}.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        info = tarfile.TarInfo("x.png" if kind != "abs" else "/tmp/x.png")
        if kind == "sym":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hard":
            info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
        elif kind == "fifo":
            info.type = tarfile.FIFOTYPE
        tf.addfile(info, io.BytesIO(b"") if kind == "abs" else None)
    with pytest.raises(UnsafeArchive):
        extract_all(arc)


def test_tar_and_gz_extract(tmp_path: Path) -> None:
    arc = tmp_path / "t.tgz"
    with tarfile.open(arc, "w:gz") as tf:
        tf.add(skimage_images() / "camera.png", arcname="d/camera.png")
    assert [r.uri for r in scan([arc]).items] == [f"{arc}!d/camera.png"]
    gz = tmp_path / "MR.dcm.gz"
    gz.write_bytes(gzip.compress(dicom_file("MR_small.dcm").read_bytes()))
    with open_source(gz) as src:
        assert src.kind == "dicom" and src.uri == f"{gz}!MR.dcm"


def test_limits_members_size_ratio(tmp_path: Path) -> None:
    many = _zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(20)})
    with pytest.raises(DecompressionBomb, match="members"):
        extract_all(many, SourceLimits(max_archive_members=10))
    zeros = _zip(tmp_path / "zeros.zip", {"z.bin": b"\0" * (20 << 20)})
    with pytest.raises(DecompressionBomb, match="ratio"):
        extract_all(zeros)
    with pytest.raises(DecompressionBomb):
        extract_all(zeros, SourceLimits(max_archive_bytes=1 << 20, max_compression_ratio=1e9))
    gz = tmp_path / "bomb.gz"
    gz.write_bytes(gzip.compress(b"\0" * (30 << 20)))
    with pytest.raises(DecompressionBomb):
        extract_all(gz)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_cache_dir_env_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITELABEL_CACHE_DIR", os.fspath(tmp_path / "elsewhere"))
    arc = _zip(tmp_path / "a.zip", {"a.txt": b"1"})
    root, _ = extract_all(arc)
    assert root.is_relative_to(tmp_path / "elsewhere")
    root2, _ = extract_all(arc, cache_dir=tmp_path / "explicit")
    assert root2.is_relative_to(tmp_path / "explicit")
