"""Compositing of the canvas layers: windowed image through a colour map, then the label map.

This is the reference picture: the GL canvas computes the same in its shaders (window, 256-entry
colour-map lookup, label colour table, opacity, outline) and the raster canvas and the headless
``render`` use these functions directly.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from app.core.display import Window, apply_window

RGBA = npt.NDArray[np.uint8]


def _ramp(points: list[tuple[float, tuple[int, int, int]]]) -> npt.NDArray[np.uint8]:
    xs = np.array([p for p, _ in points], dtype=np.float64)
    rgb = np.array([c for _, c in points], dtype=np.float64)
    grid = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(grid, xs, rgb[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)


#: 256 x 3 lookup tables. Grey is the identity; others are for perfusion/dose style data.
COLORMAPS: dict[str, npt.NDArray[np.uint8]] = {
    "grey": np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1),
    "hot": _ramp([(0.0, (0, 0, 0)), (0.375, (255, 0, 0)), (0.75, (255, 255, 0)), (1.0, (255, 255, 255))]),
    "bone": _ramp(
        [(0.0, (0, 0, 0)), (0.375, (81, 81, 113)), (0.75, (166, 198, 198)), (1.0, (255, 255, 255))]
    ),
    "viridis": _ramp(
        [
            (0.0, (68, 1, 84)),
            (0.25, (59, 82, 139)),
            (0.5, (33, 145, 140)),
            (0.75, (94, 201, 98)),
            (1.0, (253, 231, 37)),
        ]
    ),
}


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def label_lut(colors: Mapping[int, tuple[int, int, int]], size: int | None = None) -> npt.NDArray[np.uint8]:
    """A (N, 4) RGBA table indexed by class index; index 0 (background) and unknown ones are transparent."""
    n = max(size or 0, max(colors, default=0) + 1, 1)
    lut = np.zeros((n, 4), dtype=np.uint8)
    for index, (r, g, b) in colors.items():
        if index > 0:
            lut[index] = (r, g, b, 255)
    return lut


def image_rgba(
    frame: npt.NDArray[np.generic],
    window: Window | None = None,
    *,
    invert: bool = False,
    colormap: str = "grey",
) -> RGBA:
    """The image layer: windowed to 8 bit, grey frames through ``colormap``; colour frames keep colour."""
    shown = apply_window(frame, window, invert=invert)
    h, w = shown.shape[:2]
    out = np.empty((h, w, 4), dtype=np.uint8)
    if shown.ndim == 2:
        out[..., :3] = COLORMAPS[colormap][shown]
    else:
        channels = shown.shape[2]
        out[..., :3] = shown[..., :3] if channels >= 3 else shown[..., :1]
    out[..., 3] = 255
    return out


def label_edges(labels: npt.NDArray[np.integer]) -> npt.NDArray[np.bool_]:
    """Labelled pixels with a 4-neighbour of another value (or on the frame border): the outline."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[0, :] = edge[-1, :] = True
    edge[:, 0] = edge[:, -1] = True
    return edge & (labels > 0)


def blend_labels(
    base: RGBA,
    labels: npt.NDArray[np.integer],
    lut: npt.NDArray[np.uint8],
    *,
    opacity: float = 0.5,
    outline: bool = False,
) -> RGBA:
    """Alpha-blend the label colours over ``base`` (in place and returned).

    out = base + (colour - base) * alpha, alpha = opacity (1.0 on outline pixels in outline mode,
    where the fill is not drawn). Rounded half up, as the shader's ``floor(v * 255 + 0.5)``.
    """
    safe = np.minimum(labels, len(lut) - 1)
    colour = lut[safe]
    present = colour[..., 3] > 0
    if outline:
        alpha = np.where(label_edges(labels) & present, 1.0, 0.0).astype(np.float32)
    else:
        alpha = np.where(present, np.float32(opacity), np.float32(0.0)).astype(np.float32)
    if not alpha.any():
        return base
    rgb = base[..., :3].astype(np.float32)
    mixed = rgb + (colour[..., :3].astype(np.float32) - rgb) * alpha[..., None]
    base[..., :3] = np.floor(mixed + 0.5).astype(np.uint8)
    return base


def compose(
    frame: npt.NDArray[np.generic],
    window: Window | None = None,
    *,
    invert: bool = False,
    colormap: str = "grey",
    labels: npt.NDArray[np.integer] | None = None,
    colors: Mapping[int, tuple[int, int, int]] | None = None,
    opacity: float = 0.5,
    outline: bool = False,
) -> RGBA:
    """Image layer plus label layer, as the canvas shows them at 1:1."""
    out = image_rgba(frame, window, invert=invert, colormap=colormap)
    if labels is not None and colors:
        blend_labels(out, labels, label_lut(colors), opacity=opacity, outline=outline)
    return out
