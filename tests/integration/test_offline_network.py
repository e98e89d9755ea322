"""No network: the whole day's work with every connection but the database refused.

A site behind a firewall must be able to import, label, pre-label and export without Sitelabel
ever reaching out. This file is the test and, run as a script, the worker it starts:

- ``guard`` mode: a socket guard is installed before anything is imported; it refuses (and records)
  every connection, name lookup and datagram other than the configured PostgreSQL host:port and
  AF_UNIX sockets. Connections made in C (libpq, Qt) bypass Python, so after the Qt start-up the
  worker also lists its open inet sockets from /proc.
- ``netns`` mode (root with ``unshare -n``): the same work in a network namespace with no network
  at all, reaching PostgreSQL through its Unix socket: nothing in any library can get out.

Steps: import real images and DICOM (JPEG 2000 compressed too), label through the API, export COCO
and PNG masks, train a micro-model and pre-label with it (when app.models has that API; skipped with
a warning otherwise), then open the main window offscreen on the demo project and every asset in it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

BLOCKED: list[str] = []


# --- the guard ----------------------------------------------------------------------------------
def install_socket_guard(allowed: set[tuple[str, int]]) -> None:
    """Refuse every connection other than ``allowed`` (host, port) and AF_UNIX; record each attempt."""
    allowed_hosts = {host for host, _ in allowed}
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_sendto, real_getaddrinfo = socket.socket.sendto, socket.getaddrinfo

    def permitted(sock: socket.socket, address: Any) -> bool:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return True
        return isinstance(address, tuple) and (str(address[0]), int(address[1])) in allowed

    def refuse(what: str) -> ConnectionRefusedError:
        BLOCKED.append(what)
        return ConnectionRefusedError(f"offline test: {what} refused")

    def connect(self: socket.socket, address: Any) -> None:
        if not permitted(self, address):
            raise refuse(f"connect {address!r}")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not permitted(self, address):
            raise refuse(f"connect_ex {address!r}")
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: bytes, *args: Any) -> int:
        address = args[-1]
        if not permitted(self, address):
            raise refuse(f"sendto {address!r}")
        return real_sendto(self, data, *args)  # type: ignore[call-overload,no-any-return]

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and str(host) not in allowed_hosts | {"localhost", "127.0.0.1", "::1"}:
            BLOCKED.append(f"getaddrinfo {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, f"offline test: name lookup of {host!r} refused")
        return real_getaddrinfo(host, port, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[assignment]
    socket.getaddrinfo = getaddrinfo


def open_inet_sockets() -> list[str]:
    """This process's open TCP/UDP sockets (made in Python or C), from /proc."""
    fds = Path("/proc/self/fd")
    inodes = set()
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
        path = Path("/proc/self/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                found.append(f"{table} local {fields[1]} remote {fields[2]}")
    return found


# --- the work (runs in the guarded worker) ---------------------------------------------------------
ONTOLOGY = {
    "classes": [
        {"name": "object", "color": "#35c2d6", "kinds": ["polygon", "mask", "box"]},
        {"name": "bright", "color": "#c0504d", "kinds": ["mask", "polygon"]},
        {"name": "landmark", "color": "#e0a030", "kinds": ["point"]},
    ]
}


def _coin_mask(project: Any, asset_id: int) -> Any:
    """A real label: the bright pixels of the image (coins, cells) as a mask, one threshold for
    every image (a model can learn it, and training validates that on a held-out image)."""
    import numpy as np

    source = project.open_asset(asset_id)
    try:
        pixels = np.asarray(source.frame(0), dtype=np.float32)
    finally:
        source.close()
    if pixels.ndim == 3:
        pixels = pixels.mean(axis=2)
    return pixels > 120


def run_work(db_url: str, work: Path, *, prelabel: bool = True) -> dict[str, Any]:
    from app import api, sample_data

    steps: dict[str, Any] = {}
    images = sample_data.skimage_images()
    files = [
        images / "coins.png",
        images / "camera.png",
        images / "cell.png",
        images / "astronaut.png",
        sample_data.dicom_file("CT_small.dcm"),
        sample_data.dicom_file("MR_small_jp2klossless.dcm"),
    ]
    project = api.create_project(db_url, "offline", ontology=ONTOLOGY, user="ana")
    ids = project.import_data(files)
    steps["imported"] = len(ids)
    by_name = {project.asset(i).rel_path.rsplit("/", 1)[-1]: i for i in ids}

    labeled = 0
    for name in ("coins.png", "camera.png", "cell.png"):
        # the micro-model trains on "bright" masks: two small images keep the training short
        label = "object" if name == "camera.png" else "bright"
        mask = _coin_mask(project, by_name[name])
        labeled += len(
            project.upload_annotations(
                by_name[name],
                [
                    {"kind": "mask", "label": label, "frame": 0, "mask": mask},
                    {"kind": "box", "label": "object", "frame": 0, "box": [10, 10, 60, 50]},
                    {"kind": "point", "label": "landmark", "frame": 0, "point": [20.5, 30.5]},
                ],
            )
        )
    labeled += len(
        project.upload_annotations(
            by_name["CT_small.dcm"],
            [{"kind": "polygon", "label": "object", "frame": 0, "points": [[10, 10], [50, 12], [40, 50]]}],
        )
    )
    steps["labeled"] = labeled

    if not prelabel:
        steps["prelabel"] = "not run in this variant (the guard test trains and pre-labels)"
    elif hasattr(project, "train_micro_model") and hasattr(project, "prelabel"):
        trained = project.train_micro_model("bright")
        report = project.prelabel([trained.model.ref], asset_ids=[by_name["astronaut.png"]])
        steps["prelabel"] = {
            "model": trained.model.ref,
            "assets": report.assets,
            "annotations": report.annotations,
        }
    else:
        steps["prelabel"] = "skipped: app.models has no train/pre-label API in this version"

    for fmt in ("coco", "png-masks"):
        # the landmark point has no COCO or mask form: the export lists it by reason and writes the rest
        exported = project.export(fmt, work / "exports" / fmt, skip_unwritable=True)
        steps[f"export {fmt}"] = {"files": exported.files_written, "annotations": exported.annotations}
    project.close()
    return steps


def run_window(work: Path) -> dict[str, Any]:
    """The main window offscreen on the demo project: every asset opened, then closed."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from app import api
    from app.demo import build_demo
    from app.editor.app import create_application, run_smoke_test
    from app.editor.main_window import MainWindow

    db_path, _ = build_demo(work / "demo")
    create_application()
    project = api.open_project(db_path, user="ana", create=False)
    window = MainWindow(project)
    window.show()
    code = run_smoke_test(window, str(work / "offline-window.png"))
    sockets = open_inet_sockets()
    project.close()
    return {"smoke_test_exit": code, "inet_sockets_after_start": sockets}


def worker(mode: str, db_url: str, work: Path) -> int:
    if mode == "guard":
        from urllib.parse import urlsplit

        parts = urlsplit(db_url)
        install_socket_guard({(parts.hostname or "", parts.port or 5432)})
    else:
        install_socket_guard(set())  # netns: nothing but AF_UNIX; the kernel enforces it too
    # training a micro-model takes tens of seconds: the namespace variant leaves it to the guard variant
    result: dict[str, Any] = {"steps": run_work(db_url, work, prelabel=mode == "guard")}
    result["window"] = run_window(work)
    result["blocked"] = BLOCKED
    print("RESULT " + json.dumps(result, default=str), flush=True)
    return 0


# --- the tests ------------------------------------------------------------------------------------
def _run_worker(command: list[str], tmp_path: Path) -> dict[str, Any]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SITELABEL_USER": "ana"}
    env.pop("http_proxy", None)
    env.pop("https_proxy", None)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"worker failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return dict(json.loads(lines[-1][7:]))


def _check(result: dict[str, Any], *, prelabel: bool = True) -> None:
    steps = result["steps"]
    assert steps["imported"] == 6
    assert steps["labeled"] == 10
    assert steps["export coco"]["annotations"] > 0 and steps["export coco"]["files"] > 0
    assert steps["export png-masks"]["files"] > 0
    if not prelabel:
        pass
    elif isinstance(steps["prelabel"], str):
        warnings.warn(f"offline test: pre-label step {steps['prelabel']}", stacklevel=2)
    else:
        assert steps["prelabel"]["assets"] == 1
    assert result["window"]["smoke_test_exit"] == 0
    assert result["window"]["inet_sockets_after_start"] == []
    assert result["blocked"] == [], f"connections were attempted: {result['blocked']}"


@pytest.mark.postgres
def test_offline_work_with_only_the_database_reachable(pg_url: str, tmp_path: Path) -> None:
    result = _run_worker([sys.executable, __file__, "guard", pg_url, str(tmp_path)], tmp_path)
    _check(result)


def _netns_usable() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10, check=False)
        return probe.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.postgres
def test_offline_work_in_a_network_namespace(pg_url: str, tmp_path: Path) -> None:
    if not _netns_usable():
        pytest.skip("unshare -n is not permitted here (needs root or user namespaces); the guard test ran")
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, connect_timeout=10
    ) as conn:
        sockets = str(conn.execute("SHOW unix_socket_directories").fetchone()[0]).split(",")[0].strip()
    local = url.set(host=None, port=None, query={"host": sockets, "port": str(url.port)})
    command = [
        "unshare",
        "-n",
        sys.executable,
        __file__,
        "netns",
        local.render_as_string(False),
        str(tmp_path),
    ]
    _check(_run_worker(command, tmp_path), prelabel=False)


if __name__ == "__main__":
    raise SystemExit(worker(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
