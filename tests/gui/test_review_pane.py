"""The review pane on a real project: three labelers submitted consensus items through the API
(hand-made polygons, boxes and masks on real skimage images); a reviewer looks and decides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialogButtonBox, QScrollArea
from skimage import io
from support.labeling import label_batch
from support.ontology_check import assert_ontology_allows
from support.windows import activate, focus, wait_exposed

from app import api, sample_data
from app.core.annotations import Annotation, Kind
from app.core.raster import rasterize_annotation
from app.core.records import ProjectSettings, TaskStatus, Verdict
from app.editor.main_window import MainWindow
from app.editor.qimages import to_array
from app.editor.review_overlay import (
    CONSENSUS_RGB,
    FILL_ALPHA,
    HEAT_ALPHA,
    default_outline_width,
    heat_color,
    inner_border,
    labeler_color,
    premultiplied,
)
from app.workflow.agreement import annotation_masks, disagreement_map
from app.workflow.consensus import majority_vote

ONTOLOGY = {
    "classes": [
        {"name": "coin", "color": "#c0504d", "kinds": ["polygon", "mask"]},
        {"name": "scratch", "color": "#4f81bd", "kinds": ["box", "polygon"]},
    ]
}
LABELERS = ("lee", "max", "nia")
IMAGES = ("coins.png", "camera.png", "moon.png", "page.png", "text.png", "brick.png", "grass.png")
AGREEING = "camera.png"  # everyone drew the same: agreement 1.0, the end of the queue
A = Qt.KeyboardModifier.AltModifier
CTRL_ALT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def labels_for(labeler: str, name: str, shape: tuple[int, int]) -> list[dict[str, Any]]:
    """Each labeler's hand-made annotations, placed relative to the image size."""
    h, w = shape
    lee = [
        {"kind": "polygon", "label": "coin", "points": _rect(0.12 * w, 0.15 * h, 0.42 * w, 0.55 * h)},
        {"kind": "box", "label": "scratch", "box": [0.55 * w, 0.5 * h, 0.72 * w, 0.75 * h]},
    ]
    if labeler == "lee" or name == AGREEING:
        return lee
    if labeler == "max":  # the coin shifted, no scratch
        return [{"kind": "polygon", "label": "coin", "points": _rect(0.17 * w, 0.2 * h, 0.47 * w, 0.6 * h)}]
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy, r = 0.28 * w, 0.37 * h, 0.2 * min(h, w)
    disk = (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r
    return [
        {"kind": "mask", "label": "coin", "mask": disk},
        {"kind": "box", "label": "scratch", "box": [0.57 * w, 0.53 * h, 0.74 * w, 0.78 * h]},
    ]


def expected_masks(name: str, shape: tuple[int, int], label: str | None = None) -> dict[str, np.ndarray]:
    """Each labeler's pixels straight from the hand-made input, through the one rasteriser."""
    out = {}
    for labeler in LABELERS:
        mask = np.zeros(shape, dtype=bool)
        for raw in labels_for(labeler, name, shape):
            if label is None or raw["label"] == label:
                mask |= rasterize_annotation(Annotation.from_dict(raw, frame_shape=shape), shape)
        out[labeler] = mask
    return out


def build_review_project(db: str | Path) -> None:
    """Ada's project: seven real images, each labeled by lee, max and nia and submitted."""
    settings = ProjectSettings(consensus_share=1.0, consensus_count=3, batch_size=20)
    admin = api.create_project(db, "review", ontology=ONTOLOGY, settings=settings, user="ada")
    admin.import_data([sample_data.skimage_images() / name for name in IMAGES])
    for name in LABELERS:
        admin.set_member(name, "labeler")
    for name in ("rita", "rob"):
        admin.set_member(name, "reviewer")
    for name in LABELERS:
        labeler = api.open_project(admin.db, "review", user=name)

        def labels(lease: Any, name: str = name, labeler: api.Project = labeler) -> list[dict[str, Any]]:
            asset = labeler.asset(lease.asset_id)
            return labels_for(name, asset.rel_path.rsplit("/", 1)[-1], (asset.height, asset.width))

        label_batch(labeler, labels)
    assert len(admin.review_queue(limit=None)) == len(IMAGES)
    admin.close()


@pytest.fixture
def review_db(tmp_path: Path) -> Path:
    db = tmp_path / "review.db"
    build_review_project(db)
    return db


@pytest.fixture
def review_any_db(db_url: str) -> str:
    """The same project on SQLite and on a real PostgreSQL (row locks decide races there)."""
    build_review_project(db_url)
    return db_url


def _open(qtbot, open_window, db: str | Path, user: str = "rita") -> MainWindow:  # type: ignore[no-untyped-def]
    window = open_window(api.open_project(db, "review", user=user, create=False), first_frame=False)
    assert window.review is not None
    _wait_item(qtbot, window)
    return window


def _ready(window: MainWindow) -> bool:
    pane = window.review
    assert pane is not None
    item, current = pane.item, window.current
    return (
        pane.idle
        and item is not None
        and current is not None
        and current.asset.id == item.asset.id
        and pane.overlays.masks is not None
    )


def _wait_item(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: _ready(window), timeout=20_000)


def _select(qtbot, window: MainWindow, image: str) -> None:  # type: ignore[no-untyped-def]
    pane = window.review
    assert pane is not None
    row = next(i for i, e in enumerate(pane.entries) if e.name == image)
    pane.queue_box.table.setCurrentCell(row, 0)
    qtbot.waitUntil(
        lambda: _ready(window) and pane.item is not None and pane.item.asset.id == pane.entries[row].asset_id
    )


def _canvas_pixels(window: MainWindow, points: list[tuple[int, int]]) -> np.ndarray:
    """Screen colours of image pixels (col, row), sampled at their centres on the real canvas."""
    window.canvas.backend.repaint_now()
    shot = to_array(window.canvas.grab().toImage())
    out = []
    for col, row in points:
        p = window.canvas.view.to_widget(col + 0.5, row + 0.5)
        out.append(shot[int(p.y()), int(p.x())])
    return np.array(out, dtype=np.int32)


def _deep_inside(mask: np.ndarray, count: int = 12) -> list[tuple[int, int]]:
    """Pixels of ``mask`` at least 3 px from its border, spread over it (col, row)."""
    core = mask & ~inner_border(mask, 3)
    rows, cols = np.nonzero(core)
    assert rows.size, "the region is too thin to sample"
    pick = np.linspace(0, rows.size - 1, count).astype(int)
    return [(int(cols[i]), int(rows[i])) for i in pick]


# --- display -------------------------------------------------------------------------------------------
def test_queue_is_lowest_agreement_first_and_labelers_hidden_roles(qtbot, open_window, review_db) -> None:
    window = _open(qtbot, open_window, review_db)
    pane = window.review
    assert pane is not None
    scores = [e.agreement for e in pane.entries]
    assert len(scores) == len(IMAGES) and None not in scores
    assert scores == sorted(scores)  # type: ignore[type-var]
    assert pane.entries[-1].name == AGREEING and scores[-1] == pytest.approx(1.0)
    assert pane.entries[0].labelers == LABELERS
    assert pane.queue_box.table.item(0, 2).text() == f"{scores[0]:.2f}"
    assert pane.item is not None and pane.item.asset.id == pane.entries[0].asset_id  # opened at once
    # the per-class agreement table shows what item_agreement gives
    agreement = pane.item.agreement
    assert agreement is not None
    assert pane.agreement_box.table.rowCount() == len(agreement.classes) == 2
    assert {pane.agreement_box.table.item(r, 0).text() for r in range(2)} == {"coin", "scratch"}
    assert f"{agreement.overall:.3f}" in pane.agreement_box.overall.text()
    assert "Review" in [a.text().replace("&", "") for a in window.menuBar().actions()]
    keys = [QKeySequence(k).toString() for b in window.bindings for k in b.keys.split(" or ") if b.keys]
    assert len(keys) == len(set(keys)), sorted(k for k in set(keys) if keys.count(k) > 1)  # no clashes
    listed = dict((text, keys) for keys, text in window.help.entries)
    assert listed["Accept the item"] == "Ctrl+Alt+A" and listed["Show / hide labeler 1"] == "Shift+1"
    window.close()

    labeler = api.open_project(review_db, "review", user="lee", create=False)
    lee_window = open_window(labeler, show=False)
    assert lee_window.review is None  # no pane, no Review menu for labelers
    assert "Review" not in [a.text().replace("&", "") for a in lee_window.menuBar().actions()]
    lee_window.close()


def test_each_labeler_shows_in_their_colour_exactly_where_their_annotation_rasterises(
    qtbot, open_window, review_db
) -> None:
    window = _open(qtbot, open_window, review_db)
    pane = window.review
    assert pane is not None
    _select(qtbot, window, "coins.png")
    item, overlays = pane.item, pane.overlays
    assert item is not None and overlays.overlay is not None
    assert item.labelers == LABELERS
    expected = expected_masks("coins.png", item.shape)
    union = np.logical_or.reduce(list(expected.values()))
    full = overlays.overlay.full()
    np.testing.assert_array_equal(full[..., 3] > 0, union)  # colour exactly on the marked pixels
    base = window.canvas.backend.render_layers()[..., :3].astype(np.int32)
    only = {}
    for i, name in enumerate(LABELERS):
        only[name] = expected[name] & ~np.logical_or.reduce([expected[o] for o in LABELERS if o != name])
        assert only[name].any()
        colour = premultiplied(labeler_color(i), FILL_ALPHA)
        assert (full[only[name]] == colour).all(), name
        # the real canvas: the labeler's colour blended over the image at those pixels
        points = _deep_inside(only[name])
        seen = _canvas_pixels(window, points)
        want = np.array([np.array(colour[:3]) + base[r, c] * (1 - FILL_ALPHA) for c, r in points])
        assert np.abs(seen - want).max() <= 2, name
    # Shift+1 hides the first labeler: their colour leaves the overlay and the canvas
    lee_points = _deep_inside(only["lee"])
    focus(qtbot, window.canvas)
    qtbot.keyClick(window.canvas, Qt.Key.Key_1, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: pane.idle and overlays.visible == [False, True, True])
    assert not overlays.checks[0].isChecked()
    full = overlays.overlay.full()
    assert not full[only["lee"]].any()
    np.testing.assert_array_equal(full[..., 3] > 0, expected["max"] | expected["nia"])
    seen = _canvas_pixels(window, lee_points)
    assert np.abs(seen - np.array([base[r, c] for c, r in lee_points])).max() <= 1
    # the checkbox brings them back
    overlays.checks[0].setChecked(True)
    qtbot.waitUntil(lambda: pane.idle and overlays.visible == [True, True, True])
    np.testing.assert_array_equal(overlays.overlay.full()[..., 3] > 0, union)
    # outline-only: an opaque border of each mask, nothing inside
    qtbot.keyClick(window.canvas, Qt.Key.Key_O, A)
    qtbot.waitUntil(lambda: pane.idle and overlays.outline)
    width = default_outline_width(item.shape)
    borders = np.logical_or.reduce([inner_border(expected[n], width) for n in LABELERS])
    np.testing.assert_array_equal(overlays.overlay.full()[..., 3] > 0, borders)
    window.close()


def test_disagreement_map_marks_exactly_where_labelers_differ(
    qtbot, themed_qapp, open_window, review_db, screenshot_dir
) -> None:
    window = _open(qtbot, open_window, review_db)
    pane = window.review
    assert pane is not None
    _select(qtbot, window, "coins.png")
    item, overlays = pane.item, pane.overlays
    assert item is not None
    focus(qtbot, window.canvas)
    qtbot.keyClick(window.canvas, Qt.Key.Key_D, A)
    qtbot.waitUntil(lambda: pane.idle and overlays.heat and overlays.overlay is not None)
    assert overlays.outline  # switched on with the heat, so the labelers stay readable
    assert overlays.heat_legend.isVisible() and "marked by 2 of 3" in overlays.heat_legend.text()
    disputed = np.zeros(item.shape, dtype=bool)
    counts = {}
    for label in ("coin", "scratch"):
        masks = annotation_masks(item.annotations, label, item.shape)
        counts[label] = disagreement_map([masks[n] for n in LABELERS])
        disputed |= (counts[label] > 0) & (counts[label] < 3)
    assert overlays.masks is not None
    np.testing.assert_array_equal(overlays.masks.heat > 0, disputed)
    api_map = window.project.disagreement(item.asset.id, 0)  # the backend's per-pixel map agrees
    np.testing.assert_array_equal(api_map > 0, disputed)
    # in the picture: the heat colour of "k of 3" where disputed and off every border
    full = overlays.overlay.full()
    width = default_outline_width(item.shape)
    borders = np.logical_or.reduce(
        [inner_border(m, width) for m in expected_masks("coins.png", item.shape).values()]
    )
    for k in (1, 2):
        at = (overlays.masks.heat == k) & ~borders
        assert at.any()
        assert (full[at] == premultiplied(heat_color(k, 3), HEAT_ALPHA)).all()
    agreed = ~disputed & ~borders
    assert not full[agreed].any()  # all three (or nobody) marked it: no heat
    # each labeler's border is drawn over the heat in their colour (the last one wins a shared pixel)
    drawn_later = np.zeros(item.shape, dtype=bool)
    for i, name in reversed(list(enumerate(LABELERS))):
        own = inner_border(expected_masks("coins.png", item.shape)[name], width) & ~drawn_later
        assert own.any()
        assert (full[own] == (*labeler_color(i), 255)).all(), name
        drawn_later |= own
    window.resize(1600, 1150)
    themed_qapp.processEvents()
    rows, cols = np.nonzero(np.logical_or.reduce([m for m in overlays.masks.masks.values()]))
    window.canvas.view.zoom_by(1.25)
    window.canvas.view.centre_on((cols.min() + cols.max() + 1) / 2, (rows.min() + rows.max() + 1) / 2)
    themed_qapp.processEvents()
    window.canvas.backend.repaint_now()
    window.grab().save(str(screenshot_dir / "review_pane.png"))
    body = pane.findChild(QScrollArea).widget()  # the whole pane, scrolled parts included
    body.grab().save(str(screenshot_dir / "review_pane_dock.png"))
    # one class only
    pane.overlays.class_combo.setCurrentIndex(pane.overlays.class_combo.findData("scratch"))
    qtbot.waitUntil(lambda: pane.idle and overlays.masks is not None and overlays.masks.label == "scratch")
    scratch = counts["scratch"]
    np.testing.assert_array_equal(overlays.masks.heat > 0, (scratch > 0) & (scratch < 3))
    np.testing.assert_array_equal(
        window.project.disagreement(item.asset.id, 0, "scratch") > 0, (scratch > 0) & (scratch < 3)
    )
    window.close()


def test_table_composition_equals_compositing_each_pixel(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.editor import review_overlay
    from app.editor.review_overlay import compose_overlay, consensus_mask, frame_masks

    shape = (303, 384)
    by_labeler = {
        name: [Annotation.from_dict(raw, frame_shape=shape) for raw in labels_for(name, "coins.png", shape)]
        for name in LABELERS
    }
    masks = frame_masks(by_labeler, shape, 0)
    merged = consensus_mask(by_labeler["lee"], shape, 0)
    cases = [
        {"outline": False, "heat": False},
        {"outline": True, "heat": True},
        {"outline": False, "heat": True, "consensus": merged},
    ]
    for visible in ([True, True, True], [False, True, True], [True, False, False]):
        for case in cases:
            table = compose_overlay(masks, visible, **case)  # type: ignore[arg-type]
            monkeypatch.setattr(review_overlay, "LUT_BITS", 0)
            direct = compose_overlay(masks, visible, **case)  # type: ignore[arg-type]
            monkeypatch.undo()
            assert table is not None and direct is not None
            assert (table.x0, table.y0) == (direct.x0, direct.y0)
            np.testing.assert_array_equal(table.rgba, direct.rgba)


@pytest.mark.gl
def test_gl_and_raster_canvases_draw_the_review_overlay_alike(qtbot, screenshot_dir) -> None:  # type: ignore[no-untyped-def]
    from app.editor.canvas import create_canvas
    from app.editor.review_overlay import compose_overlay, frame_masks

    image = io.imread(sample_data.skimage_images() / "coins.png")
    shape = image.shape[:2]
    by_labeler = {
        name: [Annotation.from_dict(raw, frame_shape=shape) for raw in labels_for(name, "coins.png", shape)]
        for name in LABELERS
    }
    masks = frame_masks(by_labeler, shape, 0)
    grabs = {}
    for backend, prefer_gl in (("gl", True), ("raster", False)):
        canvas = create_canvas(prefer_gl=prefer_gl)
        qtbot.addWidget(canvas)
        canvas.resize(shape[1], shape[0])  # fit = 1:1, so both backends map pixels alike
        wait_exposed(qtbot, canvas)
        assert canvas.backend.name == backend, canvas.backend.fallback_reason
        canvas.set_image(image)
        assert canvas.view.zoom == 1.0
        canvas.backend.repaint_now()
        bare = to_array(canvas.grab().toImage()).astype(np.int16)
        for outline, heat in ((False, False), (True, True)):
            overlay = compose_overlay(masks, [True] * 3, outline=outline, heat=heat)
            assert overlay is not None
            canvas.overlays.set_image(overlay.rgba, (overlay.x0, overlay.y0))
            canvas.backend.repaint_now()
            grabs[backend, outline] = to_array(canvas.grab().toImage()).astype(np.int16)
            changed = (grabs[backend, outline] != bare).any(axis=2)
            assert (changed == (overlay.full()[..., 3] > 0)).mean() > 0.999  # drawn where it covers
        canvas.grab().save(str(screenshot_dir / f"review_overlay_{backend}.png"))
    for outline in (False, True):
        diff = np.abs(grabs["gl", outline] - grabs["raster", outline]).max(axis=2)
        assert diff.max() <= 2 and (diff == 0).mean() >= 0.99, outline


# --- decisions -----------------------------------------------------------------------------------------
def _waiting(project: api.Project) -> list[int]:
    return [e.asset_id for e in project.review_queue(limit=None)]


def _decide_and_wait(
    qtbot, window: MainWindow, keys: tuple[Qt.Key, Qt.KeyboardModifier] | None = None
) -> int:  # type: ignore[no-untyped-def]
    pane = window.review
    assert pane is not None and pane.item is not None
    decided = pane.item.asset.id
    if keys is not None:
        focus(qtbot, window.canvas)  # a window shortcut: the window must be active
    with qtbot.waitSignal(pane.decided, timeout=20_000):
        if keys is not None:
            qtbot.keyClick(window.canvas, keys[0], keys[1])
    qtbot.waitUntil(
        lambda: _ready(window) and decided not in [e.asset_id for e in pane.entries], timeout=20_000
    )
    return decided


def test_accept_reject_choose_and_merge_go_through_the_api_and_leave_the_queue(
    qtbot, open_window, review_db, screenshot_dir
) -> None:
    window = _open(qtbot, open_window, review_db)
    pane, project = window.review, window.project
    assert pane is not None

    # Accept (Ctrl+Alt+A)
    accepted = _decide_and_wait(qtbot, window, (Qt.Key.Key_A, CTRL_ALT))
    assert accepted not in _waiting(project)
    last = project.review_history(accepted)[-1]
    assert (last.verdict, last.reviewer) == (Verdict.ACCEPTED, "rita")
    assert pane.item is not None and pane.item.asset.id != accepted  # moved on to the next item
    assert "accepted" in pane.message.text()

    # Reject to a labeler (Ctrl+Alt+J): the reason is required
    qtbot.keyClick(window.canvas, Qt.Key.Key_J, CTRL_ALT)
    dialog = pane.flow.dialog
    assert dialog is not None and dialog.isVisible()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()
    dialog.labeler.setCurrentText("max")
    assert dialog.reason is not None
    qtbot.keyClicks(dialog.reason, "   ")
    assert not ok.isEnabled()
    qtbot.keyClicks(dialog.reason, "the coin edge is off by 10 px")
    assert ok.isEnabled()
    dialog.grab().save(str(screenshot_dir / "review_reject_dialog.png"))
    rejected = pane.item.asset.id
    with qtbot.waitSignal(pane.decided, timeout=20_000):
        ok.click()
    qtbot.waitUntil(
        lambda: _ready(window) and rejected not in [e.asset_id for e in pane.entries], timeout=20_000
    )
    assert rejected not in _waiting(project)
    last = project.review_history(rejected)[-1]
    assert (last.verdict, last.note) == (Verdict.REJECTED, "the coin edge is off by 10 px")
    assert [lease.asset_id for lease in api.open_project(review_db, "review", user="max").claim()] == [
        rejected
    ]
    assert api.open_project(review_db, "review", user="nia").claim() == []  # only max gets it back

    # Consensus from one labeler (Ctrl+Alt+U)
    activate(qtbot, window)  # after a dialog closed: offscreen has no window manager to do it
    qtbot.keyClick(window.canvas, Qt.Key.Key_U, CTRL_ALT)
    dialog = pane.flow.dialog
    assert dialog is not None and dialog.reason is None
    dialog.labeler.setCurrentText("nia")
    chosen = pane.item.asset.id
    nia_labels = pane.item.annotations["nia"]
    with qtbot.waitSignal(pane.decided, timeout=20_000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(
        lambda: _ready(window) and chosen not in [e.asset_id for e in pane.entries], timeout=20_000
    )
    assert chosen not in _waiting(project)
    item = project.review_item(chosen)
    assert item.task.status is TaskStatus.DONE
    assert sorted(a.kind.value for a in item.consensus) == sorted(a.kind.value for a in nia_labels)
    assert_ontology_allows(project, item.consensus)

    # Merge: preview first (Ctrl+Alt+M), the white border is the majority consensus; then confirm
    activate(qtbot, window)  # after a dialog closed: offscreen has no window manager to do it
    merging = pane.item.asset.id
    qtbot.keyClick(window.canvas, Qt.Key.Key_M, CTRL_ALT)
    qtbot.waitUntil(lambda: pane.logic.mode == "merge" and pane.idle, timeout=20_000)
    assert pane.decision.confirm_bar.isVisible() and not pane.decision.accept_button.isEnabled()
    shape = pane.item.shape
    coin = annotation_masks(pane.item.annotations, "coin", shape)
    majority = majority_vote([coin[n] for n in LABELERS])
    white = np.all(pane.overlays.overlay.full() == (*CONSENSUS_RGB, 255), axis=2)
    border = inner_border(majority, default_outline_width(shape) + 1)
    assert white[border].all()
    assert merging in _waiting(project)  # nothing stored by the preview
    window.grab().save(str(screenshot_dir / "review_pane_merge.png"))
    _decide_and_wait(qtbot, window, (Qt.Key.Key_Return, CTRL_ALT))
    assert merging not in _waiting(project)
    stored = project.review_item(merging).consensus
    assert_ontology_allows(project, stored)
    coin_masks = [a for a in stored if a.label == "coin" and a.kind is Kind.MASK]
    assert len(coin_masks) == 1 and coin_masks[0].mask is not None
    np.testing.assert_array_equal(coin_masks[0].mask.to_full(), majority)
    window.close()


def test_fix_and_accept_edits_through_the_reviewers_session(qtbot, open_window, review_db) -> None:
    window = _open(qtbot, open_window, review_db)
    pane, project = window.review, window.project
    assert pane is not None and pane.item is not None
    fixing = pane.item.asset.id
    assert window.canvas.tool_slot.active is None  # looking only: a stray click on the item draws nothing
    focus(qtbot, window.canvas)
    qtbot.keyClick(window.canvas, Qt.Key.Key_X, CTRL_ALT)
    assert window.canvas.tool_slot.active is not None  # Fix switches the canvas to editing
    assert pane.logic.mode == "fix" and pane.decision.copy_row.isVisible()
    assert pane.overlays.outline
    pane.decision.copy_combo.setCurrentText("lee")
    pane.flow.copy_labels("lee")
    session = window.editing.session
    assert session is not None and session.asset.id == fixing
    assert len(session.doc.annotations(0)) == 2  # lee's polygon and box, now the reviewer's
    window.editing.undo()
    assert len(session.doc.annotations(0)) == 0  # one undo step
    window.editing.redo()
    # and a brush stroke of the reviewer's own (the brush is the tool picked last)
    canvas = window.canvas
    a, b = canvas.view.to_widget(60.5, 40.5).toPoint(), canvas.view.to_widget(90.5, 50.5).toPoint()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(canvas, b)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=b)
    assert session.doc.label_map(0).any()
    _decide_and_wait(qtbot, window, (Qt.Key.Key_Return, CTRL_ALT))
    assert fixing not in _waiting(project)
    item = project.review_item(fixing)
    assert project.review_history(fixing)[-1].verdict is Verdict.FIXED
    mine = [a for a in item.others if a.author == "rita"]
    assert sorted(a.kind.value for a in mine) == ["box", "mask", "polygon"]  # saved before the verdict
    window.close()


def test_a_decision_another_reviewer_made_first_shows_the_conflict_and_moves_on(
    qtbot, open_window, review_any_db
) -> None:
    review_db = review_any_db
    window = _open(qtbot, open_window, review_db, user="rob")
    pane = window.review
    assert pane is not None and pane.item is not None
    taken = pane.item.asset.id
    api.open_project(review_db, "review", user="rita").accept(taken, note="looked fine")
    focus(qtbot, window.canvas)
    qtbot.keyClick(window.canvas, Qt.Key.Key_A, CTRL_ALT)  # rob accepts too, a moment later
    qtbot.waitUntil(lambda: "already decided by rita" in pane.message.text(), timeout=20_000)
    assert pane.message.isVisible()
    qtbot.waitUntil(
        lambda: _ready(window) and taken not in [e.asset_id for e in pane.entries], timeout=20_000
    )
    assert pane.item is not None and pane.item.asset.id != taken
    assert pane.decision.accept_button.isEnabled()  # still usable for the next item
    window.close()
