"""``sitelabel config check``: validate the site config and try everything it names.

Each check is one line of the report with a state: ``ok``, ``warn`` (works, but look at it) or
``fail`` (this workstation cannot work as configured). The command exits 1 when anything failed.
Nothing here changes the database or the folders (the export-folder test writes and removes one
temporary file).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.config import LoadedConfig, SiteConfig, read_site_config
from app.core.errors import SitelabelError

State = Literal["ok", "warn", "fail"]
_MARK: dict[State, str] = {"ok": " ok ", "warn": "WARN", "fail": "FAIL"}

# transfer syntaxes a site meets in practice; each needs a decoder plugin in the installation
_DECODERS = (
    ("JPEGBaseline8Bit", "JPEG baseline"),
    ("JPEGLosslessSV1", "JPEG lossless"),
    ("JPEGLSLossless", "JPEG-LS"),
    ("JPEG2000Lossless", "JPEG 2000"),
    ("RLELossless", "RLE"),
)


@dataclass(frozen=True)
class Check:
    state: State
    what: str
    detail: str = ""

    def line(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"  [{_MARK[self.state]}] {self.what}{detail}"


def run_checks(loaded: LoadedConfig | None = None, *, components: bool = True) -> list[Check]:
    """Every check, in report order; a config that does not parse stops after its problems."""
    loaded = loaded if loaded is not None else read_site_config()
    checks = [Check("fail", "config", str(problem)) for problem in loaded.problems]
    config = loaded.config
    if config is not None:
        read = ", ".join(str(p) for p in loaded.read) or "no file: defaults"
        checks.append(Check("ok", "settings valid", read))
        checks += list(_database(config))
        checks += list(_data_roots(config))
        checks += list(_models(config))
        checks += list(_export_dir(config))
        checks += list(_formats(config))
        checks.append(Check("ok", "autosave", f"every {config.autosave_seconds:g} s"))
    if components:
        checks += list(_components())
    return checks


def report(loaded: LoadedConfig, checks: list[Check]) -> str:
    lines = ["Sitelabel site configuration", "  files (later ones override earlier ones):"]
    for file in loaded.files:
        state = "read" if file.path in loaded.read else "not present"
        lines.append(f"    {file.scope:8} {file.path} ({state})")
    lines += [check.line() for check in checks]
    failed = sum(c.state == "fail" for c in checks)
    warned = sum(c.state == "warn" for c in checks)
    ok = len(checks) - failed - warned
    verdict = "FAILED" if failed else "passed"
    lines.append(f"config check {verdict}: {ok} ok, {warned} warning(s), {failed} failure(s)")
    return "\n".join(lines)


# --- the checks ---------------------------------------------------------------------------------
def _database(config: SiteConfig) -> Iterator[Check]:
    from app import api
    from app.storage import parse_target

    if not config.database:
        yield Check(
            "warn", "database", "not set; every command needs --db (a SQLite file or postgresql:// URL)"
        )
        return
    try:
        written = parse_target(config.database)
    except SitelabelError as exc:
        yield Check("fail", "database", str(exc))
        return
    if written.url.password:
        yield Check(
            "warn",
            "database password",
            "written in the config file; move it to [database] password_file or keyring",
        )
    try:
        url = config.database_url()
        assert url is not None
        found = api.check_database(url)
    except SitelabelError as exc:
        yield Check("fail", "database", str(exc))
        return
    yield Check("warn" if found.needs_upgrade else "ok", "database", found.summary())
    for warning in found.warnings:
        yield Check("warn", "database", warning)
    if found.exists and written.dialect == "postgresql":
        yield _row_security(url)


def _row_security(url: str) -> Check:
    """Whether PostgreSQL row-level security (``sitelabel db secure``) is set up."""
    from app.storage import row_security

    try:
        return Check("ok", "row security", row_security.describe(url))
    except SitelabelError as exc:
        return Check("warn", "row security", str(exc))


def _readable_folder(path: Path) -> str | None:
    """None when ``path`` is a folder this user can list; else why not."""
    if not path.exists():
        return "does not exist (or the share is not mounted)"
    if not path.is_dir():
        return "is not a folder"
    try:
        with os.scandir(path) as entries:
            next(entries, None)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None


def _data_roots(config: SiteConfig) -> Iterator[Check]:
    if not config.data_roots:
        yield Check(
            "ok", "data roots", "none configured (files are registered under the built-in 'local' root)"
        )
    for name, folder in sorted(config.data_roots.items()):
        problem = _readable_folder(folder)
        what = f"data root {name!r}"
        yield (
            Check("fail", what, f"{folder} {problem}") if problem else Check("ok", what, f"{folder} readable")
        )


def _models(config: SiteConfig) -> Iterator[Check]:
    folder = config.models_dir
    if folder is None:
        yield Check("ok", "models folder", "not set (pre-labelling uses only models trained in projects)")
        return
    problem = _readable_folder(folder)
    if problem:
        yield Check("fail", "models folder", f"{folder} {problem}")
        return
    from app.models.registry import ModelRegistry

    entries = ModelRegistry(folder).entries(check=True)
    good = [e for e in entries if e.ok]
    yield Check("ok", "models folder", f"{folder}: {len(good)} model(s) verified (sha256, graph, inputs)")
    for entry in entries:
        if not entry.ok:
            yield Check("fail", f"model {entry.manifest_path.name}", str(entry.problem))


def _export_dir(config: SiteConfig) -> Iterator[Check]:
    folder = config.export_dir
    if folder is None:
        yield Check("ok", "export folder", "not set (each export names its folder)")
        return
    problem = _readable_folder(folder)
    if problem:
        yield Check("fail", "export folder", f"{folder} {problem}")
        return
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sitelabel-check-"):
            pass
    except OSError as exc:
        yield Check("fail", "export folder", f"{folder} is not writable ({exc.strerror})")
        return
    yield Check("ok", "export folder", f"{folder} writable")


def known_formats() -> set[str]:
    """Label formats Sitelabel reads or writes (the names ``allowed_formats`` may use)."""
    from app.exchange.export import FORMATS
    from app.exchange.importers import READERS

    return {*FORMATS, *READERS}


def _formats(config: SiteConfig) -> Iterator[Check]:
    if config.allowed_formats is None:
        yield Check("ok", "label formats", "all allowed")
        return
    known = known_formats()
    unknown = [f for f in config.allowed_formats if f not in known]
    if unknown:
        yield Check("fail", "allowed_formats", f"unknown {unknown}; known: {', '.join(sorted(known))}")
    else:
        yield Check("ok", "label formats", "only " + ", ".join(config.allowed_formats))


def _components() -> Iterator[Check]:
    """The compiled parts an offline install or a frozen app must carry."""
    from pydicom import uid
    from pydicom.pixels.decoders.base import get_decoder

    missing = [label for name, label in _DECODERS if not get_decoder(getattr(uid, name)).is_available]
    if missing:
        yield Check("fail", "DICOM decoders", f"missing for {', '.join(missing)}")
    else:
        yield Check("ok", "DICOM decoders", ", ".join(label for _, label in _DECODERS))
    runtimes = (
        ("onnxruntime", "model runtime"),
        ("onnx", "model training"),
        ("SimpleITK", "volume I/O"),
        ("cv2", "video"),
    )
    for module, what in runtimes:
        try:
            imported = __import__(module)
        except ImportError as exc:
            yield Check("fail", what, f"{module} cannot be imported ({exc})")
            continue
        version = getattr(imported, "__version__", None) or getattr(imported, "Version", lambda: "?")()
        extra = ""
        if module == "onnxruntime":
            extra = " (" + ", ".join(imported.get_available_providers()) + ")"
        yield Check("ok", what, f"{module} {version}{extra}")
