"""Model manifests: the TOML or JSON file beside each ``.onnx`` that says how to feed and read it.

A manifest ``NAME.toml`` (or ``NAME.json``) sits beside ``NAME.onnx``::

    name = "liver-mm"
    version = "3"
    task = "segmentation"            # segmentation | detection | classification
    file = "liver-mm.onnx"           # optional: defaults to the manifest's stem + ".onnx"
    sha256 = "9f2c..."               # of the .onnx file; the model loads only when it matches

    [input]
    name = "image"                   # optional: the graph's first input
    layout = "NCHW"                  # NCHW | NHWC
    size = [512, 512]                # [height, width]; leave out for a fully convolutional model
    channels = 1
    channel_order = "gray"           # gray | rgb | bgr

    [normalise]                      # applied in this order: window|range|scale, then mean/std
    window = "abdomen"               # DICOM window: [centre, width], a preset name, or "dicom"
    # range = [0.0, 4095.0]          # map [low, high] to [0, 1] with clipping
    # scale = 255.0                  # divide by
    mean = [0.0]
    std = [1.0]

    [classes]                        # output index -> ontology class
    0 = "liver"

    [output]
    activation = "none"              # segmentation/classification: none | sigmoid | softmax
    format = "yolov8"                # detection only: yolov5 (rows with objectness) | yolov8

    [thresholds]
    score = 0.5                      # per-pixel / per-box / per-class probability
    iou = 0.45                       # detection NMS
    min_area = 16                    # pixels; smaller segmentation components are dropped

    [tiling]                         # segmentation of large images
    tile = 1024
    overlap = 64

Everything here is plain data; nothing loads onnx or onnxruntime.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.models.errors import ManifestError

Task = Literal["segmentation", "detection", "classification"]
TASKS: tuple[Task, ...] = ("segmentation", "detection", "classification")
LAYOUTS = ("NCHW", "NHWC")
CHANNEL_ORDERS = ("gray", "rgb", "bgr")
ACTIVATIONS = ("none", "sigmoid", "softmax")
DETECTION_FORMATS = ("yolov5", "yolov8")
MANIFEST_SUFFIXES = (".toml", ".json")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")

# A DICOM window: (centre, width), a preset name resolved by the caller, or "dicom" (the file's own).
WindowSpec = tuple[float, float] | str


@dataclass(frozen=True, slots=True)
class Normalisation:
    window: WindowSpec | None = None
    range: tuple[float, float] | None = None
    scale: float | None = None
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a model is and how to run it; see the module doc for the file format."""

    name: str
    version: str
    task: Task
    file: str
    sha256: str
    classes: Mapping[int, str]
    input_name: str | None = None
    layout: str = "NCHW"
    size: tuple[int, int] | None = None  # (height, width); None: any size (fully convolutional)
    channels: int = 1
    channel_order: str = "gray"
    normalise: Normalisation = field(default_factory=Normalisation)
    activation: str = "none"
    detection_format: str = "yolov8"
    score_threshold: float = 0.5
    iou_threshold: float = 0.45
    min_area: int = 16
    tile: int = 1024
    overlap: int = 64
    description: str = ""
    training: Mapping[str, Any] = field(default_factory=dict)  # what an on-site model learnt from

    @property
    def ref(self) -> str:
        """``NAME@VERSION``, the suffix of its pre-labels' source ``model:NAME@VERSION``."""
        return f"{self.name}@{self.version}"

    @property
    def source(self) -> str:
        return f"model:{self.ref}"

    def to_dict(self) -> dict[str, Any]:
        """The manifest file's shape (JSON-serialisable; class keys become strings)."""
        norm: dict[str, Any] = {}
        n = self.normalise
        if n.window is not None:
            norm["window"] = n.window if isinstance(n.window, str) else list(n.window)
        if n.range is not None:
            norm["range"] = list(n.range)
        if n.scale is not None:
            norm["scale"] = n.scale
        if n.mean:
            norm["mean"] = list(n.mean)
        if n.std:
            norm["std"] = list(n.std)
        inp: dict[str, Any] = {
            "layout": self.layout,
            "channels": self.channels,
            "channel_order": self.channel_order,
        }
        if self.input_name:
            inp["name"] = self.input_name
        if self.size is not None:
            inp["size"] = list(self.size)
        out: dict[str, Any] = {"activation": self.activation}
        if self.task == "detection":
            out["format"] = self.detection_format
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "file": self.file,
            "sha256": self.sha256,
            "input": inp,
            "normalise": norm,
            "classes": {str(k): v for k, v in sorted(self.classes.items())},
            "output": out,
            "thresholds": {
                "score": self.score_threshold,
                "iou": self.iou_threshold,
                "min_area": self.min_area,
            },
            "tiling": {"tile": self.tile, "overlap": self.overlap},
        }
        if self.description:
            data["description"] = self.description
        if self.training:
            data["training"] = dict(self.training)
        return data


# --- parsing --------------------------------------------------------------------------------------
def _table(raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise ManifestError(f"{where}: [{key}] must be a table")
    return value


def _number(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ManifestError(f"{where}: {what} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        raise ManifestError(f"{where}: {what} is too large, got {value!r}") from None
    if not math.isfinite(number):  # inf/nan would break int() and the comparisons below
        raise ManifestError(f"{where}: {what} must be a finite number, got {value!r}")
    return number


def _list(value: Any, what: str, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):  # found by fuzzing: null/number here raised TypeError
        raise ManifestError(f"{where}: {what} must be a list of numbers, got {value!r}")
    return list(value)


def _pair(value: Any, what: str, where: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ManifestError(f"{where}: {what} must be two numbers, got {value!r}")
    return _number(value[0], what, where), _number(value[1], what, where)


def _choice(value: Any, allowed: tuple[str, ...], what: str, where: str) -> str:
    if value not in allowed:
        raise ManifestError(f"{where}: {what} must be one of {list(allowed)}, got {value!r}")
    return str(value)


def _normalisation(raw: Mapping[str, Any], channels: int, where: str) -> Normalisation:
    window: WindowSpec | None = None
    if "window" in raw:
        w = raw["window"]
        window = w if isinstance(w, str) else _pair(w, "normalise.window", where)
        if not isinstance(window, str) and window[1] <= 0:
            raise ManifestError(f"{where}: the window width must be positive")
    rng = _pair(raw["range"], "normalise.range", where) if "range" in raw else None
    if rng is not None and rng[1] <= rng[0]:
        raise ManifestError(f"{where}: normalise.range needs low < high, got {list(rng)}")
    scale = _number(raw["scale"], "normalise.scale", where) if "scale" in raw else None
    if scale is not None and scale == 0:
        raise ManifestError(f"{where}: normalise.scale must not be 0")
    if sum(x is not None for x in (window, rng, scale)) > 1:
        raise ManifestError(f"{where}: give only one of normalise.window, normalise.range, normalise.scale")
    mean = tuple(
        _number(v, "normalise.mean", where) for v in _list(raw.get("mean", []), "normalise.mean", where)
    )
    std = tuple(_number(v, "normalise.std", where) for v in _list(raw.get("std", []), "normalise.std", where))
    for what, values in (("mean", mean), ("std", std)):
        if values and len(values) not in (1, channels):
            raise ManifestError(f"{where}: normalise.{what} needs 1 or {channels} values, got {len(values)}")
    if any(s == 0 for s in std):
        raise ManifestError(f"{where}: normalise.std must not contain 0")
    return Normalisation(window, rng, scale, mean, std)


def parse_manifest(raw: Mapping[str, Any], where: str = "manifest") -> Manifest:
    """Check and convert a manifest's plain data; ManifestError says what is wrong, on one line."""
    if not isinstance(raw, Mapping):
        raise ManifestError(f"{where}: a manifest must be a table of settings")
    name = str(raw.get("name", ""))
    if not _NAME.match(name):
        raise ManifestError(f"{where}: name must be 1-100 letters, digits, '.', '_' or '-', got {name!r}")
    version = str(raw.get("version", "")).strip()
    if not version or "@" in version or len(version) > 60:
        raise ManifestError(f"{where}: version must be a short text without '@', got {version!r}")
    task = _choice(raw.get("task"), TASKS, "task", where)
    sha = str(raw.get("sha256", "")).lower()
    if not _SHA.match(sha):
        raise ManifestError(f"{where}: sha256 must be 64 hex digits (the hash of the .onnx file)")
    file = str(raw.get("file") or "")
    if file and (Path(file).name != file or not file.endswith(".onnx")):
        raise ManifestError(f"{where}: file must be a .onnx file name beside the manifest, got {file!r}")
    inp = _table(raw, "input", where)
    layout = _choice(inp.get("layout", "NCHW"), LAYOUTS, "input.layout", where)
    channels = int(_number(inp.get("channels", 1), "input.channels", where))
    if channels not in (1, 3):
        raise ManifestError(f"{where}: input.channels must be 1 or 3, got {channels}")
    order = _choice(
        inp.get("channel_order", "gray" if channels == 1 else "rgb"),
        CHANNEL_ORDERS,
        "input.channel_order",
        where,
    )
    if (order == "gray") != (channels == 1):
        raise ManifestError(f"{where}: channel_order {order!r} does not fit {channels} channel(s)")
    size: tuple[int, int] | None = None
    if inp.get("size") is not None:
        h, w = _pair(inp["size"], "input.size", where)
        if h < 1 or w < 1 or not h.is_integer() or not w.is_integer():
            raise ManifestError(f"{where}: input.size must be two positive integers [height, width]")
        size = (int(h), int(w))
    classes_raw = _table(raw, "classes", where)
    classes: dict[int, str] = {}
    for key, label in classes_raw.items():
        try:
            index = int(key)
        except ValueError:
            raise ManifestError(f"{where}: class keys must be output indices, got {key!r}") from None
        if index < 0 or not isinstance(label, str) or not label.strip():
            raise ManifestError(f"{where}: class {key!r} must map an index >= 0 to a class name")
        classes[index] = label.strip()
    if not classes:
        raise ManifestError(f"{where}: [classes] must map at least one output index to an ontology class")
    out = _table(raw, "output", where)
    activation = _choice(out.get("activation", "none"), ACTIVATIONS, "output.activation", where)
    fmt = _choice(out.get("format", "yolov8"), DETECTION_FORMATS, "output.format", where)
    th = _table(raw, "thresholds", where)
    score = _number(th.get("score", 0.5), "thresholds.score", where)
    iou = _number(th.get("iou", 0.45), "thresholds.iou", where)
    if not (0 < score < 1 and 0 < iou <= 1):
        raise ManifestError(f"{where}: thresholds.score must be in (0, 1) and thresholds.iou in (0, 1]")
    min_area = int(_number(th.get("min_area", 16), "thresholds.min_area", where))
    tiling = _table(raw, "tiling", where)
    tile = int(_number(tiling.get("tile", 1024), "tiling.tile", where))
    overlap = int(_number(tiling.get("overlap", 64), "tiling.overlap", where))
    if tile < 32 or not 0 <= overlap < tile // 2:
        raise ManifestError(f"{where}: tiling needs tile >= 32 and 0 <= overlap < tile / 2")
    training = raw.get("training", {})
    return Manifest(
        name=name,
        version=version,
        task=task,  # type: ignore[arg-type]
        file=file or f"{name}.onnx",
        sha256=sha,
        classes=classes,
        input_name=str(inp["name"]) if inp.get("name") else None,
        layout=layout,
        size=size,
        channels=channels,
        channel_order=order,
        normalise=_normalisation(_table(raw, "normalise", where), channels, where),
        activation=activation,
        detection_format=fmt,
        score_threshold=score,
        iou_threshold=iou,
        min_area=max(min_area, 0),
        tile=tile,
        overlap=overlap,
        description=str(raw.get("description", "")),
        training=dict(training) if isinstance(training, Mapping) else {},
    )


def read_manifest(path: Path) -> Manifest:
    """Read ``NAME.toml`` or ``NAME.json``; the model file defaults to ``NAME.onnx`` beside it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    except RecursionError:  # found by fuzzing: thousands of nested brackets
        raise ManifestError(f"{path}: not valid {path.suffix[1:].upper()}: nested too deeply") from None
    if isinstance(raw, dict) and not raw.get("file"):
        raw = {**raw, "file": f"{path.stem}.onnx"}
    return parse_manifest(raw, str(path))


def write_manifest(manifest: Manifest, path: Path) -> Path:
    """Write the manifest as JSON (the format on-site training produces)."""
    path.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def manifest_for(model_path: Path) -> Path:
    """The manifest beside an ``.onnx`` file (TOML first, then JSON)."""
    for suffix in MANIFEST_SUFFIXES:
        candidate = model_path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    raise ManifestError(f"{model_path.name} has no manifest: put {model_path.stem}.toml or .json beside it")
