"""The frozen one-folder app (PyInstaller) starts offscreen on projects, with the network blocked.

It must carry everything found at run time by path or entry point: migrations (a new database is
created through them), resources (ontology templates), the demo's sample files, the pydicom decoder
plugins (compressed DICOM opens), onnxruntime, SimpleITK, OpenCV (the demo video), psycopg.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _installer_helpers import run

from app import sample_data

pytestmark = [pytest.mark.installer, pytest.mark.timeout(1800)]  # builds take minutes

# one file per decoder plugin the frozen app must have found through its entry points
COMPRESSED = (
    "693_J2KR.dcm",  # JPEG 2000 lossless, 512 x 512 CT (openjpeg)
    "emri_small_jpeg_ls_lossless.dcm",  # JPEG-LS, 10 frames (libjpeg / pyjpegls)
    "SC_rgb_rle.dcm",  # RLE, colour
    "SC_jpeg_no_color_transform.dcm",  # JPEG baseline
    "JPGLosslessP14SV1_1s_1f_8b.dcm",  # JPEG lossless, process 14 (libjpeg only)
)  # distinct SOP instances: many of pydicom's samples are one image in several encodings


def test_frozen_app_runs_offline_on_demo_and_compressed_dicom(
    frozen_app: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    app = str(frozen_app)
    assert run([app, "--version"], env=clean_env).stdout.startswith("sitelabel ")
    checked = run([app, "config", "check"], env=clean_env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "DICOM decoders: JPEG baseline, JPEG lossless, JPEG-LS, JPEG 2000, RLE" in checked.stdout
    assert "onnxruntime" in checked.stdout and "SimpleITK" in checked.stdout
    assert "model training: onnx" in checked.stdout  # on-site training writes ONNX graphs

    demo = tmp_path / "demo"
    built = run([app, "demo", "--dir", str(demo)], env=clean_env)
    assert built.returncode == 0, built.stdout + built.stderr
    shot = tmp_path / "frozen-demo.png"
    smoke = run([app, "run", str(demo / "labels.db"), "--smoke-test", str(shot)], env=clean_env)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "opened 10/10 assets" in smoke.stdout
    assert shot.stat().st_size > 10_000

    db = str(tmp_path / "compressed.db")
    made = run([app, "init", "compressed", "--db", db, "--template", "chest_ct_organs"], env=clean_env)
    assert made.returncode == 0, made.stdout + made.stderr
    # one folder each: the three MR_small variants share a series UID and would become one series
    files = []
    for index, name in enumerate(COMPRESSED):
        folder = tmp_path / "dicom" / str(index)
        folder.mkdir(parents=True)
        files.append(str(shutil.copy(sample_data.dicom_file(name), folder / name)))
    imported = run([app, "import", *files, "--db", db], env=clean_env)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    opened = run([app, "run", db, "--smoke-test"], env=clean_env)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    assert f"opened {len(COMPRESSED)}/{len(COMPRESSED)} assets" in opened.stdout
    upgraded = run([app, "db", "upgrade", db], env=clean_env)
    assert upgraded.returncode == 0 and "already at" in upgraded.stdout


@pytest.mark.postgres
def test_frozen_app_on_postgresql(
    frozen_app: Path, pg_url: str, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    app = str(frozen_app)
    made = run([app, "init", "team", "--db", pg_url], env=clean_env, blocked=False)
    assert made.returncode == 0, made.stdout + made.stderr
    images = sample_data.skimage_images()
    imported = run(
        [app, "import", str(images / "coins.png"), str(images / "camera.png"), "--db", pg_url],
        env=clean_env,
        blocked=False,
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    opened = run([app, "run", pg_url, "--smoke-test"], env=clean_env, blocked=False)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    assert "opened 2/2 assets" in opened.stdout and "postgresql" in opened.stdout
