"""The image file of every exported frame, written beside the labels (COCO, VOC; YOLO can reuse it).

Training code opens ``file_name`` s relative to the export, so each labelled (asset, frame) gets a real
image file inside the export, never a symlink out of it:

* a 2-D image file a training loader reads itself (PNG, JPEG, BMP, TIFF, not inside an archive) is
  hard-linked into ``images/<data root>/<path>`` (``images="link"``, the default; a copy where the
  export is on another file system or links are refused) or copied (``images="copy"``). A hard link
  shares the file: edit the export's copy in place and the source changes too; use copies for that.
* every other frame (a video frame, a slice of a series, a page, an archive member, a DICOM file)
  is decoded and written as ``frames/<asset id>/<frame:06d>.png``. Values are kept: 8-bit stays
  8-bit, unsigned 16-bit (most DICOM) stays 16-bit, signed 16-bit (e.g. CT in HU) is stored plus
  32768 (``offset`` -32768: value = pixel + offset). Wider or float values that do not fit are
  mapped linearly through the source's window into 16 bits (``window`` recorded). With
  ``FrameOptions(window=...)`` the window is applied instead and 8-bit grey is written: ``"source"``
  (the source's own, e.g. DICOM WindowCenter/Width, else automatic per frame), a preset name
  (``lung``, ``bone``, ...) or ``"CENTRE,WIDTH"``.

How each asset's values were stored is kept in :attr:`FrameWriter.encodings` (the exporters write it
as ``frames.json``). Frames are decoded in order on the calling thread (the sources read ahead) and
encoded and written on a small thread pool (PNG encoding releases the GIL), with a bounded number in
flight so memory stays flat however many frames an export holds. The PNG bytes are deterministic, so
a re-export rewrites nothing that did not change.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.display import Window, apply_window
from app.core.errors import NotFoundError, SitelabelError, ValidationError
from app.core.records import Asset, AssetKind
from app.exchange.staging import ExportTransaction
from app.sources import WINDOW_PRESETS, DataRootError, Source, SourceError, asset_path, open_asset

IMAGE_MODES = ("link", "copy")
IMAGES_DIR = "images"
FRAMES_DIR = "frames"
ENCODINGS_FILE = "frames.json"
LINKABLE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".tif", ".tiff"})
Place = Callable[[str], str]  # default file name -> the name to write (FrameWriter.image)


class Unwritable(SitelabelError):
    """The image of one frame cannot be written (the message says why); its labels are skipped."""


def parse_window(text: str | None) -> str | Window | None:
    """``--frames-window`` as given: None (values kept), ``"source"``, a preset or ``"CENTRE,WIDTH"``."""
    if text is None or text == "":
        return None
    value = text.strip().lower()
    if value == "source":
        return "source"
    if value in WINDOW_PRESETS:
        return WINDOW_PRESETS[value]
    try:
        centre, width = (float(v) for v in value.split(","))
    except ValueError:
        raise ValidationError(
            f"unknown frame window {text!r}; use 'source', a preset ({', '.join(WINDOW_PRESETS)}) "
            "or CENTRE,WIDTH (e.g. 40,400)"
        ) from None
    if not width > 0:
        raise ValidationError(f"a window width must be above 0, got {width}")
    return (centre, width)


@dataclass(frozen=True)
class FrameOptions:
    """How the image files are made: ``images`` link|copy for 2-D files, ``window`` for frames."""

    images: str = "link"
    window: str | Window | None = None

    def __post_init__(self) -> None:
        if self.images not in IMAGE_MODES:
            raise ValidationError(f"unknown image mode {self.images!r}; use one of {', '.join(IMAGE_MODES)}")
        if isinstance(self.window, str) and self.window != "source":
            object.__setattr__(self, "window", parse_window(self.window))

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.images, "window": self.window}


@dataclass(frozen=True)
class ImageFile:
    """One image file of the export: its path relative to the export, its size and value mapping."""

    name: str
    width: int
    height: int
    pixels: Mapping[str, Any] = field(default_factory=dict)
    depth: int = 1  # channels


def frame_name(asset: Asset, frame: int) -> str:
    """Where a decoded frame goes: ``frames/<asset id>/<frame:06d>.png`` (stable: ids never change)."""
    return f"{FRAMES_DIR}/{asset.id}/{frame:06d}.png"


def linked_name(asset: Asset) -> str:
    """Where a linked or copied 2-D image goes: ``images/<data root>/<path>`` (unique, stable)."""
    return str(PurePosixPath(IMAGES_DIR, asset.root, *PurePosixPath(asset.rel_path).parts))


def is_linkable(asset: Asset) -> bool:
    """A single 2-D image file a training loader opens itself (not an archive member, not DICOM)."""
    return (
        asset.kind is AssetKind.IMAGE
        and asset.frame_count <= 1
        and not asset.member
        and PurePosixPath(asset.rel_path).suffix.lower() in LINKABLE_SUFFIXES
    )


def encode_png(values: npt.NDArray[Any]) -> bytes:
    """PNG bytes of an (H, W), (H, W, 3) RGB or (H, W, 4) RGBA uint8/uint16 array (OpenCV's encoder)."""
    import cv2

    if values.ndim == 3 and values.shape[2] == 3:
        values = cv2.cvtColor(values, cv2.COLOR_RGB2BGR)
    elif values.ndim == 3 and values.shape[2] == 4:
        values = cv2.cvtColor(values, cv2.COLOR_RGBA2BGRA)
    elif values.ndim == 3:
        values = values[..., 0]
    ok, data = cv2.imencode(".png", np.ascontiguousarray(values))  # OpenCV's defaults: fast, deterministic
    if not ok:
        raise Unwritable(f"OpenCV could not encode a {values.dtype} frame of shape {values.shape} as PNG")
    return bytes(data)


def stored_values(
    pixels: npt.NDArray[Any], window: str | Window | None, source_window: Window | None
) -> tuple[npt.NDArray[Any], dict[str, Any]]:
    """The array a PNG can hold for ``pixels``, and how its values map back (see the module doc).

    ``window``: the export's option (None keeps values); ``source_window``: the source's own window,
    also the mapping of values too wide for 16 bits (the caller keeps it the same for every frame of
    an asset).
    """
    if window is not None:
        chosen = source_window if isinstance(window, str) else window  # "source": the source's own
        shown = apply_window(pixels, chosen)  # None: automatic, per frame
        return shown, {"bits": 8, "window": None if chosen is None else list(chosen)}
    kind, size = pixels.dtype.kind, pixels.dtype.itemsize
    if pixels.dtype == np.bool_:
        return pixels.astype(np.uint8) * np.uint8(255), {"bits": 8, "scale": 1 / 255}
    if kind == "u" and size <= 2:
        return pixels, {"bits": 8 * size}
    if kind == "i" and size == 1:
        return (pixels.astype(np.int16) + 128).astype(np.uint8), {"bits": 8, "offset": -128}
    if kind == "i" and size == 2:
        return (pixels.astype(np.int32) + 32768).astype(np.uint16), {"bits": 16, "offset": -32768}
    # wider or float values: through the window into the 16-bit range
    centre, width = source_window if source_window is not None else value_span(pixels)
    lo_value = centre - width / 2.0
    scaled = (pixels.astype(np.float64) - lo_value) * (65535.0 / width)
    out = np.clip(np.rint(scaled), 0, 65535).astype(np.uint16)
    return out, {"bits": 16, "window": [float(centre), float(width)], "scale": width / 65535.0}


def value_span(pixels: npt.NDArray[Any]) -> Window:
    """The window spanning a frame's values from its minimum to its maximum."""
    lo, hi = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 1.0)
    return ((lo + hi) / 2.0, max(hi - lo, 1e-6))


def _needs_window(pixels: npt.NDArray[Any]) -> bool:
    """Values a 16-bit PNG cannot hold as they are (wider integers, floats)."""
    return pixels.dtype.kind == "f" or (pixels.dtype.kind in "iu" and pixels.dtype.itemsize > 2)


class FrameWriter:
    """Writes the image file of each exported (asset, frame) into ``tx`` once; see the module doc.

    Frames must come in asset order (one source is kept open at a time). Use as a context manager,
    or call :meth:`close`, which waits for the last files and raises the first write error.
    """

    def __init__(
        self,
        tx: ExportTransaction,
        roots: Mapping[str, Path],
        max_pixels: int,
        options: FrameOptions | None = None,
        *,
        workers: int | None = None,
    ) -> None:
        self.tx = tx
        self.roots = roots
        self.max_pixels = max_pixels
        self.options = options or FrameOptions()
        self.encodings: dict[int, dict[str, Any]] = {}  # asset id -> how its frames were stored
        self._workers = workers or min(4, max(1, (os.cpu_count() or 2)))
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()
        self._source: Source | None = None
        self._source_asset: int | None = None
        self._failed: dict[int, str] = {}  # asset id -> why none of its frames can be written
        self._windows: dict[int, Window | None] = {}  # asset id -> the window its frames share
        self._names: set[str] = set()  # the files written or queued

    # --- public ---------------------------------------------------------------------------------
    def image(
        self, asset: Asset, frame: int, *, place: Place | None = None, decode: bool = False
    ) -> ImageFile:
        """The image file of ``asset``'s ``frame``, written now or queued; Unwritable says why not.
        ``place``: maps the default name (linked_name, frame_name) to the one to write instead (the
        YOLO layout puts each file under ``images/<split>/``); it must keep the file's suffix.
        ``decode``: a decoded PNG also for a file it would link (nnU-Net reads one file format)."""
        if asset.id in self._failed:
            raise Unwritable(self._failed[asset.id])
        if is_linkable(asset) and not decode:
            return self._link(asset, place)
        return self._frame(asset, frame, place)

    def close(self) -> None:
        """Wait for the queued files; the first failure is raised (an OSError: the export fails)."""
        self._close_source()
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
            return
        for future in self._pending:  # already failing: drop what is queued, keep the first error
            future.cancel()
        self._pending.clear()
        self._close_source()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # --- 2-D image files ------------------------------------------------------------------------
    def _link(self, asset: Asset, place: Place | None = None) -> ImageFile:
        path = self._path(asset)
        if not path.is_file():
            self._fail(asset, f"{path} is missing: the file was moved or its share is not mounted")
        name = linked_name(asset) if place is None else place(linked_name(asset))
        if name not in self._names:
            self._names.add(name)
            try:
                self.tx.add_file(name, path, link=self.options.images == "link")
            except FileNotFoundError:
                self._fail(asset, f"{path} vanished during the export")
        channels = int((asset.metadata or {}).get("channels", 1) or 1)
        return ImageFile(name, asset.width, asset.height, depth=channels)

    def _path(self, asset: Asset) -> Path:
        try:
            return asset_path(asset, self.roots)
        except (NotFoundError, DataRootError) as exc:
            self._fail(asset, str(exc))
            raise  # unreachable: _fail raises

    def _fail(self, asset: Asset, why: str) -> None:
        self._failed[asset.id] = why
        raise Unwritable(why)

    # --- decoded frames -------------------------------------------------------------------------
    def _open(self, asset: Asset) -> Source:
        if self._source_asset == asset.id and self._source is not None:
            return self._source
        self._close_source()
        try:
            source = open_asset(asset, self.roots, max_pixels=self.max_pixels)
        except (NotFoundError, DataRootError, SourceError) as exc:
            self._fail(asset, str(exc))
            raise  # unreachable
        self._source, self._source_asset = source, asset.id
        return source

    def _close_source(self) -> None:
        if self._source is not None:
            self._source.close()
        self._source, self._source_asset = None, None

    def _frame(self, asset: Asset, frame: int, place: Place | None = None) -> ImageFile:
        name = frame_name(asset, frame) if place is None else place(frame_name(asset, frame))
        source = self._open(asset)
        try:
            pixels = source.frame_once(frame)  # in order, once: no cache, memory stays flat
        except (SourceError, IndexError) as exc:
            raise Unwritable(f"frame {frame}: {exc}") from None
        if asset.id not in self._windows:  # one mapping for every frame of the asset
            own = source.window
            if own is None and self.options.window is None and _needs_window(pixels):
                own = value_span(pixels)
            self._windows[asset.id] = own
        values, mapping = stored_values(pixels, self.options.window, self._windows[asset.id])
        self._remember(asset, source, values, mapping, str(PurePosixPath(name).parent))
        height, width = int(pixels.shape[0]), int(pixels.shape[1])
        if name not in self._names:
            self._names.add(name)
            self._submit(name, values)
        depth = int(values.shape[2]) if values.ndim == 3 else 1
        return ImageFile(name, width, height, mapping, depth)

    def _remember(
        self, asset: Asset, source: Source, values: npt.NDArray[Any], mapping: Mapping[str, Any], folder: str
    ) -> None:
        if asset.id in self.encodings:
            return
        self.encodings[asset.id] = {
            "asset_id": asset.id,
            "folder": folder,
            "kind": asset.kind.value,
            "source_dtype": str(source.dtype),
            "png_dtype": str(values.dtype),
            **mapping,
        }

    def _submit(self, name: str, values: npt.NDArray[Any]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="sitelabel-frames")
        while len(self._pending) >= 2 * self._workers:  # bounded: memory stays flat
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._write, name, values))

    def _write(self, name: str, values: npt.NDArray[Any]) -> None:
        self.tx.write_bytes(name, encode_png(values), sync_now=False)  # fsynced together at commit
