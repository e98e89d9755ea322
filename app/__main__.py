"""``python -m app`` runs the ``sitelabel`` command."""

from app.cli import main

raise SystemExit(main())
