"""The micro-model's fixed filter bank, in numpy (the ONNX graph in :mod:`app.models.onnx_export`
builds the same filters from the same kernels).

Features of one normalised gray frame (edges replicated at the border): the frame, Gaussian
smoothings at each scale ``sigma``, differences of neighbouring Gaussians, and per scale the
gradient magnitude, the Laplacian and the two Hessian eigenvalues of the smoothed frame (3x3
central differences, spaced :func:`derivative_step` pixels apart).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
SIGMAS = (1.0, 2.0, 4.0, 8.0)
DERIVATIVES = {  # 3x3 correlation kernels (ONNX Conv correlates, as does the numpy twin)
    "dx": [[0, 0, 0], [-0.5, 0, 0.5], [0, 0, 0]],
    "dy": [[0, -0.5, 0], [0, 0, 0], [0, 0.5, 0]],
    "dxx": [[0, 0, 0], [1, -2, 1], [0, 0, 0]],
    "dyy": [[0, 1, 0], [0, -2, 0], [0, 1, 0]],
    "dxy": [[0.25, 0, -0.25], [0, 0, 0], [-0.25, 0, 0.25]],
}


def gaussian_kernel(sigma: float) -> F32:
    radius = max(1, int(np.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _correlate_rows(img: F32, kernel: F32) -> F32:
    """Valid correlation of each row of ``img`` with ``kernel``."""
    from numpy.lib.stride_tricks import sliding_window_view

    windows = sliding_window_view(img, kernel.size, axis=1)
    return np.einsum("hwk,k->hw", windows, kernel, dtype=np.float32, optimize=False)


def _smooth(x: F32, sigma: float) -> F32:
    k = gaussian_kernel(sigma)
    r = k.size // 2
    padded = np.pad(x, r, mode="edge")
    rows = _correlate_rows(padded, k)  # (H + 2r, W)
    return np.ascontiguousarray(_correlate_rows(np.ascontiguousarray(rows.T), k).T)


def derivative_step(sigma: float) -> int:
    """Pixel spacing of the central differences at scale ``sigma``.

    Differences over neighbouring pixels of a heavily smoothed frame cancel almost completely, so
    float32 rounding would dominate them; spacing them ~sigma apart keeps the signal well above
    the rounding (and the exported graph, a dilated Conv, rounds like this twin to ~1e-6).
    """
    return max(1, int(sigma))


def _derivative(x: F32, name: str, step: int) -> F32:
    k = np.asarray(DERIVATIVES[name], dtype=np.float32)
    p = np.pad(x, step, mode="edge")
    h, w = x.shape
    out = np.zeros((h, w), dtype=np.float32)
    for dy in range(3):
        for dx in range(3):
            if k[dy, dx] != 0:
                out += k[dy, dx] * p[dy * step : dy * step + h, dx * step : dx * step + w]
    return out


def feature_names(sigmas: Sequence[float] = SIGMAS) -> list[str]:
    names = ["raw"] + [f"gauss{s:g}" for s in sigmas]
    names += [f"dog{a:g}-{b:g}" for a, b in itertools.pairwise(sigmas)]
    for s in sigmas:
        names += [f"gradmag{s:g}", f"laplace{s:g}", f"hessian_hi{s:g}", f"hessian_lo{s:g}"]
    return names


def features(x: F32, sigmas: Sequence[float] = SIGMAS) -> F32:
    """(F, H, W) float32 features of one normalised (H, W) frame, in :func:`feature_names` order."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    smooth = [_smooth(x, s) for s in sigmas]
    out = [x, *smooth]
    out += [a - b for a, b in itertools.pairwise(smooth)]
    for g, s in zip(smooth, sigmas, strict=True):
        d = {name: _derivative(g, name, derivative_step(s)) for name in DERIVATIVES}
        half_trace = (d["dxx"] + d["dyy"]) * np.float32(0.5)
        half_diff = (d["dxx"] - d["dyy"]) * np.float32(0.5)
        root = np.sqrt(half_diff * half_diff + d["dxy"] * d["dxy"])
        out += [
            np.sqrt(d["dx"] * d["dx"] + d["dy"] * d["dy"]),
            d["dxx"] + d["dyy"],
            half_trace + root,
            half_trace - root,
        ]
    return np.stack(out).astype(np.float32, copy=False)
