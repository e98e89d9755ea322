"""Start the Qt application on a project."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QMessageBox

from app.editor.main_window import MainWindow
from app.editor.theme import apply_dark_theme


def create_application() -> QApplication:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Sitelabel")
    app.setOrganizationName("Sitelabel")
    apply_dark_theme(app)
    return app


def run_editor(db: str, *, project: str | None = None, user: str | None = None) -> int:
    from app import api
    from app.core.errors import SitelabelError

    qt_app = create_application()
    try:
        opened = api.open_project(db, project, user=user, create=False)
    except SitelabelError as exc:
        QMessageBox.critical(None, "Sitelabel", f"Cannot open the project:\n\n{exc}")
        raise
    window = MainWindow(opened)
    for warning in opened.db.warnings:
        window.statusBar().showMessage(warning)
    window.show()
    code = qt_app.exec()
    opened.close()
    return int(code)
