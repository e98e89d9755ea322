from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITELABEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.fixture(scope="module")
def ct_series(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    # No package ships a full multi-file CT series: build one from the real 693_UNCI.dcm slice
    # (shuffled file names, untrustworthy InstanceNumbers, z stepping 2.5 mm).
    from app.sources.synthetic import build_ct_series

    folder = tmp_path_factory.mktemp("ct")
    return folder, build_ct_series(folder, 24, spacing=2.5)
