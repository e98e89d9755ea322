"""Archives (zip, tar, tar.gz/tgz, gz): validated, then extracted to a managed cache folder.

Every member name is checked before anything is written: absolute paths, drive letters,
``..`` components, symlinks, hard links and devices make the whole archive refused
(``UnsafeArchive``). Member count, total size and compression ratio are limited, and the
real byte count is enforced while streaming (headers can lie). Extraction goes to a
temporary folder renamed into place, so a half-extracted archive is never used. The cache
root is ``cache_dir`` if given, else ``$SITELABEL_CACHE_DIR``, else the platform user cache.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, cast

from app.sources.errors import CorruptFile, DecompressionBomb, UnsafeArchive, UnsupportedFormat, one_line
from app.sources.registry import register_reader
from app.sources.values import SourceLimits

_DRIVE = re.compile(r"^[A-Za-z]:")
_COPY_CHUNK = 1 << 20
_RATIO_FLOOR = 1 << 20  # ratios are only judged once a member/archive exceeds 1 MiB
_MARKER = ".sitelabel-complete.json"


def cache_root(cache_dir: Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("SITELABEL_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("sitelabel"))


def safe_member_name(name: str) -> str | None:
    """Normalised relative POSIX path of a member, None for the root; UnsafeArchive if it escapes."""
    text = name.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        raise UnsafeArchive(f"member {name!r} has an absolute path")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeArchive(f"member {name!r} escapes the archive folder ('..')")
    if any("\x00" in p for p in parts):
        raise UnsafeArchive(f"member {name!r} contains a NUL byte")
    return str(PurePosixPath(*parts)) if parts else None


@dataclass(frozen=True)
class _Member:
    name: str  # safe relative path
    size: int  # declared uncompressed size
    key: object  # ZipInfo / TarInfo / None (gz)


def sniff_zip(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def sniff_gzip(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b"


def sniff_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def _archive_kind(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(512)
    if sniff_zip(head):
        return "zip"
    if sniff_gzip(head):
        try:
            with gzip.open(path, "rb") as gz:
                inner = gz.read(512)
        except (OSError, EOFError, zlib_error()) as exc:  # zlib.error is not an OSError
            raise CorruptFile(f"{path}: corrupt gzip stream: {one_line(exc)}") from exc
        return "tar" if sniff_tar(inner) else "gz"
    if sniff_tar(head):
        return "tar"
    raise UnsupportedFormat(f"{path}: not a zip, tar or gzip archive")


def _check_totals(path: Path, members: list[_Member], limits: SourceLimits) -> None:
    if len(members) > limits.max_archive_members:
        raise DecompressionBomb(
            f"{path}: {len(members):,} members exceed the limit of {limits.max_archive_members:,}"
        )
    total = sum(m.size for m in members)
    if total > limits.max_archive_bytes:
        raise DecompressionBomb(
            f"{path}: {total:,} uncompressed bytes exceed the limit of {limits.max_archive_bytes:,}"
        )
    packed = max(1, path.stat().st_size)
    if total > _RATIO_FLOOR and total / packed > limits.max_compression_ratio:
        raise DecompressionBomb(
            f"{path}: compression ratio {total / packed:.0f}:1 exceeds {limits.max_compression_ratio:.0f}:1"
        )


def _zip_members(path: Path, zf: zipfile.ZipFile, limits: SourceLimits) -> list[_Member]:
    out: list[_Member] = []
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchive(f"{path}: member {info.filename!r} is a symbolic link")
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UnsafeArchive(f"{path}: member {info.filename!r} is not a regular file")
        try:
            name = safe_member_name(info.filename)
        except UnsafeArchive as exc:
            raise UnsafeArchive(f"{path}: {exc}") from None
        if name is None or info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise UnsupportedFormat(f"{path}: member {info.filename!r} is encrypted")
        if (
            info.file_size > _RATIO_FLOOR
            and info.file_size / max(1, info.compress_size) > limits.max_compression_ratio
        ):
            raise DecompressionBomb(f"{path}: member {info.filename!r} compression ratio exceeds the limit")
        out.append(_Member(name, info.file_size, info))
    return out


def _tar_members(path: Path, tf: tarfile.TarFile) -> list[_Member]:
    out: list[_Member] = []
    for info in tf.getmembers():
        if info.issym() or info.islnk():
            raise UnsafeArchive(
                f"{path}: member {info.name!r} is a {'symbolic' if info.issym() else 'hard'} link"
            )
        if not (info.isfile() or info.isdir()):
            raise UnsafeArchive(f"{path}: member {info.name!r} is a device, FIFO or other special file")
        try:
            name = safe_member_name(info.name)
        except UnsafeArchive as exc:
            raise UnsafeArchive(f"{path}: {exc}") from None
        if name is not None and info.isfile():
            out.append(_Member(name, info.size, info))
    return out


def _copy_limited(  # noqa: PLR0917
    src: IO[bytes], dst: IO[bytes], budget: list[int], path: Path, packed: int, limits: SourceLimits
) -> None:
    """Stream ``src`` to ``dst`` while enforcing the real byte budget and ratio."""
    while chunk := src.read(_COPY_CHUNK):
        budget[0] += len(chunk)
        if budget[0] > limits.max_archive_bytes:
            raise DecompressionBomb(f"{path}: expands beyond {limits.max_archive_bytes:,} bytes")
        if budget[0] > _RATIO_FLOOR and budget[0] / max(1, packed) > limits.max_compression_ratio:
            raise DecompressionBomb(f"{path}: compression ratio exceeds {limits.max_compression_ratio:.0f}:1")
        dst.write(chunk)


def _streams(path: Path, kind: str, limits: SourceLimits) -> Iterator[tuple[_Member, IO[bytes]]]:
    if kind == "zip":
        with zipfile.ZipFile(path) as zf:
            members = _zip_members(path, zf, limits)
            _check_totals(path, members, limits)
            for m in members:
                assert isinstance(m.key, zipfile.ZipInfo)
                with zf.open(m.key) as fh:
                    yield m, fh
    elif kind == "tar":
        with tarfile.open(path, "r:*") as tf:
            members = _tar_members(path, tf)
            _check_totals(path, members, limits)
            for m in members:
                assert isinstance(m.key, tarfile.TarInfo)
                member_fh = tf.extractfile(m.key)
                if member_fh is None:
                    continue
                with member_fh:
                    yield m, member_fh
    else:
        name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name + ".out"
        member = _Member(safe_member_name(name) or "data", 0, None)
        with gzip.open(path, "rb") as gz:
            yield member, cast(IO[bytes], gz)


def extract_all(
    path: Path, limits: SourceLimits | None = None, cache_dir: Path | None = None
) -> tuple[Path, list[str]]:
    """Validate and extract ``path`` once; returns (extraction folder, member names)."""
    limits = limits or SourceLimits()
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:24]
    root = cache_root(cache_dir) / "archives"
    final = root / key
    marker = final / _MARKER
    if marker.is_file():
        members: list[str] = json.loads(marker.read_text())["members"]
        return final, members
    kind = _archive_kind(path)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".partial-{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    names: list[str] = []
    budget = [0]
    try:
        for member, fh in _streams(path, kind, limits):
            target = tmp / member.name
            if not target.resolve().is_relative_to(tmp.resolve()):
                raise UnsafeArchive(f"{path}: member {member.name!r} escapes the extraction folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("xb") as out:
                _copy_limited(fh, out, budget, path, st.st_size, limits)
            names.append(member.name)
        (tmp / _MARKER).write_text(json.dumps({"archive": str(path), "members": names}))
        try:
            tmp.rename(final)
        except OSError:  # another process finished first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, gzip.BadGzipFile, zlib_error()) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CorruptFile(f"{path}: corrupt archive: {one_line(exc)}") from exc
    except FileExistsError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UnsafeArchive(f"{path}: duplicate member name {Path(exc.filename or '').name!r}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, names


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def extract_member(
    path: Path, member: str, limits: SourceLimits | None = None, cache_dir: Path | None = None
) -> Path:
    """Local path of ``member`` (a file or a folder inside the archive)."""
    root, members = extract_all(path, limits, cache_dir)
    name = safe_member_name(member)
    local = root / name if name else root
    if name is None or name in members or any(m.startswith(name + "/") for m in members):
        return local
    raise UnsupportedFormat(f"{path}: no member {member!r}")


# A container's registered opener is its extractor; app.sources.opening turns members into sources.
register_reader(
    name="archive", kind="archive", patterns=("*.zip", "*.tar", "*.tar.gz", "*.tgz", "*.gz"),
    sniff=lambda head: sniff_zip(head) or sniff_gzip(head) or sniff_tar(head), priority=1,
)(extract_all)  # fmt: skip
