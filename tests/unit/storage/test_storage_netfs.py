"""Network-file-system detection from the OS's own mount table format (/proc/mounts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.storage.netfs import mount_for, network_fs_type, parse_mounts

# A real /proc/mounts layout: device, mount point (octal escapes), type, options, dump, pass.
PROC_MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/nvme0n1p2 / ext4 rw,relatime,errors=remount-ro 0 0
tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=3266540k,mode=755 0 0
nas01.hospital.local:/export/labels /mnt/labels nfs4 rw,relatime,vers=4.2,hard,proto=tcp,addr=10.0.0.2 0 0
/dev/sdb1 /mnt/labels/scratch ext4 rw,relatime 0 0
//fileserver/Radiology\\040Share /mnt/radiology\\040share cifs rw,relatime,vers=3.1.1,addr=10.0.0.9 0 0
alice@lab:/data /home/ana/remote fuse.sshfs rw,nosuid,nodev,relatime,user_id=1000,group_id=1000 0 0
"""


@pytest.fixture
def mounts(tmp_path: Path) -> Path:
    path = tmp_path / "mounts"
    path.write_text(PROC_MOUNTS, encoding="utf-8")
    return path


def test_parse_unescapes_mount_points() -> None:
    points = [m.mount_point for m in parse_mounts(PROC_MOUNTS)]
    assert "/mnt/radiology share" in points
    assert "/mnt/labels" in points


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/mnt/labels/team/labels.db", "nfs4"),
        ("/mnt/labels", "nfs4"),
        ("/mnt/labels/scratch/labels.db", None),  # a local disk mounted inside the NFS tree
        ("/mnt/labelsX/labels.db", None),  # prefix by path components, not characters
        ("/mnt/radiology share/project/labels.db", "cifs"),
        ("/home/ana/remote/labels.db", "fuse.sshfs"),
        ("/home/ana/labels.db", None),
        ("/run/labels.db", None),
    ],
)
def test_network_fs_is_detected_by_longest_mount_point(mounts: Path, path: str, expected: str | None) -> None:
    assert network_fs_type(path, mounts_file=mounts) == expected


def test_later_mount_over_the_same_point_wins() -> None:
    text = PROC_MOUNTS + "server:/x /mnt/labels/scratch nfs rw 0 0\n"
    mount = mount_for("/mnt/labels/scratch/a.db", parse_mounts(text))
    assert mount is not None and mount.fs_type == "nfs"


def test_unreadable_mounts_file_means_unknown(tmp_path: Path) -> None:
    assert network_fs_type("/mnt/labels/a.db", mounts_file=tmp_path / "missing") is None


def test_this_machines_temp_dir_is_local(tmp_path: Path) -> None:
    if not Path("/proc/mounts").exists():
        pytest.skip("no /proc/mounts on this OS")
    assert network_fs_type(tmp_path / "labels.db") is None


@pytest.mark.parametrize("path", [r"\\nas01\labels\team\labels.db", "//nas01/labels/labels.db"])
def test_windows_unc_paths_are_remote(path: str) -> None:
    assert network_fs_type(path, platform="win32") == "unc"
