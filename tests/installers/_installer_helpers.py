"""Helpers of the installer tests: network blocking, timings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NETGUARD = Path(__file__).with_name("_netguard")
TIMES: dict[str, float] = {}


def netns_usable() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def offline(command: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``command`` with the network blocked: a network namespace when permitted, else a socket guard
    in every Python process it starts (the frozen app ignores PYTHONPATH: it then runs unguarded)."""
    if netns_usable():
        return ["unshare", "-n", *command], env
    guarded = {**env, "PYTHONPATH": str(NETGUARD)}
    return command, guarded


def run(
    command: list[str], *, env: dict[str, str] | None = None, blocked: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, **(env or {})}
    # no index may be reachable or configured: the install must come from the bundle alone
    base.update({"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull})
    base.pop("PIP_FIND_LINKS", None)
    full, full_env = offline(command, base) if blocked else (command, base)
    # run outside the source tree: `python -c` must import the installed app, not ./app
    return subprocess.run(
        full,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
        cwd=tempfile.gettempdir(),
    )


def record_time(name: str, seconds: float) -> None:
    TIMES[name] = round(seconds, 1)
    out = ROOT / "build" / "installer-times.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(TIMES, indent=2) + "\n", encoding="utf-8")
