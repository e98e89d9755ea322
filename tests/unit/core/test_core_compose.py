"""The reference picture of the canvas layers: window, colour map, label blend and outline."""

from __future__ import annotations

import numpy as np

from app.core.compose import COLORMAPS, compose, label_edges, label_lut


def test_window_maps_hu_linearly_and_clamps() -> None:
    hu = np.array([[-1000, -160, 40, 240, 3000]], dtype=np.int16)
    out = compose(hu, (40, 400))  # lo = -160, hi = 240
    assert out[0, :, 0].tolist() == [0, 0, 127, 255, 255]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 3] == 255).all()


def test_colour_maps_are_256_entry_tables_and_grey_is_identity() -> None:
    assert all(t.shape == (256, 3) and t.dtype == np.uint8 for t in COLORMAPS.values())
    assert np.array_equal(COLORMAPS["grey"][:, 0], np.arange(256))
    hot = compose(np.array([[0, 255]], dtype=np.uint8), None, colormap="hot")
    assert hot[0, 0, :3].tolist() == [0, 0, 0] and hot[0, 1, :3].tolist() == [255, 255, 255]


def test_labels_blend_with_opacity_rounding_half_up() -> None:
    frame = np.full((4, 4), 100, dtype=np.uint8)
    labels = np.zeros((4, 4), dtype=np.uint16)
    labels[1:3, 1:3] = 1
    out = compose(frame, None, labels=labels, colors={1: (255, 0, 0)}, opacity=0.5)
    assert out[1, 1, :3].tolist() == [178, 50, 50]  # 100 + 155 * .5 = 177.5 -> 178; 100 - 50 = 50
    assert out[0, 0, :3].tolist() == [100, 100, 100]


def test_outline_mode_draws_only_the_region_border_at_full_colour() -> None:
    labels = np.zeros((6, 6), dtype=np.uint16)
    labels[1:5, 1:5] = 2
    edges = label_edges(labels)
    assert edges[1, 1] and edges[1, 3] and not edges[2, 2] and not edges[0, 0]
    out = compose(np.zeros((6, 6), np.uint8), None, labels=labels, colors={2: (0, 255, 0)}, outline=True)
    assert out[1, 2, :3].tolist() == [0, 255, 0] and out[2, 2, :3].tolist() == [0, 0, 0]


def test_unknown_and_background_classes_stay_transparent() -> None:
    lut = label_lut({1: (1, 2, 3)}, size=4)
    assert lut.shape == (4, 4) and lut[0, 3] == 0 and lut[1].tolist() == [1, 2, 3, 255] and lut[3, 3] == 0
