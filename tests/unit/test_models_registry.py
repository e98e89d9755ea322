"""The model registry refuses unsafe or mismatched models with one clear line each.

The hostile models are built here with onnx.helper: a wrong hash, an input shape that disagrees
with the manifest, a node from a custom operator domain, and external data pointing outside the
model's folder. A good model loads, registers into the folder, and is found by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.models import write_model

from app.models.errors import ManifestError, ModelError, ModelRefused
from app.models.manifest import parse_manifest, read_manifest
from app.models.registry import ModelRegistry, verify
from app.models.runner import Runner


def _identity_model(shape: list[int | str], *, domain: str = "", op: str = "Sigmoid") -> onnx.ModelProto:
    node = helper.make_node(op, ["image"], ["probability"], domain=domain)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, shape)],
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    return model


def _write(folder: Path, model: onnx.ModelProto, name: str = "seg", **overrides: object) -> Path:
    return write_model(folder, model, name, **overrides)


def test_a_good_model_loads_runs_and_registers(tmp_path: Path) -> None:
    source = _write(tmp_path / "incoming", _identity_model(["N", 1, "H", "W"]))
    loaded = verify(source)
    assert loaded.manifest.ref == "seg@1" and loaded.input_name == "image"
    frame = np.full((20, 30), 255, dtype=np.uint8)
    (pred,) = Runner(loaded).predict([frame])
    assert np.allclose(pred.probabilities["liver"], 1 / (1 + np.exp(-1.0)))
    registry = ModelRegistry(tmp_path / "models")
    added = registry.add(source)
    assert added.path == tmp_path / "models" / "seg" / "1" / "seg.onnx"
    assert registry.load("seg").manifest.sha256 == loaded.manifest.sha256
    assert registry.load("seg@1").path == added.path
    assert [e.ok for e in registry.entries(check=True)] == [True]
    with pytest.raises(ModelError, match=r"no model seg@2 .* there are: \['seg@1'\]"):
        registry.find("seg", "2")


def test_wrong_hash_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _identity_model(["N", 1, "H", "W"]), sha256="0" * 64)
    with pytest.raises(ModelRefused, match=r"seg.onnx has sha256 .*, the manifest says 000000000000") as err:
        verify(path)
    assert "\n" not in str(err.value)
    # the same after the file changed under a correct manifest
    good = _write(tmp_path / "b", _identity_model(["N", 1, "H", "W"]))
    good.write_bytes(good.read_bytes() + b"\x00")
    with pytest.raises(ModelRefused, match="the file was changed"):
        verify(good)


def test_input_shape_disagreeing_with_the_manifest_is_refused(tmp_path: Path) -> None:
    fixed = _write(
        tmp_path / "a", _identity_model([1, 1, 256, 256]), input={"channels": 1, "size": [512, 512]}
    )
    with pytest.raises(
        ModelRefused, match=r"input shape 1x1x256x256 \(NCHW\) has height 256, the manifest says 512"
    ):
        verify(fixed)
    channels = _write(tmp_path / "b", _identity_model(["N", 3, "H", "W"]))
    with pytest.raises(ModelRefused, match=r"has 3 channel\(s\), the manifest says 1"):
        verify(channels)
    any_size = _write(tmp_path / "c", _identity_model([1, 1, 64, 64]))
    with pytest.raises(ModelRefused, match="fixed in size, but the manifest says any size"):
        verify(any_size)
    rank = _write(tmp_path / "d", _identity_model(["N", "H", "W"]))
    with pytest.raises(ModelRefused, match="has rank 3; images need rank 4"):
        verify(rank)


def test_custom_operator_domain_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _identity_model(["N", 1, "H", "W"], domain="com.evil.ops", op="Backdoor"))
    with pytest.raises(ModelRefused, match=r"operator 'Backdoor' is from the custom domain 'com.evil.ops'"):
        verify(path)


def test_custom_domain_inside_a_subgraph_is_refused(tmp_path: Path) -> None:
    inner = helper.make_graph(
        [helper.make_node("Evil", ["image"], ["y"], domain="x.custom")],
        "then",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    cond = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node("If", ["cond"], ["probability"], then_branch=inner, else_branch=inner)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, None)],
        [cond],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ModelRefused, match=r"custom domain 'x\.custom'"):
        verify(_write(tmp_path, model))


def _external_model(location: str) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.ones((1, 1, 1, 1), dtype=np.float32), "w")
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    for key, value in (("location", location), ("offset", "0"), ("length", "4")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["probability"])],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(1, dtype=np.float32).tobytes())
    folder = tmp_path / "models" / "seg"
    for location in ("../../secret.bin", str(secret)):
        path = _write(folder, _external_model(location))
        with pytest.raises(ModelRefused, match=r"keeps its data in .*outside the model's folder"):
            verify(path)
    # beside the model it is fine, and onnxruntime reads it from there
    (folder / "w.bin").write_bytes(np.full(1, 2.0, dtype=np.float32).tobytes())
    loaded = verify(_write(folder, _external_model("w.bin")))
    assert loaded.external_data
    (pred,) = Runner(loaded).predict([np.full((4, 4), 255, dtype=np.uint8)])
    assert np.allclose(pred.probabilities["liver"], 2.0)


def test_manifest_errors_are_one_line_and_name_the_setting(tmp_path: Path) -> None:
    base = {"name": "m", "version": "1", "task": "segmentation", "sha256": "a" * 64, "classes": {"0": "x"}}
    cases = [
        ({"task": "painting"}, "task must be one of"),
        ({"sha256": "xyz"}, "sha256 must be 64 hex digits"),
        ({"classes": {}}, r"\[classes\] must map at least one"),
        ({"input": {"layout": "CHW"}}, "input.layout must be one of"),
        ({"input": {"channels": 3, "channel_order": "gray"}}, "does not fit 3 channel"),
        ({"normalise": {"scale": 255, "window": [40, 400]}}, "only one of normalise"),
        ({"file": "../x.onnx"}, "file must be a .onnx file name beside the manifest"),
        ({"thresholds": {"score": 1.5}}, "thresholds.score must be in"),
    ]
    for change, message in cases:
        with pytest.raises(ManifestError, match=message) as err:
            parse_manifest({**base, **change}, "m.json")
        assert "\n" not in str(err.value)
    toml = tmp_path / "liver.toml"
    toml.write_text(
        'name = "liver"\nversion = "2"\ntask = "detection"\nsha256 = "' + "b" * 64 + '"\n'
        '[input]\nlayout = "NHWC"\nsize = [640, 640]\nchannels = 3\n[normalise]\nwindow = "abdomen"\n'
        '[classes]\n0 = "lesion"\n[output]\nformat = "yolov5"\n'
    )
    manifest = read_manifest(toml)
    assert (
        manifest.file == "liver.onnx"
        and manifest.size == (640, 640)
        and manifest.normalise.window == "abdomen"
    )
    assert parse_manifest(manifest.to_dict()) == manifest
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        read_manifest(tmp_path / "bad.json")


def test_a_cloud_execution_provider_is_refused(tmp_path: Path) -> None:
    loaded = verify(_write(tmp_path / "incoming", _identity_model(["N", 1, "H", "W"])))
    with pytest.raises(ModelRefused, match=r"only local providers .*AzureExecutionProvider"):
        loaded.session(providers=["AzureExecutionProvider", "CPUExecutionProvider"])
    assert loaded.session(providers=["CPUExecutionProvider"]).get_providers() == ["CPUExecutionProvider"]
