"""Entry point of the frozen app (PyInstaller): the ``sitelabel`` command.

Started without arguments (a double-click, the menu entry) it opens the labeling window.
"""

from __future__ import annotations

import multiprocessing
import sys


def main() -> int:
    multiprocessing.freeze_support()  # worker processes of a frozen app start through this executable
    from app.cli import main as cli_main

    return cli_main(sys.argv[1:] or ["run"])


if __name__ == "__main__":
    raise SystemExit(main())
