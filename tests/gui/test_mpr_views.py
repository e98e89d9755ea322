"""Multi-planar views on a real CT series (app.sources.synthetic: 20 real 512x512 CT slices, 2.5 mm).

Painting in the sagittal view writes the right voxels of the shared label document (one undo step),
and the axial and coronal views show them; each view keeps the physical aspect of its spacing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from support.windows import wait_exposed

from app.core.commands import LabelDocument, UndoStack
from app.editor.mpr_view import MprModel, MprView
from app.sources.opening import open_source
from app.sources.synthetic import build_ct_series

RED = "#ff0000"


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, tuple[float, float, float]]:
    folder: Path = tmp_path_factory.mktemp("mpr")
    build_ct_series(folder, n=20, spacing=2.5)
    with open_source(folder) as source:
        assert source.spacing is not None
        return source.volume(), source.spacing


def _point(view, row: float, col: float) -> QPoint:  # type: ignore[no-untyped-def]
    rect = view.image_rect()
    rows, cols = view.model.shape_of(view.plane)
    return QPointF(
        rect.left() + (col + 0.5) * rect.width() / cols, rect.top() + (row + 0.5) * rect.height() / rows
    ).toPoint()


def test_paint_in_sagittal_updates_the_volume_and_the_other_views(
    qtbot, themed_qapp, ct, screenshot_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    volume, spacing = ct
    doc = LabelDocument(volume.shape[1:], volume.shape[0])
    stack = UndoStack(doc)
    model = MprModel(volume, spacing, doc, stack, window=(40.0, 400.0))
    view = MprView(model, {1: RED}, None)
    qtbot.addWidget(view)
    view.resize(1200, 760)
    wait_exposed(qtbot, view)
    view.set_brush(1, 6.0)

    # every view shows its plane at the physical aspect of the spacing
    sz, sy, sx = spacing
    for plane, (h_mm, w_mm) in {
        "axial": (512 * sy, 512 * sx),
        "coronal": (20 * sz, 512 * sx),
        "sagittal": (20 * sz, 512 * sy),
    }.items():
        rect = view.views[plane].image_rect()
        assert rect.width() / rect.height() == pytest.approx(w_mm / h_mm, rel=0.01), plane

    # click in the axial view: the crosshair moves to that voxel
    axial = view.views["axial"]
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=_point(axial, 200, 300))
    assert model.cross[1:] == [200, 300]
    model.cross[0] = 10

    # Shift+drag in the sagittal view at slices 10..12 (image rows 9..7), rows 240..250
    sagittal = view.views["sagittal"]
    depth = len(stack)
    qtbot.mousePress(
        sagittal, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, _point(sagittal, 9, 240)
    )
    qtbot.mouseMove(sagittal, _point(sagittal, 8, 245))
    qtbot.mouseRelease(
        sagittal, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, _point(sagittal, 7, 250)
    )
    assert len(stack) == depth + 1  # one undo step for all the slices the stroke touched
    painted = np.stack(
        [doc.label_map(k) if doc.has_label_map(k) else np.zeros(doc.shape, np.uint16) for k in range(20)]
    )
    ks, js, is_ = np.nonzero(painted)
    assert set(is_) == {300}  # only the sagittal plane through the crosshair
    assert 10 in ks and set(ks) <= set(range(8, 14)) and 240 in js and 250 in js
    # the brush is a disc in millimetres: 6 mm is ~2.4 slices of 2.5 mm but ~12.5 rows of sy mm; the
    # dabs were at rows 240 and 245 (the release adds none)
    assert len(set(ks)) <= 6
    assert 5 + 2 * 6.0 / sy - 2 <= js.max() - js.min() <= 5 + 2 * 6.0 / sy + 1

    # the coronal view through the crosshair row shows the paint; the axial view of slice 10 too
    model.cross = [10, 245, 300]
    view.refresh()
    assert (model.labels("axial") == 1).sum() == int((painted[10] == 1).sum()) > 0
    assert model.labels("coronal")[20 - 1 - 10, 300] == 1
    # a dab in the axial view shows as a line through the crosshair in the other two
    qtbot.mouseClick(
        axial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, _point(axial, 245, 330)
    )
    assert doc.label_map(10)[245, 330] == 1 and len(stack) == depth + 2
    model.cross = [10, 245, 330]
    view.refresh()
    assert model.labels("sagittal")[20 - 1 - 10, 245] == model.labels("coronal")[20 - 1 - 10, 330] == 1
    shot = view.grab()
    assert shot.save(str(screenshot_dir / "mpr_views.png"))
    axial_pos = _point(axial, 251, 336) + axial.pos()  # inside the dab, off the crosshair lines
    colour = shot.toImage().pixelColor(axial_pos)
    assert colour.red() > colour.green() + 60  # red paint blended over the grey CT

    stack.undo()
    stack.undo()
    assert not any(doc.has_label_map(k) and doc.label_map(k).any() for k in range(20))
    view.detach()
