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
    for candidate in [*candidates, _wheel_data_dir()]:
        if candidate is not None and (candidate / "ontologies").is_dir():
            return candidate
    raise FileNotFoundError("Sitelabel's resources folder is missing from this installation")


def _wheel_data_dir() -> Path | None:
    """Where pip put the wheel's ``share/sitelabel/resources`` (a ``--user`` or ``--prefix`` install)."""
    from importlib import metadata

    try:
        files = metadata.distribution("sitelabel").files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        parts = file.parts
        if len(parts) >= 4 and parts[-4:-1] == ("sitelabel", "resources", "ontologies"):
            return Path(str(file.locate())).resolve().parent.parent
    return None


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


def ontology_templates() -> dict[str, Path]:
    """The shipped ontology templates by name (the file stem: ``chest_ct_organs``, ``demo``, ...)."""
    return {path.stem: path for path in sorted(resource("ontologies").glob("*.json"))}


def template_title(name: str) -> str:
    """A template's name for people: ``chest_ct_organs`` -> ``Chest CT organs``."""
    acronyms = {"ct", "mr", "mri", "us", "pet", "xr"}
    words = [w.upper() if w in acronyms else w for w in name.replace("-", "_").split("_") if w]
    text = " ".join(words)
    return text[:1].upper() + text[1:]
