"""No secret in logs: a real PostgreSQL role with a real password (password authentication switched
on for that role in the test cluster), given each way Sitelabel accepts one — in the URL, through the
site config's ``password_file``, through libpq's ``PGPASSWORD`` — and then the API and CLI verbs run
with logging at DEBUG into a file (SQLAlchemy's statement logging included), stderr captured, failing
connections (wrong port, wrong password, malformed URL) provoked. The password must appear nowhere:
output, log file, exception messages and tracebacks, warnings, the audit log, the editor journal's
session keys, the site check, and every file under the user's home/data folders.
"""

from __future__ import annotations

import logging
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import api, sample_data
from app.cli import main
from app.core.errors import SitelabelError

SECRET = "Zq9-s3cret/p@ss%w0rd"  # characters a URL must encode
WRONG = "Wr0ng-guess/p@ss"
ROLE = "sitelabel_pw_user"
HBA_LINES = (f"host all {ROLE} 127.0.0.1/32 scram-sha-256\nhost all {ROLE} ::1/128 scram-sha-256\n",)


def _forms(secret: str) -> set[str]:
    return {secret, quote_plus(secret), quote(secret, safe="")}


@dataclass
class Seen:
    """Everything the product showed or wrote, to search for the password."""

    texts: list[str] = field(default_factory=list)

    def add(self, what: str, value: Any) -> None:
        self.texts.append(f"--- {what}\n{value}")

    def error(self, what: str, exc: BaseException) -> None:
        self.add(what, "".join(traceback.format_exception(exc)))  # the whole chain, with causes

    def leaks(self, secret: str) -> list[str]:
        return [t.splitlines()[0] for t in self.texts if any(f in t for f in _forms(secret))]


def _admin_connect(server_url: str) -> Any:
    """A superuser connection to the test server (trust auth, as tests/conftest.py starts it)."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    return psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database or "postgres", autocommit=True
    )


@pytest.fixture
def pw_url(pg_server_url: str, pg_url: str) -> Iterator[str]:
    """``pg_url`` reached as a role that must give its password (scram), password in the URL."""
    with _admin_connect(pg_server_url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
        if not exists:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN SUPERUSER")
        conn.execute(f"ALTER ROLE {ROLE} PASSWORD '{SECRET}'")
        hba_row = conn.execute("SHOW hba_file").fetchone()
        assert hba_row is not None
        hba = Path(hba_row[0])
        if hba.is_file() and HBA_LINES[0] not in hba.read_text():
            hba.write_text(HBA_LINES[0] + hba.read_text())  # before the trust lines: first match wins
        conn.execute("SELECT pg_reload_conf()")
    url = make_url(pg_url).set(username=ROLE, password=SECRET)
    yield url.render_as_string(hide_password=False)


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "debug.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("sqlalchemy.engine", "sqlalchemy.pool", "sqlalchemy.dialects", "alembic"):
        logging.getLogger(name).setLevel(logging.DEBUG)  # statements, parameters, connections
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(old_level)
        for name in ("sqlalchemy.engine", "sqlalchemy.pool", "sqlalchemy.dialects", "alembic"):
            logging.getLogger(name).setLevel(logging.NOTSET)


def _cli(seen: Seen, capfd: pytest.CaptureFixture[str], *argv: str) -> int:
    capfd.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    except Exception as exc:
        seen.error(f"cli {argv[:2]} raised", exc)
        code = -1
    out, err = capfd.readouterr()
    seen.add(f"cli {argv[:2]} stdout", out)
    seen.add(f"cli {argv[:2]} stderr", err)
    return code


def _expect_failure(seen: Seen, what: str, call: Any) -> BaseException:
    try:
        call()
    except Exception as exc:
        seen.add(f"{what}: str", str(exc))
        seen.error(what, exc)
        return exc
    raise AssertionError(f"{what}: expected a failure")


@pytest.mark.postgres
def test_the_database_password_appears_nowhere(
    pw_url: str,
    debug_log: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    _isolated_user_dirs: Path,
) -> None:
    from app.workflow.editing import EditSession

    seen = Seen()
    url = make_url(pw_url)
    no_password = url.set(password=None).render_as_string(hide_password=False)
    project_json = tmp_path / "export"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # 1. the password in the URL: API
        coin = {"name": "coin", "color": "#c0504d", "kinds": ["box"]}  # COCO needs its category
        project = api.create_project(pw_url, "secret-test", user="ada", ontology={"classes": [coin]})
        seen.add("repr(db)", repr(project.db))
        seen.add("db.url", project.db.url)
        ids = project.import_data([sample_data.skimage_images() / "coins.png"])
        project.upload_annotations(ids[0], [{"kind": "box", "label": "coin", "box": [1, 1, 9, 9]}])
        project.export("project-json", project_json)
        seen.add("check_database", api.check_database(pw_url).summary())
        session = EditSession(project.db, project.id, project.asset(ids[0]), project.user, project.ontology)
        seen.add("journal key", session.key)
        session.close()
        project.close()
        reopened = api.open_project(pw_url, "secret-test", user="ada", create=False)
        reopened.close()

        # ... and the CLI with it
        assert _cli(seen, capfd, "db", "status", pw_url) == 0
        assert _cli(seen, capfd, "db", "upgrade", pw_url, "--yes") == 0
        assert _cli(seen, capfd, "export", "--db", pw_url, "--user", "ada", "--format", "coco",
                    "--out", str(tmp_path / "coco")) == 0  # fmt: skip
        assert _cli(seen, capfd, "users", "list", "--db", pw_url) == 0
        assert _cli(seen, capfd, "activity", "--db", pw_url, "--user", "ada") == 0

        # 2. password_file in the site config: config check, db status, an export
        secret_file = tmp_path / "db-password"
        secret_file.write_text(SECRET + "\n")
        secret_file.chmod(0o600)
        config = tmp_path / "site.toml"
        config.write_text(f'[database]\nurl = "{no_password}"\npassword_file = "{secret_file}"\n')
        monkeypatch.setenv("SITELABEL_CONFIG", str(config))
        assert _cli(seen, capfd, "config", "check", "--skip-components") == 0
        assert _cli(seen, capfd, "db", "status") == 0
        assert (
            _cli(seen, capfd, "export", "--user", "ada", "--format", "csv", "--out", str(tmp_path / "csv"))
            == 0
        )
        # a password written into the config file itself: warned about, still never shown
        config.write_text(f'[database]\nurl = "{pw_url}"\n')
        assert _cli(seen, capfd, "config", "check", "--skip-components") == 0
        monkeypatch.delenv("SITELABEL_CONFIG")

        # 3. libpq's PGPASSWORD
        monkeypatch.setenv("PGPASSWORD", SECRET)
        assert _cli(seen, capfd, "db", "status", no_password) == 0
        api.open_project(no_password, "secret-test", user="ada", create=False).close()
        monkeypatch.delenv("PGPASSWORD")

        # 4. failures: wrong port, wrong password, no password, a malformed URL, a wrong site config
        wrong_port = url.set(port=1).render_as_string(hide_password=False)
        wrong_pw = url.set(password=WRONG).render_as_string(hide_password=False)
        bad_url = pw_url.replace(f":{url.port}/", ":notaport/")
        for what, target in (
            ("wrong port", wrong_port),
            ("wrong password", wrong_pw),
            ("malformed", bad_url),
        ):
            exc = _expect_failure(
                seen, what, lambda t=target: api.open_project(t, "secret-test", create=False)
            )
            assert isinstance(exc, SitelabelError), f"{what}: {type(exc).__name__}: {exc}"
            _expect_failure(seen, f"{what} check", lambda t=target: api.check_database(t))
            assert _cli(seen, capfd, "db", "status", target) != 0
            assert (
                _cli(seen, capfd, "export", "--db", target, "--format", "coco", "--out", str(tmp_path / "x"))
                != 0
            )
        wrong = _expect_failure(seen, "wrong password", lambda: api.open_project(wrong_pw, create=False))
        assert "password authentication failed" in str(wrong) or "authentication" in str(wrong), str(wrong)
        config.write_text(f'[database]\nurl = "{wrong_port}"\n')
        monkeypatch.setenv("SITELABEL_CONFIG", str(config))
        assert _cli(seen, capfd, "config", "check", "--skip-components") != 0
        monkeypatch.delenv("SITELABEL_CONFIG")
    for warning in caught:
        seen.add("warning", str(warning.message))

    # what was written down
    admin = api.open_project(pw_url, "secret-test", user="ada", create=False)
    with admin.db.engine.connect() as conn:
        seen.add("audit log", [tuple(r) for r in conn.execute(text("SELECT * FROM audit_log"))])
    admin.close()
    logging.shutdown()
    log_text = debug_log.read_text(encoding="utf-8", errors="replace")
    assert "SELECT" in log_text and "audit_log" in log_text  # statements were logged: the check has teeth
    seen.add("debug log", log_text)
    for folder in (_isolated_user_dirs, project_json, tmp_path / "coco", tmp_path / "csv"):
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            seen.add(f"file {file}", file.read_bytes().decode("utf-8", errors="replace"))
    assert any("journal" in t.splitlines()[0] for t in seen.texts), "the editor journal was not written"

    assert not seen.leaks(SECRET), f"the password leaked into: {seen.leaks(SECRET)}"
    assert not seen.leaks(WRONG), f"a mistyped password leaked into: {seen.leaks(WRONG)}"
    assert any("***" in t for t in seen.texts)  # the URL is shown, masked


@pytest.mark.parametrize(
    "given",
    [
        f"postgresql://u:{quote_plus(SECRET)}@host:notaport/db",
        f"postgresql://u:{quote_plus(SECRET)}@[::1/db",
        f"mysql://u:{quote_plus(SECRET)}@host/db",
        f"postgresql+nodriver://u:{quote_plus(SECRET)}@host/db",
    ],
    ids=["port", "host", "scheme", "driver"],
)
def test_a_malformed_url_is_refused_without_its_password(
    given: str, capfd: pytest.CaptureFixture[str]
) -> None:
    seen = Seen()
    exc = _expect_failure(
        seen, given.split(":", maxsplit=1)[0], lambda: api.open_project(given, create=False)
    )
    assert isinstance(exc, SitelabelError)
    assert _cli(seen, capfd, "db", "status", given) != 0
    assert not seen.leaks(SECRET), seen.texts
