"""Text from files and people is shown as plain text, never as rich text: a class named like HTML,
DICOM tags holding HTML (a real CT slice rewritten with pydicom), a file name with a tag in it, a
comment and a rejection reason with markup. The main windows of a reviewer and a labeler are
opened with every panel; then every QLabel, every item view cell and every tooltip that carries
one of these strings is rendered the way Qt would render it (rich text when the label's format or
Qt's auto-detection says so), and must show the string literally.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt
from PySide6.QtGui import Qt as QtGui
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QAbstractItemView, QDockWidget, QLabel, QTreeView, QWidget
from support.labeling import label_batch

from app import api, sample_data
from app.editor.main_window import MainWindow
from app.sources.synthetic import build_ct_series
from app.workflow import queue

CLASS = "<b>x</b><img src=cls>"
TAG = "<h1>boom</h1>"
FILE = "scan<i>f.png"
COMMENT = "<u>note</u><img src=cmt> look"
REASON = "<h2>redo</h2><img src=why>"
#: a word of each string that survives escaping -> the whole string that must be shown
TOKENS = {"src=cls": CLASS, "boom": TAG, "i>f": "<i>f", "src=cmt": COMMENT, "src=why": REASON}


def _rendered(text: str, fmt: Qt.TextFormat) -> str:
    """What a person sees for ``text`` shown with ``fmt`` (AutoText: Qt guesses, as QLabel and
    QToolTip do)."""
    rich = fmt == Qt.TextFormat.RichText or (fmt == Qt.TextFormat.AutoText and QtGui.mightBeRichText(text))
    if not rich:
        return text
    doc = QTextDocument()
    doc.setHtml(text)
    return doc.toPlainText()


@dataclass
class Shown:
    where: str
    raw: str
    seen: str


def _cells(view: QAbstractItemView) -> Iterator[tuple[str, str | None, str | None]]:
    model = view.model()
    if model is None:
        return
    stack = [QModelIndex()]
    while stack:
        parent = stack.pop()
        for row in range(min(model.rowCount(parent), 500)):
            tree = isinstance(view, QTreeView)  # list and table models keep hasChildren private
            columns = 1 if isinstance(model, QAbstractListModel) else model.columnCount(parent)
            for col in range(columns):
                index = model.index(row, col, parent)
                display = model.data(index, Qt.ItemDataRole.DisplayRole)
                tip = model.data(index, Qt.ItemDataRole.ToolTipRole)
                yield f"{type(view).__name__}[{row},{col}]", display, tip
                if tree and col == 0 and model.hasChildren(index):
                    stack.append(index)


def collect(root: QWidget) -> list[Shown]:
    """Every text on ``root`` and its children: labels, cells (plain, as item delegates paint them)
    and tooltips (auto-detected, as QToolTip shows them)."""
    out: list[Shown] = []
    widgets = [root, *root.findChildren(QWidget)]
    for widget in widgets:
        name = f"{type(widget).__name__}({widget.objectName()})"
        if isinstance(widget, QLabel):
            out.append(Shown(name, widget.text(), _rendered(widget.text(), widget.textFormat())))
        if widget.toolTip():
            out.append(
                Shown(
                    f"{name}.toolTip", widget.toolTip(), _rendered(widget.toolTip(), Qt.TextFormat.AutoText)
                )
            )
        if isinstance(widget, QAbstractItemView):
            for where, display, tip in _cells(widget):
                if isinstance(display, str):
                    out.append(Shown(where, display, display))
                if isinstance(tip, str):
                    out.append(Shown(f"{where}.toolTip", tip, _rendered(tip, Qt.TextFormat.AutoText)))
    return out


def problems(shown: list[Shown]) -> tuple[list[str], set[str]]:
    bad, found = [], set()
    for item in shown:
        for token, literal in TOKENS.items():
            if token in item.raw:
                found.add(token)
                if literal not in item.seen:
                    bad.append(f"{item.where}: {item.raw!r} is shown as {item.seen!r}")
    return bad, found


@pytest.fixture
def hostile_db(tmp_path: Path) -> Path:
    db = tmp_path / "hostile.db"
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(sample_data.skimage_images() / "coins.png", data / FILE)
    files = build_ct_series(data / "series", 3)
    for file in files:
        ds = pydicom.dcmread(file)
        ds.PatientName = TAG
        ds.StudyDescription = TAG
        ds.SeriesDescription = TAG
        ds.BodyPartExamined = "CHEST"
        ds.save_as(file)
    ontology = {"classes": [{"name": CLASS, "color": "#e06c75", "kinds": ["box", "polygon", "mask"],
                             "description": f"described as {CLASS}"}]}  # fmt: skip
    ada = api.create_project(db, "hostile", ontology=ontology, user="ada")
    image, series = ada.import_data([data / FILE, data / "series"])
    queue.set_required(ada.db, ada.id, [image], 2)
    for name in ("lee", "otto"):
        ada.set_member(name, "labeler")
        person = api.open_project(db, "hostile", user=name)
        label_batch(
            person, lambda _lease: [{"kind": "box", "label": CLASS, "box": [10, 10, 60, 60]}], batch=10
        )
        person.comment(image, COMMENT, x=30.0, y=30.0)
        person.close()
    ada.reject(series, "lee", REASON)  # lee gets the series back with the reason in a banner
    ada.close()
    return db


def _window(open_window, db: Path, user: str) -> MainWindow:  # type: ignore[no-untyped-def]
    window = open_window(api.open_project(db, "hostile", user=user, create=False), size=(1500, 950))
    for dock in window.findChildren(QDockWidget):
        dock.show()
    return window


def test_text_from_files_and_people_is_shown_literally(
    qtbot, open_window, hostile_db: Path, screenshot_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    ada = _window(open_window, hostile_db, "ada")
    if ada.review is not None:
        qtbot.waitUntil(lambda: ada.review is not None and ada.review.item is not None, timeout=20_000)
    ada.activity.refresh()
    qtbot.waitUntil(lambda: ada.activity.items.rowCount() > 0, timeout=20_000)
    comments = ada.comments
    qtbot.waitUntil(lambda: bool(comments.logic.threads), timeout=20_000)
    comments.select_thread(comments.logic.threads[0].id)  # the thread view writes the posts as text
    assert COMMENT in comments.view.toPlainText()
    shown = collect(ada)

    lee = _window(open_window, hostile_db, "lee")
    lee.queue.start()
    qtbot.waitUntil(lambda: "src=why" in lee.queue.rejection.text(), timeout=20_000)
    shown += collect(lee)

    bad, found = problems(shown)
    series = next(r.asset_id for r in ada.activity.items.rows if getattr(r, "kind", "") == "dicom-series")
    ada.open_asset_id(series)  # the details panel lists the DICOM tags
    qtbot.waitUntil(lambda: ada.current is not None and ada.current.asset.id == series, timeout=20_000)
    qtbot.waitUntil(lambda: "boom" in ada.info.toPlainText(), timeout=20_000)
    assert TAG in ada.info.toPlainText()
    ada.grab().save(str(screenshot_dir / "plaintext.png"))
    lee.grab().save(str(screenshot_dir / "plaintext-labeler.png"))
    assert set(TOKENS) <= found, f"not shown anywhere, so not checked: {set(TOKENS) - found}"
    assert not bad, "\n".join(bad)
    ada.close()
    lee.close()
