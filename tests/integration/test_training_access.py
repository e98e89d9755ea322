"""Training code reads labels without an export (#17): ``project.iter_labels`` and ``label_volume``.

Real data: sample images and a 6-slice MR series written from pydicom's MR_small.dcm
(``_archive_setup``). A labeler's work is accepted by a reviewer, so the final labels are all of
it; iter_labels then yields exactly the masks a png-masks export writes (compared pixel for pixel
with Pillow), label_volume's one-hot channels are each class's rasterised annotations and its index
volume is the png-masks class map. On the team project of the round-trip tests, ``final=True``
yields each item's final labels only (no model pre-label, the consensus instead of the labelers'
boxes, nothing of the rejected item), and a training-style loop counts pixels per class.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _archive_setup import make_worked, new_project, series_folder
from PIL import Image
from support.labeling import work_on

from app import api
from app.core.annotations import Annotation
from app.core.errors import PermissionDenied, ValidationError
from app.core.raster import rasterize_annotation
from app.exchange.export import export_project

CLASSES = ["organ", "lesion", "bunny", "tag"]  # _archive_setup's ontology: every class has pixels


def _accepted_project(db_url: str, tmp_path: Path) -> tuple[api.Project, dict[str, int]]:
    """lee labels two images and the series (classes overlapping on slice 3), rey accepts them."""
    ada, ids = new_project(db_url, series_folder(tmp_path))
    ada.set_member("lee", "labeler")
    ada.set_member("rey", "reviewer")
    lee, rey = (
        api.open_project(ada.db, "archive", user="lee"),
        api.open_project(ada.db, "archive", user="rey"),
    )
    coins = ada.asset(ids["coins"])
    blob = np.zeros((coins.height, coins.width), dtype=bool)
    blob[30:120, 50:160] = True
    work_on(
        lee,
        ids["coins"],
        [
            {"kind": "mask", "label": "organ", "mask": blob},
            {"kind": "polygon", "label": "lesion", "points": [[60.5, 40], [150, 60.25], [90, 130]]},
        ],
    )
    work_on(lee, ids["camera"], [{"kind": "box", "label": "bunny", "box": [10.0, 20.5, 99.5, 80.0]}])
    series = ada.asset(ids["series"])
    organ = np.zeros((series.height, series.width), dtype=bool)
    organ[8:44, 10:52] = True
    work_on(
        lee,
        ids["series"],
        [
            {"kind": "mask", "label": "organ", "frame": 1, "mask": organ},
            {"kind": "mask", "label": "organ", "frame": 3, "mask": organ},
            {"kind": "box", "label": "lesion", "frame": 3, "box": [20.0, 20.0, 34.5, 30.0]},
            {"kind": "polygon", "label": "lesion", "frame": 4, "points": [[5, 5], [30, 8], [18, 28]]},
        ],
    )
    for name in ("coins", "camera", "series"):
        rey.accept(ids[name])
    return ada, ids


def _class_bits(labels: list[dict[str, Any]], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Each class's pixels on a frame, from the yielded dicts through the core rasteriser."""
    out: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(shape, dtype=bool))
    for label in labels:
        ann = Annotation.from_dict(label, frame_shape=shape)
        out[ann.label] = out[ann.label] | rasterize_annotation(ann, shape)
    return out


def _index(bits: dict[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """A class-index map painted in ontology order: a class later in the ontology wins (the default)."""
    out = np.zeros(shape, dtype=np.uint8)
    for value, name in enumerate(CLASSES, 1):
        if name in bits:
            out[bits[name]] = value
    return out


def _png(out: Path, asset: Any, frame: int) -> np.ndarray:
    pattern = f"{frame:05d}.png" if asset.frame_count > 1 else f"{Path(asset.rel_path).stem}.png"
    (found,) = list((out / "index").rglob(pattern))
    return np.asarray(Image.open(found))


def test_iter_labels_yields_the_masks_of_a_png_masks_export(db_url: str, tmp_path: Path) -> None:
    project, ids = _accepted_project(db_url, tmp_path)
    project.assign_splits(val=0.34, test=0.33, seed=3)  # before the export assigns the default plan's
    out = tmp_path / "png"
    export_project(
        project.db,
        project.id,
        "png-masks",
        out,
        roots=project.config.all_data_roots,
        max_pixels=project.config.max_image_pixels,
    )
    seen = []
    for asset, frame, image, labels in project.iter_labels():
        shape = (asset.height, asset.width)
        assert image.shape[:2] == shape
        assert np.array_equal(_index(_class_bits(labels, shape), shape), _png(out, asset, frame))
        seen.append((asset.id, frame))
        if asset.id == ids["series"]:  # 16-bit DICOM stays 16-bit, as the canvas reads it
            with project.open_asset(asset) as source:
                assert image.dtype == source.frame(frame).dtype and image.dtype.itemsize == 2
                assert np.array_equal(image, source.frame(frame))
    assert seen == [(ids["coins"], 0), (ids["camera"], 0), *((ids["series"], f) for f in (1, 3, 4))]
    assert len(list((out / "index").rglob("*.png"))) == len(seen)
    with_empty = [(a.id, f, len(labels)) for a, f, _, labels in project.iter_labels(include_empty=True)]
    assert [(a, f) for a, f, _ in with_empty] == [
        (ids["coins"], 0),
        (ids["camera"], 0),
        *((ids["series"], f) for f in range(6)),  # every slice of the accepted series
    ]
    assert [n for _, _, n in with_empty] == [2, 1, 0, 1, 0, 2, 1, 0]
    # the stored splits, the ones every export uses: they part the frames
    splits = project.splits()
    parts = {s: [(a.id, f) for a, f, _, _ in project.iter_labels(split=s)] for s in ("train", "val", "test")}
    assert sorted(frame for frames in parts.values() for frame in frames) == sorted(seen)
    assert sum(1 for frames in parts.values() if frames) >= 2
    assert all(splits.split_of(a) == s for s, frames in parts.items() for a, _ in frames)
    with pytest.raises(ValidationError, match="unknown split 'dev'"):
        project.iter_labels(split="dev")


def test_label_volume_one_hot_and_index(db_url: str, tmp_path: Path) -> None:
    project, ids = _accepted_project(db_url, tmp_path)
    series = project.asset(ids["series"])
    shape = (series.height, series.width)
    by_frame: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for label in project.annotations(ids["series"]):
        by_frame[label["frame"]].append(label)

    hot, classes = project.label_volume(ids["series"], mode="one-hot")
    assert classes == CLASSES and hot.shape == (4, 6, *shape) and hot.dtype == bool
    for c, name in enumerate(classes):
        for frame in range(6):
            expected = _class_bits(by_frame.get(frame, []), shape).get(name, np.zeros(shape, dtype=bool))
            assert np.array_equal(hot[c, frame], expected), (name, frame)
    assert hot[0, 3].sum() == (36 * 42) and (hot[0, 3] & hot[1, 3]).any()  # the overlap is kept

    index, classes = project.label_volume(ids["series"])
    assert index.dtype == np.uint16 and index.shape == (6, *shape)
    for frame in range(6):
        assert np.array_equal(index[frame], _index(_class_bits(by_frame.get(frame, []), shape), shape))
    # a class list of one's own: its order gives the values; the priority decides overlaps
    overlap = hot[0, 3] & hot[1, 3]
    index, classes = project.label_volume(ids["series"], classes=["lesion", "organ"])
    assert classes == ["lesion", "organ"] and set(np.unique(index[3]).tolist()) == {0, 1, 2}
    assert (index[3][overlap] == 1).all()  # by default the lesion (later in the ontology) wins
    index, _ = project.label_volume(ids["series"], classes=["lesion", "organ"], priority=["organ"])
    assert (index[3][overlap] == 2).all() and (index[4][hot[1, 4]] == 1).all()
    with pytest.raises(ValidationError, match="unknown label volume mode"):
        project.label_volume(ids["series"], mode="soft")
    with pytest.raises(ValidationError, match="no class"):
        project.label_volume(ids["series"], classes=["liver"])
    with pytest.raises(ValidationError, match="no final labels"):
        project.label_volume(ids["astronaut"])


def test_final_labels_and_a_training_loop_without_an_export(db_url: str, tmp_path: Path) -> None:
    worked = make_worked(db_url, series_folder(tmp_path))
    project, ids = worked.ada, worked.ids
    found: dict[int, list[tuple[int, list[dict[str, Any]]]]] = defaultdict(list)
    for asset, frame, _image, labels in project.iter_labels():
        found[asset.id].append((frame, labels))
    assert sorted(found) == sorted(ids[n] for n in ("coins", "camera", "clip", "series"))  # not rejected
    ((_, coins),) = found[ids["coins"]]
    assert sorted((a["kind"], a["source"]) for a in coins) == [
        ("classification", "human"),
        ("mask", "human"),
        ("point", "human"),
        ("polygon", "human"),
    ]  # the model pre-label is not final
    ((_, camera),) = found[ids["camera"]]
    assert [(a["label"], a["source"]) for a in camera] == [("lesion", "consensus")]  # not the 2 boxes
    clip_frames = [frame for frame, _ in found[ids["clip"]]]
    assert clip_frames == list(range(10, 61))  # both tracks, interpolated frames included
    assert [frame for frame, _ in found[ids["series"]]] == [2, 3, 4]

    # a training-style loop: pixels per class, streamed, no export; the series' counts agree
    # with its one-hot volume
    pixels: Counter[str] = Counter()
    series_pixels: Counter[str] = Counter()
    for asset, _frame, image, labels in project.iter_labels(classes=["organ", "lesion"]):
        shape = image.shape[:2]
        for name, bits in _class_bits(labels, shape).items():
            pixels[name] += int(bits.sum())
            if asset.id == ids["series"]:
                series_pixels[name] += int(bits.sum())
    hot, classes = project.label_volume(ids["series"], classes=["organ", "lesion"], mode="one-hot")
    assert series_pixels == {name: int(hot[c].sum()) for c, name in enumerate(classes)}
    assert set(pixels) == {"organ", "lesion"} and pixels["organ"] > series_pixels["organ"]
    with pytest.raises(PermissionDenied):
        worked.people["lee"].iter_labels()
