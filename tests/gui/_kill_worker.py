"""A real Sitelabel window in a child process: paints brush strokes through the canvas with mouse
events and reports each one after it returned (so after its journal write). The test kills it.

usage: python _kill_worker.py DB_PATH JOURNAL_PATH
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app import api
from app.editor.app import create_application
from app.editor.main_window import MainWindow
from app.workflow.journal import Journal


def main() -> None:
    db_path, journal_path = sys.argv[1], sys.argv[2]
    app = create_application()
    project = api.open_project(db_path, create=False)
    window = MainWindow(project, journal=Journal(journal_path))
    window.resize(1000, 800)
    window.show()
    deadline = time.time() + 30
    while window.current is None and time.time() < deadline:
        app.processEvents()
        time.sleep(0.01)
    window.editing.tools.set_tool("brush")
    canvas = window.canvas
    radius = window.editing.tools.tool.radius  # type: ignore[union-attr]
    print(f"ready {radius}", flush=True)
    width, height = canvas.width(), canvas.height()  # strokes stay inside the canvas, whatever the docks
    for i in range(1000):
        a = QPoint(
            int(width * 0.2) + (i * 37) % int(width * 0.5), int(height * 0.2) + (i * 53) % int(height * 0.5)
        )
        b = QPoint(a.x() + width // 10, a.y() + height // 20)
        points = [canvas.view.to_image(a), canvas.view.to_image(b)]
        QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
        QTest.mouseMove(canvas, b)
        QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
        QApplication.processEvents()
        coords = " ".join(f"{x!r} {y!r}" for x, y in points)
        print(f"committed {i} {time.time()!r} {coords}", flush=True)
        time.sleep(0.1)


if __name__ == "__main__":
    main()
