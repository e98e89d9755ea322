"""Render installers/sitelabel.svg to the PNG (desktop entry, Linux) and ICO (Windows) the installers use.

Used by build_bundle.py and sitelabel.spec; Qt renders the SVG (offscreen), Pillow writes the ICO.
"""

from __future__ import annotations

import os
from pathlib import Path

SVG = Path(__file__).resolve().with_name("sitelabel.svg")


def render_icons(out_dir: Path, size: int = 256) -> dict[str, Path]:
    """Write ``sitelabel.svg``, ``sitelabel.png`` and ``sitelabel.ico`` into ``out_dir``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    out_dir.mkdir(parents=True, exist_ok=True)
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(SVG)).render(painter)
    painter.end()
    png = out_dir / "sitelabel.png"
    if not image.save(str(png)):
        raise RuntimeError(f"could not write {png}")
    ico = out_dir / "sitelabel.ico"
    with Image.open(png) as picture:
        picture.save(ico, sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    svg = out_dir / "sitelabel.svg"
    svg.write_bytes(SVG.read_bytes())
    del _app
    return {"png": png, "ico": ico, "svg": svg}


if __name__ == "__main__":
    import sys

    for kind, path in render_icons(Path(sys.argv[1] if len(sys.argv) > 1 else "build/icons")).items():
        print(kind, path)
