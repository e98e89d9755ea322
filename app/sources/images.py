"""Raster images: PNG, JPEG, BMP (Pillow) and TIFF (tifffile, pages as frames, tiled region reads).

Pixel-count limits are checked on the header before any pixel buffer exists. Pillow's
own bomb check is bypassed on purpose (its plugin classes are constructed directly)
because our limit is configurable and larger (30k x 40k) than Pillow's default.
"""

from __future__ import annotations

import contextlib
import math
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np

from app.sources.base import Source, clip_region
from app.sources.errors import (
    CorruptFile,
    DecompressionBomb,
    SourceError,
    SourceNotFound,
    UnsupportedFormat,
    one_line,
)
from app.sources.registry import register_reader
from app.sources.values import SourceLimits

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}


def sniff_png(head: bytes) -> bool:
    return head.startswith(PNG_MAGIC)


def sniff_jpeg(head: bytes) -> bool:
    return head.startswith(JPEG_MAGIC)


def sniff_bmp(head: bytes) -> bool:
    return len(head) >= 18 and head[:2] == b"BM" and struct.unpack("<I", head[14:18])[0] in _BMP_HEADER_SIZES


def sniff_tiff(head: bytes) -> bool:
    return head[:4] in TIFF_MAGICS


def check_pixels(path: Path, width: int, height: int, frames: int, limits: SourceLimits) -> None:
    """Refuse a header that claims more pixels per frame than ``limits.max_pixels``."""
    if width <= 0 or height <= 0:
        raise CorruptFile(f"{path}: header claims an empty image ({width} x {height})")
    if width * height > limits.max_pixels:
        raise DecompressionBomb(
            f"{path}: header claims {width} x {height} = {width * height:,} pixels per frame, "
            f"above the limit of {limits.max_pixels:,}"
        )
    if frames < 1:
        raise CorruptFile(f"{path}: no image frames")


def _open_file(path: Path) -> Any:
    try:
        return path.open("rb")
    except IsADirectoryError as exc:
        raise SourceNotFound(f"{path}: is a directory, not an image file") from exc
    except FileNotFoundError as exc:
        raise SourceNotFound(f"{path}: file not found (or dangling link)") from exc
    except OSError as exc:
        raise SourceNotFound(f"{path}: cannot open: {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------- Pillow
_PIL_PLUGINS = {"PNG": ("PngImagePlugin", "PngImageFile"), "JPEG": ("JpegImagePlugin", "JpegImageFile"),
                "BMP": ("BmpImagePlugin", "BmpImageFile")}  # fmt: skip


def _pil_open(path: Path, fmt: str) -> Any:
    import importlib

    module_name, cls_name = _PIL_PLUGINS[fmt]
    plugin = importlib.import_module(f"PIL.{module_name}")
    fh = _open_file(path)
    try:
        return getattr(plugin, cls_name)(fh, str(path))
    except (SyntaxError, OSError, ValueError, struct.error, IndexError) as exc:
        fh.close()
        raise CorruptFile(f"{path}: not a readable {fmt} file: {exc}") from exc


def _png_depth(path: Path) -> tuple[int, int]:
    with path.open("rb") as fh:
        head = fh.read(33)
    if len(head) < 26:
        raise CorruptFile(f"{path}: truncated PNG header")
    return head[24], head[25]  # bit depth, colour type


_MODE_INFO: dict[str, tuple[int, str | None]] = {
    # mode -> (channels, conversion target or None)
    "1": (1, "L"), "L": (1, None), "P": (3, "RGB"), "PA": (4, "RGBA"), "LA": (4, "RGBA"),
    "RGB": (3, None), "RGBA": (4, None), "RGBX": (3, "RGB"), "CMYK": (3, "RGB"), "YCbCr": (3, "RGB"),
    "I;16": (1, None), "I;16B": (1, None), "I;16L": (1, None), "I": (1, None), "F": (1, None),
    "La": (4, "RGBA"), "RGBa": (4, "RGBA"),
}  # fmt: skip


class PillowImage(Source):
    kind = "image"

    def __init__(self, path: Path, fmt: str, limits: SourceLimits | None = None) -> None:
        super().__init__(limits)
        self.path = path
        self.uri = str(path)
        self._fmt = fmt
        im = _pil_open(path, fmt)
        try:
            width, height = im.size
            check_pixels(path, width, height, 1, self.limits)
            mode = im.mode
            if mode == "P" and "transparency" in im.info:
                mode = "PA"
            info = _MODE_INFO.get(mode)
            if info is None:
                raise UnsupportedFormat(f"{path}: {fmt} pixel mode {mode!r} is not supported")
            self.channels, self._convert = info
            self._use_cv2 = False
            if fmt == "PNG":
                depth, colour_type = _png_depth(path)
                self._use_cv2 = depth == 16 and colour_type in (2, 6)
                if self._use_cv2:
                    self.channels = 3 if colour_type == 2 else 4
            self._pil_mode = mode
            self.shape = (height, width)
            self.frame_count = 1
            self.dtype = np.dtype(self._dtype_for(mode, self._use_cv2))
            self.metadata = {"format": fmt, "mode": mode, "width": width, "height": height}
            dpi = im.info.get("dpi")
            if dpi:
                self.metadata["dpi"] = [float(d) for d in dpi]
        finally:
            im.close()

    @staticmethod
    def _dtype_for(mode: str, use_cv2: bool) -> str:
        if use_cv2 or mode.startswith("I;16"):
            return "uint16"
        return {"I": "int32", "F": "float32"}.get(mode, "uint8")

    def _decode(self, index: int) -> np.ndarray:
        if self._use_cv2:
            return self._decode_cv2()
        im = _pil_open(self.path, self._fmt)
        try:
            if self._convert is not None:
                converted = im.convert(self._convert)
                arr = np.asarray(converted)
            else:
                im.load()
                arr = np.asarray(im)
        except (OSError, ValueError, SyntaxError) as exc:
            raise CorruptFile(f"{self.path}: cannot decode {self._fmt} pixels: {exc}") from exc
        finally:
            im.close()
        if arr.dtype != self.dtype:
            arr = arr.astype(self.dtype)
        return np.ascontiguousarray(arr)

    def _decode_cv2(self) -> np.ndarray:
        import cv2

        buf = np.fromfile(self.path, dtype=np.uint8)
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise CorruptFile(f"{self.path}: cannot decode 16-bit colour PNG")
        code = cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
        return np.ascontiguousarray(cv2.cvtColor(arr, code))


def _pillow_opener(fmt: str) -> Any:
    def opener(path: Path, limits: SourceLimits | None = None) -> Source:
        return PillowImage(path, fmt, limits)

    return opener


register_reader(name="png", kind="image", patterns=("*.png",), sniff=sniff_png, priority=10)(
    _pillow_opener("PNG")
)
register_reader(name="jpeg", kind="image", patterns=("*.jpg", "*.jpeg", "*.jpe"), sniff=sniff_jpeg)(
    _pillow_opener("JPEG")
)
register_reader(name="bmp", kind="image", patterns=("*.bmp", "*.dib"), sniff=sniff_bmp)(_pillow_opener("BMP"))


# --------------------------------------------------------------------------- TIFF
class TiffImage(Source):
    """TIFF pages as frames (pages with the first page's shape; thumbnails/pyramid levels skipped)."""

    kind = "image"
    _keeps_handle = True  # one TiffFile stays open: checked and reopened when its share comes back
    _frame_noun = "page"

    def __init__(self, path: Path, limits: SourceLimits | None = None) -> None:
        super().__init__(limits)
        import tifffile

        self.path = path
        self.uri = str(path)
        fh = _open_file(path)
        try:
            self._tif = tifffile.TiffFile(fh)
        except Exception as exc:
            fh.close()
            raise CorruptFile(f"{path}: not a readable TIFF: {exc}") from exc
        self._io = threading.Lock()
        try:
            self._init_pages(path)
        except BaseException as exc:
            self._tif.close()
            fh.close()
            if isinstance(exc, Exception) and not isinstance(exc, SourceError):
                # tifffile parses later IFDs lazily, while the pages are listed (found by fuzzing)
                raise CorruptFile(f"{path}: corrupt TIFF page directory: {one_line(exc)}") from exc
            raise
        self._fh = fh
        self._files.remember(path)

    def _reopen(self) -> None:
        """The file was replaced (a share mounted again) or its handle died: open it afresh."""
        import tifffile

        fh = self.path.open("rb")  # an OSError here means the file is unreachable
        try:
            tif = tifffile.TiffFile(fh)
        except Exception as exc:
            fh.close()
            raise CorruptFile(f"{self.path}: not a readable TIFF: {one_line(exc)}") from exc
        with self._io:
            old_tif, old_fh = self._tif, self._fh
            self._tif, self._fh = tif, fh
            try:
                self._init_pages(self.path)
            finally:
                with contextlib.suppress(Exception):  # the old handle may be dead already
                    old_tif.close()
                    old_fh.close()

    def _init_pages(self, path: Path) -> None:
        pages = self._tif.pages
        if len(pages) == 0:
            raise CorruptFile(f"{path}: TIFF without pages")
        first = pages.first
        width, height, depth = int(first.imagewidth), int(first.imagelength), int(first.imagedepth)
        check_pixels(path, width, height * depth, 1, self.limits)
        if depth != 1:
            raise UnsupportedFormat(f"{path}: volumetric TIFF pages (depth {depth}) are not supported")
        samples = int(first.samplesperpixel)
        if samples not in (1, 3, 4):
            raise UnsupportedFormat(f"{path}: TIFF with {samples} samples per pixel is not supported")
        self._pages: list[Any] = []
        for page in pages:
            shaped = getattr(page, "shaped", None)
            if getattr(page, "subfiletype", 0) & 1 or shaped != first.shaped or page.dtype != first.dtype:
                continue
            self._pages.append(page)
        self.shape = (height, width)
        self.channels = samples
        if first.dtype is None:
            raise UnsupportedFormat(f"{path}: TIFF sample format not supported")
        self.dtype = np.dtype(first.dtype)
        self.frame_count = len(self._pages)
        self._tiled = bool(first.is_tiled)
        self._contig = int(first.planarconfig) == 1 or samples == 1
        self.metadata = {
            "format": "TIFF",
            "width": width,
            "height": height,
            "pages": len(pages),
            "tiled": self._tiled,
            "compression": str(getattr(first.compression, "name", first.compression)),
            "photometric": str(getattr(first.photometric, "name", first.photometric)),
        }
        if self.frame_count < len(pages):
            self.warnings.append(
                f"{len(pages) - self.frame_count} TIFF page(s) with another shape (thumbnails/levels) ignored"
            )

    def _release(self) -> None:
        self._tif.close()
        self._fh.close()

    def _to_hwc(self, arr: np.ndarray) -> np.ndarray:
        if (
            arr.ndim == 3
            and self.channels > 1
            and arr.shape[0] == self.channels
            and arr.shape[2] != self.channels
        ):
            arr = np.moveaxis(arr, 0, -1)
        return np.ascontiguousarray(arr)

    def _decode(self, index: int) -> np.ndarray:
        try:
            with self._io:  # the page list is replaced when the file is reopened
                arr = self._pages[index].asarray()
        except Exception as exc:  # a dead handle's OSError stays the cause: Source reopens then
            raise CorruptFile(f"{self.path}: cannot decode TIFF page {index}: {exc}") from exc
        return self._to_hwc(np.asarray(arr))

    def read_region(self, frame: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Decode only the tiles/strips covering ``[y0:y1, x0:x1]`` when the layout allows it."""
        index = self._check_index(frame)
        x0, y0, x1, y1 = clip_region(self.shape, x0, y0, x1, y1)
        cached = self._frames.cache.get(index)
        page = self._pages[index]
        if cached is not None or not self._contig or not page.dataoffsets:
            return super().read_region(index, x0, y0, x1, y1)
        self._files.check(index)
        page = self._pages[index]  # again: the check may have reopened the file
        h, w = self.shape
        if self._tiled:
            tw, th = int(page.tilewidth), int(page.tilelength)
        else:
            tw, th = w, int(page.rowsperstrip or h)
        ntx = math.ceil(w / tw)
        if len(page.dataoffsets) != ntx * math.ceil(h / th):
            return super().read_region(index, x0, y0, x1, y1)
        shape_out = (y1 - y0, x1 - x0) + ((self.channels,) if self.channels > 1 else ())
        out = np.zeros(shape_out, dtype=self.dtype)
        for ty in range(y0 // th, math.ceil(y1 / th)):
            for tx in range(x0 // tw, math.ceil(x1 / tw)):
                seg = ty * ntx + tx
                data = self._read_segment(index, page, seg)
                try:
                    tile, (_, _, sy, sx, _), _ = page.decode(data, seg, jpegtables=page.jpegtables)
                except Exception as exc:
                    raise CorruptFile(f"{self.path}: cannot decode TIFF segment {seg}: {exc}") from exc
                if tile is None:
                    continue
                tile = tile.reshape(tile.shape[-3], tile.shape[-2], tile.shape[-1])
                ya, yb = max(y0, sy), min(y1, sy + tile.shape[0], h)
                xa, xb = max(x0, sx), min(x1, sx + tile.shape[1], w)
                if ya >= yb or xa >= xb:
                    continue
                part = tile[ya - sy : yb - sy, xa - sx : xb - sx]
                out[ya - y0 : yb - y0, xa - x0 : xb - x0] = part if self.channels > 1 else part[..., 0]
        return out

    def _read_segment(self, index: int, page: Any, seg: int) -> bytes:
        try:
            with self._io:
                fh = self._tif.filehandle
                fh.seek(page.dataoffsets[seg])
                data: bytes = fh.read(page.databytecounts[seg])
                return data
        except OSError as exc:
            gone = self._files.unreachable(index)
            if gone is not None:
                raise self._files.unavailable(index, *gone) from exc
            raise CorruptFile(f"{self.path}: cannot read TIFF segment {seg}: {one_line(exc)}") from exc


@register_reader(name="tiff", kind="image", patterns=("*.tif", "*.tiff"), sniff=sniff_tiff, priority=10)
def open_tiff(path: Path, limits: SourceLimits | None = None) -> Source:
    return TiffImage(path, limits)
