"""Model-assisted labeling in the real main window (offscreen, raster canvas): a micro-model trained
through the API on labeled tiles of skimage's real retina photo pre-labels held-out tiles (run by a
reviewer); a labeler reviews them by key: J selects, A accepts, Delete rejects, Ctrl+Z undoes,
Shift+A accepts everything at or above a confidence; H shows the model's low-confidence heat.

``build_world`` is shared with test_models_panel.py (one trained model for both files)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPainter, QTransform
from support.retina import cut, retina_vessels, write_tiles
from support.windows import WAIT, focus

from app import api
from app.core.annotations import HUMAN, Annotation, Kind
from app.editor.canvas.overlay import OverlayPainter
from app.editor.main_window import MainWindow
from app.editor.prelabel_logic import HEAT_MARGIN, bounds_of
from app.editor.qimages import to_array

ADMIN, LABELER, REVIEWER = "alice", "ana", "rita"
ONTOLOGY = {"classes": [{"name": "vessel", "color": "#3cb44b", "hotkey": "1", "kinds": ["polygon", "mask"]}]}
TRAIN = ((0, 0), (0, 898), (898, 0), (898, 898), (898, 449))  # training validates on one of them
HELD = ((449, 449), (0, 449))
FRESH = (449, 0)  # never pre-labelled: the Models dock runs passes on it
SOURCE = "model:mm-vessel@1"


@dataclass(frozen=True)
class World:
    folder: Path
    db: Path
    models: Path
    assets: dict[tuple[int, int], int]

    @property
    def held(self) -> list[int]:
        return [self.assets[t] for t in HELD]


def _site(folder: Path, models: Path) -> Path:
    config = folder / "site.toml"
    config.write_text(f'models_dir = "{models.as_posix()}"\n')
    return config


def build_world(folder: Path) -> World:
    """Tiles of the retina photo; alice labels five (vessel masks by a stated filter rule), trains
    the micro-model through the API; rita (reviewer) pre-labels two held-out tiles."""
    image, vessels = retina_vessels()
    paths = write_tiles(folder / "tiles", image, (*TRAIN, *HELD, FRESH))
    models = folder / "models"
    db = folder / "labels.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SITELABEL_CONFIG", str(_site(folder, models)))
        admin = api.create_project(db, "retina", ontology=ONTOLOGY, user=ADMIN)
        admin.set_member(LABELER, "labeler")
        admin.set_member(REVIEWER, "reviewer")
        admin.import_data(list(paths.values()))
        by_name = {a.rel_path.rsplit("/", 1)[-1]: a.id for a in admin.assets()}
        assets = {tile: by_name[path.name] for tile, path in paths.items()}
        for y, x in TRAIN:
            mask = cut(vessels, y, x)
            admin.upload_annotations(assets[(y, x)], [{"kind": "mask", "label": "vessel", "mask": mask}])
        assert admin.train_micro_model("vessel").model.ref == "mm-vessel@1"
        rita = api.open_project(admin.db, "retina", user=REVIEWER)
        report = rita.prelabel(["mm-vessel"], asset_ids=[assets[t] for t in HELD])
        assert report.annotations > 4 and not report.skipped
        rita.close()
        admin.close()
    return World(folder, db, models, assets)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("prelabel-world"))


@pytest.fixture
def copy(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """This test's own copy of the project database and models folder (tests change both)."""
    db, models = tmp_path / "labels.db", tmp_path / "models"
    shutil.copy(world.db, db)
    shutil.copytree(world.models, models)
    monkeypatch.setenv("SITELABEL_CONFIG", str(_site(tmp_path, models)))
    return World(tmp_path, db, models, world.assets)


def open_item(qtbot, open_window, db: Path, user: str, asset_id: int) -> MainWindow:  # type: ignore[no-untyped-def]
    """``user``'s main window (the open_window fixture) with ``asset_id`` open for editing."""
    window = open_window(api.open_project(db, "retina", user=user, create=False))
    window.open_asset_id(asset_id)
    qtbot.waitUntil(
        lambda: (
            window.current is not None
            and window.current.asset.id == asset_id
            and window.editing.session is not None
            and window.editing.session.asset.id == asset_id
        ),
        timeout=WAIT,
    )
    return window


def _pending_ids(window: MainWindow) -> dict[int, int]:
    """Pending pre-labels of the session: local id -> database id."""
    session = window.editing.session
    assert session is not None
    return {aid: a.id for aid, a in session.prelabels().items() if a.id is not None}


def _alpha(image: QImage) -> np.ndarray:
    """The alpha channel (H, W) of an overlay image."""
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    raw = np.frombuffer(rgba.constBits(), dtype=np.uint8, count=rgba.sizeInBytes())
    rows = raw.reshape(rgba.height(), rgba.bytesPerLine())[:, : rgba.width() * 4]
    return rows.reshape(rgba.height(), rgba.width(), 4)[..., 3].copy()


# --- drawing --------------------------------------------------------------------------------------
def _paint(annotation: Annotation) -> np.ndarray:
    image = QImage(120, 120, QImage.Format.Format_RGBA8888)
    image.fill(QColor(128, 128, 128))
    painter = QPainter(image)
    overlay = OverlayPainter()
    overlay.set_items([(annotation, "#3cb44b", False)])
    overlay.paint(painter, QTransform(), 1.0, image.rect().toRectF(), (120, 120))
    painter.end()
    return to_array(image)[..., :3].astype(int)


def test_prelabels_are_drawn_dashed_and_fainter_than_human_labels(qtbot, themed_qapp) -> None:
    square = np.array([[20.0, 20.0], [100.0, 20.0], [100.0, 100.0], [20.0, 100.0]])
    human = Annotation(kind=Kind.POLYGON, label="vessel", points=square)
    machine = human.evolve(source=SOURCE, confidence=0.9)
    mine, proposed = _paint(human), _paint(machine)
    grey, green = np.array([128, 128, 128]), np.array([0x3C, 0xB4, 0x4B])
    # the fill: the human label tints the inside more than the pre-label does
    assert np.abs(mine[60, 60] - grey).sum() > np.abs(proposed[60, 60] - grey).sum() > 0
    # the outline: solid for the human label, dashes over a dark casing for the pre-label
    edge_mine, edge_proposed = mine[20, 24:96], proposed[20, 24:96]
    near_green = lambda px: np.abs(px - green).sum(axis=-1) < 90  # noqa: E731
    dark = lambda px: px.sum(axis=-1) < 150  # noqa: E731
    assert near_green(edge_mine).mean() > 0.9 and not dark(edge_mine).any()
    assert 0.3 < near_green(edge_proposed).mean() < 0.8 and dark(edge_proposed).mean() > 0.15


# --- the review by key ------------------------------------------------------------------------------
def test_labeler_accepts_rejects_and_undoes_prelabels_by_key(qtbot, open_window, copy: World) -> None:
    asset_id = copy.held[0]
    window = open_item(qtbot, open_window, copy.db, LABELER, asset_id)
    canvas, panel = window.canvas, window.prelabels
    session = window.editing.session
    assert session is not None
    pending = _pending_ids(window)
    assert len(pending) > 2
    shown = session.prelabels()
    assert all(a.source == SOURCE and a.author == REVIEWER and a.confidence for a in shown.values())
    assert panel.table.rowCount() == len(session.prelabels(0)) and "to review" in panel.summary.text()
    canvas.backend.repaint_now()
    before = to_array(canvas.grab().toImage())

    focus(qtbot, canvas)
    qtbot.keyClick(canvas, Qt.Key.Key_J)  # next pre-label: the least confident first
    first = window.editing.tools.selected_id
    order = list(panel.logic.pending())
    assert first == order[0] and window.editing.tools.tool_name == "select"
    assert panel.table.selectionModel().selectedRows()[0].row() == 0
    info = window.annotation_panel.prelabel_info
    assert not info.isHidden() and "mm-vessel@1" in info.text() and "confidence" in info.text()
    qtbot.keyClick(canvas, Qt.Key.Key_A)  # accept
    assert first not in session.prelabels() and session.doc.annotation(first).source == HUMAN
    assert info.isHidden()  # the selection is the labeler's own annotation now
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo
    assert first in session.prelabels()
    qtbot.keyClick(canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)  # redo
    assert first not in session.prelabels()
    # accepting drew it as a human label: the picture changed where it lies
    canvas.backend.repaint_now()
    assert not np.array_equal(before, to_array(canvas.grab().toImage()))

    qtbot.keyClick(canvas, Qt.Key.Key_J)
    second = window.editing.tools.selected_id
    assert second is not None and second != first and second in session.prelabels()
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)  # reject (the select tool deletes the selection)
    assert second not in session.doc.annotations(0)
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert second in session.prelabels()
    qtbot.keyClick(canvas, Qt.Key.Key_J)
    assert window.editing.tools.selected_id == second  # least confident pending one again
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)
    window.editing.saves.save_now()

    ana = window.project
    stored = {a.id: a for a in ana.annotation_objects(asset_id)}
    assert pending[first] not in stored and pending[second] not in stored  # both pre-label rows gone
    human = [a for a in stored.values() if a.source == HUMAN]
    assert len(human) == 1 and human[0].author == LABELER and human[0].confidence is None
    assert human[0].same_content(session.doc.annotation(first))
    machine = {i for i, a in stored.items() if a.source == SOURCE}
    assert machine == set(pending.values()) - {pending[first], pending[second]}
    window.close()


def test_accept_all_at_or_above_a_confidence(qtbot, open_window, copy: World) -> None:
    asset_id = copy.held[1]
    admin = api.open_project(copy.db, "retina", user=ADMIN, create=False)
    ring = [[30.0, 30.0], [60.0, 30.0], [60.0, 60.0], [30.0, 60.0]]
    for level in (0.79, 0.8, 0.81):  # another model's pre-labels right at the boundary
        admin.upload_annotations(
            asset_id,
            [{"kind": "polygon", "label": "vessel", "points": ring}],
            source="model:up@1",
            confidence=level,
        )
    admin.close()
    window = open_item(qtbot, open_window, copy.db, LABELER, asset_id)
    panel, session = window.prelabels, window.editing.session
    assert session is not None
    qtbot.waitUntil(lambda: SOURCE in panel.logic.thresholds, timeout=10_000)
    manifest = panel.logic.thresholds[SOURCE]
    assert panel.threshold.value() == pytest.approx(manifest, abs=0.005)  # the manifest's
    everything = {a.id: a.confidence or 0.0 for a in session.prelabels().values()}
    sure = {i for i, c in everything.items() if c >= 0.8}
    assert sure and sure != set(everything) and len(everything) >= 6
    panel.threshold.setValue(0.8)
    focus(qtbot, window.canvas)
    qtbot.keyClick(window.canvas, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert {a.id for a in session.prelabels().values()} == set(everything) - sure
    assert f"Accepted {len(sure)} pre-label(s)" in panel.message.text()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # one undo step
    assert {a.id for a in session.prelabels().values()} == set(everything)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert {a.id for a in session.prelabels().values()} == set(everything) - sure
    window.editing.saves.save_now()
    stored = window.project.annotation_objects(asset_id)
    assert len([a for a in stored if a.source == HUMAN and a.author == LABELER]) == len(sure)
    assert {a.id for a in stored if a.source != HUMAN} == set(everything) - sure
    window.close()


def test_low_confidence_heat_over_the_selected_and_all_prelabels(
    qtbot, open_window, copy: World, screenshot_dir: Path
) -> None:
    asset_id = copy.held[0]
    window = open_item(qtbot, open_window, copy.db, LABELER, asset_id)
    canvas, panel = window.canvas, window.prelabels
    focus(qtbot, canvas)
    qtbot.keyClick(canvas, Qt.Key.Key_J)
    qtbot.keyClick(canvas, Qt.Key.Key_H)  # heat for the selected pre-label
    qtbot.waitUntil(lambda: canvas.overlays.image is not None, timeout=20_000)
    assert panel.heat.check.isChecked() and not panel.heat.legend.isHidden()
    assert canvas.overlays.image is not None
    unsure = _alpha(canvas.overlays.image[1]) > 0
    assert unsure.shape == (512, 512)
    # only around the selected pre-label, and there only where the model was unsure
    session, aid = window.editing.session, window.editing.tools.selected_id
    assert session is not None and aid is not None
    x0, y0, x1, y1 = bounds_of(session.doc.annotation(aid))
    near = np.zeros_like(unsure)
    near[
        max(0, int(y0) - HEAT_MARGIN) : int(y1) + 1 + HEAT_MARGIN,
        max(0, int(x0) - HEAT_MARGIN) : int(x1) + 1 + HEAT_MARGIN,
    ] = True
    assert unsure.any() and not (unsure & ~near).any() and unsure[near].mean() < 0.9
    one = int(unsure.sum())
    qtbot.keyClick(canvas, Qt.Key.Key_H, Qt.KeyboardModifier.ShiftModifier)  # all pre-labels of the frame
    qtbot.waitUntil(
        lambda: canvas.overlays.image is not None and int((_alpha(canvas.overlays.image[1]) > 0).sum()) > one,
        timeout=30_000,
    )
    qtbot.keyClick(canvas, Qt.Key.Key_F7)  # the pre-labels panel, in front of the item's details
    assert not panel.visibleRegion().isEmpty()
    canvas.view.fit()
    canvas.backend.repaint_now()
    window.grab().save(str(screenshot_dir / "prelabels.png"))
    qtbot.keyClick(canvas, Qt.Key.Key_H)  # off
    assert canvas.overlays.image is None
    window.close()
