"""Shared set-up of the pre-label tests: real images in a real project, a threshold model built
with onnx.helper, and the retina vessel tiles of tests/unit/test_models_trainer.py as PNG files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from app import api, sample_data
from app.models.registry import sha256_file

ADMIN, LABELER, OTHER, REVIEWER = "alice", "ana", "bob", "rita"
ONTOLOGY = {"classes": [{"name": "vessel", "color": "#c0504d", "kinds": ["polygon", "mask"]}]}
STARTS = (0, 449, 898)
TRAIN = ((0, 0), (0, 898), (898, 0), (898, 898), (449, 449))
HELD_OUT = ((0, 449), (449, 0), (449, 898), (898, 449))


def threshold_model(
    folder: Path, name: str = "bright", level: float = 0.5, normalise: dict | None = None
) -> Path:
    """A segmentation model: p = sigmoid(40 (x - level)) on the frame divided by 255 (or ``normalise``)."""
    folder.mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["image", "level"], ["d"]),
            helper.make_node("Mul", ["d", "gain"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["probability"]),
        ],
        "threshold",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [
            numpy_helper.from_array(np.float32(level), "level"),
            numpy_helper.from_array(np.float32(40.0), "gain"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = folder / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    manifest = {
        "name": name,
        "version": "1",
        "task": "segmentation",
        "sha256": sha256_file(path),
        "input": {"layout": "NCHW", "channels": 1},
        "normalise": normalise or {"scale": 255.0},
        "classes": {"0": "vessel"},
        "thresholds": {"score": 0.5, "min_area": 30},
    }
    (folder / f"{name}.json").write_text(json.dumps(manifest))
    return path


def make_team_project(db_url: str) -> dict[str, api.Project]:
    """alice (project admin), ana and bob (labelers), rita (reviewer), each with an open Project."""
    admin = api.create_project(db_url, "prelabels", ontology=ONTOLOGY, user=ADMIN)
    admin.set_member(LABELER, "labeler")
    admin.set_member(OTHER, "labeler")
    admin.set_member(REVIEWER, "reviewer")
    people = {ADMIN: admin}
    for name in (LABELER, OTHER, REVIEWER):
        people[name] = api.open_project(admin.db, "prelabels", user=name)
    return people


def retina_vessels() -> tuple[np.ndarray, np.ndarray]:
    """The fundus photo and its vessel mask (the rule stated in tests/unit/test_models_trainer.py)."""
    from skimage import filters, io, morphology

    image = io.imread(sample_data.skimage_images() / "retina.jpg")
    green = image[:, :, 1].astype(np.float64) / 255.0
    fov = morphology.erosion(image.mean(axis=2) > 20, morphology.disk(10))
    vessels = (filters.sato(green, sigmas=[1, 2, 3], black_ridges=True) > 0.03) & fov
    return image, morphology.remove_small_objects(vessels, max_size=63)


def write_tiles(folder: Path, image: np.ndarray) -> dict[tuple[int, int], Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for y in STARTS:
        for x in STARTS:
            path = folder / f"retina_{y:04d}_{x:04d}.png"
            Image.fromarray(np.ascontiguousarray(image[y : y + 512, x : x + 512])).save(path)
            paths[(y, x)] = path
    return paths
