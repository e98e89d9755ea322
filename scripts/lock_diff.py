#!/usr/bin/env python3
"""What `make lock` changed, and whether a venv holds exactly what the lock says.

    lock_diff.py OLD_UV_LOCK NEW_UV_LOCK    print added, removed, upgraded and downgraded packages
    lock_diff.py --prune requirements/venv.txt
                                            uninstall what this interpreter holds that the export lacks
    lock_diff.py --venv requirements/venv.txt
                                            compare this interpreter's installed distributions with the
                                            export's pins (markers evaluated here); exit 1 on a difference
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

# Installed by `python -m venv` itself or by the editable install; not part of the lock.
NOT_LOCKED = {"sitelabel"}


def lock_versions(path: Path) -> dict[str, set[str]]:
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    versions: dict[str, set[str]] = {}
    for package in data.get("package", []):
        if "version" in package and package.get("source", {}).get("registry"):
            versions.setdefault(package["name"], set()).add(package["version"])
    return versions


def diff(old_path: Path, new_path: Path) -> int:
    old, new = lock_versions(old_path), lock_versions(new_path)
    lines = []
    for name in sorted(old.keys() | new.keys()):
        before, after = sorted(old.get(name, set())), sorted(new.get(name, set()))
        if before == after:
            continue
        if not before:
            lines.append(f"  + {name} {', '.join(after)}")
        elif not after:
            lines.append(f"  - {name} {', '.join(before)}")
        else:
            lines.append(f"  ~ {name} {', '.join(before)} -> {', '.join(after)}")
    print("make lock: no version changed" if not lines else "make lock: changes\n" + "\n".join(lines))
    return 0


def pinned(requirements: Path) -> dict[str, str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    logical, current = [], ""
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.startswith("#") else ""
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    pins: dict[str, str] = {}
    for entry in logical:
        spec = " ".join(part for part in entry.split() if not part.startswith("--hash"))
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate():
            continue
        pins[canonicalize_name(req.name)] = next(iter(req.specifier)).version
    return pins


def installed_versions() -> dict[str, str]:
    from importlib import metadata

    from packaging.utils import canonicalize_name

    return {
        canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]
    }


def prune(requirements: Path) -> int:
    """Uninstall what an older venv holds that the lock no longer names."""
    import subprocess

    extra = sorted(set(installed_versions()) - set(pinned(requirements)) - NOT_LOCKED - {"pip"})
    if extra:
        print(f"venv: removing packages the lock no longer holds: {', '.join(extra)}")
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", *extra], check=True)
    return 0


def check_venv(requirements: Path) -> int:
    pins = pinned(requirements)
    installed = installed_versions()
    problems = []
    for name, version in sorted(pins.items()):
        if name not in installed:
            problems.append(f"{name}=={version} missing")
        elif installed[name] != version:
            problems.append(f"{name} {installed[name]} installed, {version} locked")
    extra = sorted(set(installed) - set(pins) - NOT_LOCKED - {"pip"})
    problems += [f"{name} {installed[name]} installed but not locked" for name in extra]
    if problems:
        print(
            f"lock: .venv differs from {requirements} ({'; '.join(problems[:6])}"
            f"{' ...' if len(problems) > 6 else ''}): run 'rm -rf .venv' and 'make test' again",
            file=sys.stderr,
        )
        return 1
    print(f"lock: .venv holds exactly the {len(pins)} locked packages")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--venv":
        return check_venv(Path(argv[1]))
    if len(argv) == 2 and argv[0] == "--prune":
        return prune(Path(argv[1]))
    if len(argv) == 2:
        return diff(Path(argv[0]), Path(argv[1]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
