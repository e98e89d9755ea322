"""The runner: tiled segmentation agrees with a whole-frame run, YOLO-style boxes decode through
the letterbox with NMS, classification logits, fixed-size inputs padded, and the DICOM window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app import sample_data
from app.models import trainer
from app.models.manifest import parse_manifest
from app.models.registry import sha256_file, verify
from app.models.runner import Runner, nms, preprocess, tile_starts, uncertainty


def _save(folder: Path, model: onnx.ModelProto, manifest: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{manifest['name']}.onnx"
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    (folder / f"{manifest['name']}.json").write_text(json.dumps({**manifest, "sha256": sha256_file(path)}))
    return path


def _constant_output_model(values: np.ndarray, input_shape: list) -> onnx.ModelProto:
    """Output = the constant ``values`` (+ 0 x the input's mean, so the input is really read)."""
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["values", "z"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "const",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(values.shape))],
        [
            numpy_helper.from_array(values.astype(np.float32), "values"),
            numpy_helper.from_array(np.float32(0), "zero"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_tiled_segmentation_matches_the_whole_frame(tmp_path: Path) -> None:
    from skimage import io

    image = io.imread(sample_data.skimage_images() / "retina.jpg")[:900, :1100]
    mask = image[:, :, 1] < np.percentile(image[:, :, 1], 20)
    model = trainer.train([image[:512, :512]], [mask[:512, :512]], label="dark", epochs=3).model
    path, _, _ = model.export(tmp_path, "dark", "1")
    whole = Runner(verify(path), threads=2).predict([image])[0].probabilities["dark"]
    manifest = json.loads(path.with_suffix(".json").read_text())
    manifest["tiling"] = {"tile": 256, "overlap": 64}
    path.with_suffix(".json").write_text(json.dumps(manifest))
    tiled = Runner(verify(path), threads=2, batch_size=3).predict([image])[0].probabilities["dark"]
    assert tiled.shape == whole.shape == image.shape[:2]
    # the filters reach 25 px: with 64 px of overlap every blended pixel saw its full context from
    # the tile it weighs most in; the rest differs only near tile edges, and only a little
    assert float(np.abs(tiled - whole).mean()) < 2e-3
    assert np.mean((tiled >= 0.5) == (whole >= 0.5)) > 0.999
    assert tile_starts(900, 256, 64) == [0, 192, 384, 576, 644]


def test_fixed_size_softmax_segmentation_is_padded_and_cropped(tmp_path: Path) -> None:
    # logits for (background, liver): liver wins on the left half of every 64x64 tile
    logits = np.zeros((1, 2, 64, 64), dtype=np.float32)
    logits[0, 1, :, :32] = 4.0
    path = _save(
        tmp_path,
        _constant_output_model(logits, [1, 1, 64, 64]),
        {
            "name": "halves",
            "version": "1",
            "task": "segmentation",
            "input": {"size": [64, 64], "channels": 1},
            "classes": {"1": "liver"},
            "output": {"activation": "softmax"},
            "tiling": {"tile": 64, "overlap": 0},
        },
    )
    runner = Runner(verify(path))
    assert runner.batch_size == 1  # the graph's batch is fixed at 1
    (pred,) = runner.predict([np.zeros((100, 40), dtype=np.uint8)])
    prob = pred.probabilities["liver"]
    assert prob.shape == (100, 40)
    assert np.allclose(prob[:, :32], np.exp(4) / (1 + np.exp(4)))
    assert np.allclose(prob[:, 32:], 0.5)


def test_yolo_boxes_are_decoded_through_the_letterbox_with_nms(tmp_path: Path) -> None:
    # yolov8 rows (cx, cy, w, h, score_lesion, score_cyst) on a 64x64 input; the frame is 128 wide
    # and 64 high, so it is scaled by 0.5 and padded by 16 px above and below
    rows = np.array(
        [
            [32, 32, 20, 10, 0.9, 0.1],  # lesion
            [33, 32, 20, 10, 0.8, 0.1],  # same lesion, lower score: suppressed
            [32, 40, 10, 10, 0.1, 0.7],  # cyst (overlaps the lesion: NMS is per class)
            [20, 20, 4, 4, 0.2, 0.1],  # below the score threshold
        ],
        dtype=np.float32,
    )
    path = _save(
        tmp_path,
        _constant_output_model(rows.T[None], [1, 3, 64, 64]),
        {
            "name": "yolo",
            "version": "8",
            "task": "detection",
            "input": {"size": [64, 64], "channels": 3},
            "classes": {"0": "lesion", "1": "cyst"},
            "output": {"format": "yolov8"},
            "thresholds": {"score": 0.5, "iou": 0.5},
        },
    )
    (pred,) = Runner(verify(path)).predict([np.zeros((64, 128, 3), dtype=np.uint8)])
    found = {d.label: d for d in pred.detections}
    assert [d.label for d in pred.detections] == ["lesion", "cyst"]
    assert found["lesion"].box == (44.0, 22.0, 84.0, 42.0) and abs(found["lesion"].score - 0.9) < 1e-6
    assert found["cyst"].box == (54.0, 38.0, 74.0, 58.0)


def test_yolov5_rows_multiply_objectness_and_classification_uses_softmax(tmp_path: Path) -> None:
    rows = np.array([[10, 10, 4, 4, 0.5, 0.9, 0.1], [30, 30, 4, 4, 0.9, 0.2, 0.8]], dtype=np.float32)
    path = _save(
        tmp_path / "d",
        _constant_output_model(rows[None], [1, 1, 32, 32]),
        {
            "name": "v5",
            "version": "1",
            "task": "detection",
            "input": {"size": [32, 32]},
            "classes": {"0": "a", "1": "b"},
            "output": {"format": "yolov5"},
            "thresholds": {"score": 0.6},
        },
    )
    (pred,) = Runner(verify(path)).predict([np.zeros((32, 32), dtype=np.uint8)])
    assert [(d.label, round(d.score, 3)) for d in pred.detections] == [("b", 0.72)]
    cls = _save(
        tmp_path / "c",
        _constant_output_model(np.array([[0.0, 2.0]], dtype=np.float32), [1, 3, 16, 16]),
        {
            "name": "cls",
            "version": "1",
            "task": "classification",
            "input": {"size": [16, 16], "channels": 3},
            "classes": {"0": "normal", "1": "abnormal"},
            "output": {"activation": "softmax"},
        },
    )
    (pred,) = Runner(verify(cls)).predict([np.zeros((50, 70, 3), dtype=np.uint8)])
    assert abs(pred.scores["abnormal"] - np.exp(2) / (1 + np.exp(2))) < 1e-6


def test_preprocess_window_channels_and_uncertainty() -> None:
    base = {"name": "m", "version": "1", "task": "segmentation", "sha256": "a" * 64, "classes": {"0": "x"}}
    ct = parse_manifest({**base, "normalise": {"window": [40, 400]}})
    hu = np.array([[-1000, -160, 40, 240, 3000]], dtype=np.int16)
    assert np.allclose(preprocess(hu, ct)[0, :, 0], [0, 0, 0.5, 1, 1])
    rgb = parse_manifest(
        {**base, "input": {"channels": 3, "channel_order": "bgr"}, "normalise": {"scale": 255}}
    )
    pixel = np.array([[[255, 0, 51]]], dtype=np.uint8)
    assert np.allclose(preprocess(pixel, rgb)[0, 0], [0.2, 0, 1])
    assert np.allclose(uncertainty([0.0, 0.25, 0.5, 1.0]), [0, 0.5, 1, 0])
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.7], dtype=np.float32), 0.5) == [1, 2]
