"""numpy <-> QImage without surprises (strides, ownership)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PySide6.QtGui import QImage


def to_qimage(rgb_or_grey: npt.NDArray[np.uint8]) -> QImage:
    """Wrap a uint8 grey (H, W) or RGB(A) (H, W, C) array as a QImage (copied, so it owns its bytes)."""
    array = np.ascontiguousarray(rgb_or_grey)
    h, w = array.shape[:2]
    if array.ndim == 2:
        fmt, stride = QImage.Format.Format_Grayscale8, w
    elif array.shape[2] == 3:
        fmt, stride = QImage.Format.Format_RGB888, w * 3
    else:
        fmt, stride = QImage.Format.Format_RGBA8888, w * 4
    return QImage(array.data, w, h, stride, fmt).copy()


def to_array(image: QImage) -> npt.NDArray[np.uint8]:
    """An RGB (H, W, 3) copy of ``image``."""
    converted = image.convertToFormat(QImage.Format.Format_RGB888)
    raw = np.frombuffer(converted.constBits(), dtype=np.uint8, count=converted.sizeInBytes())
    rows = raw.reshape(converted.height(), converted.bytesPerLine())[:, : converted.width() * 3]
    return rows.reshape(converted.height(), converted.width(), 3).copy()  # the QImage buffer dies with it
