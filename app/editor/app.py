"""Start the Qt application on a project."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QMessageBox

from app.editor.main_window import MainWindow
from app.editor.plain import plain_tip
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


def run_editor(
    db: str | None, *, project: str | None = None, user: str | None = None, smoke_test: str | None = None
) -> int:
    """Open the window; ``smoke_test`` (a PNG path or "") opens every asset and exits instead.

    With no database, or one without projects, the set-up wizard comes first.
    """
    from app import api
    from app.core.errors import SitelabelError

    qt_app = create_application()
    if project is None and smoke_test is None and _needs_setup(db):
        return run_setup(db, user=user)
    if db is None:
        raise SitelabelError("no database given: pass --db PATH_OR_URL or set `database` in the site config")
    try:
        opened = api.open_project(db, project, user=user, create=False)
    except SitelabelError as exc:
        QMessageBox.critical(None, "Sitelabel", plain_tip(f"Cannot open the project:\n\n{exc}"))
        raise
    window = MainWindow(opened)
    for warning in opened.db.warnings:
        window.statusBar().showMessage(warning)
    window.show()
    code = qt_app.exec() if smoke_test is None else run_smoke_test(window, smoke_test)
    opened.close()
    return int(code)


def run_setup(db: str | None, *, user: str | None = None) -> int:
    """`sitelabel setup`: the three-step wizard, then the window on the new project."""
    from app.editor.setup_wizard import SetupWizard

    qt_app = create_application()
    wizard = SetupWizard(db, user=user)
    if wizard.exec() != SetupWizard.DialogCode.Accepted or wizard.project is None:
        return 0  # closed without creating anything
    window = MainWindow(wizard.project)
    window.statusBar().showMessage(wizard.result_text)
    window.show()
    code = qt_app.exec()
    wizard.project.close()
    return int(code)


def _needs_setup(db: str | None) -> bool:
    """No database yet, or one without projects: there is nothing to open."""
    from app import api
    from app.core.errors import SitelabelError

    if db is None:
        return True
    try:
        found = api.check_database(db)
    except SitelabelError:
        return False  # opening it shows the problem
    return not found.exists or (not found.needs_upgrade and not found.projects)


def run_smoke_test(window: MainWindow, screenshot: str = "", timeout_s: float = 60.0) -> int:
    """Installation check without a person: open each asset in the window, report, exit 0 when all
    opened. Exercises the Qt platform plugin, the database, the decoders and the canvas."""
    import time

    from PySide6.QtCore import QEventLoop

    failures: list[str] = []
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    assets = window.project.assets()
    for asset in assets:
        messages.clear()
        window.open_asset(asset)
        deadline = time.monotonic() + timeout_s
        while True:
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if window.current is not None and window.current.asset.id == asset.id:
                break
            failed = [m for m in messages if m.startswith("Could not open")]
            if failed or time.monotonic() > deadline:
                failures.append(f"{asset.rel_path}: {failed[0] if failed else 'timed out'}")
                break
    QApplication.processEvents()
    if screenshot:
        window.grab().save(screenshot)
    if sys.stdout is not None:  # a windowed app on Windows has no console
        platform = QApplication.platformName()
        print(f"smoke test: {window.windowTitle()!r} on {window.project.db.url} (Qt platform {platform})")
        print(f"smoke test: opened {len(assets) - len(failures)}/{len(assets)} assets")
        for failure in failures:
            print(f"smoke test: FAILED {failure}")
    window.close()
    return 1 if failures else 0
