"""Readers of the import formats: each turns a file or folder into :class:`LabelItem` s.

* coco: one JSON file, or a folder holding ``annotations.json`` (our export). Polygon segmentations
  (one ring: a polygon; several: one mask by the core rasteriser's even-odd rule), RLE (string or
  list counts: a mask), bbox only: a box. Sitelabel's own exports carry the exact drawn vertices
  under ``"sitelabel"``; those are used when present, and their images are matched by the asset
  path kept there (``file_name`` names the image file written beside the export).
* yolo: a folder of label ``.txt`` files (``labels/`` inside it if there is one). 5 numbers: a box;
  more: a polygon. Class names from ``data.yaml`` ``names`` (a list, or a mapping of class id to
  name; read with PyYAML, a file that does not parse or has no usable names is refused), else
  ``classes.txt``, else the ontology order. Normalised values within 1e-6 px of a 1/256 px grid snap
  to it (exact round trips). Our exports (``labels/<split>/``, detect or segment) match back by
  path; their decoded frames (``labels/<split>/frames/<asset id>/<frame>.txt``) by ``frames.json``.
* labelme: a JSON file or a folder of them; polygon, rectangle, point, line/linestrip shapes.
* png-masks: a folder (our export, or its ``index/``) of class-index PNGs; values map to names via
  ``legend.json`` when present, else to the ontology's 1-based index. One mask per class and frame.

Each reader is ``reader(path, ontology, context)`` (``app.exchange.label_items.Reader``); these only
parse files and ignore ``context``. ``app.exchange.importers`` registers them.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from app.core.annotations import Annotation, Kind, MaskPatch
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.core.raster import rings_mask_in_bbox
from app.core.records import Asset
from app.exchange import rle
from app.exchange.label_items import ImportContext, LabelItem, SkipItem
from app.sources.errors import shown


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from None
    except RecursionError:  # found by fuzzing: thousands of nested brackets
        raise ValidationError(f"cannot read {path}: JSON nested too deeply") from None


def _check_size(asset: Asset, width: Any, height: Any) -> None:
    if width is None or height is None:
        return
    if (int(width), int(height)) != (asset.width, asset.height):
        raise SkipItem(f"it is for a {width}x{height} image but the asset is {asset.width}x{asset.height}")


# --- COCO ----------------------------------------------------------------------------------------
_FRAME = re.compile(r"^(.*)#(\d+)$")


def _coco_annotation(raw: dict[str, Any], label: str, frame: int, asset: Asset) -> Annotation:
    shape = (asset.height, asset.width)
    ext = raw.get("sitelabel") or {}
    attributes = raw.get("attributes") or {}
    common: dict[str, Any] = {"label": label, "frame": frame, "attributes": dict(attributes)}
    if ext.get("confidence") is not None:
        common["confidence"] = float(ext["confidence"])
    if ext.get("kind") == "polygon" and ext.get("points"):
        return Annotation.from_dict({"kind": "polygon", "points": ext["points"], **common})
    if ext.get("kind") == "box" and ext.get("box"):
        return Annotation.from_dict({"kind": "box", "box": ext["box"], **common})
    seg = raw.get("segmentation")
    if isinstance(seg, dict):
        if [int(v) for v in seg.get("size", ())] != [shape[0], shape[1]]:
            raise ValidationError(f"its RLE size {seg.get('size')} is not the frame's {list(shape)}")
        patch = MaskPatch.from_full(rle.decode(seg))
        return Annotation(kind=Kind.MASK, mask=patch, **common)
    if isinstance(seg, list) and seg:
        rings = [np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in seg if len(r) >= 6]
        if len(rings) == 1:
            return Annotation.from_dict({"kind": "polygon", "points": rings[0], **common})
        if rings:
            return Annotation(kind=Kind.MASK, mask=rings_mask_in_bbox(rings, shape), **common)
    bbox = raw.get("bbox")
    if bbox and len(bbox) == 4:
        x, y, w, h = (float(v) for v in bbox)
        return Annotation.from_dict({"kind": "box", "box": [x, y, x + w, y + h], **common})
    raise ValidationError("it has neither a segmentation nor a bbox")


_NOT_COCO = frozenset({"manifest.json", "legend.json", "frames.json", "provenance.json"})


def coco_file(path: Path) -> Path:
    """The COCO annotation file of ``path``: the file itself, or in a folder (an export) its
    ``annotations.json``, else the one JSON file in it that is not an export's side file."""
    if not path.is_dir():
        return path
    if (path / "annotations.json").is_file():
        return path / "annotations.json"
    found = [p for p in sorted(path.glob("*.json")) if p.name not in _NOT_COCO]
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise ValidationError(
            f"{path} is a folder without annotations.json and {len(found)} other JSON files ({names}): "
            "give the COCO file itself"
        )
    return found[0]


def _coco_image_path(image: dict[str, Any]) -> tuple[str, int, tuple[str, int] | None]:
    """(path to match, frame, fallback) of an image entry. Our exports name the asset under
    ``sitelabel`` (data root, path, frame): the file_name is a written image file (``frames/...``)."""
    name = str(image.get("file_name", ""))
    ext = image.get("sitelabel") or {}
    frame = int(ext.get("frame", 0))
    found = _FRAME.match(name)
    if found and "frame" in ext:
        name = found.group(1)
    elif found:
        name, frame = found.group(1), int(found.group(2))
    source, root = ext.get("source"), ext.get("root")
    if isinstance(source, str) and source and isinstance(root, str):
        return f"{root}/{source}", frame, (name, frame)
    return name, frame, None


def read_coco(path: Path, ontology: Ontology, context: ImportContext) -> Iterator[LabelItem]:
    path = coco_file(path)
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValidationError(f"{path} is not a COCO file (no 'images' list)")
    categories = {c["id"]: str(c["name"]) for c in data.get("categories", [])}
    by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ann in data.get("annotations", []):
        by_image[ann.get("image_id")].append(ann)
    for image in data["images"]:
        name, frame, fallback = _coco_image_path(image)
        raws = by_image.get(image.get("id"), [])
        item = LabelItem(
            f"{path.name}: image {image.get('id')} {name}", name, lambda a, f: [], frame, fallback=fallback
        )

        def build(
            asset: Asset,
            frame: int,
            raws: list[dict[str, Any]] = raws,
            image: Any = image,
            item: LabelItem = item,
        ) -> list[Annotation]:
            _check_size(asset, image.get("width"), image.get("height"))
            out = []
            for raw in raws:
                where = f"{item.item} annotation {raw.get('id')}"
                label = categories.get(raw.get("category_id"))
                if label is None:
                    item.skipped.append((where, f"unknown category id {raw.get('category_id')}"))
                    continue
                try:
                    out.append(_coco_annotation(raw, label, frame, asset))
                except (ValidationError, TypeError, ValueError) as exc:
                    item.skipped.append((where, str(exc)))
            return out

        item.build = build
        yield item


# --- YOLO ----------------------------------------------------------------------------------------
def _yaml_names(path: Path) -> dict[int, str]:
    """Class id -> name from a YOLO data.yaml's ``names``: a list (ids 0, 1, ...) or a mapping
    ``{id: name}`` (ids may have gaps). A file that does not parse, or whose names are missing or not
    plain names, is refused with one line: guessing would map class ids to the wrong classes."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        where = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark is not None else ""
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise ValidationError(f"{path} is not valid YAML ({problem}{where})") from None
    except (yaml.YAMLError, OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError: a value YAML reads as a date that is no date (2001-13-45)
        raise ValidationError(f"{path} cannot be read as YAML ({' '.join(str(exc).split())[:200]})") from None
    raw = data.get("names") if isinstance(data, dict) else None
    pairs = (
        list(enumerate(raw)) if isinstance(raw, list) else list(raw.items()) if isinstance(raw, dict) else []
    )
    names: dict[int, str] = {}
    for key, value in pairs:
        class_id = _class_id(key)
        if class_id is None or not _plain_name(value):
            raise ValidationError(
                f"{path}: names entry {shown(key)}: {shown(value)} is not a class id and a class name "
                "(quote a name like yes or null)"
            )
        names[class_id] = str(value)
    if not names:
        raise ValidationError(f"{path} has no usable names (a list, or a mapping of class id to name)")
    return names


def _class_id(key: object) -> int | None:
    if isinstance(key, int) and not isinstance(key, bool):
        return key if key >= 0 else None
    if isinstance(key, str) and key.isascii() and key.isdigit():
        return int(key)
    return None


def _plain_name(value: object) -> bool:
    """A name YAML read as a string or an integer (``yes``, ``null``, ``1.5``, lists are not names)."""
    if isinstance(value, bool):
        return False
    return (isinstance(value, str) and bool(value.strip())) or isinstance(value, int)


def _yolo_names(folder: Path, ontology: Ontology) -> dict[int, str]:
    for candidate in (folder, *list(folder.parents)[:2]):
        if (candidate / "data.yaml").is_file():
            return _yaml_names(candidate / "data.yaml")
        if (candidate / "classes.txt").is_file():
            lines = (candidate / "classes.txt").read_text().splitlines()
            return dict(enumerate(n.strip() for n in lines if n.strip()))
    return dict(enumerate(c.name for c in ontology.classes))


def _snap(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    snapped = np.round(values * 256.0) / 256.0
    return np.where(np.abs(snapped - values) < 1e-6, snapped, values)


def read_yolo(path: Path, ontology: Ontology, context: ImportContext) -> Iterator[LabelItem]:
    folder = path.parent if path.is_file() else path
    labels = folder / "labels" if (folder / "labels").is_dir() else folder
    if (labels / "detect").is_dir() and (labels / "segment").is_dir():
        raise ValidationError(
            f"{labels} holds both detect/ and segment/ labels (a Sitelabel export): import one of them"
        )
    names = _yolo_names(folder, ontology)
    frames, ours = _yolo_frames(folder)
    for txt in sorted(labels.rglob("*.txt")):
        if txt.name in ("images.txt", "classes.txt", "train.txt", "val.txt", "test.txt"):
            continue
        rel = txt.relative_to(labels).as_posix()
        if ours:  # our export renamed source folders called images/labels (yolo.py)
            rel = "/".join(p[1:] if p in ("_images", "_labels") else p for p in rel.split("/"))

        def build(asset: Asset, frame: int, txt: Path = txt, rel: str = rel) -> list[Annotation]:
            size = np.array([asset.width, asset.height], dtype=np.float64)
            out = []
            for n, line in enumerate(txt.read_text(encoding="utf-8").splitlines(), 1):
                fields = line.split()
                if not fields:
                    continue
                try:
                    cls = int(fields[0])
                    values = np.array([float(v) for v in fields[1:]], dtype=np.float64)
                    if cls not in names:
                        raise ValueError(f"class {cls} is not in the {len(names)} class names")
                    if len(values) == 4:
                        cx, cy, w, h = values
                        box = _snap(
                            np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * np.tile(size, 2)
                        )
                        out.append(
                            Annotation(kind=Kind.BOX, label=names[cls], frame=frame, box=tuple(box.tolist()))
                        )
                    elif len(values) >= 6 and len(values) % 2 == 0:
                        pts = _snap(values.reshape(-1, 2) * size)
                        out.append(
                            Annotation.from_dict(
                                {"kind": "polygon", "label": names[cls], "frame": frame, "points": pts}
                            )
                        )
                    else:
                        raise ValueError(f"{len(values)} numbers is neither a box (4) nor a polygon")
                except (ValueError, ValidationError) as exc:
                    raise SkipItem(f"line {n}: {exc}") from None
            return out

        frame_of = frames.get(txt.parent.relative_to(labels).as_posix())
        if frame_of is not None and txt.stem.isdigit():  # a decoded frame: frames/<asset id>/<frame>
            asset_path, name = frame_of
            yield LabelItem(rel, asset_path, build, int(txt.stem), fallback=(name, int(txt.stem)))
            continue
        yield LabelItem(f"{rel}", rel, build, ignore_suffix=True)


def _yolo_frames(folder: Path) -> tuple[dict[str, tuple[str, str]], bool]:
    """Our YOLO export's decoded frames: label folder (below labels/) -> (the asset's root/path,
    its stable name), from frames.json; and whether ``folder`` is our export at all."""
    yaml_file = folder / "data.yaml"
    ours = yaml_file.is_file() and yaml_file.read_text(encoding="utf-8", errors="replace").startswith(
        "# Sitelabel YOLO export"
    )
    listed = folder / "frames.json"
    if not ours or not listed.is_file():
        return {}, ours
    out: dict[str, tuple[str, str]] = {}
    for entry in (_load_json(listed) or {}).get("assets", []):
        image_folder = str(entry.get("folder", ""))
        if not image_folder.startswith("images/") or not all(k in entry for k in ("root", "source", "name")):
            continue
        out[image_folder.removeprefix("images/")] = (f"{entry['root']}/{entry['source']}", str(entry["name"]))
    return out, ours


# --- labelme -------------------------------------------------------------------------------------
def _labelme_shape(shape: dict[str, Any]) -> Annotation:
    kind = shape.get("shape_type") or "polygon"
    label = str(shape.get("label", ""))
    pts = shape.get("points") or []
    if kind == "polygon":
        return Annotation.from_dict({"kind": "polygon", "label": label, "points": pts})
    if kind == "rectangle" and len(pts) == 2:
        (xa, ya), (xb, yb) = pts
        box = [min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)]
        return Annotation.from_dict({"kind": "box", "label": label, "box": box})
    if kind == "point" and len(pts) == 1:
        return Annotation.from_dict({"kind": "point", "label": label, "point": pts[0]})
    if kind in ("line", "linestrip"):
        return Annotation.from_dict({"kind": "polyline", "label": label, "points": pts})
    raise ValidationError(f"labelme shape_type {kind!r} is not supported")


def read_labelme(path: Path, ontology: Ontology, context: ImportContext) -> Iterator[LabelItem]:
    files = [path] if path.is_file() else sorted(path.rglob("*.json"))
    for file in files:
        data = _load_json(file)
        if not isinstance(data, dict) or "shapes" not in data or "imagePath" not in data:
            yield LabelItem(file.name, "", lambda a, f: [], skipped=[(str(file), "not a labelme file")])
            continue
        image_path = (file.parent / str(data["imagePath"]).replace("\\", "/")).resolve()
        item = LabelItem(file.name, str(image_path), lambda a, f: [])

        def build(
            asset: Asset, frame: int, data: dict[str, Any] = data, file: Path = file, item: LabelItem = item
        ) -> list[Annotation]:
            _check_size(asset, data.get("imageWidth"), data.get("imageHeight"))
            out = []
            for n, shape in enumerate(data["shapes"], 1):
                try:
                    out.append(_labelme_shape(shape))
                except (ValidationError, TypeError, ValueError) as exc:
                    item.skipped.append((f"{file.name} shape {n}", str(exc)))
            return out

        item.build = build
        yield item


# --- PNG masks -----------------------------------------------------------------------------------
def _mask_pixels(png: Path, asset: Asset) -> np.ndarray:
    """The class-index pixels of one mask file; an unreadable or misfit file skips its item.

    Found by fuzzing: Pillow raises UnidentifiedImageError, OSError, SyntaxError or
    DecompressionBombError (an IHDR declaring 2^31 x 2^31) on damaged files, and identified some as
    PCX. Only the PNG decoder is tried, the size is compared with the asset's from the header before
    any pixel is decoded, and a damaged file is one reason in the report, not a failed import.
    """
    import zlib

    from PIL import Image

    try:
        with Image.open(png, formats=["PNG"]) as image:
            if image.size != (asset.width, asset.height):
                raise SkipItem(f"its size {image.size[0]}x{image.size[1]} is not the asset's")
            labels = np.asarray(image)
    except SkipItem:
        raise
    except (
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        zlib.error,
        MemoryError,
        Image.DecompressionBombError,
    ) as exc:
        raise SkipItem(
            f"cannot read the PNG ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        ) from None
    if labels.ndim != 2:
        raise SkipItem("it is not a single-channel class-index PNG (import the index/ masks)")
    if labels.shape != (asset.height, asset.width):  # e.g. a file whose pixel data is shorter
        raise SkipItem(f"its size {labels.shape[1]}x{labels.shape[0]} is not the asset's")
    return labels


def read_png_masks(path: Path, ontology: Ontology, context: ImportContext) -> Iterator[LabelItem]:
    folder = path
    legend_file = folder / "legend.json"
    if legend_file.is_file():
        legend = {int(c["index"]): str(c["name"]) for c in _load_json(legend_file)["classes"]}
    elif (folder.parent / "legend.json").is_file():
        legend = {
            int(c["index"]): str(c["name"]) for c in _load_json(folder.parent / "legend.json")["classes"]
        }
    else:
        legend = {i: c.name for i, c in enumerate(ontology.classes, 1)}
    if (folder / "index").is_dir():
        folder = folder / "index"
    for png in sorted(folder.rglob("*.png")):
        rel = png.relative_to(folder).as_posix()
        parent, stem = png.parent.relative_to(folder).as_posix(), png.stem
        fallback = (parent, int(stem)) if stem.isascii() and stem.isdigit() and parent != "." else None

        def build(asset: Asset, frame: int, png: Path = png) -> list[Annotation]:
            labels = _mask_pixels(png, asset)
            out = []
            for value in np.unique(labels):
                if value == 0:
                    continue
                if int(value) not in legend:
                    raise SkipItem(f"pixel value {value} is not a class of the legend")
                patch = MaskPatch.from_full(labels == value)
                out.append(Annotation(kind=Kind.MASK, label=legend[int(value)], frame=frame, mask=patch))
            return out

        yield LabelItem(rel, rel, build, ignore_suffix=True, fallback=fallback)
