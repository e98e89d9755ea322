"""The `sitelabel` command as an admin or ML engineer runs it: real processes, real databases."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app import sample_data


def sitelabel(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_help_lists_the_verbs_without_loading_qt() -> None:
    result = sitelabel("--help")
    assert result.returncode == 0
    for verb in ("run", "demo", "init", "import", "inspect", "db", "users"):
        assert verb in result.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from app.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
            "heavy = ('PySide6', 'sqlalchemy', 'numpy', 'cv2')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip().endswith("[]")


def test_init_import_users_and_status(db_url: str, tmp_path: Path) -> None:
    ontology = tmp_path / "onto.json"
    ontology.write_text('{"classes": [{"name": "liver", "kinds": ["polygon"]}]}')
    created = sitelabel("init", "liver", "--db", db_url, "--ontology", str(ontology), "--user", "carol")
    assert created.returncode == 0, created.stderr
    assert "created project 'liver'" in created.stdout
    imported = sitelabel(
        "import",
        str(sample_data.dicom_file("CT_small.dcm")),
        str(sample_data.skimage_images() / "camera.png"),
        "--db",
        db_url,
        "--user",
        "carol",
    )
    assert imported.returncode == 0, imported.stderr
    assert "registered 2 new assets" in imported.stdout
    stranger = sitelabel(
        "import", str(sample_data.skimage_images() / "coins.png"), "--db", db_url, "--user", "eve"
    )
    assert stranger.returncode == 1 and "eve is not a member of project 'liver'" in stranger.stderr
    added = sitelabel(
        "users", "add", "dave", "--role", "reviewer", "--project", "liver", "--db", db_url, "--user", "carol"
    )
    assert added.returncode == 0, added.stderr
    by_reviewer = sitelabel(
        "import", str(sample_data.skimage_images() / "coins.png"), "--db", db_url, "--user", "dave"
    )
    assert by_reviewer.returncode == 1 and "dave is a reviewer" in by_reviewer.stderr
    not_admin = sitelabel("users", "add", "eve", "--role", "admin", "--db", db_url, "--user", "dave")
    assert not_admin.returncode == 1 and "only a site admin" in not_admin.stderr
    listed = sitelabel("users", "list", "--project", "liver", "--db", db_url)
    assert "dave" in listed.stdout and "reviewer" in listed.stdout
    assert "carol" in listed.stdout and "project_admin" in listed.stdout
    status = sitelabel("db", "status", db_url)
    assert status.returncode == 0, status.stderr
    upgraded = sitelabel("db", "upgrade", db_url)
    assert upgraded.returncode == 0 and "already at" in upgraded.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("case", ["bad-url", "unreachable-pg", "corrupt-sqlite", "missing-file"])
def test_bad_databases_give_one_clear_line_and_a_nonzero_exit(case: str, tmp_path: Path) -> None:
    if case == "bad-url":
        target = "mysql://someone@somewhere/db"
    elif case == "unreachable-pg":
        target = f"postgresql://nobody@127.0.0.1:{_free_port()}/sitelabel"
    elif case == "corrupt-sqlite":
        target = str(tmp_path / "broken.db")
        Path(target).write_bytes(os.urandom(8192))
    else:
        target = str(tmp_path / "nowhere" / "x.db")
    result = sitelabel("db", "status", target)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.startswith("sitelabel: ") and len(message.splitlines()) == 1, message


def test_newer_schema_is_refused(db_url: str) -> None:
    from sqlalchemy import text

    from app.storage import Database

    db = Database.open(db_url)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    db.dispose()
    result = sitelabel("db", "status", db_url)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "newer" in result.stderr
    opened = sitelabel("import", str(sample_data.skimage_images() / "camera.png"), "--db", db_url)
    assert opened.returncode != 0 and "newer" in opened.stderr and "Traceback" not in opened.stderr


def test_inspect_prints_what_the_reader_found_as_json() -> None:
    import json

    result = sitelabel("inspect", str(sample_data.dicom_file("CT_small.dcm")), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["kind"] == "dicom" and info["shape"] == [128, 128] and info["frame_count"] == 1
    assert info["metadata"]["Modality"] == "CT"
    broken = sitelabel("inspect", str(sample_data.dicom_file("MR_truncated.dcm")))
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert broken.stderr.startswith("sitelabel: ")


def test_render_writes_the_frame_with_its_annotations(db_url: str, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from app import api

    project = api.create_project(
        db_url,
        "render",
        ontology={"classes": [{"name": "coin", "color": "#ff0000", "kinds": ["box"]}]},
        user="rita",
    )
    (asset_id,) = project.import_data([sample_data.skimage_images() / "coins.png"])
    project.upload_annotations(asset_id, [{"kind": "box", "label": "coin", "box": [10, 10, 60, 50]}])
    project.close()
    out = tmp_path / "render.png"
    result = sitelabel(
        "render", "--db", db_url, "--asset", str(asset_id), "--out", str(out), "--user", "rita"
    )
    assert result.returncode == 0, result.stderr
    picture = np.asarray(Image.open(out))
    assert picture.shape[:2] == (303, 384)
    inside, outside = picture[30, 30, :3].astype(int), picture[100, 200, :3].astype(int)
    assert inside[0] > inside[1] + 40  # tinted by the red class colour
    assert abs(outside[0] - outside[1]) < 3  # grey image untouched outside
    missing = sitelabel("render", "--db", db_url, "--asset", "999", "--out", str(out), "--user", "rita")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_export_and_import_labels_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    from app import api

    ontology = {"classes": [{"name": "coin", "color": "#ff0000", "kinds": ["polygon", "box"]}]}
    project = api.create_project(db_url, "cli-export", ontology=ontology, user="olga")
    (asset_id,) = project.import_data([sample_data.skimage_images() / "coins.png"])
    project.upload_annotations(
        asset_id, [{"kind": "polygon", "label": "coin", "points": [[20, 12], [58, 10], [60, 72]]}]
    )
    project.close()
    out = tmp_path / "coco"
    exported = sitelabel("export", "--db", db_url, "--format", "coco", "--out", str(out), "--user", "olga")
    assert exported.returncode == 0, exported.stderr
    assert "1 annotations of 1 assets" in exported.stdout and (out / "manifest.json").is_file()
    unknown = sitelabel(
        "export", "--db", db_url, "--format", "tiff-stack", "--out", str(out), "--user", "olga"
    )
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr and "coco" in unknown.stderr
    dry = sitelabel(
        "import-labels",
        str(out / "annotations.json"),
        "--format",
        "coco",
        "--db",
        db_url,
        "--dry-run",
        "--user",
        "olga",
    )
    assert dry.returncode == 0, dry.stderr
    assert "would import 1 annotations onto 1 assets" in dry.stdout


def test_a_mistyped_project_name_is_refused_not_created(db_url: str) -> None:
    from app import api

    api.create_project(db_url, "liver", user="tom").close()
    result = sitelabel(
        "import",
        str(sample_data.skimage_images() / "coins.png"),
        "--db",
        db_url,
        "--project",
        "livr",
        "--user",
        "tom",
    )
    assert result.returncode == 1 and "no project named 'livr'" in result.stderr
    from app.core.errors import NotFoundError

    with pytest.raises(NotFoundError):
        api.open_project(db_url, "livr", user="tom", create=False)
