"""Mutation fuzzing of the PNG-mask and NIfTI label imports (``Project.import_labels``).

Seeds are produced by our own exporters from small real projects, built once per module:

* PNG masks: coins.png (skimage) and a 3-page TIFF of camera.png crops, annotated with a polygon,
  a mask and a box, exported as png-masks from a 3-class project (8-bit class-index PNGs and the
  palette colour PNGs, ``legend.json``) and from a 300-class project (16-bit class-index PNG and
  the RGB colour PNG).
* NIfTI: a 4-slice CT series built by ``build_ct_series`` from pydicom's real CT_small.dcm
  (128 x 128), annotated on two slices and exported as ``.nii.gz``; its gunzipped ``.nii`` too.

Mutations: PNG bytes (flips, truncation, insertions, huge IHDR sizes, other bit depths and
colour types), legend.json structure, masks named after an asset of another size, legends with
classes the ontology lacks; NIfTI header fields (dim[0..7], datatype, bitpix, vox_offset,
scl_slope/inter, pixdim, qform/sform, magic) set to huge, negative, zero or NaN values,
truncation and gzip corruption. Each import runs for real (not a dry run) and must work or raise
one SitelabelError with a one-line message, under the address-space cap; and it is all or
nothing: the stored annotation count grows by exactly what the report says was matched, and
not at all when the import is refused.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _fuzz_support import (
    NIFTI1_FIELDS,
    NIFTI_FLOAT_LIES,
    NIFTI_INT_LIES,
    NIFTI_MAGIC_LIES,
    PROPERTY_TIMEOUT,
    dump_json,
    fuzz_settings,
    mutated,
    mutated_json,
    patch_gzip_isize,
    patch_nifti1,
    patch_png_ihdr,
    png_with_ihdr,
    works_or_refuses,
)
from hypothesis import given
from hypothesis import strategies as st

from app import api, sample_data

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # NaN/inf header values in nibabel's maths
]
SEEDS = Path(__file__).with_name("seeds")
_counter = itertools.count()

ONTOLOGY = {
    "classes": [
        {"name": "coin", "color": "#c0504d"},
        {"name": "shadow", "color": "#4f81bd"},
        {"name": "edge", "color": "#9bbb59"},
    ]
}
WIDE_ONTOLOGY = {
    "classes": [{"name": f"c{i:03d}", "color": f"#{i % 256:02x}{255 - i % 256:02x}80"} for i in range(300)]
}
CT_ONTOLOGY = {"classes": [{"name": "liver", "color": "#c0504d"}, {"name": "lesion", "color": "#f2c14e"}]}


@dataclass(repr=False)
class Seeds:
    """Exported label files and the projects (one per ontology) they are imported into."""

    projects: dict[str, api.Project]  # "8" (3 classes), "16" (300 classes), "ct"
    png: dict[str, bytes]  # seed name -> PNG bytes
    png_target: dict[str, tuple[str, str]]  # seed name -> (project key, mask path below index/)
    legends: dict[str, Any]  # project key -> legend.json
    nifti: dict[str, bytes]  # "series.nii.gz" / "series.nii" -> bytes
    nifti_path: str  # the exported volume's path below the export folder, without suffix

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"Seeds({sorted(self.png)}, {sorted(self.nifti)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' pretty printer
        printer.text(repr(self))


def _annotate_images(project: api.Project, folder: Path, labels: tuple[str, str, str]) -> None:
    import tifffile
    from skimage import data as skdata

    pages = folder / "pages.tif"
    if not pages.exists():
        camera = skdata.camera()
        tifffile.imwrite(pages, np.stack([camera[::8, ::8], camera[::-8, ::8], camera[::8, ::-8]]),
                         photometric="minisblack")  # fmt: skip
    coins, paged = project.import_data([sample_data.skimage_images() / "coins.png", pages])
    mask = np.zeros((303, 384), dtype=bool)
    mask[100:150, 100:200] = True
    project.upload_annotations(coins, [
        {"kind": "polygon", "label": labels[0], "points": [[10, 10], [80, 12], [40, 70]]},
        {"kind": "mask", "label": labels[1], "mask": mask},
        {"kind": "box", "label": labels[2], "box": [200, 20, 300, 90]},
    ])  # fmt: skip
    project.upload_annotations(paged, [
        {"kind": "polygon", "label": labels[0], "frame": 1, "points": [[5, 5], [50, 8], [30, 40]]},
        {"kind": "box", "label": labels[2], "frame": 2, "box": [3, 3, 30, 20]},
    ])  # fmt: skip


def _build_seeds(folder: Path) -> Seeds:
    from app.sources.synthetic import build_ct_series

    db = str(folder / "fuzz.db")
    projects: dict[str, api.Project] = {}
    png: dict[str, bytes] = {}
    target: dict[str, tuple[str, str]] = {}
    legends: dict[str, Any] = {}
    for key, ontology, labels in (
        ("8", ONTOLOGY, ("coin", "shadow", "edge")),
        ("16", WIDE_ONTOLOGY, ("c001", "c280", "c299")),
    ):
        # the labels are exported from one project and imported into a fresh one (the fuzz target)
        source = api.create_project(db, f"export-{key}", ontology=ontology, user="ann")
        _annotate_images(source, folder, labels)
        out = folder / f"export-{key}"
        source.export("png-masks", out)
        source.close()
        legends[key] = json.loads((out / "legend.json").read_text())
        for png_file in sorted((out / "index").rglob("*.png")):
            rel = png_file.relative_to(out / "index").as_posix()
            stem = "coins" if rel.endswith("coins.png") else f"page{png_file.stem[-1]}"
            for kind in ("index", "color"):
                name = f"{stem}-{kind}-{key}.png"
                png[name] = (out / kind / rel).read_bytes()
                target[name] = (key, rel)
        projects[key] = api.create_project(db, f"import-{key}", ontology=ontology, user="ann")
        projects[key].import_data([sample_data.skimage_images() / "coins.png", folder / "pages.tif"])

    series = folder / "ct-series"
    build_ct_series(series, 4, template=sample_data.dicom_file("CT_small.dcm"))
    source = api.create_project(db, "export-ct", ontology=CT_ONTOLOGY, user="ann")
    (series_id,) = source.import_data([series])
    lesion = np.zeros((128, 128), dtype=bool)
    lesion[40:60, 50:90] = True
    source.upload_annotations(series_id, [
        {"kind": "polygon", "label": "liver", "frame": 1, "points": [[20, 20], [100, 30], [60, 110]]},
        {"kind": "mask", "label": "lesion", "frame": 2, "mask": lesion},
    ])  # fmt: skip
    source.export("nifti", folder / "export-ct")
    source.close()
    (volume,) = (folder / "export-ct").rglob("*.nii.gz")
    packed = volume.read_bytes()
    projects["ct"] = api.create_project(db, "import-ct", ontology=CT_ONTOLOGY, user="ann")
    projects["ct"].import_data([series])
    stem = volume.relative_to(folder / "export-ct").as_posix().removesuffix(".nii.gz")
    nifti = {"series.nii.gz": packed, "series.nii": gzip.decompress(packed)}
    return Seeds(projects, png, target, legends, nifti, stem)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeds]:
    # nibabel logs every header oddity it repairs; thousands of lines that say nothing here
    quiet = logging.getLogger("nibabel.global")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    built = _build_seeds(tmp_path_factory.mktemp("mask-seeds"))
    try:
        yield built
    finally:
        quiet.setLevel(level)
        for project in built.projects.values():
            project.close()


def _stored(project: api.Project) -> int:
    with project.db.unit_of_work(readonly=True) as uow:
        return sum(uow.annotations.count(a.id) for a in uow.assets.list(project.id))


def import_all_or_nothing(project: api.Project, fmt: str, path: Path) -> list[tuple[str, str]]:
    """The property: works or refuses (see works_or_refuses), and stores all it reports or nothing.

    Returns what was turned down: the refusal, or the report's skipped items.
    """
    before = _stored(project)
    report: list[Any] = []
    err = works_or_refuses(lambda: report.append(project.import_labels(fmt, path)), path)
    added = _stored(project) - before
    if err is not None or not report:
        assert added == 0, f"a refused import stored {added} annotations"
        return [(str(path), str(err))]
    reported = sum(count for _item, _asset, count in report[0].matched)
    assert added == reported, f"the report says {reported} annotations were imported, {added} were stored"
    skipped: list[tuple[str, str]] = report[0].skipped
    return skipped


def _fresh(tmp_path: Path) -> Path:
    folder = tmp_path / f"case{next(_counter):05d}"
    folder.mkdir()
    return folder


# --- PNG masks --------------------------------------------------------------------------------------
_PNG_FORMATS = st.tuples(st.sampled_from([1, 2, 4, 8, 16, 3, 0]), st.sampled_from([0, 2, 3, 4, 6, 1]))


def _png_import(seeds: Seeds, data: st.DataObject, folder: Path) -> tuple[api.Project, Path]:
    """Draw one PNG-mask import: a seed mask (maybe changed), under which name, with which legend."""
    name = data.draw(st.sampled_from(sorted(seeds.png)), label="seed")
    key, rel = seeds.png_target[name]
    png = seeds.png[name]
    legend: Any = seeds.legends[key]
    how = data.draw(
        st.sampled_from(["bytes", "bytes", "ihdr", "legend", "other-asset", "mixed"]), label="how"
    )
    if how == "bytes":
        _seed, png = data.draw(mutated({name: png}, {name: patch_png_ihdr}), label="png")
    elif how == "ihdr":
        depth, colour = data.draw(_PNG_FORMATS, label="bit depth, colour type")
        size = data.draw(st.sampled_from([None, 0, 1, 0xFFFF, 0x7FFFFFFF]), label="width/height")
        png = png_with_ihdr(png, width=size, height=size, bit_depth=depth, color_type=colour)
    elif how == "legend":
        legend = data.draw(mutated_json(legend), label="legend")
    elif how == "other-asset":  # a mask for another asset (another size) under this asset's name
        rel = seeds.png_target[data.draw(st.sampled_from(sorted(seeds.png)), label="named as")][1]
    else:  # classes the ontology lacks, no legend (ontology order), a legend from the other project
        legend = data.draw(st.sampled_from([
            None,
            seeds.legends["16" if key == "8" else "8"],
            {"classes": [{"index": 1, "name": "tumour"}, {"index": 2, "name": "coin"}]},
            {"classes": [{"index": 70000, "name": "coin"}, {"index": -1, "name": "shadow"}]},
        ]), label="legend")  # fmt: skip
    project = seeds.projects[
        data.draw(st.sampled_from([key, key, "8" if key == "16" else "16"]), label="into")
    ]
    mask = folder / "index" / rel
    mask.parent.mkdir(parents=True, exist_ok=True)
    mask.write_bytes(png)
    if legend is not None:
        (folder / "legend.json").write_text(dump_json(legend), encoding="utf-8")
    return project, folder


@pytest.mark.soak
@pytest.mark.timeout(PROPERTY_TIMEOUT)
@fuzz_settings(250)
@given(data=st.data())
def test_fuzz_png_mask_import(seeds: Seeds, tmp_path: Path, data: st.DataObject) -> None:
    project, folder = _png_import(seeds, data, _fresh(tmp_path))
    import_all_or_nothing(project, "png-masks", folder)


def test_fuzz_png_mask_seeds_import(seeds: Seeds, tmp_path: Path) -> None:
    """The unmutated seed masks import into their project (8-bit, 16-bit, palette), so the property
    starts from working inputs; the 16-bit project's RGB colour PNG is the one refused."""
    for name, png in sorted(seeds.png.items()):
        key, rel = seeds.png_target[name]
        folder = _fresh(tmp_path)
        (folder / "index" / rel).parent.mkdir(parents=True)
        (folder / "index" / rel).write_bytes(png)
        (folder / "legend.json").write_text(json.dumps(seeds.legends[key]))
        project = seeds.projects[key]
        before = _stored(project)
        report = project.import_labels("png-masks", folder)
        if name.endswith("-color-16.png"):  # past 255 classes the colour PNG is RGB: refused by design
            assert not report.matched and "single-channel" in report.skipped[0][1], (name, report)
            continue
        assert len(report.matched) == 1 and not report.skipped, (name, report)
        assert _stored(project) - before == report.matched[0][2] > 0, name


@pytest.mark.parametrize(
    "seed", sorted(SEEDS.glob("pngmask-*")) if SEEDS.is_dir() else [], ids=lambda p: p.name
)
def test_fuzz_png_mask_regressions(seeds: Seeds, tmp_path: Path, seed: Path) -> None:
    """Masks that once escaped (see seeds/README.md), imported as coins.png into the 3-class project."""
    folder = _fresh(tmp_path)
    rel = next(rel for name, (key, rel) in seeds.png_target.items() if name == "coins-index-8.png")
    (folder / "index" / rel).parent.mkdir(parents=True)
    shutil.copyfile(seed, folder / "index" / rel)
    (folder / "legend.json").write_text(json.dumps(seeds.legends["8"]))
    turned_down = import_all_or_nothing(seeds.projects["8"], "png-masks", folder)
    assert turned_down and "cannot read the PNG" in turned_down[0][1], turned_down


def test_fuzz_png_mask_bad_file_skips_only_itself(seeds: Seeds, tmp_path: Path) -> None:
    """A damaged mask is skipped with its reason; the good mask beside it imports (before the fix
    Pillow's UnidentifiedImageError stopped the whole import)."""
    folder = _fresh(tmp_path)
    good, bad = seeds.png_target["coins-index-8.png"][1], seeds.png_target["page1-index-8.png"][1]
    for rel, data in ((good, seeds.png["coins-index-8.png"]), (bad, b"")):
        (folder / "index" / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / "index" / rel).write_bytes(data)
    (folder / "legend.json").write_text(json.dumps(seeds.legends["8"]))
    project = seeds.projects["8"]
    before = _stored(project)
    report = project.import_labels("png-masks", folder)
    assert [(item, n) for item, _asset, n in report.matched] == [(good, 3)], report
    assert [item for item, _why in report.skipped] == [bad], report
    assert "cannot read the PNG (UnidentifiedImageError" in report.skipped[0][1], report
    assert _stored(project) - before == 3


# --- NIfTI ------------------------------------------------------------------------------------------
_INT_FIELDS = [name for name, _at, code in NIFTI1_FIELDS if code in "hi"]
_FLOAT_FIELDS = [name for name, _at, code in NIFTI1_FIELDS if code == "f"]


def _nifti_bytes(seeds: Seeds, data: st.DataObject) -> tuple[str, bytes]:
    """A seed volume with lying header fields (re-gzipped for .nii.gz), or byte/gzip-level damage."""
    name = data.draw(st.sampled_from(sorted(seeds.nifti)), label="seed")
    raw = seeds.nifti["series.nii"]
    how = data.draw(st.sampled_from(["header", "header", "header", "bytes"]), label="how")
    if how == "header":
        for _ in range(data.draw(st.integers(1, 3), label="fields")):
            kind = data.draw(st.sampled_from(["int", "float", "magic"]), label="kind")
            value: Any
            if kind == "int":
                field, value = data.draw(
                    st.tuples(st.sampled_from(_INT_FIELDS), st.sampled_from(NIFTI_INT_LIES))
                )
            elif kind == "float":
                field, value = data.draw(
                    st.tuples(st.sampled_from(_FLOAT_FIELDS), st.sampled_from(NIFTI_FLOAT_LIES))
                )
            else:
                field, value = "magic", data.draw(st.sampled_from(NIFTI_MAGIC_LIES))
            raw = patch_nifti1(raw, field, value)
        if data.draw(st.booleans(), label="truncate"):
            raw = raw[: data.draw(st.integers(0, len(raw)), label="cut at")]
        return name, gzip.compress(raw, compresslevel=1, mtime=0) if name.endswith(".gz") else raw
    _seed, damaged = data.draw(mutated({name: seeds.nifti[name]}, {name: patch_gzip_isize}), label="bytes")
    return name, damaged


@pytest.mark.soak
@pytest.mark.timeout(PROPERTY_TIMEOUT)
@fuzz_settings(250)
@given(data=st.data())
def test_fuzz_nifti_import(seeds: Seeds, tmp_path: Path, data: st.DataObject) -> None:
    name, volume = _nifti_bytes(seeds, data)
    folder = _fresh(tmp_path)
    path = folder / f"{seeds.nifti_path}{name.removeprefix('series')}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(volume)
    import_all_or_nothing(seeds.projects["ct"], "nifti", folder)


def test_fuzz_nifti_seeds_import(seeds: Seeds, tmp_path: Path) -> None:
    """Both seed volumes import whole: 1 liver + 1 lesion mask."""
    project = seeds.projects["ct"]
    for name, volume in seeds.nifti.items():
        folder = _fresh(tmp_path)
        path = folder / f"{seeds.nifti_path}{name.removeprefix('series')}"
        path.parent.mkdir(parents=True)
        path.write_bytes(volume)
        before = _stored(project)
        report = project.import_labels("nifti", folder)
        assert [count for _i, _a, count in report.matched] == [2] and not report.skipped, (name, report)
        assert _stored(project) - before == 2


@pytest.mark.parametrize(
    "seed", sorted(SEEDS.glob("nifti-*")) if SEEDS.is_dir() else [], ids=lambda p: p.name
)
def test_fuzz_nifti_regressions(seeds: Seeds, tmp_path: Path, seed: Path) -> None:
    """Volumes that once escaped (see seeds/README.md), imported under the CT series' name."""
    folder = _fresh(tmp_path)
    suffix = ".nii.gz" if seed.name.endswith(".gz") else ".nii"
    path = folder / f"{seeds.nifti_path}{suffix}"
    path.parent.mkdir(parents=True)
    shutil.copyfile(seed, path)
    turned_down = import_all_or_nothing(seeds.projects["ct"], "nifti", folder)
    why = "has no class" if "past-ontology" in seed.name else "cannot read the NIfTI voxel data"
    assert turned_down and why in turned_down[0][1], turned_down


def test_fuzz_nifti_bad_file_skips_only_itself(seeds: Seeds, tmp_path: Path) -> None:
    """A volume with a label past the ontology is skipped with its reason; the good one beside it
    imports (it used to stop the whole import with a ValidationError)."""
    folder = _fresh(tmp_path)
    good = folder / "good" / f"{seeds.nifti_path}.nii.gz"
    bad = folder / "bad" / f"{seeds.nifti_path}.nii.gz"
    for path in (good, bad):
        path.parent.mkdir(parents=True)
    good.write_bytes(seeds.nifti["series.nii.gz"])
    shutil.copyfile(SEEDS / "nifti-label-past-ontology.nii.gz", bad)
    project = seeds.projects["ct"]
    before = _stored(project)
    report = project.import_labels("nifti", folder)
    assert [(item, n) for item, _asset, n in report.matched] == [(str(good), 2)], report
    assert [item for item, _why in report.skipped] == [str(bad)], report
    assert "label value 512 has no class" in report.skipped[0][1], report
    assert _stored(project) - before == 2


@pytest.mark.parametrize("field", ["srow_x[0]", "qoffset_y"])
def test_fuzz_nifti_nan_orientation_is_named(seeds: Seeds, tmp_path: Path, field: str) -> None:
    """A NaN in the sform (or, with no sform, the qform) is skipped with a clear reason; it used to
    be reported as "malformed entry: LinAlgError: SVD did not converge"."""
    raw = patch_nifti1(seeds.nifti["series.nii"], field, float("nan"))
    if field.startswith("q"):
        raw = patch_nifti1(raw, "sform_code", 0)
    folder = _fresh(tmp_path)
    path = folder / f"{seeds.nifti_path}.nii"
    path.parent.mkdir(parents=True)
    path.write_bytes(raw)
    turned_down = import_all_or_nothing(seeds.projects["ct"], "nifti", folder)
    assert len(turned_down) == 1 and "holds NaN or infinite values" in turned_down[0][1], turned_down
