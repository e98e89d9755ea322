"""Benchmark: label volumes of a 300-slice 512x512 CT series to NIfTI and DICOM SEG, and back.

The series is built from pydicom-data's real 693_UNCI.dcm slice (``build_ct_series``); the
labels are thresholded HU (bone > 300 HU, soft tissue 0..60 HU) on 240 of the 300 slices.
Prints one JSON object with medians: our NIfTI write against SimpleITK's ``WriteImage`` of the
same labels (peer; ratio > 1 = we are faster), our DICOM SEG write (highdicom; no comparable
peer, absolute times and MB/s of uint16 label voxels) and the import of both files.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from timing import median_seconds

RUNS = 3
SLICES = 300


def _median(fn: Callable[[], object], runs: int = RUNS) -> float:
    return median_seconds(fn, runs)


def main() -> None:
    import SimpleITK as sitk  # noqa: N813 - the usual alias

    from app.core.ontology import Ontology
    from app.exchange import volumes as vol
    from app.sources import open_source
    from app.sources.synthetic import build_ct_series

    ontology = Ontology.from_dict({"classes": [{"name": "bone"}, {"name": "fat"}, {"name": "soft tissue"}]})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sitelabel-bench-") as tmp:
        root = Path(tmp)
        build_ct_series(root / "ct", SLICES, spacing=1.25)
        with open_source(root / "ct") as src:
            geometry = src.geometry
            assert geometry is not None
            hu = src.volume()
            slices_s = _median(lambda: vol.source_slices(src))
            files = [p for p, _ in vol.source_slices(src)]
        labels = np.zeros(hu.shape, dtype=np.uint16)
        labels[(hu > 0) & (hu < 60)] = 3
        labels[hu > 300] = 1
        labels[:30] = 0
        labels[-30:] = 0
        del hu
        megabytes = labels.nbytes / 1e6

        nifti, peer_nifti, seg = root / "ours.nii.gz", root / "sitk.nii.gz", root / "seg.dcm"
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(root / "ct")))
        reader.MetaDataDictionaryArrayUpdateOff()
        reference = reader.Execute()
        peer_image = sitk.GetImageFromArray(labels)
        peer_image.CopyInformation(reference)
        del reference

        ours_nifti_s = _median(lambda: vol.write_nifti(labels, geometry, nifti))
        peer_nifti_s = _median(lambda: sitk.WriteImage(peer_image, str(peer_nifti), True))
        seg_s = _median(lambda: vol.write_dicom_seg(labels, files, ontology, seg))
        read_nifti_s = _median(lambda: vol.read_nifti_labels(nifti, geometry, shape_zyx=labels.shape))
        read_seg_s = _median(lambda: vol.read_dicom_seg_labels(seg, files))

        back = vol.read_nifti_labels(peer_nifti, geometry, shape_zyx=labels.shape)
        same_as_peer = bool(np.array_equal(back, labels))
        seg_back = vol.labels_from_segments(vol.read_dicom_seg_labels(seg, files), ontology)
        seg_round_trip = bool(np.array_equal(seg_back, labels))
        sizes = {
            name: p.stat().st_size / 1e6 for name, p in [("nifti", nifti), ("peer", peer_nifti), ("seg", seg)]
        }

    print(
        json.dumps(
            {
                "benchmark": "export_volumes",
                "slices": SLICES,
                "shape": [512, 512],
                "runs": RUNS,
                "statistic": "median",
                "labelled_voxels_fraction": round(float((labels > 0).mean()), 4),
                "label_volume_mb_uint16": round(megabytes, 1),
                "ours": {
                    "nifti_write_s": round(ours_nifti_s, 3),
                    "nifti_write_mb_per_s": round(megabytes / ours_nifti_s, 1),
                    "nifti_file_mb": round(sizes["nifti"], 2),
                    "dicom_seg_write_s": round(seg_s, 3),
                    "dicom_seg_write_mb_per_s": round(megabytes / seg_s, 1),
                    "dicom_seg_file_mb": round(sizes["seg"], 2),
                    "nifti_read_s": round(read_nifti_s, 3),
                    "dicom_seg_read_s": round(read_seg_s, 3),
                    "source_slices_s": round(slices_s, 3),
                },
                "simpleitk": {
                    "nifti_write_s": round(peer_nifti_s, 3),
                    "nifti_write_mb_per_s": round(megabytes / peer_nifti_s, 1),
                    "nifti_file_mb": round(sizes["peer"], 2),
                },
                "ratio_vs_simpleitk": {"nifti_write_speedup": round(peer_nifti_s / ours_nifti_s, 2)},
                "dicom_seg_peer": None,
                "checks": {
                    "simpleitk_nifti_reads_back_as_ours": same_as_peer,
                    "dicom_seg_round_trip_exact": seg_round_trip,
                },
                "total_s": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
