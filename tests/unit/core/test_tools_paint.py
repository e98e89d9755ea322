"""Pixel tools on real data: brush/eraser exactness, threshold brush on CT, magic wand on coins."""

from __future__ import annotations

import numpy as np
import skimage.io
from scipy import ndimage

from app.core.annotations import Kind
from app.core.commands import LabelDocument, UndoStack
from app.core.raster import rasterize_stroke
from app.core.tools import BrushTool, EraserTool, FloodFillTool, MagicWandTool, ThresholdBrush, ToolContext
from app.sample_data import dicom_file, skimage_images
from app.sources import open_source

PATH = [(4.25, 5.5), (12.0, 7.75), (30.5, 20.0), (31.0, 21.0), (8.0, 33.5)]


def drag(tool: BrushTool, path: list[tuple[float, float]]) -> None:
    tool.press(*path[0])
    for p in path[1:-1]:
        tool.move(*p)
    tool.release(*path[-1])


def test_brush_stroke_is_rasterize_stroke_and_undoes_exactly() -> None:
    doc = LabelDocument((40, 45))
    c = ToolContext(doc, UndoStack(doc), class_index=3)
    before = np.random.default_rng(1).integers(0, 3, doc.shape).astype(np.uint16)
    doc.label_map(0)[:] = before
    tool = BrushTool(c, radius=2.5)
    drag(tool, PATH)
    stroke = rasterize_stroke(PATH, 2.5, doc.shape)
    expected = np.where(stroke, 3, before)
    np.testing.assert_array_equal(doc.label_map(0), expected)
    assert len(c.stack) == 1
    c.stack.undo()
    np.testing.assert_array_equal(doc.label_map(0), before)
    c.stack.redo()
    np.testing.assert_array_equal(doc.label_map(0), expected)
    eraser = EraserTool(c, radius=1.5)
    drag(eraser, PATH[:2])
    np.testing.assert_array_equal(
        doc.label_map(0), np.where(rasterize_stroke(PATH[:2], 1.5, doc.shape), 0, expected)
    )


def test_radius_keys_wheel_and_preview() -> None:
    doc = LabelDocument((10, 10))
    tool = BrushTool(ToolContext(doc, UndoStack(doc)), radius=3.0)
    tool.key("]")
    tool.wheel(-3)
    tool.key("[")
    assert tool.radius == 0.5
    tool.move(2.0, 3.0)
    assert tool.preview.cursor == (2.0, 3.0, 0.5) and not tool.preview.patches
    tool.press(2.5, 3.5)  # a 0.5 dab on a pixel centre covers that pixel only
    assert len(tool.preview.patches) == 1 and not doc.label_map(0).any()


def test_threshold_brush_paints_only_in_range_ct() -> None:
    hu = np.asarray(open_source(dicom_file("CT_small.dcm")).frame(0))
    doc = LabelDocument(hu.shape)
    c = ToolContext(doc, UndoStack(doc), class_index=2)
    lo, hi = 0, 200
    path = [(20.0, 30.0), (100.0, 90.0)]
    drag(ThresholdBrush(c, hu, lo, hi, radius=12.0), path)
    in_range = (hu >= lo) & (hu <= hi)
    stroke = rasterize_stroke(path, 12.0, doc.shape)
    painted = doc.label_map(0) == 2
    np.testing.assert_array_equal(painted, stroke & in_range)
    assert painted.any() and (stroke & ~in_range).any()


def test_magic_wand_selects_one_coin_and_flood_fill() -> None:
    coins = skimage.io.imread(skimage_images() / "coins.png")
    doc = LabelDocument(coins.shape)
    c = ToolContext(doc, UndoStack(doc), label="coin", class_index=5)
    bright = coins > 110
    labels, n = ndimage.label(bright)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    sizes[edge] = 0  # the bright background strip touches the border; coins do not
    big = int(np.argmax(sizes))
    r, col = np.argwhere(labels == big)[len(np.argwhere(labels == big)) // 2]
    seed = float(coins[r, col])
    wand = MagicWandTool(c, coins, tolerance=0)
    wand.tolerance = 30.0  # only the coin containing the seed is 4-connected to it
    expected = ndimage.label(np.abs(coins.astype(float) - seed) <= wand.tolerance)[0]
    expected_mask = expected == expected[r, col]
    assert wand.press(col + 0.5, r + 0.5)
    (ann,) = doc.annotations(0).values()
    assert ann.kind is Kind.MASK and ann.mask is not None
    np.testing.assert_array_equal(ann.mask.to_full(), expected_mask)
    assert 100 < ann.mask.area < coins.size / 20 and n > 10
    FloodFillTool(c, coins, tolerance=wand.tolerance).press(col + 0.5, r + 0.5)
    np.testing.assert_array_equal(doc.label_map(0) == 5, expected_mask)
    c.stack.undo()
    assert not doc.label_map(0).any()
