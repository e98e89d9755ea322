"""Site configuration (one TOML file a site admin deploys) and per-user settings.

Lookup: ``$SITELABEL_CONFIG`` alone when it is set; otherwise the system-wide file
(``/etc/xdg/sitelabel/config.toml`` on Linux, ``C:\\ProgramData\\sitelabel\\config.toml`` on
Windows) and then the per-user file (``~/.config/sitelabel/config.toml``), whose keys override
the system-wide ones (tables such as ``[data_roots]`` are merged key by key). No file is fine:
defaults. ``installers/site-config.example.toml`` documents every key::

    export_dir = "/mnt/shared/exports"
    allowed_formats = ["coco", "png-masks"]

    [database]
    url = "postgresql://db.hospital.local/sitelabel"   # no password in the file
    password_file = "~/.config/sitelabel/db-password"  # or: keyring = true

    [data_roots]
    studies = "/mnt/studies"          # the same share is //nas/studies on Windows workstations

The database password never appears in a message: ``Database.url`` and every error show the URL
with ``***`` in its place.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ValidationError

APP_NAME = "sitelabel"
DEFAULT_DB_NAME = "labels.db"
LOCAL_ROOT = "local"  # built-in data root: the file system root of this machine
KEYRING_SERVICE = "sitelabel"

# key -> what it must be (for messages); validated in _check_value
_TOP_KEYS: dict[str, str] = {
    "database": "a URL string or a [database] table",
    "data_roots": "a table of name = folder",
    "models_dir": "a folder path (string)",
    "export_dir": "a folder path (string)",
    "autosave_seconds": "a positive number",
    "max_image_pixels": "a positive integer",
    "allowed_formats": "a list of format names",
}
_DATABASE_KEYS: dict[str, str] = {
    "url": "a database URL or SQLite path (string)",
    "password_file": "a file path (string)",
    "keyring": "true or a keyring service name",
}


def user_config_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def system_config_dir() -> Path:
    import platformdirs

    return Path(platformdirs.site_config_dir(APP_NAME, appauthor=False))


def user_data_dir() -> Path:
    """Per-user state: the local edit journal, window layout, recent projects."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_cache_dir() -> Path:
    override = os.environ.get("SITELABEL_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class ConfigFile:
    """One place a site config may be: ``scope`` is "explicit" ($SITELABEL_CONFIG), "system" or "user"."""

    scope: str
    path: Path


def site_config_files() -> list[ConfigFile]:
    """Where the site config is read from, lowest priority first."""
    explicit = os.environ.get("SITELABEL_CONFIG")
    if explicit:
        return [ConfigFile("explicit", Path(explicit))]
    return [
        ConfigFile("system", system_config_dir() / "config.toml"),
        ConfigFile("user", user_config_dir() / "config.toml"),
    ]


def site_config_candidates() -> list[Path]:
    """The config file paths, highest priority first."""
    return [f.path for f in reversed(site_config_files())]


def local_root_path() -> Path:
    """Where the built-in ``local`` data root points: ``/`` on POSIX, the system drive on Windows."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows installs
        return Path(os.environ.get("SYSTEMDRIVE", "C:") + "\\")
    return Path("/")


# --- problems with line hints -----------------------------------------------------------------


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a config file; ``line`` is 1-based when the key could be found."""

    path: Path | None
    line: int | None
    message: str

    def __str__(self) -> str:
        where = str(self.path) if self.path else "site config"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.message}"


class ConfigError(ValidationError):
    """The site config cannot be used; ``problems`` lists every finding."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        first = str(problems[0]) if problems else "invalid site config"
        more = f" (and {len(problems) - 1} more problem(s); run `sitelabel config check`)"
        super().__init__(first + (more if len(problems) > 1 else ""))


_TABLE_RE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")


def key_line(text: str, table: str | None, key: str) -> int | None:
    """The line where ``key`` is set in ``[table]`` (None: the top level), else the table's own line."""
    current: str | None = None
    table_line: int | None = None
    key_re = re.compile(rf"""^\s*(?:"{re.escape(key)}"|'{re.escape(key)}'|{re.escape(key)})\s*=""")
    dotted = re.compile(rf"^\s*{re.escape(table)}\.{re.escape(key)}\s*=") if table else None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE_RE.match(line)
        if header:
            current = header.group(1).strip().strip("\"'")
            if table is not None and current == table and table_line is None:
                table_line = number
            continue
        if current == table and key_re.match(line):
            return number
        if current is None and dotted is not None and dotted.match(line):
            return number
    if table is not None and table_line is None:
        return key_line(text, None, table)  # an inline table: `database = {url = ...}`
    return table_line


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Checker:
    """Collects every problem of one file instead of stopping at the first."""

    def __init__(self, text: str, path: Path | None) -> None:
        self.text = text
        self.path = path
        self.problems: list[ConfigProblem] = []

    def add(self, table: str | None, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.path, key_line(self.text, table, key), message))

    def unknown(self, table: str | None, raw: Mapping[str, Any], known: Mapping[str, str]) -> None:
        for key in sorted(set(raw) - set(known)):
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"
            where = f"[{table}]" if table else "the top level"
            self.add(table, key, f"unknown setting {key!r} in {where}{hint}")

    def check(self, raw: Mapping[str, Any]) -> None:
        self.unknown(None, raw, _TOP_KEYS)
        database = raw.get("database")
        if database is not None:
            if isinstance(database, dict):
                self._check_database(database)
            elif not isinstance(database, str):
                self.add(None, "database", f"database must be {_TOP_KEYS['database']}")
        roots = raw.get("data_roots", {})
        if not isinstance(roots, dict):
            self.add(None, "data_roots", "[data_roots] must be a table of name = folder")
        else:
            for name, folder in roots.items():
                if not isinstance(folder, str) or not folder:
                    self.add("data_roots", name, f"data root {name!r} must be a folder path (string)")
                if name == LOCAL_ROOT:
                    self.add("data_roots", name, f"the data root name {LOCAL_ROOT!r} is reserved")
        for key in ("models_dir", "export_dir"):
            if key in raw and (not isinstance(raw[key], str) or not raw[key]):
                self.add(None, key, f"{key} must be {_TOP_KEYS[key]}")
        autosave = raw.get("autosave_seconds", 2.0)
        if not _is_number(autosave) or autosave <= 0:
            self.add(
                None, "autosave_seconds", f"autosave_seconds must be a positive number, not {autosave!r}"
            )
        pixels = raw.get("max_image_pixels", 1)
        if not isinstance(pixels, int) or isinstance(pixels, bool) or pixels <= 0:
            self.add(None, "max_image_pixels", f"max_image_pixels must be a positive integer, not {pixels!r}")
        formats = raw.get("allowed_formats", [])
        if not isinstance(formats, list) or not all(isinstance(f, str) and f for f in formats):
            self.add(
                None, "allowed_formats", 'allowed_formats must be a list of names, e.g. ["coco", "png-masks"]'
            )

    def _check_database(self, table: Mapping[str, Any]) -> None:
        self.unknown("database", table, _DATABASE_KEYS)
        for key in ("url", "password_file"):
            if key in table and (not isinstance(table[key], str) or not table[key]):
                self.add("database", key, f"database.{key} must be {_DATABASE_KEYS[key]}")
        keyring = table.get("keyring", False)
        if not isinstance(keyring, bool | str) or keyring == "":
            self.add("database", "keyring", "database.keyring must be true, false or a keyring service name")
        if table.get("password_file") and keyring:
            self.add(
                "database", "keyring", "give either database.password_file or database.keyring, not both"
            )


def check_mapping(raw: Mapping[str, Any], text: str = "", path: Path | None = None) -> list[ConfigProblem]:
    """Every problem of one parsed config file (unknown keys, bad types), with line hints from ``text``."""
    checker = _Checker(text, path)
    checker.check(raw)
    return sorted(checker.problems, key=lambda p: (p.line is None, p.line or 0))


def _normalised(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``database = "url"`` becomes ``[database] url = ...`` so files can be merged key by key."""
    out = dict(raw)
    if isinstance(out.get("database"), str):
        out["database"] = {"url": out["database"]}
    return out


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override``'s keys win; tables are merged key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# --- the configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteConfig:
    database: str | None = None  # as written (no password in it, normally)
    data_roots: dict[str, Path] = field(default_factory=dict)
    models_dir: Path | None = None
    export_dir: Path | None = None
    autosave_seconds: float = 2.0
    max_image_pixels: int = 1_200_000_000
    allowed_formats: tuple[str, ...] | None = None  # None: every format
    password_file: Path | None = None
    keyring_service: str | None = None
    source_path: Path | None = None  # the highest-priority file read, None for defaults
    files: tuple[Path, ...] = ()  # every file read, lowest priority first

    @property
    def all_data_roots(self) -> dict[str, Path]:
        """Configured roots plus the built-in ``local`` root (configured ones win on overlap)."""
        return {LOCAL_ROOT: local_root_path(), **self.data_roots}

    @classmethod
    def from_mapping(
        cls, raw: Mapping[str, Any], source: Path | None = None, *, files: tuple[Path, ...] = ()
    ) -> SiteConfig:
        problems = check_mapping(raw, path=source)
        if problems:
            raise ConfigError(problems)
        raw = _normalised(raw)
        database: dict[str, Any] = raw.get("database") or {}
        keyring = database.get("keyring", False)
        service = KEYRING_SERVICE if keyring is True else (keyring or None)
        formats = raw.get("allowed_formats")
        return cls(
            database=database.get("url"),
            data_roots={str(k): Path(v).expanduser() for k, v in raw.get("data_roots", {}).items()},
            models_dir=Path(raw["models_dir"]).expanduser() if raw.get("models_dir") else None,
            export_dir=Path(raw["export_dir"]).expanduser() if raw.get("export_dir") else None,
            autosave_seconds=float(raw.get("autosave_seconds", 2.0)),
            max_image_pixels=int(raw.get("max_image_pixels", 1_200_000_000)),
            allowed_formats=tuple(formats) if formats is not None else None,
            password_file=Path(database["password_file"]).expanduser()
            if database.get("password_file")
            else None,
            keyring_service=service,
            source_path=source,
            files=files or ((source,) if source else ()),
        )

    # --- what the site allows -------------------------------------------------------------------
    def format_allowed(self, fmt: str) -> bool:
        return self.allowed_formats is None or fmt in self.allowed_formats

    def require_format(self, fmt: str) -> None:
        """Raise ValidationError when the site config does not allow the label format ``fmt``."""
        if not self.format_allowed(fmt):
            allowed = ", ".join(self.allowed_formats or ()) or "none"
            raise ValidationError(
                f"the format {fmt!r} is not allowed on this site (allowed_formats: {allowed}); "
                "ask your site admin"
            )

    # --- the database, with its password --------------------------------------------------------
    def database_url(self) -> str | None:
        """The configured database with the password from ``password_file`` or the OS keyring put in.

        Never print the result: show ``Database.url`` (masked) instead.
        """
        if not self.database:
            return None
        if self.password_file is None and self.keyring_service is None:
            return self.database
        if "://" not in self.database:
            raise ValidationError(
                f"{self._where}: a password is configured but the database {self.database} is a SQLite file"
            )
        from sqlalchemy.engine import make_url

        url = make_url(self.database)
        if not url.username:  # libpq's default too: the OS account
            import getpass

            url = url.set(username=getpass.getuser())
        password = (
            read_password_file(self.password_file)
            if self.password_file is not None
            else keyring_password(self.keyring_service or KEYRING_SERVICE, f"{url.username}@{url.host}")
        )
        return url.set(password=password).render_as_string(hide_password=False)

    @property
    def _where(self) -> str:
        return str(self.source_path) if self.source_path else "site config"


def read_password_file(path: Path) -> str:
    """The first line of a password file that only its owner may read (like libpq's ~/.pgpass)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ValidationError(f"cannot read the database password file {path}: {exc.strerror}") from None
    if sys.platform != "win32" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.S_IMODE(info.st_mode)
        raise ValidationError(
            f"the database password file {path} can be read by other users (mode {mode:04o}); "
            f"refusing to use it. Run: chmod 600 {path}"
        )
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read the database password file {path}: {exc}") from None
    if not lines or not lines[0].strip():
        raise ValidationError(f"the database password file {path} is empty")
    return lines[0].strip()


def keyring_password(service: str, account: str) -> str:
    """The password stored in the OS keyring (``keyring set SERVICE ACCOUNT``)."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        raise ValidationError(
            "the site config asks for the database password from the OS keyring, but the Python package "
            "'keyring' is not installed in Sitelabel's environment; install it or use password_file"
        ) from None
    try:
        password = keyring.get_password(service, account)
    except KeyringError as exc:
        raise ValidationError(f"the OS keyring could not be read ({type(exc).__name__}: {exc})") from None
    if not password:
        raise ValidationError(
            f"no password in the OS keyring for service {service!r}, account {account!r}; "
            f"store it with: keyring set {service} {account}"
        )
    return str(password)


# --- reading the files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedConfig:
    """What reading the config files found: the merged config, or the problems that prevent it."""

    config: SiteConfig | None
    files: tuple[ConfigFile, ...]  # every candidate, lowest priority first
    read: tuple[Path, ...]  # the ones that existed and were read
    problems: tuple[ConfigProblem, ...]


def read_site_config() -> LoadedConfig:
    """Read and merge the config files, collecting every problem (``sitelabel config check`` shows them)."""
    files = tuple(site_config_files())
    problems: list[ConfigProblem] = []
    merged: dict[str, Any] = {}
    read: list[Path] = []
    for candidate in files:
        if not candidate.path.is_file():
            if candidate.scope == "explicit":
                problems.append(
                    ConfigProblem(
                        None, None, f"SITELABEL_CONFIG points to {candidate.path}, which does not exist"
                    )
                )
            continue
        try:
            text = candidate.path.read_text(encoding="utf-8")
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            # Python 3.11's message ends in "(at line L, column C)": the line goes in front like the others
            at = re.search(r"\s*\(at line (\d+), column (\d+)\)$", str(exc))
            message = str(exc)[: at.start()] + f" (column {at.group(2)})" if at else str(exc)
            line = int(at.group(1)) if at else None
            problems.append(ConfigProblem(candidate.path, line, f"not valid TOML: {message}"))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(ConfigProblem(candidate.path, None, f"cannot read it: {exc}"))
            continue
        read.append(candidate.path)
        found = check_mapping(raw, text, candidate.path)
        problems += found
        if not found:
            merged = merge(merged, _normalised(raw))
    if problems:
        return LoadedConfig(None, files, tuple(read), tuple(problems))
    if not read:
        return LoadedConfig(SiteConfig(), files, (), ())
    config = SiteConfig.from_mapping(merged, read[-1], files=tuple(read))
    return LoadedConfig(config, files, tuple(read), ())


def load_site_config() -> SiteConfig:
    """The merged site config; defaults when there is no file; ConfigError when a file is wrong."""
    loaded = read_site_config()
    if loaded.config is None:
        raise ConfigError(list(loaded.problems))
    return loaded.config


def current_user_name() -> str:
    """The OS user: Sitelabel's default identity, mapped to project users."""
    override = os.environ.get("SITELABEL_USER")
    if override:
        return override
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
