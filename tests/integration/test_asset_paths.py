"""A stored asset path that leaves its data root is refused, whichever way the asset is opened.

The database could hold such a path from a bug, a hand edit or a hostile import. Every entry point
that reads an asset (the API, the headless render, the CLI, the pre-label pass, the verify check)
goes through ``app.sources.open_asset``/``asset_path``, which refuse it with one line instead of
reading a file outside the root.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from support.models import threshold_model

from app import api, sample_data
from app.sources import DataRootError

COMMAND = (sys.executable, "-m", "app")
ONTOLOGY = {"classes": [{"name": "vessel", "color": "#c0504d", "kinds": ["polygon", "mask"]}]}

# Both point at the real file from the built-in "local" root (/), so the old joins opened it.
BAD_PATHS: dict[str, Callable[[str], str]] = {
    "dot-dot": lambda rel: f"../{rel}",
    "absolute": lambda rel: f"/{rel}",
}


def _tampered(tmp_path: Path, kind: str) -> tuple[api.Project, int, str]:
    """A project whose one asset (coins.png) has its stored path rewritten to leave its root."""
    project = api.create_project(str(tmp_path / "labels.db"), "paths", ontology=ONTOLOGY, user="alice")
    (asset_id,) = project.import_data([sample_data.skimage_images() / "coins.png"])
    bad = BAD_PATHS[kind](project.asset(asset_id).rel_path)
    with project.db.engine.begin() as conn:
        conn.execute(text("UPDATE assets SET rel_path = :p WHERE id = :i"), {"p": bad, "i": asset_id})
    return project, asset_id, bad


def _one_line_refusal(message: str, bad: str) -> None:
    assert "\n" not in message.strip()
    assert repr(bad) in message and "stay inside its root" in message


@pytest.mark.parametrize("kind", sorted(BAD_PATHS))
def test_the_api_refuses_a_path_that_leaves_its_root(tmp_path: Path, kind: str) -> None:
    project, asset_id, bad = _tampered(tmp_path, kind)
    with pytest.raises(DataRootError) as opened:
        project.open_asset(asset_id)
    _one_line_refusal(str(opened.value), bad)
    with pytest.raises(DataRootError):
        project.asset_path(asset_id)
    (check,) = project.verify()
    assert check.state == "unmapped" and check.path is None
    _one_line_refusal(check.detail, bad)
    project.close()


@pytest.mark.parametrize("kind", sorted(BAD_PATHS))
def test_render_refuses_a_path_that_leaves_its_root(tmp_path: Path, kind: str) -> None:
    from app.exchange.render import render_asset

    project, asset_id, bad = _tampered(tmp_path, kind)
    with pytest.raises(DataRootError) as rendered:
        project.render(asset_id)
    _one_line_refusal(str(rendered.value), bad)
    with pytest.raises(DataRootError):
        render_asset(
            project.db,
            project.id,
            asset_id,
            roots=project.config.all_data_roots,
            max_pixels=project.config.max_image_pixels,
        )
    project.close()


def test_the_render_command_refuses_it_in_one_line(tmp_path: Path) -> None:
    project, asset_id, bad = _tampered(tmp_path, "dot-dot")
    project.close()
    db = str(tmp_path / "labels.db")
    out = tmp_path / "render.png"
    result = subprocess.run(
        [*COMMAND, "render", "--db", db, "--user", "alice", "--asset", str(asset_id), "--out", str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert result.returncode != 0 and not out.exists()
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    _one_line_refusal(line, bad)


@pytest.mark.parametrize("kind", sorted(BAD_PATHS))
def test_prelabel_skips_an_asset_whose_path_leaves_its_root(tmp_path: Path, kind: str) -> None:
    project, asset_id, bad = _tampered(tmp_path, kind)
    project.register_model(threshold_model(tmp_path / "incoming"))
    report = project.prelabel(["bright"])
    assert report.annotations == 0
    ((skipped_id, why),) = report.skipped
    assert skipped_id == asset_id
    _one_line_refusal(why, bad)
    assert not project.annotation_objects(asset_id)
    project.close()
