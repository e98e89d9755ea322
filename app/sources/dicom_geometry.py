"""Pure helpers for DICOM series: grouping, slice ordering along the normal, spacing checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from app.sources.dicom_header import DicomHeader
from app.sources.values import VolumeGeometry

_DUPLICATE_TOL = 1e-3  # mm
_GAP_FACTOR = 1.5
_UNEVEN_TOL = 0.01  # relative


@dataclass
class SortedSeries:
    headers: list[DicomHeader]
    spacing: tuple[float, float, float] | None  # (z, y, x) mm
    geometry: VolumeGeometry | None
    warnings: list[str] = field(default_factory=list)


def group_key(h: DicomHeader) -> tuple[object, ...]:
    iop = h.floats("ImageOrientationPatient", 6)
    return (
        h.get("StudyInstanceUID", ""),
        h.get("SeriesInstanceUID", ""),
        h.get("Rows"),
        h.get("Columns"),
        h.get("SamplesPerPixel", 1),
        tuple(round(v, 3) for v in iop) if iop else None,
    )


def group_headers(headers: Sequence[DicomHeader]) -> list[list[DicomHeader]]:
    """Single-frame images grouped by study, series, frame size and orientation; multi-frame files alone."""
    groups: dict[tuple[object, ...], list[DicomHeader]] = {}
    singles: list[list[DicomHeader]] = []
    for h in headers:
        if h.frames > 1 or h.is_enhanced:
            singles.append([h])
        else:
            groups.setdefault(group_key(h), []).append(h)
    return sorted(groups.values(), key=lambda g: (-len(g), str(g[0].path))) + singles


def slice_normal(iop: Sequence[float]) -> np.ndarray:
    row, col = np.asarray(iop[:3], dtype=np.float64), np.asarray(iop[3:6], dtype=np.float64)
    normal = np.cross(row, col)
    norm = float(np.linalg.norm(normal))
    if norm < 1e-6:
        raise ValueError("degenerate ImageOrientationPatient")
    return normal / norm


def make_geometry(
    origin: Sequence[float], iop: Sequence[float], spacing_zyx: tuple[float, float, float]
) -> VolumeGeometry:
    row, col = np.asarray(iop[:3], dtype=np.float64), np.asarray(iop[3:6], dtype=np.float64)
    row /= np.linalg.norm(row)
    col /= np.linalg.norm(col)
    normal = slice_normal(iop)
    mat = np.stack([row, col, normal], axis=1)  # columns = axes i, j, k
    d = tuple(float(v) for v in mat.reshape(-1))
    z, y, x = spacing_zyx
    return VolumeGeometry(
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        spacing=(x, y, z),
        direction=(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8]),
    )


def spacing_warnings(positions: np.ndarray) -> tuple[float | None, list[str]]:
    """Median spacing of sorted positions along the normal plus warnings for gaps/unevenness."""
    if len(positions) < 2:
        return None, []
    diffs = np.diff(positions)
    median = float(np.median(diffs))
    warnings: list[str] = []
    if median <= _DUPLICATE_TOL:
        return None, ["slices share one position; slice spacing unknown"]
    gaps = np.nonzero(diffs > _GAP_FACTOR * median)[0]
    for k in gaps[:10]:
        missing = round(float(diffs[k]) / median) - 1
        warnings.append(
            f"gap of {diffs[k]:.2f} mm between slices {k} and {k + 1} (about {missing} missing slice(s); "
            f"usual spacing {median:.2f} mm)"
        )
    if len(gaps) > 10:
        warnings.append(f"... and {len(gaps) - 10} more gaps")
    regular = np.delete(diffs, gaps)
    if regular.size and float(regular.max() - regular.min()) > _UNEVEN_TOL * median:
        warnings.append(
            f"uneven slice spacing: {float(regular.min()):.3f} to {float(regular.max()):.3f} mm "
            f"(median {median:.3f} mm)"
        )
    return median, warnings


def sort_series(headers: Sequence[DicomHeader]) -> SortedSeries:
    """Order single-frame slices by ImagePositionPatient projected on the slice normal.

    Falls back to InstanceNumber (then file name) when positions are missing. Slices at
    the same position are reported; only the first (lowest InstanceNumber) is kept.
    """
    hs = list(headers)
    first = hs[0]
    pixel = first.floats("PixelSpacing", 2)
    if pixel is not None and min(pixel) <= 0:
        pixel = None
    row_sp, col_sp = (pixel[0], pixel[1]) if pixel else (1.0, 1.0)
    iop = first.floats("ImageOrientationPatient", 6)
    ipps = [h.floats("ImagePositionPatient", 3) for h in hs]
    warnings: list[str] = []
    if not pixel:
        warnings.append("no PixelSpacing; assuming 1 mm")

    def inst(h: DicomHeader) -> float:
        return h.num("InstanceNumber", 0.0) or 0.0

    if iop is None or any(p is None for p in ipps):
        hs.sort(key=lambda h: (inst(h), h.path.name))
        if len(hs) > 1:
            warnings.append(
                "no ImagePositionPatient/ImageOrientationPatient; slices sorted by InstanceNumber"
            )
        thickness = first.num("SliceThickness") or 1.0
        return SortedSeries(hs, (thickness, row_sp, col_sp), None, warnings)
    try:
        normal = slice_normal(iop)
    except ValueError:
        hs.sort(key=lambda h: (inst(h), h.path.name))
        return SortedSeries(hs, None, None, [*warnings, "degenerate ImageOrientationPatient"])
    proj = np.asarray([float(np.dot(normal, p)) for p in ipps if p is not None])
    order = sorted(range(len(hs)), key=lambda i: (proj[i], inst(hs[i]), hs[i].path.name))
    kept: list[int] = []
    for i in order:
        if kept and abs(proj[i] - proj[kept[-1]]) < _DUPLICATE_TOL:
            warnings.append(
                f"duplicate slice at position {proj[i]:.3f} mm: {hs[i].path.name} ignored "
                f"(kept {hs[kept[-1]].path.name})"
            )
            continue
        kept.append(i)
    sorted_hs = [hs[i] for i in kept]
    positions = proj[kept]
    median, spacing_msgs = spacing_warnings(positions)
    warnings.extend(spacing_msgs)
    z = median if median is not None else (first.num("SliceThickness") or 1.0)
    spacing = (float(z), float(row_sp), float(col_sp))
    origin = sorted_hs[0].floats("ImagePositionPatient", 3)
    assert origin is not None
    return SortedSeries(sorted_hs, spacing, make_geometry(origin, iop, spacing), warnings)
