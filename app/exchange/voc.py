"""Pascal VOC XML export: ``Annotations/NAME.xml`` per image, boxes only.

VOC box coordinates are 1-based and inclusive of the last pixel. Our box ``[x0, x1) x [y0, y1)`` in
continuous coordinates is written as ``xmin = x0 + 1, ymin = y0 + 1, xmax = x1, ymax = y1`` (the
conversion detectron2 and torchvision undo with ``xmin - 1``); integral values are written as
integers. Polygons are written as their vertex extent, masks as their pixel extent. Single-frame
assets only (frames of videos and series have no image file).
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from app.core.annotations import Kind
from app.exchange.selection import ExportJob, asset_display_path
from app.exchange.yolo import shape_extent

_SHAPES = (Kind.POLYGON, Kind.BOX, Kind.MASK)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
    child = ET.SubElement(parent, tag)
    child.text = text
    return child


def export_voc(job: ExportJob) -> None:
    for item in job.frames():
        where_asset = asset_display_path(item.asset)
        if item.multi_frame:
            job.skip(where_asset, "frames of a video or series have no image file a VOC reader can open")
            continue
        root = ET.Element("annotation")
        path = job.absolute_path(item.asset)
        _sub(root, "folder", str(path.parent) if path else "")
        _sub(root, "filename", where_asset.rsplit("/", 1)[-1])
        _sub(root, "path", str(path) if path else where_asset)
        source = ET.SubElement(root, "source")
        _sub(source, "database", "Sitelabel")
        size = ET.SubElement(root, "size")
        _sub(size, "width", str(item.asset.width))
        _sub(size, "height", str(item.asset.height))
        _sub(size, "depth", str(item.asset.metadata.get("channels", 1) if item.asset.metadata else 1))
        _sub(root, "segmented", "0")
        written = 0
        for ann, _category in job.exportable(item, _SHAPES, "have no VOC form"):
            x0, y0, x1, y1 = shape_extent(ann)
            obj = ET.SubElement(root, "object")
            _sub(obj, "name", ann.label)
            _sub(obj, "pose", "Unspecified")
            _sub(obj, "truncated", "0")
            _sub(obj, "difficult", "0")
            box = ET.SubElement(obj, "bndbox")
            for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
                _sub(box, tag, _num(value))
            written += 1
        if not written:
            continue
        ET.indent(root)
        data = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
        job.tx.write_bytes(f"Annotations/{job.name_of(item.asset)}.xml", data)
        job.count(item, written)
