"""Headless render: what is drawn is exactly what is stored, on the core rasteriser's pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _editing_worker import ONTOLOGY, make_project
from PIL import Image

from app import api
from app.core.annotations import Annotation, Kind
from app.core.compose import compose, hex_to_rgb, label_edges
from app.core.ontology import Ontology
from app.core.raster import label_image, rasterize_annotation
from app.exchange.render import render_annotations, render_asset, save_png

TRIANGLE = [[40.5, 30.25], [200.0, 60.0], [90.0, 210.75]]


def _frame(project: api.Project, asset_id: int) -> np.ndarray:
    with project.open_asset(asset_id) as source:
        return np.asarray(source.frame(0))


def _blend(base: np.ndarray, color: tuple[int, int, int], alpha: float) -> np.ndarray:
    rgb = base.astype(np.float32)
    return np.floor(rgb + (np.array(color, dtype=np.float32) - rgb) * np.float32(alpha) + 0.5).astype(
        np.uint8
    )


def test_polygon_pixels_show_the_blended_class_colour_exactly(db_url: str) -> None:
    project, asset_id = make_project(db_url)
    project.upload_annotations(asset_id, [{"kind": "polygon", "label": "liver", "points": TRIANGLE}])
    (stored,) = project.annotation_objects(asset_id)
    frame = _frame(project, asset_id)
    ontology = project.ontology
    out = render_annotations(frame, None, False, [stored], ontology, opacity=0.4)
    assert out.shape == (*frame.shape, 4) and out.dtype == np.uint8
    inside = rasterize_annotation(stored, frame.shape)
    edge = label_edges(inside.astype(np.uint16))
    grey = np.repeat(frame[..., None], 3, axis=2)
    color = hex_to_rgb(ontology.get("liver").color)
    interior = inside & ~edge
    assert interior.sum() > 1000 and edge.sum() > 100
    assert np.array_equal(out[interior, :3], _blend(grey[interior], color, 0.4))
    assert (out[edge, :3] == color).all()
    assert np.array_equal(out[~inside, :3], grey[~inside])  # outside untouched
    assert (out[..., 3] == 255).all()


def test_mask_pixels_equal_the_composed_label_layer(db_url: str) -> None:
    project, asset_id = make_project(db_url)
    full = np.zeros((512, 512), dtype=bool)
    full[100:180, 300:420] = True
    full[150:160, :] = True
    other = np.zeros_like(full)
    other[120:300, 380:500] = True  # overlaps: the later one wins, as in label_image
    project.upload_annotations(
        asset_id,
        [
            {"kind": "mask", "label": "liver", "mask": full},
            {"kind": "mask", "label": "lesion", "mask": other},
        ],
    )
    stored = project.annotation_objects(asset_id)
    frame = _frame(project, asset_id)
    ontology = project.ontology
    colors = {ontology.index_of(c.name): hex_to_rgb(c.color) for c in ontology.classes}
    labels = label_image(stored, ontology, frame.shape)
    for outline in (False, True):
        out = render_annotations(frame, None, False, stored, ontology, outline=outline)
        assert np.array_equal(out, compose(frame, labels=labels, colors=colors, outline=outline))


def test_box_point_polyline_and_unknown_labels() -> None:
    ontology = Ontology.from_dict(ONTOLOGY)
    frame = np.full((64, 80), 1000, dtype=np.int16)  # 16-bit data goes through the window
    box = Annotation(Kind.BOX, "lesion", box=(10.0, 12.0, 30.0, 40.0))
    point = Annotation(Kind.POINT, "landmark", points=np.array([[50.5, 20.5]]))
    line = Annotation(Kind.POLYLINE, "liver", points=np.array([[5.0, 55.5], [70.0, 55.5]]))
    stray = Annotation(Kind.POINT, "retired class", points=np.array([[70.2, 5.9]]))
    label = Annotation(Kind.CLASSIFICATION, "liver")
    out = render_annotations(frame, (1000.0, 400.0), False, [box, point, line, stray, label], ontology)
    base = out[0, 0, :3].copy()
    assert (base == 127).all()  # the window centre maps to mid grey (truncated)
    assert (out[12, 10, :3] == hex_to_rgb("#4f81bd")).all()  # box corner: outline at full colour
    assert np.array_equal(out[20, 20, :3], _blend(base[None, :], hex_to_rgb("#4f81bd"), 0.5)[0])
    assert (out[40, 20, :3] == base).all()  # the box is [y0, y1): row 40 is outside
    assert (out[19:22, 49:52, :3] == hex_to_rgb("#9bbb59")).all() and (out[18, 50, :3] == base).all()
    assert (out[55, 5:70, :3] == hex_to_rgb("#c0504d")).all()
    assert (out[4:7, 69:72, :3] == 128).all() and (out[8, 70, :3] == base).all()


def test_render_asset_and_save_png(db_url: str, tmp_path: Path) -> None:
    project, asset_id = make_project(db_url)
    project.upload_annotations(
        asset_id,
        [
            {"kind": "polygon", "label": "liver", "points": TRIANGLE},
            {"kind": "box", "label": "lesion", "box": [300, 300, 400, 380]},
        ],
    )
    stored = project.annotation_objects(asset_id)
    expected = render_annotations(_frame(project, asset_id), None, False, stored, project.ontology)
    rgba = render_asset(
        project.db,
        project.id,
        asset_id,
        frame=0,
        roots=project.config.all_data_roots,
        max_pixels=project.config.max_image_pixels,
    )
    assert np.array_equal(rgba, expected)
    only_mine = render_asset(
        project.db,
        project.id,
        asset_id,
        roots=project.config.all_data_roots,
        max_pixels=project.config.max_image_pixels,
        author_id=project.user.id + 1000,
    )
    assert np.array_equal(
        only_mine, render_annotations(_frame(project, asset_id), None, False, [], project.ontology)
    )
    path = save_png(rgba, tmp_path / "out" / "render.png")
    assert sorted(p.name for p in path.parent.iterdir()) == ["render.png"]  # no temp file left
    with Image.open(path) as image:
        assert image.mode == "RGBA"
        assert np.array_equal(np.asarray(image), rgba)
