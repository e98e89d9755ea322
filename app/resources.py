"""Locate the shipped ``resources/`` folder (icons, theme, default ontologies, demo manifest)."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """``resources/`` beside the package (source tree, editable install, frozen app) or under the prefix."""
    here = Path(__file__).resolve().parent
    candidates = [
        here.parent / "resources",
        Path(getattr(sys, "_MEIPASS", here.parent)) / "resources",
        Path(sys.prefix) / "share" / "sitelabel" / "resources",
    ]
    for candidate in candidates:
        if (candidate / "ontologies").is_dir():
            return candidate
    raise FileNotFoundError("Sitelabel's resources folder is missing from this installation")


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
