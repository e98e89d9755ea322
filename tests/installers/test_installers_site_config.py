"""The site config a site admin deploys: lookup and merging, validation with line hints, database
passwords from a private file (never shown), `sitelabel config check`, `sitelabel db upgrade`."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app import api
from app.config import ConfigError, load_site_config, read_site_config
from app.core.errors import ValidationError
from app.storage import Database, migrate
from app.storage.engine import build_engine
from app.storage.urls import parse_target

PASSWORD = "s3cret-Pw_42"


def sitelabel(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        input=stdin,
        timeout=120,
        check=False,
    )


@pytest.fixture
def system_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system-wide config folder, moved into the test's temp dir (XDG_CONFIG_DIRS)."""
    folder = tmp_path / "etc-xdg"
    (folder / "sitelabel").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(folder))
    return folder / "sitelabel"


def user_dir() -> Path:
    folder = Path(os.environ["XDG_CONFIG_HOME"]) / "sitelabel"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- lookup -----------------------------------------------------------------------------------
def test_user_file_overrides_keys_of_the_system_file(system_dir: Path, tmp_path: Path) -> None:
    (system_dir / "config.toml").write_text(
        'database = "postgresql://db.site/labels"\nautosave_seconds = 5\nexport_dir = "/srv/exports"\n'
        '[data_roots]\nstudies = "/mnt/studies"\nscans = "/mnt/scans"\n'
    )
    (user_dir() / "config.toml").write_text(
        'autosave_seconds = 1.5\n[database]\npassword_file = "~/pw"\n'
        '[data_roots]\nstudies = "/media/ana/studies"\n'
    )
    config = load_site_config()
    assert config.database == "postgresql://db.site/labels"  # from the system file
    assert config.autosave_seconds == 1.5  # the user's
    assert config.export_dir == Path("/srv/exports")
    assert config.data_roots == {"studies": Path("/media/ana/studies"), "scans": Path("/mnt/scans")}
    assert config.password_file == Path("~/pw").expanduser()
    assert config.files == (system_dir / "config.toml", user_dir() / "config.toml")


def test_sitelabel_config_alone_wins(
    system_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (system_dir / "config.toml").write_text("autosave_seconds = 5\n")
    (user_dir() / "config.toml").write_text("autosave_seconds = 6\n")
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("max_image_pixels = 1000\n")
    monkeypatch.setenv("SITELABEL_CONFIG", str(explicit))
    config = load_site_config()
    assert config.autosave_seconds == 2.0 and config.max_image_pixels == 1000
    monkeypatch.setenv("SITELABEL_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_site_config()


# --- validation -----------------------------------------------------------------------------------
def test_every_problem_is_reported_with_its_line(system_dir: Path) -> None:
    path = system_dir / "config.toml"
    path.write_text(
        "# site config\n"
        "autosave_seconds = 'soon'\n"
        "exprt_dir = '/x'\n"
        "allowed_formats = 'coco'\n"
        "\n"
        "[database]\n"
        "url = 'postgresql://db/labels'\n"
        "password = 'plain'\n"
        "[data_roots]\n"
        "studies = 7\n"
    )
    problems = [str(p) for p in read_site_config().problems]
    assert problems == [
        f"{path}:2: autosave_seconds must be a positive number, not 'soon'",
        f"{path}:3: unknown setting 'exprt_dir' in the top level; did you mean 'export_dir'?",
        f'{path}:4: allowed_formats must be a list of names, e.g. ["coco", "png-masks"]',
        f"{path}:8: unknown setting 'password' in [database]; did you mean 'password_file'?",
        f"{path}:10: data root 'studies' must be a folder path (string)",
    ]
    checked = sitelabel("config", "check", "--skip-components")
    assert checked.returncode == 1
    assert f"[FAIL] config: {path}:3: unknown setting 'exprt_dir'" in checked.stdout
    assert "config check FAILED" in checked.stdout


def test_a_toml_syntax_error_names_the_line(system_dir: Path) -> None:
    (system_dir / "config.toml").write_text("autosave_seconds = 2\n[data_roots\nstudies = '/x'\n")
    (problem,) = read_site_config().problems
    assert problem.line == 2 and "not valid TOML" in problem.message
    with pytest.raises(ConfigError, match=":2: not valid TOML"):
        load_site_config()


# --- passwords ----------------------------------------------------------------------------------
def test_password_file_readable_by_others_is_refused(system_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "db-password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o640)
    (system_dir / "config.toml").write_text(
        f'[database]\nurl = "postgresql://ana@127.0.0.1:{free_port()}/labels"\npassword_file = "{secret}"\n'
    )
    with pytest.raises(ValidationError, match=r"can be read by other users \(mode 0640\)"):
        load_site_config().database_url()
    refused = sitelabel("db", "status")
    assert refused.returncode == 1 and f"chmod 600 {secret}" in refused.stderr
    secret.chmod(0o600)
    url = load_site_config().database_url()
    assert url is not None and PASSWORD in url  # handed to the driver, never shown


def test_the_password_never_shows(system_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "db-password"
    secret.write_text(PASSWORD)
    secret.chmod(0o600)
    port = free_port()  # nothing listens: the connection is refused at once
    (system_dir / "config.toml").write_text(
        f'[database]\nurl = "postgresql://ana@127.0.0.1:{port}/labels"\npassword_file = "{secret}"\n'
    )
    for args in (("db", "status"), ("config", "check", "--skip-components"), ("db", "upgrade", "--yes")):
        done = sitelabel(*args)
        assert done.returncode != 0
        assert PASSWORD not in done.stdout + done.stderr, args
        assert "127.0.0.1" in done.stdout + done.stderr  # the message still says where
    written = sitelabel("db", "status", f"postgresql://ana:{PASSWORD}@127.0.0.1:{port}/labels")
    assert PASSWORD not in written.stdout + written.stderr and "***" in written.stderr


@pytest.mark.postgres
def test_window_and_messages_mask_the_password(pg_url: str, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QLabel

    from app.editor.main_window import MainWindow

    with_password = parse_target(pg_url).url.set(password=PASSWORD).render_as_string(hide_password=False)
    project = api.create_project(with_password, "masked", user="ana")  # the test server trusts any password
    window = MainWindow(project)
    qtbot.addWidget(window)
    shown = [label.text() for label in window.statusBar().findChildren(QLabel)] + [window.windowTitle()]
    assert any("***" in text for text in shown)
    assert not any(PASSWORD in text for text in shown)
    assert PASSWORD not in repr(project.db) and PASSWORD not in project.db.url
    project.close()


def test_keyring_without_the_package_says_what_to_do(system_dir: Path) -> None:
    try:
        import keyring  # noqa: F401

        pytest.skip("keyring is installed here; this checks the message when it is not")
    except ImportError:
        pass
    (system_dir / "config.toml").write_text('[database]\nurl = "postgresql://db/labels"\nkeyring = true\n')
    with pytest.raises(ValidationError, match="'keyring' is not installed"):
        load_site_config().database_url()


# --- config check -----------------------------------------------------------------------------------
@pytest.mark.postgres
def test_config_check_passes_on_a_good_site(pg_url: str, tmp_path: Path) -> None:
    for name in ("studies", "models", "exports"):
        (tmp_path / name).mkdir()
    config = tmp_path / "site.toml"
    config.write_text(
        f'models_dir = "{tmp_path / "models"}"\nexport_dir = "{tmp_path / "exports"}"\n'
        f'allowed_formats = ["coco", "png-masks"]\n[database]\nurl = "{pg_url}"\n'
        f'[data_roots]\nstudies = "{tmp_path / "studies"}"\n'
    )
    env = {"SITELABEL_CONFIG": str(config)}
    done = sitelabel("config", "check", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    for line in (
        "[ ok ] database:",
        f"[ ok ] data root 'studies': {tmp_path / 'studies'} readable",
        f"[ ok ] export folder: {tmp_path / 'exports'} writable",
        "[ ok ] label formats: only coco, png-masks",
        "[ ok ] DICOM decoders: JPEG baseline, JPEG lossless, JPEG-LS, JPEG 2000, RLE",
    ):
        assert line in done.stdout, line
    assert list((tmp_path / "exports").iterdir()) == []  # the write test left nothing behind

    config.write_text(config.read_text().replace(str(tmp_path / "studies"), str(tmp_path / "gone")))
    (tmp_path / "exports").chmod(0o500)
    try:
        failed = sitelabel("config", "check", "--skip-components", env=env)
    finally:
        (tmp_path / "exports").chmod(0o700)
    assert failed.returncode == 1
    assert f"[FAIL] data root 'studies': {tmp_path / 'gone'} does not exist" in failed.stdout
    if os.geteuid() != 0:  # root writes anywhere
        assert "[FAIL] export folder" in failed.stdout


def test_allowed_formats_are_enforced_by_the_cli(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text('allowed_formats = ["coco"]\n')
    db = tmp_path / "labels.db"
    api.create_project(db, "p", user="ana").close()
    env = {"SITELABEL_CONFIG": str(config), "SITELABEL_USER": "ana"}
    refused = sitelabel(
        "export", "--format", "yolo", "--out", str(tmp_path / "out"), "--db", str(db), env=env
    )
    assert refused.returncode == 1
    assert "the format 'yolo' is not allowed on this site (allowed_formats: coco)" in refused.stderr
    allowed = sitelabel(
        "export", "--format", "coco", "--out", str(tmp_path / "out"), "--db", str(db), env=env
    )
    assert allowed.returncode == 0, allowed.stderr


# --- db upgrade -----------------------------------------------------------------------------------
def _old_schema(location: str) -> None:
    engine = build_engine(parse_target(location))
    try:
        migrate.upgrade(engine, migrate.KNOWN_REVISIONS[0])
    finally:
        engine.dispose()


def test_db_upgrade_backs_up_asks_and_migrates_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "labels.db"
    _old_schema(str(db))
    oldest = migrate.KNOWN_REVISIONS[0]
    asked = sitelabel("db", "upgrade", str(db))  # no terminal, no --yes: nothing happens
    assert asked.returncode == 1 and "Nothing was changed" in asked.stderr
    assert f"schema {oldest} is older" in asked.stdout
    done = sitelabel("db", "upgrade", str(db), "--yes")
    assert done.returncode == 0, done.stderr
    backup = tmp_path / f"labels-schema-{oldest}.db"
    assert f"backup written: {backup}" in done.stdout
    assert f"schema upgraded from {oldest} to {migrate.HEAD_REVISION}" in done.stdout
    with sqlite3.connect(backup) as copy:
        assert copy.execute("SELECT version_num FROM alembic_version").fetchone() == (oldest,)
    again = sitelabel("db", "upgrade", str(db))
    assert again.returncode == 0 and "already at" in again.stdout


@pytest.mark.postgres
def test_db_upgrade_prints_a_pg_dump_hint_without_the_password(pg_url: str) -> None:
    _old_schema(pg_url)
    url = parse_target(pg_url).url
    with_password = url.set(password=PASSWORD).render_as_string(hide_password=False)
    done = sitelabel("db", "upgrade", with_password, "--yes")
    assert done.returncode == 0, done.stderr
    assert f"pg_dump --format=custom --host={url.host} --port={url.port}" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    db = Database.open(pg_url, create=False, upgrade=False)
    assert db.current_revision() == migrate.HEAD_REVISION
    db.dispose()


def test_db_upgrade_refuses_a_newer_schema(db_url: str) -> None:
    Database.open(db_url).dispose()
    engine = build_engine(parse_target(db_url))
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    done = sitelabel("db", "upgrade", db_url, "--yes")
    assert done.returncode == 1
    assert "refusing to upgrade" in done.stderr and "newer Sitelabel" in done.stderr
    assert "Nothing was changed" in done.stderr
    engine = build_engine(parse_target(db_url))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "9999"
    engine.dispose()
