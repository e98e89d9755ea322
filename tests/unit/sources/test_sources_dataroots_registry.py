from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from app.sources.dataroots import DataRootError, DataRoots, check, find_moved, fingerprint
from app.sources.dicom_geometry import sort_series
from app.sources.dicom_header import DicomHeader
from app.sources.registry import find_reader


def test_to_relative_longest_prefix(tmp_path: Path) -> None:
    roots = DataRoots({"studies": tmp_path / "nas", "ct": tmp_path / "nas" / "ct"})
    assert roots.to_relative(tmp_path / "nas" / "mr" / "a.dcm") == ("studies", "mr/a.dcm")
    assert roots.to_relative(tmp_path / "nas" / "ct" / "x" / "b.dcm") == ("ct", "x/b.dcm")
    with pytest.raises(DataRootError):
        roots.to_relative(tmp_path / "other" / "a.dcm")
    with pytest.raises(DataRootError):
        roots.to_relative(tmp_path / "nas2" / "a.dcm")  # a prefix of the string is not a parent


def test_resolve_on_another_workstation(tmp_path: Path) -> None:
    here = DataRoots({"studies": "/mnt/studies"})
    there = DataRoots({"studies": tmp_path})
    name, rel = here.to_relative("/mnt/studies/ct/1.dcm")
    assert there.resolve(name, rel) == tmp_path / "ct" / "1.dcm"
    for bad in ("../etc/passwd", "/abs", "C:/x"):
        with pytest.raises(DataRootError):
            there.resolve("studies", bad)
    with pytest.raises(DataRootError):
        there.resolve("nope", "a")


def test_fingerprint_check(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(os.urandom(3 << 20))
    fp = fingerprint(f)
    assert check(f, fp) == "ok"
    data = f.read_bytes()
    moved = tmp_path / "moved.bin"
    f.rename(moved)
    assert check(f, fp) == "missing"
    assert find_moved(fp, [tmp_path / "x", moved]) == moved
    f.write_bytes(data)
    os.utime(f, ns=(time.time_ns(), fp.mtime_ns + 10**9))
    assert check(f, fp) == "moved?"
    f.write_bytes(data[:-1] + b"\x00" if data[-1] else data[:-1] + b"\x01")
    assert check(f, fp) == "changed"


def test_registry_sniffing_beats_names(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
    assert find_reader(Path("x.jpg"), png).name == "png"  # type: ignore[union-attr]
    dicom = b"\0" * 128 + b"DICM" + b"\0" * 20
    assert find_reader(Path("noext"), dicom).name == "dicom"  # type: ignore[union-attr]
    assert find_reader(Path("fake.dcm"), b"hello").name == "dicom"  # type: ignore[union-attr]
    assert find_reader(Path("a.txt"), b"hello") is None
    assert find_reader(Path("v.bin"), b"\0\0\0\x18ftypmp42").name == "video"  # type: ignore[union-attr]
    assert find_reader(Path("a.tgz"), b"\x1f\x8b\x08").name == "archive"  # type: ignore[union-attr]


def _h(name: str, z: float, inst: int) -> DicomHeader:
    tags = {"ImagePositionPatient": [0.0, 0.0, z], "ImageOrientationPatient": [1.0, 0, 0, 0, 1.0, 0],
            "PixelSpacing": [0.5, 0.5], "InstanceNumber": inst, "Rows": 4, "Columns": 4}  # fmt: skip
    return DicomHeader(Path(name), tags, "1.2.840.10008.1.2.1", 100, True)


def test_sort_by_position_not_name_or_instance() -> None:
    hs = [_h("c", 5.0, 1), _h("a", 0.0, 3), _h("b", 2.5, 2), _h("d", 7.5, 9)]
    s = sort_series(hs)
    assert [h.path.name for h in s.headers] == ["a", "b", "c", "d"]
    assert s.spacing == (2.5, 0.5, 0.5) and s.warnings == []


def test_sort_reports_gaps_duplicates_uneven() -> None:
    s = sort_series(
        [_h("a", 0, 1), _h("b", 1, 2), _h("dup", 1, 3), _h("c", 2, 4), _h("d", 5, 5), _h("e", 6.2, 6)]
    )
    text = "\n".join(s.warnings)
    assert "duplicate slice" in text and "dup" in text
    assert "gap of 3.00 mm" in text and "uneven" in text
    assert len(s.headers) == 5


def test_oblique_normal_ordering() -> None:
    # Sagittal slices: row (0,1,0) x column (0,0,-1) gives the normal -x, so the slice order runs
    # from high x to low x (as ITK/GDCM order it).
    def sag(name: str, x: float) -> DicomHeader:
        tags = {"ImagePositionPatient": [x, 10.0, 3.0], "ImageOrientationPatient": [0, 1.0, 0, 0, 0, -1.0],
                "PixelSpacing": [1.0, 1.0], "Rows": 4, "Columns": 4}  # fmt: skip
        return DicomHeader(Path(name), tags, "1.2.840.10008.1.2.1", 100, True)

    s = sort_series([sag("b", 4.0), sag("a", 2.0), sag("c", 6.0)])
    assert [h.path.name for h in s.headers] == ["c", "b", "a"] and s.spacing is not None
    assert s.spacing[0] == pytest.approx(2.0)
