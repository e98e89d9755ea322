"""A throwaway PostgreSQL cluster for tests and benchmarks (real server, no mocks).

Usable from fixtures (``start_cluster`` / ``stop_cluster``) and as a module CLI::

    python tests/pgcluster.py start DIR    # prints the URL and writes DIR/url
    python tests/pgcluster.py stop DIR

The cluster runs ``initdb -A trust -U postgres --no-sync`` into ``DIR/data`` and listens on
127.0.0.1 on a free port with fsync off. When running as root it runs the server as the
``postgres`` OS user through ``runuser`` (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = [
    "PgBinariesMissing",
    "find_bin_dir",
    "restart_server",
    "start_cluster",
    "start_server",
    "stop_cluster",
    "stop_server",
]


class PgBinariesMissing(RuntimeError):
    """initdb/pg_ctl are not installed."""


def find_bin_dir() -> Path:
    """The directory holding initdb and pg_ctl: PATH first, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb"), shutil.which("pg_ctl")
    if on_path[0] and on_path[1]:
        return Path(on_path[0]).resolve().parent
    candidates = []
    for path in Path("/usr/lib/postgresql").glob("*/bin"):
        match = re.fullmatch(r"\d+(\.\d+)?", path.parent.name)
        if match and (path / "initdb").exists() and (path / "pg_ctl").exists():
            candidates.append((float(path.parent.name), path))
    if not candidates:
        raise PgBinariesMissing(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql; "
            "install the 'postgresql' package"
        )
    return max(candidates)[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _chown_tree(path: Path) -> None:
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return
    import pwd

    pw = pwd.getpwnam("postgres")
    os.chown(path, pw.pw_uid, pw.pw_gid)
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)


def _wait_ready(port: int, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=2
            ):
                return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL on port {port} did not become ready: {last}")


def start_cluster(base: str | Path) -> str:
    """initdb + start a cluster under ``base``; return its SQLAlchemy URL (also written to base/url)."""
    bindir = find_bin_dir()
    base = Path(base).resolve()
    base.mkdir(parents=True, exist_ok=True)
    data, sockets = base / "data", base / "sock"
    sockets.mkdir(exist_ok=True)
    _chown_tree(base)
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            _as_server_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            check=True,
            capture_output=True,
            text=True,
        )
    port = _free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c fsync=off -c synchronous_commit=off "
        f"-c full_page_writes=off -c unix_socket_directories={sockets} -c max_connections=200"
    )
    log = base / "server.log"
    if not log.exists():
        log.touch()
        _chown_tree(log)
    subprocess.run(
        _as_server_user(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
        text=True,
    )
    _wait_ready(port)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    (base / "url").write_text(url + "\n", encoding="utf-8")
    return url


def stop_cluster(base: str | Path, *, remove: bool = False) -> None:
    """Stop the cluster under ``base`` (fast shutdown); optionally delete the directory."""
    base = Path(base).resolve()
    data = base / "data"
    if (data / "postmaster.pid").exists():
        bindir = find_bin_dir()
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
            text=True,
        )
    if remove:
        with contextlib.suppress(OSError):
            shutil.rmtree(base)


# --- stopping and starting a running cluster on the same port (outage tests) ----------------------


def _port_of(base: Path) -> int:
    url = (base / "url").read_text(encoding="utf-8").strip()
    match = re.search(r":(\d+)/", url)
    if match is None:
        raise RuntimeError(f"no port in {url!r}")
    return int(match.group(1))


def stop_server(base: str | Path, *, mode: str = "immediate") -> None:
    """Stop the server of the cluster under ``base``; the data stays, ``start_server`` brings it back.

    ``mode="immediate"`` kills the backends at once (connections die mid-transaction, the server
    recovers from its WAL at the next start), like a crash or a power cut of the database host.
    """
    base = Path(base).resolve()
    subprocess.run(
        _as_server_user([str(find_bin_dir() / "pg_ctl"), "-D", str(base / "data"), "-m", mode, "-w", "stop"]),
        check=True,
        capture_output=True,
        text=True,
    )


def start_server(base: str | Path, *, synchronous_commit: bool = True) -> str:
    """Start the stopped cluster under ``base`` again, on the port ``start_cluster`` chose; return its URL.

    ``synchronous_commit`` defaults to on here (start_cluster turns it off for speed): an outage
    test stops the server with ``-m immediate``, and a commit the client was told about must then
    survive it, as on a production server. fsync stays off: the operating system keeps running.
    """
    base = Path(base).resolve()
    port = _port_of(base)
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c fsync=off "
        f"-c synchronous_commit={'on' if synchronous_commit else 'off'} "
        f"-c full_page_writes=off -c unix_socket_directories={base / 'sock'} -c max_connections=200"
    )
    subprocess.run(
        _as_server_user(
            [
                str(find_bin_dir() / "pg_ctl"),
                "-D",
                str(base / "data"),
                "-o",
                options,
                "-l",
                str(base / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
        text=True,
    )
    _wait_ready(port)
    return (base / "url").read_text(encoding="utf-8").strip()


def restart_server(base: str | Path, *, mode: str = "fast", synchronous_commit: bool = True) -> str:
    """``stop_server`` then ``start_server`` (same port, same data); returns the URL."""
    stop_server(base, mode=mode)
    return start_server(base, synchronous_commit=synchronous_commit)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"start", "stop"}:
        print("usage: python tests/pgcluster.py start|stop DIR", file=sys.stderr)
        return 2
    verb, base = argv
    try:
        if verb == "start":
            print(start_cluster(base))
        else:
            stop_cluster(base)
    except PgBinariesMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"error: {' '.join(exc.cmd)} failed:\n{exc.stderr or exc.stdout}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
