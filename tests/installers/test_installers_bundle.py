"""The offline bundle: complete, checksummed, installable with the network blocked, upgradable, removable."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from _installer_helpers import ROOT, record_time, run

pytestmark = [pytest.mark.installer, pytest.mark.timeout(1800)]  # builds take minutes


def test_bundle_holds_every_wheel_with_hashes(bundle_dir: Path) -> None:
    sums = {
        line.split("  ", 1)[1]: line.split("  ", 1)[0]
        for line in (bundle_dir / "SHA256SUMS").read_text().splitlines()
        if line
    }
    files = {p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*") if p.is_file()}
    assert files - {"SHA256SUMS"} == set(sums)
    for name in ("install.sh", "requirements.lock", "bundle.json", "site-config.example.toml"):
        assert name in sums
    assert {"share/sitelabel.desktop", "share/sitelabel.svg", "share/sitelabel.png"} <= set(sums)
    for relative, digest in sums.items():
        assert hashlib.sha256((bundle_dir / relative).read_bytes()).hexdigest() == digest, relative

    locked = [line for line in (bundle_dir / "requirements.lock").read_text().splitlines() if "==" in line]
    wheels = [w for w in (bundle_dir / "wheels").glob("*.whl") if not w.name.startswith("pip-")]
    assert len(locked) == len(wheels) and all("--hash=sha256:" in line for line in locked)
    names = {line.split("==")[0].lower().replace("_", "-") for line in locked}
    for needed in (
        "sitelabel",
        "onnxruntime",
        "simpleitk",
        "pyside6-essentials",
        "pylibjpeg-libjpeg",
        "psycopg-binary",
    ):
        assert needed in names

    app_wheel = next((bundle_dir / "wheels").glob("sitelabel-*.whl"))
    with zipfile.ZipFile(app_wheel) as archive:
        inside = archive.namelist()
    assert any(n.endswith("share/sitelabel/resources/ontologies/demo.json") for n in inside)
    assert any(n.startswith("app/storage/migrations/versions/0001") for n in inside)


def test_a_damaged_bundle_is_refused_before_anything_is_installed(bundle_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    subprocess.run(["cp", "-al", str(bundle_dir), str(copy)], check=True)  # hard links: no 400 MB copy
    lock = copy / "requirements.lock"
    text = lock.read_text()
    lock.unlink()  # break the hard link before changing the file
    lock.write_text(text.replace("sitelabel==", "sitelabel===", 1))
    done = run(["bash", str(copy / "install.sh"), "--prefix", str(tmp_path / "prefix"), "--no-desktop"])
    assert done.returncode != 0
    assert "checksum mismatch" in done.stderr + done.stdout
    assert not (tmp_path / "prefix").exists()


def _install(
    bundle: Path, tmp_path: Path, env: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    command = [
        "bash",
        str(bundle / "install.sh"),
        "--prefix",
        str(tmp_path / "prefix"),
        "--bin-dir",
        str(tmp_path / "bin"),
        "--apps-dir",
        str(tmp_path / "applications"),
        "--config-dir",
        str(tmp_path / "etc"),
        *extra,
    ]
    return run(command, env=env)


def test_offline_install_upgrade_and_uninstall(
    bundle_dir: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    site = tmp_path / "site.toml"
    site.write_text('autosave_seconds = 3\n[database]\nurl = "%s"\n' % (tmp_path / "team.db"))
    env = {**clean_env, "SITELABEL_CONFIG": str(tmp_path / "etc" / "config.toml")}

    started = time.monotonic()
    first = _install(bundle_dir, tmp_path, env, "--site-config", str(site))
    record_time("offline_install", time.monotonic() - started)
    assert first.returncode == 0, first.stdout + first.stderr
    command = tmp_path / "bin" / "sitelabel"
    assert command.is_symlink() and os.access(command, os.X_OK)
    assert (tmp_path / "etc" / "config.toml").read_text() == site.read_text()
    entry = (tmp_path / "applications" / "sitelabel.desktop").read_text()
    assert f"Exec={command} run" in entry and "Icon=" in entry

    helped = run([str(command), "--help"], env=env)
    assert helped.returncode == 0 and "config" in helped.stdout
    demo = tmp_path / "demo"
    built = run([str(command), "demo", "--dir", str(demo)], env=env)
    assert built.returncode == 0, built.stderr
    shot = tmp_path / "installed-window.png"
    smoke = run([str(command), "run", str(demo / "labels.db"), "--smoke-test", str(shot)], env=env)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "opened 10/10 assets" in smoke.stdout
    assert shot.stat().st_size > 10_000
    checked = run([str(command), "config", "check"], env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "DICOM decoders: JPEG baseline, JPEG lossless, JPEG-LS, JPEG 2000, RLE" in checked.stdout
    python = tmp_path / "prefix" / "current" / "bin" / "python"
    found = run(
        [str(python), "-c", "from app.resources import resources_dir; print(resources_dir())"], env=env
    )
    assert found.stdout.strip().endswith("share/sitelabel/resources"), found.stdout + found.stderr

    # upgrade in place: a new environment, the switch, the previous one kept, the site config untouched
    before = os.readlink(tmp_path / "prefix" / "current")
    (tmp_path / "etc" / "config.toml").write_text(site.read_text() + "# edited by the admin\n")
    time.sleep(1.1)  # a new version folder (named by the second)
    second = _install(bundle_dir, tmp_path, env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert os.readlink(tmp_path / "prefix" / "current") != before
    assert os.readlink(tmp_path / "prefix" / "previous") == before
    assert "# edited by the admin" in (tmp_path / "etc" / "config.toml").read_text()
    assert run([str(command), "--version"], env=env).returncode == 0

    removed = run(
        ["bash", str(bundle_dir / "install.sh"), "--prefix", str(tmp_path / "prefix"), "--uninstall"], env=env
    )
    assert removed.returncode == 0, removed.stderr
    assert not (tmp_path / "prefix").exists()
    assert not command.exists() and not command.is_symlink()
    assert not (tmp_path / "applications" / "sitelabel.desktop").exists()
    assert (tmp_path / "etc" / "config.toml").exists()  # the site config stays


def test_the_install_script_passes_shellcheck_style_basics() -> None:
    """bash -n: the installer parses (shellcheck is not installed here)."""
    assert (
        subprocess.run(["bash", "-n", str(ROOT / "installers" / "install.sh")], check=False).returncode == 0
    )
    if shutil.which("pwsh"):
        script = ROOT / "installers" / "install.ps1"
        parser = "[System.Management.Automation.Language.Parser]"
        parse = f"$null = {parser}::ParseFile('{script}', [ref]$null, [ref]$e); exit $e.Count"
        assert subprocess.run(["pwsh", "-NoProfile", "-Command", parse], check=False).returncode == 0
