"""Importing app.storage is cheap: no engine, no Alembic; the shipped revision list is right."""

from __future__ import annotations

import subprocess
import sys

from app.storage import migrate


def test_import_does_not_load_alembic_or_qt() -> None:
    code = (
        "import sys, app.storage; "
        "bad = [m for m in ('alembic', 'PySide6', 'app.sources', 'app.models') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_known_revisions_match_the_migration_scripts() -> None:
    assert migrate.script_revisions() == migrate.KNOWN_REVISIONS
    assert migrate.script_heads() == (migrate.HEAD_REVISION,)
