"""Site configuration (one TOML file a site admin deploys) and per-user settings.

Lookup order for the site file: ``$SITELABEL_CONFIG``, then the user config dir
(``~/.config/sitelabel/config.toml`` on Linux), then the system-wide dir
(``/etc/xdg/sitelabel/config.toml``). The first file found wins; none is fine (defaults).

Example::

    database = "postgresql://labelers@db.hospital.local/sitelabel"
    models_dir = "/srv/sitelabel/models"
    export_dir = "/mnt/shared/exports"
    autosave_seconds = 2

    [data_roots]
    studies = "/mnt/studies"          # the same share is //nas/studies on Windows workstations
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ValidationError

APP_NAME = "sitelabel"
DEFAULT_DB_NAME = "labels.db"
LOCAL_ROOT = "local"  # built-in data root: the file system root of this machine


def user_config_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


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


def site_config_candidates() -> list[Path]:
    import platformdirs

    explicit = os.environ.get("SITELABEL_CONFIG")
    if explicit:
        return [Path(explicit)]
    return [
        user_config_dir() / "config.toml",
        Path(platformdirs.site_config_dir(APP_NAME, appauthor=False)) / "config.toml",
    ]


def local_root_path() -> Path:
    """Where the built-in ``local`` data root points: ``/`` on POSIX, the system drive on Windows."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows installs
        return Path(os.environ.get("SYSTEMDRIVE", "C:") + "\\")
    return Path("/")


@dataclass(frozen=True)
class SiteConfig:
    database: str | None = None
    data_roots: dict[str, Path] = field(default_factory=dict)
    models_dir: Path | None = None
    export_dir: Path | None = None
    autosave_seconds: float = 2.0
    max_image_pixels: int = 1_200_000_000
    source_path: Path | None = None  # the file this came from, None for defaults

    @property
    def all_data_roots(self) -> dict[str, Path]:
        """Configured roots plus the built-in ``local`` root (configured ones win on overlap)."""
        return {LOCAL_ROOT: local_root_path(), **self.data_roots}

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], source: Path | None = None) -> SiteConfig:
        where = str(source) if source else "site config"
        known = {"database", "data_roots", "models_dir", "export_dir", "autosave_seconds", "max_image_pixels"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValidationError(f"{where}: unknown settings {unknown}; known: {sorted(known)}")
        roots = raw.get("data_roots", {})
        if not isinstance(roots, dict) or not all(isinstance(v, str) for v in roots.values()):
            raise ValidationError(f"{where}: [data_roots] must map names to folder paths")
        if LOCAL_ROOT in roots:
            raise ValidationError(f"{where}: the data root name {LOCAL_ROOT!r} is reserved")
        try:
            autosave = float(raw.get("autosave_seconds", 2.0))
            max_pixels = int(raw.get("max_image_pixels", 1_200_000_000))
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{where}: {exc}") from None
        if autosave <= 0 or max_pixels <= 0:
            raise ValidationError(f"{where}: autosave_seconds and max_image_pixels must be positive")
        return cls(
            database=raw.get("database"),
            data_roots={str(k): Path(v) for k, v in roots.items()},
            models_dir=Path(raw["models_dir"]) if raw.get("models_dir") else None,
            export_dir=Path(raw["export_dir"]) if raw.get("export_dir") else None,
            autosave_seconds=autosave,
            max_image_pixels=max_pixels,
            source_path=source,
        )


def load_site_config() -> SiteConfig:
    """Read the first site config file found; defaults when there is none."""
    for candidate in site_config_candidates():
        if candidate.is_file():
            try:
                raw = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ValidationError(f"cannot read the site config {candidate}: {exc}") from None
            return SiteConfig.from_mapping(raw, candidate)
    if os.environ.get("SITELABEL_CONFIG"):
        raise ValidationError(
            f"SITELABEL_CONFIG points to {os.environ['SITELABEL_CONFIG']}, which does not exist"
        )
    return SiteConfig()


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
