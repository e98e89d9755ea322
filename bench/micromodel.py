"""Benchmark: on-site micro-model training time, inference speed against plain onnxruntime, held-out
Dice, and the labeling effort pre-labels save.

Data: nine 512x512 tiles of scikit-image's fundus photo ``retina.jpg`` (offsets 0/449/898; five
train, four held out). Labels (the stated ground truth): skimage's Sato ridge filter (sigmas 1-3,
dark ridges) on the green channel > 0.03, inside the field of view eroded by 10 px, components
of 64 px or more.

* ``train_seconds``: median of 3 trainings on the 5 labeled tiles (numpy, this machine's cores).
* ``ours_images_per_s``: ``Runner.predict`` (preprocessing, onnxruntime, probability maps) plus
  the threshold to masks, 2 intra-op threads, one 512x512 frame per call; ``ours_with_polygons``
  also turns the masks into the stored polygons. ``peer_images_per_s``: the same ONNX file in a
  plain ``onnxruntime.InferenceSession`` (2 threads) on a ready float tensor, whole image.
* ``labeling_effort``: pixels a labeler must change on the held-out tiles: without pre-labels
  every vessel pixel is drawn; with them only the pixels where the pre-label is wrong.

Prints one JSON object; times are medians of several runs.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import sample_data
from app.core.ontology import Ontology
from app.models import trainer
from app.models.registry import verify
from app.models.runner import Runner, preprocess
from app.workflow.prelabel import prediction_annotations

STARTS = (0, 449, 898)
TRAIN = ((0, 0), (0, 898), (898, 0), (898, 898), (449, 449))
HELD_OUT = ((0, 449), (449, 0), (449, 898), (898, 449))
THREADS = 2
ROUNDS = 7


def retina() -> tuple[np.ndarray, np.ndarray]:
    from skimage import filters, io, morphology

    image = io.imread(sample_data.skimage_images() / "retina.jpg")
    green = image[:, :, 1].astype(np.float64) / 255.0
    fov = morphology.erosion(image.mean(axis=2) > 20, morphology.disk(10))
    vessels = (filters.sato(green, sigmas=[1, 2, 3], black_ridges=True) > 0.03) & fov
    return image, morphology.remove_small_objects(vessels, max_size=63)


def tiles(array: np.ndarray, where: tuple[tuple[int, int], ...]) -> list[np.ndarray]:
    return [np.ascontiguousarray(array[y : y + 512, x : x + 512]) for y, x in where]


def median_seconds(fn: Callable[[], object], rounds: int = ROUNDS) -> float:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))


def main() -> None:
    import onnxruntime as ort

    image, vessels = retina()
    train_x, train_y = tiles(image, TRAIN), tiles(vessels, TRAIN)
    test_x, test_y = tiles(image, HELD_OUT), tiles(vessels, HELD_OUT)
    train_times = []
    result = None
    for _ in range(3):
        start = time.perf_counter()
        result = trainer.train(train_x, train_y, label="vessel")
        train_times.append(time.perf_counter() - start)
    assert result is not None
    model = result.model
    with tempfile.TemporaryDirectory() as folder:
        model_path, _, _ = model.export(Path(folder), "vessel-mm", "1")
        loaded = verify(model_path)
        runner = Runner(loaded, threads=THREADS, batch_size=1)
        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        options.inter_op_num_threads = 1
        peer = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    ontology = Ontology.from_dict({"classes": [{"name": "vessel", "kinds": ["polygon"]}]})
    ready = [np.ascontiguousarray(preprocess(f, loaded.manifest).transpose(2, 0, 1)[None]) for f in test_x]

    def ours() -> None:
        for frame in test_x:
            (pred,) = runner.predict([frame])
            _ = pred.probabilities["vessel"] >= 0.5

    def ours_polygons() -> None:
        for i, frame in enumerate(test_x):
            (pred,) = runner.predict([frame])
            prediction_annotations(pred, loaded, ontology, i)

    def plain() -> None:
        for tensor in ready:
            peer.run(None, {"image": tensor})

    t_ours, t_poly, t_peer = median_seconds(ours), median_seconds(ours_polygons, 3), median_seconds(plain)
    n = len(test_x)
    predicted = [p.probabilities["vessel"] >= 0.5 for p in runner.predict(test_x)]
    scores = [dice(p, t) for p, t in zip(predicted, test_y, strict=True)]
    without = int(sum(np.count_nonzero(t) for t in test_y))
    with_pre = int(sum(np.count_nonzero(p ^ t) for p, t in zip(predicted, test_y, strict=True)))
    out = {
        "benchmark": "micromodel",
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),  # other work sharing the cores
        },
        "data": "retina.jpg 512x512 tiles, 5 train / 4 held out, Sato-vesselness labels",
        "train_seconds": round(statistics.median(train_times), 3),
        "train_seconds_runs": [round(t, 3) for t in train_times],
        "train_pixels": result.pixels,
        "train_dice": round(result.train_dice, 4),
        "threads": THREADS,
        "ours_images_per_s": round(n / t_ours, 2),
        "ours_with_polygons_images_per_s": round(n / t_poly, 2),
        "peer": "onnxruntime.InferenceSession.run, same model, whole 512x512 image",
        "peer_images_per_s": round(n / t_peer, 2),
        "ratio_ours_to_peer": round(t_peer / t_ours, 3),
        "held_out_dice": round(float(np.mean(scores)), 4),
        "held_out_dice_per_tile": [round(s, 4) for s in scores],
        "labeling_effort": {
            "pixels_without_prelabels": without,
            "pixels_with_prelabels": with_pre,
            "saved_fraction": round(1 - with_pre / without, 4),
        },
        "goals": {"train_seconds_lt": 15, "images_per_s_ge": 10},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
