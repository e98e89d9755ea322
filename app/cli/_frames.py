"""The export verb's options for the image files COCO and VOC write beside the labels."""

from __future__ import annotations

import argparse
from typing import Any

IMAGE_MODES = ("link", "copy")  # app.exchange.frames.IMAGE_MODES


def add_frame_options(export: argparse.ArgumentParser) -> None:
    export.add_argument(
        "--images",
        choices=IMAGE_MODES,
        default="link",
        help="coco, voc: how 2-D image files go into the export beside the labels: 'link' (default) "
        "hard links, a copy where the export is on another drive (editing an exported image in place "
        "then changes the original too); 'copy' always copies. Never symlinks out of the export. "
        "Frames of videos and series are written as frames/<asset id>/<frame>.png",
    )
    export.add_argument(
        "--frames-window",
        metavar="WINDOW",
        help="coco, voc: write frames of series through a window as 8-bit grey: 'source' (the "
        "series' own window), a preset (lung, mediastinum, bone, brain, abdomen) or CENTRE,WIDTH "
        "such as 40,400. Default: values kept, 16-bit where the source is (frames.json says how)",
    )


def frame_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``Project.export`` these options set."""
    return {"images": args.images, "frames_window": args.frames_window}
