"""Pascal VOC XML export: one ``Annotations/*.xml`` per image, boxes only, beside its image file.

VOC box coordinates are 1-based and inclusive of the last pixel. Our box ``[x0, x1) x [y0, y1)`` in
continuous coordinates is written as ``xmin = x0 + 1, ymin = y0 + 1, xmax = x1, ymax = y1`` (the
conversion detectron2 and torchvision undo with ``xmin - 1``); integral values are written as
integers. Polygons are written as their vertex extent, masks as their pixel extent.

Every labelled frame gets an image file in the export (:mod:`app.exchange.frames`): a 2-D image file
is hard-linked or copied to ``images/<root>/<path>`` and described by ``Annotations/<name>.xml``
(the stable name, :mod:`app.exchange.names`); a frame of a video or series is written as
``frames/<asset id>/<frame:06d>.png`` and described by ``Annotations/frames/<asset id>/<frame:06d>.xml``.
``folder``, ``filename`` and ``path`` name the image relative to the export.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from xml.etree import ElementTree as ET

from app.core.annotations import Kind
from app.exchange.frames import ENCODINGS_FILE, FRAMES_DIR, FrameWriter
from app.exchange.selection import ExportJob
from app.exchange.yolo import shape_extent

_SHAPES = (Kind.POLYGON, Kind.BOX, Kind.MASK)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
    child = ET.SubElement(parent, tag)
    child.text = text
    return child


def export_voc(job: ExportJob) -> None:
    with FrameWriter(job.tx, job.roots, job.max_pixels, job.frame_options) as frames:
        for item, chosen, image in job.pictured(frames, _SHAPES, "have no VOC form"):
            picture = PurePosixPath(image.name)
            root = ET.Element("annotation")
            _sub(root, "folder", str(picture.parent))
            _sub(root, "filename", picture.name)
            _sub(root, "path", image.name)
            source = ET.SubElement(root, "source")
            _sub(source, "database", "Sitelabel")
            size = ET.SubElement(root, "size")
            _sub(size, "width", str(image.width))
            _sub(size, "height", str(image.height))
            _sub(size, "depth", str(image.depth))
            _sub(root, "segmented", "0")
            for ann, _category in chosen:
                x0, y0, x1, y1 = shape_extent(ann)
                obj = ET.SubElement(root, "object")
                _sub(obj, "name", ann.label)
                _sub(obj, "pose", "Unspecified")
                _sub(obj, "truncated", "0")
                _sub(obj, "difficult", "0")
                box = ET.SubElement(obj, "bndbox")
                for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
                    _sub(box, tag, _num(value))
            ET.indent(root)
            data = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
            frame_file = image.name.startswith(FRAMES_DIR + "/")
            stem = picture.with_suffix("") if frame_file else job.name_of(item.asset)
            job.tx.write_bytes(f"Annotations/{stem}.xml", data)
            job.count(item, len(chosen))
    if frames.encodings:
        job.tx.write_json(ENCODINGS_FILE, {"assets": list(frames.encodings.values())}, indent=1)
