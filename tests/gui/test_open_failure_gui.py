"""An asset that cannot be opened never leaves the previous image on screen (real window, offscreen).

Real files: scikit-image PNGs registered in place, one of them truncated on disk after it was
registered (a corrupt file), or its data folder renamed away (a vanished share; the real unmount is
tests/gui/test_unmount_gui.py). The window must show an empty dark frame of the new asset's size
with the new asset's own labels, say what failed in the status bar (whole text in the details pane
and the tooltip), refuse drawing until the image loads, and try again on the next navigation.
Screenshot: build/screenshots/open_failure.png.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QThreadPool
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication, QDockWidget
from support.windows import focus

from app import api, sample_data
from app.core.records import Asset
from app.editor.main_window import MainWindow
from app.editor.plain import plain_tip
from app.editor.qimages import to_array
from app.editor.queue_controller import ItemState
from app.editor.status_messages import elide_path

ONTOLOGY = {
    "classes": [
        {"name": "liver", "color": "#c0504d", "kinds": ["mask", "polygon"]},
        {"name": "lesion", "color": "#4f81bd", "kinds": ["mask", "polygon"]},
    ]
}
WAIT = 20_000
SAFE = "Your labels are safe."
# a realistic long mount point: a site share several folders deep (~80 characters with tmp_path)
LONG_FOLDER = "radiology-archive-2026/ct-chest-low-dose-screening/reader-study-round-two"


def _by_name(project: api.Project) -> dict[str, Asset]:
    return {a.rel_path.rsplit("/", 1)[-1]: a for a in project.assets()}


def _select(window: MainWindow, asset: Asset) -> None:
    model = window.assets.model
    window.assets.select_row(next(r for r in range(model.rowCount()) if model.asset_at(r).id == asset.id))


def _list_text(window: MainWindow, asset: Asset) -> str:
    model = window.assets.model
    row = next(r for r in range(model.rowCount()) if model.asset_at(r).id == asset.id)
    return str(model.data(model.index(row, 0), Qt.ItemDataRole.DisplayRole))


def _stroke(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """A brush stroke across the middle of the canvas with the liver class."""
    canvas = window.canvas
    window.classes.choose("liver")
    focus(qtbot, canvas)
    qtbot.keyClick(canvas, Qt.Key.Key_B)
    w, h = canvas.width(), canvas.height()
    a, b = QPoint(w // 2 - 80, h // 2), QPoint(w // 2 + 80, h // 2 + 40)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(canvas, b)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=b)


def _masks(project: api.Project, asset_id: int) -> list[int]:
    """Pixel counts of the masks stored for an asset."""
    return sorted(
        int(np.asarray(x["mask"]).sum()) for x in project.annotations(asset_id) if x["kind"] == "mask"
    )


def _truncate(path: Path) -> bytes:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return data


def _overwrite(path: Path) -> bytes:
    """Another program wrote something else under the name: it fails to open, not to decode."""
    data = path.read_bytes()
    path.write_bytes(b"not an image: the export job was interrupted\n" * 20)
    return data


@pytest.mark.parametrize(
    ("bad_name", "damage", "reason"),
    [
        ("coins.png", _truncate, "cannot decode PNG pixels: image file is truncated"),  # another size
        ("astronaut.png", _truncate, "cannot decode PNG pixels: image file is truncated"),  # the same size
        ("coins.png", _overwrite, "not a readable PNG file: not a PNG file"),
    ],
    ids=["truncated", "truncated-same-size", "not-an-image"],
)
def test_a_corrupt_file_never_shows_the_previous_image_and_refuses_drawing(
    qtbot,
    open_window,
    tmp_path: Path,
    screenshot_dir: Path,
    bad_name: str,
    damage: Callable[[Path], bytes],
    reason: str,
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("camera.png", bad_name):
        shutil.copy(sample_data.skimage_images() / name, folder / name)
    project = api.create_project(str(tmp_path / "labels.db"), "failures", ontology=ONTOLOGY, user="kim")
    for name in ("camera.png", bad_name):  # the good one first: the window opens the list's first
        project.import_data([folder / name])
    assets = _by_name(project)
    good, bad = assets["camera.png"], assets[bad_name]
    # each has its own stored labels: the bad one's must show on its empty frame, never the good one's
    bad_mask = np.zeros((bad.height, bad.width), bool)
    bad_mask[40:90, 60:200] = True
    project.upload_annotations(bad.id, [{"kind": "mask", "label": "lesion", "frame": 0, "mask": bad_mask}])
    good_mask = np.zeros((good.height, good.width), bool)
    good_mask[300:420, 250:460] = True
    project.upload_annotations(good.id, [{"kind": "mask", "label": "liver", "frame": 0, "mask": good_mask}])
    original = damage(folder / bad_name)  # corrupted on disk after it was registered

    window = open_window(project, size=(1400, 900))
    _select(window, good)
    qtbot.waitUntil(lambda: window.current is not None and window.current.asset.id == good.id, timeout=WAIT)
    good_grab = to_array(window.canvas.grab().toImage())
    assert good_grab.std() > 20  # a real picture on screen

    _select(window, bad)
    qtbot.waitUntil(lambda: "Could not open" in window.statusBar().currentMessage(), timeout=WAIT)
    status = window.statusBar().currentMessage()
    assert status == f"Could not open {bad.rel_path}: {reason}"
    assert "\n" not in status
    assert window.current is None  # nothing of the good asset is "current" any more
    # an empty dark frame of the bad asset's size (from its record) under its own labels
    layers = window.canvas.layers
    assert layers.frame is not None and layers.frame.shape[:2] == (bad.height, bad.width)
    assert not layers.frame.any()
    labels = window.editing.frame_labels()
    assert labels is not None and np.array_equal(labels > 0, bad_mask)
    assert layers.labels is not None and np.array_equal(layers.labels > 0, bad_mask)
    # what is on screen is not the good image: where the good image was bright, the canvas is dark
    bad_grab = to_array(window.canvas.grab().toImage())
    assert bad_grab.shape == good_grab.shape
    bright = good_grab.mean(axis=2) > 80
    assert bright.sum() > 10_000
    same = np.all(bad_grab == good_grab, axis=2) & bright
    assert same.sum() < 0.01 * bright.sum()
    assert np.median(bad_grab.mean(axis=2)[bright]) < 40
    # the whole story in the details pane; the list does not call a corrupt file unavailable
    details = window.info.toPlainText()
    assert status in details and "CorruptFile" in details and str(folder / bad_name) in details
    assert window.canvas.tool_slot.locked.endswith("Press Down to try again.")
    assert not _list_text(window, bad).endswith("(unavailable)")

    # drawing on the empty frame is refused, with a reason, and nothing is stored for either asset
    _stroke(qtbot, window)
    labels = window.editing.frame_labels()
    assert labels is not None and np.array_equal(labels > 0, bad_mask)
    session = window.editing.session
    assert session is not None and session.asset.id == bad.id and session.pending_count == 0
    refused = window.statusBar().currentMessage()
    assert refused == f"Drawing is off: {bad_name} could not be opened ({reason}). Press Down to try again."
    window.statusBar().showMessage(status)  # the failure itself for the screenshot
    assets_dock = window.findChild(QDockWidget, "dock-assets")
    assert assets_dock is not None
    assets_dock.raise_()
    if damage is _truncate:
        shot = "open_failure.png" if bad_name == "coins.png" else "open_failure_same_size.png"
        window.grab().save(str(screenshot_dir / shot))

    # the file is fixed: the next navigation opens it, and drawing goes to the right asset
    (folder / bad_name).write_bytes(original)
    focus(qtbot, window.canvas)  # Down is a window shortcut: the window must be active
    qtbot.keyClick(window.canvas, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: window.current is not None and window.current.asset.id == bad.id, timeout=WAIT)
    assert window.canvas.tool_slot.locked == "" and window.canvas.layers.frame is not None
    assert window.canvas.layers.frame.std() > 10
    assert "Could not open" not in window.info.toPlainText()
    _stroke(qtbot, window)
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: (s := window.editing.session) is not None and s.pending_count == 0, timeout=WAIT)
    stored = _masks(project, bad.id)
    assert len(stored) == 2 and int(bad_mask.sum()) in stored  # the upload and the new stroke
    assert _masks(project, good.id) == [int(good_mask.sum())]  # the good asset is untouched


def test_a_long_data_folder_is_elided_in_the_middle_of_the_status_message(
    qtbot, open_window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, screenshot_dir: Path
) -> None:
    share = tmp_path / LONG_FOLDER
    share.mkdir(parents=True)
    for name in ("camera.png", "coins.png"):
        shutil.copy(sample_data.skimage_images() / name, share / name)
    config = tmp_path / "site.toml"
    config.write_text(f'[data_roots]\nreader = "{share}"\n')
    monkeypatch.setenv("SITELABEL_CONFIG", str(config))
    assert len(str(share)) >= 70
    project = api.create_project(str(tmp_path / "labels.db"), "long", ontology=ONTOLOGY, user="kim")
    for name in ("camera.png", "coins.png"):  # camera.png first: the window opens the list's first
        project.import_data([share / name])
    coins = _by_name(project)["coins.png"]
    window = open_window(project, size=(1400, 900))  # camera.png is open, its source kept
    share.rename(share.with_name("gone"))  # the share vanished

    _select(window, coins)
    bar, room = window.statusBar(), window.status_messages.message_width  # the room for a message
    qtbot.waitUntil(lambda: bar.currentMessage().startswith("Cannot open coins.png"), timeout=WAIT)
    full = f"Cannot open coins.png: the data folder {share} is not reachable (unmounted or offline?). {SAFE}"
    shown = bar.currentMessage()
    assert shown != full and shown.endswith(f"is not reachable (unmounted or offline?). {SAFE}")
    assert "\u2026" in shown  # the path elided in the middle: both of its ends stay
    assert shown.startswith("Cannot open coins.png: the data folder /")
    assert share.name[-6:] in shown
    assert bar.fontMetrics().horizontalAdvance(shown) <= room()
    assert bar.toolTip() == plain_tip(full) and full in window.info.toPlainText()
    assert _list_text(window, coins).endswith("(unavailable)")

    # the room shrinks (the pointer's position shows beside the message): the path is elided more
    before = room()
    window.position_label.setText("x 1023  y 1023  value (255, 255, 255, 255)")
    qtbot.waitUntil(lambda: room() < before, timeout=WAIT)
    qtbot.waitUntil(
        lambda: bar.fontMetrics().horizontalAdvance(bar.currentMessage()) <= room(),
        timeout=WAIT,
    )
    assert bar.currentMessage().endswith(SAFE) and bar.toolTip() == plain_tip(full)
    window.grab().save(str(screenshot_dir / "open_failure_long_path.png"))
    # another message replaces it: the tooltip goes with it
    bar.showMessage("something else")
    assert bar.toolTip() == ""


def test_short_messages_are_not_elided(themed_qapp) -> None:
    metrics = QFontMetrics(QApplication.font())
    text = f"Cannot open a.png: the data folder /mnt/data is not reachable (unmounted or offline?). {SAFE}"
    assert elide_path(text, "/mnt/data", metrics, 2000) == text
    assert elide_path(text, "", metrics, 100) == text  # no path to elide: Qt clips as before
    narrow = elide_path(text, "/mnt/data", metrics, metrics.horizontalAdvance(text) - 10)
    assert narrow.endswith(SAFE) and "/mnt/data" not in narrow


def test_queue_items_in_an_unreachable_folder_are_marked_and_told_when_decoded_ahead(
    qtbot, open_window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    share, local = tmp_path / "share", tmp_path / "local"
    share.mkdir()
    local.mkdir()
    shutil.copy(sample_data.skimage_images() / "camera.png", local / "camera.png")
    for name in ("coins.png", "moon.png"):
        shutil.copy(sample_data.skimage_images() / name, share / name)
    config = tmp_path / "site.toml"
    config.write_text(f'[data_roots]\nshare = "{share}"\nscans = "{local}"\n')
    monkeypatch.setenv("SITELABEL_CONFIG", str(config))
    project = api.create_project(str(tmp_path / "labels.db"), "queue", ontology=ONTOLOGY, user="ann")
    project.import_data([local])  # queued first: the queue hands items out in the order queued
    project.import_data([share])
    assets = _by_name(project)
    camera, coins = assets["camera.png"], assets["coins.png"]
    window = open_window(project, size=(1400, 900))
    share.rename(tmp_path / "share-away")  # the share vanished while the user labels

    window.actions_by_id["sitelabel.queue.start"].trigger()
    c = window.queue.controller
    qtbot.waitUntil(
        lambda: c.current == 0 and window.current is not None and window.current.asset.id == camera.id,
        timeout=WAIT,
    )
    assert c.items[1].asset.id == coins.id
    # decoding the next item ahead finds its folder gone: told at once, the list marked, the screen kept
    told = f"Cannot open coins.png: the data folder {share} is not reachable (unmounted or offline?). {SAFE}"
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == told, timeout=WAIT)
    qtbot.waitUntil(lambda: c.idle, timeout=WAIT)
    assert c.prepared is None
    assert _list_text(window, coins).endswith("(unavailable)")
    assert _list_text(window, assets["moon.png"]).endswith("(unavailable)")
    assert not _list_text(window, camera).endswith("(unavailable)")
    assert window.current is not None and window.current.asset.id == camera.id
    assert window.canvas.tool_slot.locked == ""  # the item on screen still takes labels

    # Submit moves on to it: the same message, an empty frame of its size, drawing off
    window.actions_by_id["sitelabel.queue.submit"].trigger()
    qtbot.waitUntil(
        lambda: c.current == 1 and window.canvas.tool_slot.locked.startswith("Drawing is off"), timeout=WAIT
    )
    assert window.current is None and c.items[0].state in (ItemState.SUBMITTING, ItemState.SUBMITTED)
    assert window.statusBar().currentMessage() == told
    layers = window.canvas.layers
    assert layers.frame is not None and layers.frame.shape == (coins.height, coins.width)
    assert not layers.frame.any()
    session = window.editing.session
    assert session is not None and session.asset.id == coins.id
    assert told in window.info.toPlainText()

    # the share is back: the next navigation opens the item and the marks go
    (tmp_path / "share-away").rename(share)
    focus(qtbot, window.canvas)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: window.current is not None and window.current.asset.id == coins.id, timeout=WAIT)
    assert window.canvas.tool_slot.locked == ""
    assert window.statusBar().currentMessage() == f"The data folder {share} is reachable again."
    assert not _list_text(window, coins).endswith("(unavailable)")
    qtbot.waitUntil(lambda: c.idle, timeout=WAIT)


def test_a_frame_step_while_another_asset_opens_does_not_bring_the_last_one_back(
    qtbot, open_window, tmp_path: Path
) -> None:
    """Down pressed while a (corrupt) asset is opening must not show the multi-page asset before it
    under the new asset's labels."""
    import tifffile
    from PIL import Image

    folder = tmp_path / "data"
    folder.mkdir()
    pages = [
        np.asarray(Image.open(sample_data.skimage_images() / n).convert("L"))[:256, :256]
        for n in ("camera.png", "moon.png", "astronaut.png")
    ]
    with tifffile.TiffWriter(folder / "pages.tif") as tif:  # one page each: a 3-frame asset
        for page in pages:
            tif.write(page, metadata=None)
    shutil.copy(sample_data.skimage_images() / "coins.png", folder / "coins.png")
    project = api.create_project(str(tmp_path / "labels.db"), "steps", ontology=ONTOLOGY, user="kim")
    for name in ("pages.tif", "coins.png"):
        project.import_data([folder / name])
    assets = _by_name(project)
    pages_asset, bad = assets["pages.tif"], assets["coins.png"]
    assert pages_asset.frame_count == 3
    _truncate(folder / "coins.png")
    window = open_window(project, size=(1400, 900))
    assert window.current is not None and window.current.asset.id == pages_asset.id

    _select(window, bad)
    window.step_frame(1)  # before the open's answer can arrive (it comes through the event loop)
    qtbot.waitUntil(lambda: "Could not open" in window.statusBar().currentMessage(), timeout=WAIT)
    assert QThreadPool.globalInstance().waitForDone(WAIT)
    QApplication.processEvents()
    assert window.current is None and window.canvas.tool_slot.locked.startswith("Drawing is off")
    layers = window.canvas.layers
    assert (
        layers.frame is not None and layers.frame.shape == (bad.height, bad.width) and not layers.frame.any()
    )
    session = window.editing.session
    assert session is not None and session.asset.id == bad.id
