"""Benchmark: a 300-slice 512x512 CT series (built from pydicom-data's real 693_UNCI.dcm slice).

Prints one JSON object: time to the first displayable slice, time to the full volume and the
headers-only scan rate for app.sources, SimpleITK's ImageSeriesReader and a plain pydicom
loop on the same files, medians of several runs, plus ratios (peer / ours; > 1 = we are faster).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from timing import median_seconds

RUNS = 5
SLICES = 300


def _median(fn: Callable[[], object], runs: int = RUNS) -> float:
    return median_seconds(fn, runs)


def main() -> None:
    import pydicom
    import SimpleITK as sitk  # noqa: N813 - the usual alias

    from app.sources import SourceLimits, open_source
    from app.sources.dicom import read_headers
    from app.sources.synthetic import build_ct_series

    with tempfile.TemporaryDirectory(prefix="sitelabel-bench-") as tmp:
        folder = Path(tmp)
        files = build_ct_series(folder, SLICES, spacing=1.25)
        all_files = sorted(folder.iterdir())

        def ours_first() -> None:
            with open_source(folder, limits=SourceLimits(prefetch=0)) as src:
                src.frame(0)

        def ours_volume() -> None:
            with open_source(folder) as src:
                src.volume()

        def ours_scan() -> None:
            read_headers(all_files, SourceLimits())

        def sitk_first() -> None:
            names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder))
            sitk.GetArrayFromImage(sitk.ReadImage(names[0]))

        def sitk_volume() -> None:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
            sitk.GetArrayFromImage(reader.Execute())

        def sitk_scan() -> None:
            sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder))

        def _sorted_headers() -> list[tuple[float, Path]]:
            out = []
            for p in all_files:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
                out.append((float(ds.ImagePositionPatient[2]), p))
            return sorted(out)

        def pyd_first() -> None:
            first = _sorted_headers()[0][1]
            ds = pydicom.dcmread(first)
            ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)

        def pyd_volume() -> None:
            dss = sorted(
                (pydicom.dcmread(p) for p in all_files), key=lambda d: float(d.ImagePositionPatient[2])
            )
            vol = np.stack([d.pixel_array for d in dss]).astype(np.int16)
            vol += np.int16(float(dss[0].RescaleIntercept))

        def pyd_scan() -> None:
            for p in all_files:
                pydicom.dcmread(p, stop_before_pixels=True)

        # correctness guard: same volume as SimpleITK
        with open_source(folder) as src:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
            same = bool(np.array_equal(src.volume(), sitk.GetArrayFromImage(reader.Execute())))
            assert src.frame_count == len(files)

        ours = {
            "first_slice_ms": _median(ours_first) * 1e3,
            "full_volume_ms": _median(ours_volume) * 1e3,
            "scan_files_per_s": SLICES / _median(ours_scan),
        }
        simpleitk = {
            "first_slice_ms": _median(sitk_first) * 1e3,
            "full_volume_ms": _median(sitk_volume) * 1e3,
            "scan_files_per_s": SLICES / _median(sitk_scan),
        }
        plain = {
            "first_slice_ms": _median(pyd_first, 3) * 1e3,
            "full_volume_ms": _median(pyd_volume, 3) * 1e3,
            "scan_files_per_s": SLICES / _median(pyd_scan, 3),
        }

    def ratios(peer: dict[str, float]) -> dict[str, float]:
        return {
            "first_slice_speedup": round(peer["first_slice_ms"] / ours["first_slice_ms"], 2),
            "full_volume_speedup": round(peer["full_volume_ms"] / ours["full_volume_ms"], 2),
            "scan_rate_ratio": round(ours["scan_files_per_s"] / peer["scan_files_per_s"], 2),
        }

    def rounded(d: dict[str, float]) -> dict[str, float]:
        return {k: round(v, 1) for k, v in d.items()}

    print(
        json.dumps(
            {
                "benchmark": "dicom_series",
                "slices": SLICES,
                "shape": [512, 512],
                "runs": RUNS,
                "statistic": "median",
                "same_volume_as_simpleitk": same,
                "ours": rounded(ours),
                "simpleitk": rounded(simpleitk),
                "pydicom_loop": rounded(plain),
                "ratio_vs_simpleitk": ratios(simpleitk),
                "ratio_vs_pydicom_loop": ratios(plain),
                "goals": {
                    "first_slice_under_150ms": ours["first_slice_ms"] < 150,
                    "volume_at_least_as_fast_as_simpleitk": ours["full_volume_ms"]
                    <= simpleitk["full_volume_ms"],
                },
            }
        )
    )


if __name__ == "__main__":
    main()
