"""The micro-model as one ONNX graph (built with ``onnx.helper``; standard operators only).

image (N, 1, H, W) -> per scale: Pad(edge) -> Conv 1xK -> Conv Kx1 (separable Gaussian)
-> Pad(edge) -> dilated Conv 3x3 (dx, dy, dxx, dyy, dxy) -> gradient magnitude, Laplacian, Hessian
eigenvalues; DoG between scales -> Concat -> Conv 1x1 -> Relu -> Conv 1x1 -> Sigmoid
-> probability (N, 1, H, W). The numpy twin is :func:`app.models.features.features`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, hint: str, value: npt.ArrayLike, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], hint: str, outputs: int = 1, **attrs: Any) -> list[str]:
        from onnx import helper

        names = [self.name(hint) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attrs))
        return names

    def one(self, op_type: str, inputs: Sequence[str], hint: str, **attrs: Any) -> str:
        return self.op(op_type, inputs, hint, **attrs)[0]

    def pad_edge(self, x: str, r: int) -> str:
        pads = self.const("pads", [0, 0, r, r, 0, 0, r, r], np.int64)
        return self.one("Pad", [x, pads], "pad", mode="edge")


def micro_model_graph(
    sigmas: Sequence[float], w1: F32, b1: F32, w2: F32, b2: float, *, opset: int = 17
) -> bytes:
    """Serialized ONNX model; ``w1``/``b1`` already have the feature standardisation folded in."""
    import onnx
    from onnx import TensorProto, helper

    from app.models.features import DERIVATIVES, derivative_step, gaussian_kernel

    g = _Graph()
    image = "image"
    smooth: list[str] = []
    for s in sigmas:
        k = gaussian_kernel(s)
        padded = g.pad_edge(image, k.size // 2)
        rows = g.one("Conv", [padded, g.const("gauss_h", k.reshape(1, 1, 1, -1))], "gauss_rows")
        smooth.append(g.one("Conv", [rows, g.const("gauss_v", k.reshape(1, 1, -1, 1))], f"gauss{s:g}"))
    feats = [image, *smooth]
    feats += [g.one("Sub", [a, b], "dog") for a, b in itertools.pairwise(smooth)]
    kernels = np.stack([np.asarray(DERIVATIVES[n], dtype=np.float32) for n in DERIVATIVES])[:, None]
    deriv_w = g.const("deriv_w", kernels)
    split = g.const("split", [1] * len(DERIVATIVES), np.int64)
    half = g.const("half", np.float32(0.5))
    for sm, s in zip(smooth, sigmas, strict=True):
        step = derivative_step(s)
        d = g.one("Conv", [g.pad_edge(sm, step), deriv_w], "derivs", dilations=[step, step])
        dx, dy, dxx, dyy, dxy = g.op("Split", [d, split], "d", outputs=len(DERIVATIVES), axis=1)
        grad2 = g.one("Add", [g.one("Mul", [dx, dx], "dx2"), g.one("Mul", [dy, dy], "dy2")], "grad2")
        lap = g.one("Add", [dxx, dyy], "laplace")
        half_trace = g.one("Mul", [lap, half], "half_trace")
        half_diff = g.one("Mul", [g.one("Sub", [dxx, dyy], "diff"), half], "half_diff")
        hd2 = g.one("Mul", [half_diff, half_diff], "hd2")
        root = g.one("Sqrt", [g.one("Add", [hd2, g.one("Mul", [dxy, dxy], "dxy2")], "disc")], "root")
        feats += [
            g.one("Sqrt", [grad2], "gradmag"),
            lap,
            g.one("Add", [half_trace, root], "hessian_hi"),
            g.one("Sub", [half_trace, root], "hessian_lo"),
        ]
    stack = g.one("Concat", feats, "features", axis=1)
    hidden = g.one(
        "Conv",
        [stack, g.const("w1", w1[:, :, None, None]), g.const("b1", b1)],
        "hidden",
    )
    act = g.one("Relu", [hidden], "relu")
    logit = g.one(
        "Conv",
        [act, g.const("w2", np.asarray(w2, np.float32).reshape(1, -1, 1, 1)), g.const("b2", [b2])],
        "logit",
    )
    g.nodes.append(helper.make_node("Sigmoid", [logit], ["probability"]))
    graph = helper.make_graph(
        g.nodes,
        "sitelabel-micro-model",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        g.inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="sitelabel"
    )
    model.ir_version = min(model.ir_version, 9)  # readable by onnxruntime >= 1.18
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
