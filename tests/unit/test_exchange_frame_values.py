"""What a frame's PNG holds: values kept where a PNG can hold them, and how they map back."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import ValidationError
from app.exchange.frames import FrameOptions, encode_png, parse_window, stored_values


def _png(values: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.imdecode(np.frombuffer(encode_png(values), np.uint8), cv2.IMREAD_UNCHANGED)


def test_integer_values_are_kept_and_read_back_exactly() -> None:
    rng = np.random.default_rng(0)
    unsigned = rng.integers(0, 65536, (7, 9)).astype(np.uint16)  # e.g. MR, X-ray
    values, mapping = stored_values(unsigned, None, (40.0, 400.0))
    assert mapping == {"bits": 16} and np.array_equal(_png(values), unsigned)
    hu = rng.integers(-32768, 32768, (7, 9)).astype(np.int16)  # CT in HU
    values, mapping = stored_values(hu, None, (40.0, 400.0))
    back = _png(values).astype(np.int32) + mapping["offset"]
    assert mapping == {"bits": 16, "offset": -32768} and back.dtype == np.int32 and np.array_equal(back, hu)
    rgb = rng.integers(0, 256, (5, 6, 3)).astype(np.uint8)
    values, mapping = stored_values(rgb, None, None)
    assert mapping == {"bits": 8} and np.array_equal(_png(values)[..., ::-1], rgb)  # OpenCV reads BGR


def test_wide_values_go_through_one_window_and_a_window_gives_8_bits() -> None:
    wide = np.array([[-1000.0, 0.0], [500.0, 3000.0]], dtype=np.float32)
    values, mapping = stored_values(wide, None, (1000.0, 4000.0))
    assert values.dtype == np.uint16 and mapping["window"] == [1000.0, 4000.0]
    restored = values * mapping["scale"] + (1000.0 - 2000.0)
    assert np.allclose(restored, wide, atol=mapping["scale"])
    shown, mapping = stored_values(np.array([[-160, 40, 240]], dtype=np.int16), (40.0, 400.0), None)
    assert mapping == {"bits": 8, "window": [40.0, 400.0]} and shown.tolist() == [[0, 127, 255]]


def test_window_and_image_options_are_checked() -> None:
    assert parse_window("lung") == (-600.0, 1500.0) and parse_window("40, 400") == (40.0, 400.0)
    assert parse_window("source") == "source" and parse_window(None) is None
    assert FrameOptions(window="bone").window == (400.0, 1800.0)
    with pytest.raises(ValidationError, match="CENTRE,WIDTH"):
        parse_window("soft")
    with pytest.raises(ValidationError, match="above 0"):
        parse_window("40,0")
    with pytest.raises(ValidationError, match="image mode"):
        FrameOptions(images="symlink")
