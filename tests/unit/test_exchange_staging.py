"""ExportTransaction: incremental commits, removal of obsolete files, rollback of a failed commit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.exchange.staging import ExportTransaction


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_incremental_commit_and_obsolete_files(tmp_path: Path) -> None:
    with ExportTransaction(tmp_path, fmt="t") as tx:
        tx.write_text("a/one.txt", "1")
        tx.write_text("two.txt", "2")
        assert tx.commit().written == 2
    (tmp_path / "user-notes.txt").write_text("mine")  # not ours: never touched
    with ExportTransaction(tmp_path, fmt="t") as tx:
        tx.write_text("two.txt", "2")
        tx.write_text("three.txt", "3")
        result = tx.commit()
    assert (result.written, result.unchanged, result.removed) == (1, 1, 1)
    assert _files(tmp_path).keys() == {"two.txt", "three.txt", "user-notes.txt", "manifest.json"}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"two.txt", "three.txt"} and manifest["format"] == "t"


def test_failed_commit_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ExportTransaction(tmp_path, fmt="t") as tx:
        tx.write_text("one.txt", "1")
        tx.write_text("two.txt", "2")
        tx.commit()
    before = _files(tmp_path)
    import app.exchange.staging as staging

    def no_manifest(self: ExportTransaction) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(staging.ExportTransaction, "_write_manifest", no_manifest)
    with pytest.raises(staging.ExportError, match="is full"), ExportTransaction(tmp_path, fmt="t") as tx:
        tx.write_text("one.txt", "changed")
        tx.write_text("new.txt", "new")
        tx.commit()
    assert _files(tmp_path) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sitelabel")]


@pytest.mark.parametrize("name", ["../x", "/abs", "manifest.json", ".sitelabel-staging-1/x", "C:/x"])
def test_bad_names(tmp_path: Path, name: str) -> None:
    with ExportTransaction(tmp_path, fmt="t") as tx, pytest.raises(ValueError, match="bad export file name"):
        tx.write_text(name, "x")
