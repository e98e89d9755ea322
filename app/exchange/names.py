"""Stable export names: what an asset's label files are called, the same in every export.

An asset's name mirrors ``root/rel_path`` with the file's extension dropped, plus its series or
archive member: ``studies/ct1/slice`` for ``studies/ct1/slice.png``, ``studies/mri/series=1.2.840.1``
for a series (the whole SeriesInstanceUID: its dots are not an extension, and a folder keeps its
name), ``studies/a.zip/scans/b`` for ``b.png`` inside an archive.

A name never changes when other assets arrive. Two assets that would share a name (``a.png`` and
``a.jpg`` in one folder) are told apart by age: the asset registered first (the lower id) keeps the
short name, a later one keeps its full file name (``a.jpg``), and the asset id is added should even
that be taken. The exports compute the names over the whole project, not the selection, so a filter
does not change them either; only removing an asset can shorten a later one's name.

Older Sitelabel versions cut a series' UID at its last dot (``series=1.2.840``) and gave colliding
assets their full names only while both existed; :func:`legacy_names` lists those forms so the
importers still match such exports where that is unambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from app.core.records import Asset

_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")
_SERIES = "series="


def _clean(path: str) -> PurePosixPath:
    return PurePosixPath(*[_UNSAFE.sub("_", p) for p in PurePosixPath(path).parts])


def _split_member(member: str) -> tuple[str, str]:
    """(archive member path, series part) of a stored member (``!a/b.png``, ``series=UID``,
    ``!dir#series=UID``)."""
    archive, series = member, ""
    if member.startswith(_SERIES):
        return "", member
    if "#" + _SERIES in member:
        archive, series = member.split("#" + _SERIES, 1)
        series = _SERIES + series
    return archive.lstrip("!#"), series


def _drop_suffix(path: PurePosixPath) -> PurePosixPath:
    return path.with_suffix("") if path.suffix and path.stem else path


def base_name(asset: Asset, *, full: bool = False) -> PurePosixPath:
    """The asset's name before telling colliding assets apart; ``full`` keeps the file extension."""
    archive, series = _split_member(asset.member or "")
    rel = PurePosixPath(asset.rel_path)
    file_is_last = not archive and not series  # a series' rel_path is a folder: keep its name whole
    path = PurePosixPath(asset.root) / (rel if full or not file_is_last else _drop_suffix(rel))
    if archive:
        member_path = _clean(archive)
        path = path / (member_path if full or series else _drop_suffix(member_path))
    if series:
        path = path / _UNSAFE.sub("_", series)
    return path


def item_names(assets: Sequence[Asset]) -> dict[int, PurePosixPath]:
    """Unique, stable output base names of ``assets`` (pass the whole project; see the module doc)."""
    names: dict[int, PurePosixPath] = {}
    taken: set[PurePosixPath] = set()
    for asset in sorted(assets, key=lambda a: a.id):
        for candidate in (base_name(asset), base_name(asset, full=True)):
            if candidate not in taken:
                break
        else:
            short = base_name(asset)
            candidate = short.with_name(f"{short.name}~{asset.id}")
        taken.add(candidate)
        names[asset.id] = candidate
    return names


def legacy_names(asset: Asset) -> list[PurePosixPath]:
    """Names older exports may have used for ``asset``: a series' UID cut at its last dot."""
    _archive, series = _split_member(asset.member or "")
    if not series or "." not in series:
        return []
    cut = base_name(asset)
    return [cut.with_name(cut.name.rsplit(".", 1)[0])]
