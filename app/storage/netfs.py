"""Tell whether a path lives on a network file system, where the OS tells us.

SQLite's WAL mode needs shared memory that network file systems do not provide, and their
locking is often unreliable, so a SQLite file there runs in rollback-journal mode and the user
is advised to use PostgreSQL for a team.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

NETWORK_FS_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "fuse.sshfs",
        "9p",
        "afs",
        "ceph",
        "glusterfs",
        "fuse.glusterfs",
        "davfs",
        "fuse.davfs2",
        "fuse.cephfs",
        "lustre",
        "gpfs",
    }
)
DEFAULT_MOUNTS = Path("/proc/mounts")
_DRIVE_REMOTE = 4


@dataclass(frozen=True, slots=True)
class MountInfo:
    mount_point: str
    fs_type: str
    device: str


def _unescape(field: str) -> str:
    """/proc/mounts escapes space, tab, newline and backslash as octal (``\\040``)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        chunk = field[i + 1 : i + 4]
        if field[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mounts(text: str) -> list[MountInfo]:
    """Parse the /proc/mounts (fstab-like) format: device, mount point, type, options, ..."""
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not parts[0].startswith("#"):
            mounts.append(MountInfo(_unescape(parts[1]), parts[2].lower(), _unescape(parts[0])))
    return mounts


def mount_for(path: str | os.PathLike[str], mounts: list[MountInfo]) -> MountInfo | None:
    """The mount whose mount point is the longest prefix (by path components) of ``path``."""
    target = PurePosixPath(str(path)).parts
    best: MountInfo | None = None
    best_len = -1
    for mount in mounts:
        parts = PurePosixPath(mount.mount_point).parts
        # later lines win on equal length: they are mounted over earlier ones
        if len(parts) >= best_len and target[: len(parts)] == parts:
            best, best_len = mount, len(parts)
    return best


def resolve_path(path: Path) -> Path:
    """Resolve symlinks in the part of ``path`` that exists; keep the rest (a file not created yet)."""
    path = path.expanduser().absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate.resolve() / path.relative_to(candidate)
    return path


def _windows_remote(path: Path) -> tuple[bool, str | None]:
    text = str(path)
    if text.startswith(("\\\\", "//")) and not text.startswith(("\\\\?\\", "\\\\.\\")):
        return True, "unc"
    if text.startswith("\\\\?\\UNC\\"):
        return True, "unc"
    drive = path.drive
    if not drive:
        return False, None
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
    if int(kernel32.GetDriveTypeW(drive + "\\")) == _DRIVE_REMOTE:
        return True, "remote drive"
    return False, None


def network_fs_type(
    path: str | os.PathLike[str],
    *,
    mounts_file: str | os.PathLike[str] | None = None,
    platform: str | None = None,
) -> str | None:
    """The network file-system type holding ``path`` (e.g. ``"nfs4"``), or None if local or unknown.

    On Linux this reads ``mounts_file`` (default /proc/mounts); on Windows it checks UNC paths
    and ``GetDriveTypeW``. Elsewhere (macOS) the OS gives no cheap answer and None is returned.
    """
    platform = platform or sys.platform
    if platform == "win32" and mounts_file is None:
        remote, kind = _windows_remote(Path(path))
        return kind if remote else None
    mounts_path = Path(mounts_file) if mounts_file is not None else DEFAULT_MOUNTS
    try:
        text = mounts_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    mount = mount_for(resolve_path(Path(path)), parse_mounts(text))
    if mount is not None and mount.fs_type in NETWORK_FS_TYPES:
        return mount.fs_type
    return None
