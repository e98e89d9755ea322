"""Comments and issues on the canvas, driven through the real main window on a real SQLite project
with real images: pins placed with the Comment tool, replies, resolve/reopen by role, plain-text
display, pin clicks, jump-to across frames."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QKeySequence
from pytestqt.qtbot import QtBot
from support.windows import focus, show_asset

from app import api, sample_data
from app.core.records import ThreadStatus
from app.editor.canvas.pin_painter import OPEN_FILL, spots
from app.editor.canvas.pins import CommentTool
from app.editor.main_window import MainWindow
from app.editor.qimages import to_array

HTML = "<b>html</b><img src=x>"


@pytest.fixture
def team_db(tmp_path: Path) -> Path:
    """ada runs the project; lee and kim label, rey reviews. A real MR series (10 frames), a CT slice
    and photos."""
    db = tmp_path / "labels.db"
    ada = api.create_project(db, "review", user="ada")
    images = sample_data.skimage_images()
    ada.import_data(
        [
            sample_data.dicom_file("emri_small.dcm"),
            sample_data.dicom_file("693_UNCI.dcm"),
            images / "coins.png",
            images / "camera.png",
        ]
    )
    for name, role in (("lee", "labeler"), ("kim", "labeler"), ("rey", "reviewer")):
        ada.set_member(name, role)
    ada.close()
    return db


def _project(db: Path, user: str) -> api.Project:
    return api.open_project(db, "review", user=user, create=False)


def _asset_id(db: Path, suffix: str) -> int:
    project = _project(db, "ada")
    try:
        return next(a.id for a in project.assets() if a.rel_path.endswith(suffix))
    finally:
        project.close()


def _window(qtbot: QtBot, open_window, db: Path, user: str, suffix: str) -> MainWindow:  # type: ignore[no-untyped-def]
    window = open_window(_project(db, user))
    show_asset(qtbot, window, lambda asset: asset.rel_path.endswith(suffix))
    return window


def _listed(window: MainWindow, asset_id: int) -> str:
    model = window.assets.model
    row = next(r for r in range(model.rowCount()) if model.asset_at(r).id == asset_id)
    return str(model.data(model.index(row, 0)))


def _place_pin(qtbot: QtBot, window: MainWindow, pos: QPoint, text: str) -> None:
    qtbot.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=pos)
    composer = window.comments.composer
    assert composer.isVisible()
    qtbot.keyClicks(composer.edit, text)
    qtbot.keyClick(composer.edit, Qt.Key.Key_Return)
    assert not composer.isVisible()


def test_a_pin_placed_with_the_comment_tool_stores_the_image_point_under_the_cursor(
    qtbot: QtBot, open_window, team_db: Path
) -> None:
    coins = _asset_id(team_db, "coins.png")
    window = _window(qtbot, open_window, team_db, "lee", "coins.png")
    canvas = window.canvas
    focus(qtbot, canvas)
    qtbot.keyClick(canvas, Qt.Key.Key_N)  # the Comment tool's key
    assert isinstance(canvas.tool_slot.active, CommentTool)
    assert ("N", "Comment") in window.help.entries
    assert ("Ctrl+Return", "Send the reply (in the reply box)") in window.help.entries
    placed = []
    for zoom, offset in ((1.0, (37, -21)), (4.0, (-45, 33))):
        canvas.view.zoom_by(zoom / canvas.view.zoom)
        assert canvas.view.zoom == pytest.approx(zoom)
        cx, cy = canvas.view.state.centre
        w, h = canvas.view.state.widget_size
        pos = QPoint(round(w / 2 + offset[0]), round(h / 2 + offset[1]))
        # the image point under the pointer, from the view's centre and zoom (no rotation or flip)
        want = (cx + (pos.x() - w / 2) / zoom, cy + (pos.y() - h / 2) / zoom)
        _place_pin(qtbot, window, pos, f"check the rim at zoom {zoom:g}")
        placed.append(want)
    threads = window.project.threads(coins)
    assert [t.comments[0].body for t in threads] == ["check the rim at zoom 1", "check the rim at zoom 4"]
    for thread, (x, y) in zip(threads, placed, strict=True):
        assert thread.frame == 0 and thread.x is not None and thread.y is not None
        assert abs(thread.x - x) <= 0.5 and abs(thread.y - y) <= 0.5
    # the newest thread is selected, its pin drawn on the frame, the asset list counts it
    assert window.comments.selected_id() == threads[-1].id
    assert {p.thread_id for p in canvas.overlays.pins} == {t.id for t in threads}
    assert _listed(window, coins).endswith("(2 open issues)")
    window.close()


def test_reply_resolve_by_author_refusal_for_another_labeler_and_reopen_by_a_reviewer(
    qtbot: QtBot, open_window, team_db: Path
) -> None:
    coins = _asset_id(team_db, "coins.png")
    lee_api = _project(team_db, "lee")
    thread = lee_api.comment(coins, "two coins touch here", x=120.5, y=80.5)

    kim = _window(qtbot, open_window, team_db, "kim", "coins.png")
    kim.comments.select_thread(thread.id)
    assert kim.comments.resolve_button.text() == "Resolve"
    qtbot.mouseClick(kim.comments.resolve_button, Qt.MouseButton.LeftButton)  # no exception escapes
    assert kim.comments.message.isVisible()
    assert "kim is a labeler" in kim.comments.message.text()
    assert lee_api.threads(coins)[0].status is ThreadStatus.OPEN
    kim.close()

    lee = _window(qtbot, open_window, team_db, "lee", "coins.png")
    panel = lee.comments
    panel.select_thread(thread.id)
    qtbot.keyClicks(panel.reply_box, "they do, split along the bright line @rey")
    # Ctrl+Return in the reply box sends the reply, not a window action on the same keys (Submit)
    same_keys = [a for a in lee.actions() if QKeySequence("Ctrl+Return") in a.shortcuts()]
    fired: list[str] = []
    for action in same_keys:
        action.triggered.connect(lambda _c=False, a=action: fired.append(a.text()))
    qtbot.keyClick(panel.reply_box, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert fired == []
    (stored,) = lee_api.threads(coins)
    assert [c.author for c in stored.comments] == ["lee", "lee"]
    assert stored.comments[1].mentions == ("rey",)
    assert panel.reply_box.toPlainText() == ""
    assert "split along the bright line" in panel.view.toPlainText()
    assert _listed(lee, coins).endswith("(1 open issue)")
    qtbot.mouseClick(panel.resolve_button, Qt.MouseButton.LeftButton)  # as the author
    assert lee_api.threads(coins)[0].status is ThreadStatus.RESOLVED
    assert panel.resolve_button.text() == "Reopen"
    assert not panel.message.isVisible()
    assert "open issue" not in _listed(lee, coins)  # the count refreshed
    pin = next(p for p in lee.canvas.overlays.pins if p.thread_id == thread.id)
    assert not pin.open  # drawn dim
    lee.close()

    rey = _window(qtbot, open_window, team_db, "rey", "coins.png")
    rey.comments.select_thread(thread.id)
    rey.actions_by_id["sitelabel.comments.resolve"].trigger()  # Ctrl+Shift+D
    assert lee_api.threads(coins)[0].status is ThreadStatus.OPEN
    assert rey.comments.resolve_button.text() == "Resolve"
    assert _listed(rey, coins).endswith("(1 open issue)")
    rey.close()
    lee_api.close()


def test_markup_in_a_comment_is_shown_literally_and_mentions_are_marked(
    qtbot: QtBot, open_window, team_db: Path
) -> None:
    camera = _asset_id(team_db, "camera.png")
    lee_api = _project(team_db, "lee")
    quiet = lee_api.comment(camera, "nothing to see", x=10.5, y=10.5)
    loud = lee_api.comment(camera, f"{HTML} @rey look", x=200.5, y=150.5)
    lee_api.close()
    window = _window(qtbot, open_window, team_db, "rey", "camera.png")
    panel = window.comments
    panel.select_thread(loud.id)
    text = panel.view.toPlainText()
    assert f"{HTML} @rey look" in text
    html = panel.view.document().toHtml()
    assert "&lt;b&gt;html&lt;/b&gt;&lt;img src=x&gt;" in html and "<img" not in html
    block = panel.view.document().begin()
    formats = []
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            assert not fragment.charFormat().isImageFormat()
            formats.append((fragment.text(), fragment.charFormat().fontWeight()))
            it += 1
        block = block.next()
    assert ("@rey", 700) in formats  # the mention is bold, by format
    item = panel.tree.item_for(loud.id)
    assert item is not None and item.text(1) == f"{HTML} @rey look"  # plain cell text
    assert item.text(0).startswith("@") and item.font(0).bold()  # mentions the acting user
    plain = panel.tree.item_for(quiet.id)
    assert plain is not None and not plain.text(0).startswith("@")
    panel.only_mine.setChecked(True)
    assert [t.id for t in panel.logic.visible()] == [loud.id]
    assert panel.tree.item_for(quiet.id) is None
    assert {p.thread_id for p in window.canvas.overlays.pins} == {loud.id}
    # typing markup into the reply box sends it as text, too
    qtbot.keyClicks(panel.reply_box, "<i>fine</i>")
    panel.send_button.click()
    assert "<i>fine</i>" in panel.view.toPlainText()
    window.close()


def test_clicking_a_pin_selects_its_thread_and_jump_changes_the_frame(
    qtbot: QtBot, open_window, team_db: Path
) -> None:
    series = _asset_id(team_db, "emri_small.dcm")
    lee_api = _project(team_db, "lee")
    here = lee_api.comment(series, "on the first slice", frame=0, x=20.5, y=24.5)
    there = lee_api.comment(series, "further down", frame=6, x=40.25, y=30.75)
    lee_api.close()
    window = _window(qtbot, open_window, team_db, "lee", "emri_small.dcm")
    canvas, panel = window.canvas, window.comments
    assert [p.thread_id for p in canvas.overlays.pins] == [here.id]  # only this frame's pins
    assert panel.selected_id() is None
    focus(qtbot, canvas)
    qtbot.keyClick(canvas, Qt.Key.Key_N)
    (spot,) = spots(canvas.overlays.pins, canvas.view.transform())
    qtbot.mouseClick(
        canvas, Qt.MouseButton.LeftButton, pos=QPoint(round(spot.centre[0]), round(spot.centre[1]))
    )
    assert panel.selected_id() == here.id
    assert not panel.composer.isVisible()  # a click on a pin is no new pin
    assert canvas.overlays.pins[-1].selected
    panel.select_thread(there.id)
    window.actions_by_id["sitelabel.comments.jump"].trigger()  # Ctrl+J
    qtbot.waitUntil(lambda: window.current is not None and window.current.index == 6, timeout=20_000)
    assert "frame 7/10" in window.frame_label.text()
    assert canvas.view.state.centre == pytest.approx((40.25, 30.75))
    assert [p.thread_id for p in canvas.overlays.pins] == [there.id]
    window.close()


def test_pins_are_drawn_bright_in_screen_space_on_the_raster_canvas(
    qtbot: QtBot, open_window, team_db: Path, raster_canvas: None
) -> None:
    _check_pin_pixels(qtbot, open_window, team_db, backend="raster")


@pytest.mark.gl
def test_pins_are_drawn_on_the_gl_canvas(qtbot: QtBot, open_window, team_db: Path) -> None:
    _check_pin_pixels(qtbot, open_window, team_db, backend="gl")


def _check_pin_pixels(qtbot: QtBot, open_window, db: Path, *, backend: str) -> None:  # type: ignore[no-untyped-def]
    camera = _asset_id(db, "camera.png")
    lee_api = _project(db, "lee")
    lee_api.comment(camera, "the tripod leg", x=300.5, y=400.5)
    lee_api.close()
    window = _window(qtbot, open_window, db, "lee", "camera.png")
    canvas = window.canvas
    assert canvas.backend.name == backend, canvas.backend.fallback_reason
    for zoom in (1.0, 3.0):
        canvas.view.zoom_by(zoom / canvas.view.zoom)
        canvas.view.centre_on(300.5, 400.5)
        canvas.backend.repaint_now()
        (spot,) = spots(canvas.overlays.pins, canvas.view.transform())
        pixels = to_array(canvas.grab().toImage())
        ratio = canvas.devicePixelRatioF()
        x, y = round(spot.centre[0] * ratio), round(spot.centre[1] * ratio)
        rgb = pixels[y, x - 6, :3].astype(int)  # inside the bubble, left of the number
        assert abs(rgb - (OPEN_FILL.red(), OPEN_FILL.green(), OPEN_FILL.blue())).max() <= 12, rgb
        anchor = QPointF(*spot.anchor)
        assert canvas.view.to_image(anchor) == pytest.approx((300.5, 400.5))
    window.close()


def test_screenshot_of_pins_on_a_ct_slice_and_the_comments_panel(
    qtbot: QtBot, open_window, team_db: Path, screenshot_dir: Path
) -> None:
    ct = _asset_id(team_db, "693_UNCI.dcm")
    lee_api, rey_api = _project(team_db, "lee"), _project(team_db, "rey")
    first = lee_api.comment(ct, "Is this calcification or contrast? @rey", x=300.5, y=230.5)
    rey_api.reply(first.id, "Calcification: label it as bone, not vessel. @lee")
    lee_api.reply(first.id, "Thanks, relabelled.")
    done = lee_api.comment(ct, "Edge of the table cut off", x=120.5, y=420.5)
    rey_api.resolve(done.id)
    lee_api.comment(ct, "Streak artefact from the spine: skip these pixels?", x=250.5, y=330.5)
    lee_api.close()
    rey_api.close()
    window = _window(qtbot, open_window, team_db, "rey", "693_UNCI.dcm")
    window.resize(1500, 950)
    window.comments.select_thread(first.id)
    window.canvas.backend.repaint_now()
    assert len(window.canvas.overlays.pins) == 3
    shot = window.grab()
    assert shot.save(str(screenshot_dir / "comments.png"))
    pixels = to_array(shot.toImage())
    assert pixels.shape[0] > 500 and pixels[..., :3].std() > 20
    # the composer a new pin opens, as a person sees it while typing
    focus(qtbot, window.canvas)
    qtbot.keyClick(window.canvas, Qt.Key.Key_N)
    qtbot.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=window.canvas.rect().center())
    qtbot.keyClicks(window.comments.composer.edit, "Check the left ventricle @lee")
    assert window.canvas.overlays.pins[-1].number == 0  # the draft pin
    assert window.grab().save(str(screenshot_dir / "comments_composer.png"))
    window.close()
