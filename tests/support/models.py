"""Real ONNX models built with onnx.helper, with their manifests beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from app.models.registry import sha256_file


def threshold_model(
    folder: Path,
    name: str = "bright",
    level: float = 0.5,
    normalise: dict[str, Any] | None = None,
    *,
    label: str = "vessel",
) -> Path:
    """A segmentation model of one class ``label``: p = sigmoid(40 (x - level)) on the frame divided
    by 255 (or as ``normalise`` says). Returns the ``.onnx`` path; ``NAME.json`` lies beside it."""
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
    return write_model(
        folder,
        model,
        name,
        normalise=normalise or {"scale": 255.0},
        classes={"0": label},
        thresholds={"score": 0.5, "min_area": 30},
    )


def write_model(folder: Path, model: Any, name: str = "seg", **manifest: object) -> Path:
    """Write ``NAME.onnx`` and its manifest (a one-channel 2-D segmentation model unless ``manifest``
    says otherwise); returns the ``.onnx`` path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    fields = {
        "name": name,
        "version": "1",
        "task": "segmentation",
        "sha256": sha256_file(path),
        "input": {"layout": "NCHW", "channels": 1},
        "normalise": {"scale": 255.0},
        "classes": {"0": "liver"},
        **manifest,
    }
    (folder / f"{name}.json").write_text(json.dumps(fields))
    return path
