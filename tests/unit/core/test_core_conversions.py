"""Mask <-> polygon conversions and GrabCut on real images, as single undo steps."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.io import imread

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.commands import AddAnnotation, LabelDocument, UndoStack
from app.core.conversions import labels_to_polygons, mask_annotation_to_polygons, polygon_to_labels
from app.core.errors import ValidationError
from app.core.geometry import iou
from app.core.raster import rasterize_polygon, rasterize_rings
from app.core.tools import ToolContext
from app.core.tools.grabcut import GrabCutTool, grabcut_box
from app.sample_data import skimage_images


@pytest.fixture
def coins() -> np.ndarray:
    return imread(skimage_images() / "coins.png")


def _doc(shape: tuple[int, int]) -> tuple[LabelDocument, UndoStack]:
    doc = LabelDocument(shape)
    return doc, UndoStack(doc)


def test_mask_to_polygons_and_back_is_exact_and_one_step(coins: np.ndarray) -> None:
    doc, stack = _doc(coins.shape)
    blob = np.zeros(coins.shape, dtype=bool)
    blob[40:90, 30:70] = True
    blob[60:120, 150:200] = True  # two separate objects -> two polygons
    stack.push(AddAnnotation(Annotation(kind=Kind.MASK, label="coin", mask=MaskPatch.from_full(blob))))
    (aid,) = doc.annotations(0)
    stack.push(mask_annotation_to_polygons(doc, aid))
    polygons = list(doc.annotations(0).values())
    assert [p.kind for p in polygons] == [Kind.POLYGON, Kind.POLYGON]
    assert all(p.label == "coin" for p in polygons)
    union = np.zeros(coins.shape, dtype=bool)
    for p in polygons:
        union |= rasterize_polygon(p.points, coins.shape)
    assert np.array_equal(union, blob)
    stack.undo()
    assert [a.kind for a in doc.annotations(0).values()] == [Kind.MASK]


def test_polygon_to_labels_paints_the_rasteriser_pixels(coins: np.ndarray) -> None:
    doc, stack = _doc(coins.shape)
    points = np.array([[10.5, 10.25], [80.0, 20.0], [50.0, 70.75]])
    stack.push(AddAnnotation(Annotation(kind=Kind.POLYGON, label="coin", points=points)))
    (aid,) = doc.annotations(0)
    stack.push(polygon_to_labels(doc, aid, 3))
    assert np.array_equal(doc.label_map(0) == 3, rasterize_polygon(points, coins.shape))
    assert not doc.annotations(0)
    stack.undo()
    assert not doc.label_map(0).any() and len(doc.annotations(0)) == 1


def test_label_class_to_polygons_keeps_holes_exact(coins: np.ndarray) -> None:
    doc, stack = _doc(coins.shape)
    ring = np.zeros(coins.shape, dtype=bool)
    ring[20:80, 20:80] = True
    ring[40:60, 40:60] = False  # a hole
    doc.label_map(0)[ring] = 2
    stack.push(labels_to_polygons(doc, 0, 2, "coin"))
    assert not (doc.label_map(0) == 2).any()
    outer = [a.points for a in doc.annotations(0).values()]
    assert len(outer) == 1  # the hole is dropped from the polygon list (outer rings only)
    filled = np.zeros(coins.shape, dtype=bool)
    filled[20:80, 20:80] = True
    assert np.array_equal(rasterize_rings(outer, coins.shape), filled)
    stack.undo()
    assert np.array_equal(doc.label_map(0) == 2, ring)
    with pytest.raises(ValidationError, match="no painted pixels"):
        labels_to_polygons(doc, 0, 5, "other")


def test_grabcut_from_a_box_finds_a_real_coin(coins: np.ndarray) -> None:
    from scipy import ndimage

    # one coin of skimage's coins.png lies in rows 96-144, columns 245-296; the reference is that
    # coin's Otsu-threshold region (107) with its holes filled
    box = (235.0, 86.0, 306.0, 154.0)
    y0, x0, bits = grabcut_box(coins, box)
    assert (y0, x0) == (86, 235)
    crop = coins[86:154, 235:306]
    labels, _ = ndimage.label(crop > 107)
    reference = ndimage.binary_fill_holes(labels == labels[120 - 86, 270 - 235])  # the coin centre
    assert iou(bits, reference) > 0.8
    doc, stack = _doc(coins.shape)
    tool = GrabCutTool(ToolContext(doc, stack, class_index=4), coins)
    assert tool.press(box[0], box[1]) and tool.move(270, 120) and tool.release(box[2], box[3])
    assert np.array_equal(doc.label_map(0)[86:154, 235:306] == 4, bits)
    stack.undo()
    assert not doc.label_map(0).any()
