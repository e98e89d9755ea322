"""Mutation fuzzing of the label import formats (COCO, YOLO, labelme) and the model manifest parser.

Seeds are label files written for a small real project (three skimage images); each example
imports a mutated copy with ``dry_run=True`` (or reads a mutated manifest). It must work or
raise a SitelabelError with a one-line message; see _fuzz_support for the bounds.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from _fuzz_support import (
    PROPERTY_TIMEOUT,
    apply_op,
    dump_json,
    fuzz_settings,
    mutated_json,
    nested,
    works_or_refuses,
)
from hypothesis import example, given
from hypothesis import strategies as st

from app import api, sample_data
from app.exchange.importers import import_labels
from app.models.manifest import read_manifest

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning"),
    # 1e308 coordinates overflow to inf in numpy; the annotation checks then refuse them
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]
ONTOLOGY = {"classes": [{"name": "coin", "color": "#c0504d"}, {"name": "shadow", "color": "#4f81bd"}]}
IMAGES = ("coins.png", "camera.png")
_counter = itertools.count()

COCO: dict[str, Any] = {
    "images": [
        {"id": 1, "file_name": "coins.png", "width": 384, "height": 303},
        {"id": 2, "file_name": "camera.png#0", "width": 512, "height": 512},
    ],
    "categories": [{"id": 1, "name": "coin"}, {"id": 2, "name": "shadow"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40]},
        {"id": 2, "image_id": 1, "category_id": 2, "segmentation": [[10, 10, 50, 10, 30, 40]]},
        {"id": 3, "image_id": 2, "category_id": 1,
         "segmentation": {"size": [512, 512], "counts": [0, 10, 262134]}},
        {"id": 4, "image_id": 2, "category_id": 1,
         "sitelabel": {"kind": "polygon", "points": [[1, 1], [9, 1], [5, 7]]}},
    ],
}  # fmt: skip
LABELME: dict[str, Any] = {
    "imagePath": "coins.png",
    "imageWidth": 384,
    "imageHeight": 303,
    "shapes": [
        {"label": "coin", "shape_type": "polygon", "points": [[10, 10], [50, 10], [30, 40]]},
        {"label": "shadow", "shape_type": "rectangle", "points": [[5, 5], [60, 70]]},
        {"label": "coin", "shape_type": "point", "points": [[7, 8]]},
        {"label": "shadow", "shape_type": "linestrip", "points": [[1, 1], [20, 30], [40, 5]]},
    ],
}
YOLO_LABELS = "0 0.5 0.5 0.25 0.25\n1 0.1 0.1 0.4 0.1 0.3 0.5\n"
YOLO_YAML = "names:\n  0: coin\n  1: shadow\n"


@pytest.fixture
def project(tmp_path: Path) -> api.Project:
    proj = api.create_project(str(tmp_path / "fuzz.db"), "fuzz", ontology=ONTOLOGY, user="ann")
    ids = proj.import_data([sample_data.skimage_images() / name for name in IMAGES])
    assert len(ids) == len(IMAGES), proj.last_import_errors
    return proj


def _import(project: api.Project, fmt: str, path: Path) -> None:
    import_labels(
        project.db,
        project.id,
        fmt,
        path,
        user_id=project.user.id,
        roots=project.config.all_data_roots,
        max_pixels=project.config.max_image_pixels,
        dry_run=True,
    )


def _fresh(tmp_path: Path) -> Path:
    folder = tmp_path / f"case{next(_counter):05d}"
    folder.mkdir()
    return folder


# --- COCO and labelme: JSON structure and byte mutations ------------------------------------------
def _bytes_mutated(text: str, ops: list[tuple[Any, ...]]) -> str:
    data = text.encode()
    for op in ops:
        data = apply_op(data, op)
    return data.decode("latin-1")


@pytest.mark.soak
@pytest.mark.timeout(PROPERTY_TIMEOUT)
@fuzz_settings(500)
@given(text=mutated_json(COCO).map(dump_json))
@example(text=dump_json(nested(5000)))  # deep nesting: json.loads raised RecursionError
@example(
    text=json.dumps({**COCO, "images": [{"id": 1, "file_name": "coins.png", "width": 1e308, "height": 2}]})
)
@example(text=json.dumps({**COCO, "categories": [None]}))  # escaped as TypeError
@example(text=json.dumps({**COCO, "annotations": [{"image_id": {}}]}))  # unhashable dict: TypeError
def test_fuzz_coco_import(project: api.Project, tmp_path: Path, text: str) -> None:
    path = _fresh(tmp_path) / "annotations.json"
    path.write_text(text, encoding="utf-8")
    works_or_refuses(lambda: _import(project, "coco", path), path)


@pytest.mark.soak
@pytest.mark.timeout(PROPERTY_TIMEOUT)
@fuzz_settings(500)
@given(text=mutated_json(LABELME).map(dump_json))
@example(text=dump_json({**LABELME, "shapes": nested(5000)}))
def test_fuzz_labelme_import(project: api.Project, tmp_path: Path, text: str) -> None:
    folder = _fresh(tmp_path)
    (folder / "coins.json").write_text(text, encoding="utf-8")
    works_or_refuses(lambda: _import(project, "labelme", folder), folder)


# --- YOLO: text mutations of label files and data.yaml ----------------------------------------------
_yolo_token = st.sampled_from(
    ["0", "1", "7", "-1", "1e308", "nan", "inf", "0.5", "x", "", "999999999999999999999"]
)
_yolo_line = st.lists(_yolo_token, min_size=0, max_size=9).map(" ".join)


@pytest.mark.soak
@pytest.mark.timeout(PROPERTY_TIMEOUT)
@fuzz_settings(500)
@given(
    labels=st.one_of(st.just(YOLO_LABELS), st.lists(_yolo_line, max_size=5).map("\n".join)),
    yaml=st.one_of(
        st.just(YOLO_YAML),
        st.sampled_from(
            ["names: [coin, shadow]", "names:\n  x: coin\n", 'names: ["\\u', "names:\n  - 'coin\n", ""]
        ),
        st.binary(max_size=40).map(lambda b: "names:\n  " + b.decode("latin-1")),
    ),
)
@example(labels=YOLO_LABELS, yaml="names:\n  x: coin\n")  # int('x') escaped as ValueError
@example(labels=YOLO_LABELS, yaml='names: ["\\u')  # a bad JSON escape escaped as JSONDecodeError
def test_fuzz_yolo_import(project: api.Project, tmp_path: Path, labels: str, yaml: str) -> None:
    folder = _fresh(tmp_path)
    (folder / "labels").mkdir()
    (folder / "labels" / "coins.txt").write_text(labels, encoding="utf-8")
    (folder / "data.yaml").write_text(yaml, encoding="utf-8")
    works_or_refuses(lambda: _import(project, "yolo", folder), folder)


# --- model manifests --------------------------------------------------------------------------------
MANIFEST: dict[str, Any] = {
    "name": "liver-mm",
    "version": "3",
    "task": "segmentation",
    "sha256": "9f2c" + "0" * 60,
    "input": {"layout": "NCHW", "size": [512, 512], "channels": 1, "channel_order": "gray"},
    "normalise": {"window": [40.0, 400.0], "mean": [0.0], "std": [1.0]},
    "classes": {"0": "liver", "1": "tumour"},
    "output": {"activation": "softmax"},
    "thresholds": {"score": 0.5, "iou": 0.45, "min_area": 16},
    "tiling": {"tile": 1024, "overlap": 64},
}
MANIFEST_TOML = """name = "liver-mm"
version = "3"
task = "detection"
sha256 = "9f2c000000000000000000000000000000000000000000000000000000000000"
[input]
size = [640, 640]
channels = 3
[normalise]
scale = 255.0
[classes]
0 = "liver"
[output]
format = "yolov5"
[thresholds]
score = 0.25
"""


@pytest.mark.soak
@pytest.mark.timeout(PROPERTY_TIMEOUT)
@fuzz_settings(1000)
@given(text=mutated_json(MANIFEST).map(dump_json))
@example(text=dump_json(nested(5000)))
@example(text=json.dumps({**MANIFEST, "input": {"channels": 1e308}}))
@example(text=json.dumps({**MANIFEST, "tiling": {"tile": float("inf")}}))
@example(text=json.dumps({**MANIFEST, "normalise": {"mean": None}}))  # escaped as TypeError
def test_fuzz_manifest_json(tmp_path: Path, text: str) -> None:
    path = _fresh(tmp_path) / "liver-mm.json"
    path.write_text(text, encoding="utf-8")
    works_or_refuses(lambda: read_manifest(path), path)


@pytest.mark.soak
@pytest.mark.timeout(PROPERTY_TIMEOUT)
@fuzz_settings(1000)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("flip"), st.integers(0, len(MANIFEST_TOML)), st.integers(0, 7)),
            st.tuples(st.just("truncate"), st.integers(0, len(MANIFEST_TOML))),
            st.tuples(
                st.just("insert"),
                st.integers(0, len(MANIFEST_TOML)),
                st.sampled_from(
                    [b"[[", b"]", b"=", b'"', b"\n[input]\n", b"1e999", b"9" * 40, b"nan", b"\xff"]
                ),
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_fuzz_manifest_toml(tmp_path: Path, ops: list[tuple[Any, ...]]) -> None:
    path = _fresh(tmp_path) / "liver-mm.toml"
    path.write_bytes(_bytes_mutated(MANIFEST_TOML, ops).encode("latin-1"))
    works_or_refuses(lambda: read_manifest(path), path)


def test_fuzz_format_seeds_are_accepted(project: api.Project, tmp_path: Path) -> None:
    """The unmutated seeds import and parse, so the properties start from working inputs."""
    folder = _fresh(tmp_path)
    (folder / "annotations.json").write_text(json.dumps(COCO))
    (folder / "coins.json").write_text(json.dumps(LABELME))
    (folder / "labels").mkdir()
    (folder / "labels" / "coins.txt").write_text(YOLO_LABELS)
    (folder / "data.yaml").write_text(YOLO_YAML)
    for fmt, path in (
        ("coco", folder / "annotations.json"),
        ("labelme", folder / "coins.json"),
        ("yolo", folder),
    ):
        assert works_or_refuses(lambda f=fmt, p=path: _import(project, f, p)) is None, fmt
    (folder / "liver-mm.json").write_text(json.dumps(MANIFEST))
    (folder / "liver-mm.toml").write_text(MANIFEST_TOML)
    assert read_manifest(folder / "liver-mm.json").classes == {0: "liver", 1: "tumour"}
    assert read_manifest(folder / "liver-mm.toml").task == "detection"
