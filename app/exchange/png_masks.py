"""PNG mask export: a class-index PNG and a colour PNG per exported (asset, frame), plus a legend.

Layout::

    legend.json                  {"background": 0, "classes": [{"index", "name", "color"}], "dtype"}
    index/NAME.png               class-index map (uint8 when the ontology has < 256 classes, else uint16)
    color/NAME.png               the same map in the class colours (a palette PNG; RGB past 255
                                 classes), background black
    index/NAME/FFFFF.png         ... for multi-frame assets, one file per annotated frame

Pixels come from ``app.core.raster.label_image`` (later annotations paint over earlier ones). PNG
encoding runs on a small thread pool (OpenCV releases the GIL while compressing).
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation, Kind
from app.core.compose import hex_to_rgb
from app.core.ontology import Ontology
from app.core.raster import label_image
from app.exchange.selection import ExportJob, FrameItem, annotation_where

LEGEND = "legend.json"


def mask_name(job: ExportJob, item: FrameItem) -> str:
    """``NAME`` or ``NAME/FFFFF`` (multi-frame) of an exported frame."""
    base = str(job.name_of(item.asset))
    return f"{base}/{item.frame:05d}" if item.multi_frame else base


def _encode_png(image: npt.NDArray[np.uint8] | npt.NDArray[np.uint16]) -> bytes:
    import cv2

    ok, buffer = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover - OpenCV only fails on unsupported dtypes
        raise RuntimeError("PNG encoding failed")
    return bytes(buffer)


def _bgr_lut(ontology: Ontology) -> npt.NDArray[np.uint8]:
    lut = np.zeros((len(ontology.classes) + 1, 3), dtype=np.uint8)
    for i, cls in enumerate(ontology.classes, 1):
        r, g, b = hex_to_rgb(cls.color)
        lut[i] = (b, g, r)  # OpenCV writes BGR
    return lut


def _palette_pngs(index: npt.NDArray[np.uint8], palette_rgb: list[int]) -> tuple[bytes, bytes]:
    """The class-index PNG (grey) and the colour PNG as a palette image of the same bytes.

    A palette PNG shows the class colours in any viewer and costs one byte per pixel: about 10x
    faster to make than an RGB expansion + encode, and a fraction of its size.
    """
    from PIL import Image

    grey, coloured = io.BytesIO(), io.BytesIO()
    Image.fromarray(index, mode="L").save(grey, "PNG", compress_level=1)
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette_rgb)
    image.save(coloured, "PNG", compress_level=1)
    return grey.getvalue(), coloured.getvalue()


def _render(
    annotations: list[Annotation], ontology: Ontology, shape: tuple[int, int], lut: npt.NDArray[np.uint8]
) -> tuple[bytes, bytes]:
    labels = label_image(annotations, ontology, shape)
    if len(ontology.classes) < 256:
        palette = lut[:, ::-1].flatten().tolist()  # the LUT is BGR for OpenCV; PIL wants RGB
        return _palette_pngs(labels.astype(np.uint8), palette)
    return _encode_png(labels), _encode_png(lut[labels])


def export_png_masks(job: ExportJob) -> None:
    ontology = job.ontology
    lut = _bgr_lut(ontology)
    known = {c.name for c in ontology.classes}

    def work() -> Iterator[tuple[str, int, list[Annotation], tuple[int, int]]]:
        for item in job.frames():
            drawn: list[Annotation] = []
            for ann in item.annotations:
                if ann.kind is Kind.CLASSIFICATION:
                    job.skip(annotation_where(item, ann), "classifications have no pixels (use csv)")
                elif ann.label not in known:
                    job.skip(
                        annotation_where(item, ann), f"label {ann.label!r} is not in the current ontology"
                    )
                else:
                    drawn.append(ann)
            if drawn:
                job.count(item, len(drawn))
                yield mask_name(job, item), len(drawn), drawn, item.shape

    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="png-export") as pool:
        queue: deque[tuple[str, Future[tuple[bytes, bytes]]]] = deque()

        def drain(limit: int) -> None:
            while len(queue) > limit:
                name, future = queue.popleft()
                index_png, color_png = future.result()
                job.tx.write_bytes(f"index/{name}.png", index_png)
                job.tx.write_bytes(f"color/{name}.png", color_png)

        try:
            for name, _count, anns, shape in work():
                queue.append((name, pool.submit(_render, anns, ontology, shape, lut)))
                drain(2 * workers)
            drain(0)
        except BaseException:
            for _name, future in queue:
                future.cancel()
            raise
    legend = {
        "background": 0,
        "dtype": "uint8" if len(ontology.classes) < 256 else "uint16",
        "ontology_version": ontology.version,
        "classes": [
            {"index": i, "name": c.name, "color": c.color} for i, c in enumerate(ontology.classes, 1)
        ],
    }
    job.tx.write_json(LEGEND, legend, indent=1)
