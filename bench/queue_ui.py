"""Benchmark: queue mode, time from Submit to the next item's pixels on the canvas.

The real main window (QT_QPA_PLATFORM=offscreen, raster canvas) on a real SQLite project of 20
items: 16 PNGs of 2048 x 2048 (scikit-image photos upscaled with cv2, so real content that takes a
real PNG decode) and 4 synthetic 40-slice CT series (app.sources.synthetic.build_ct_series from
pydicom-data's real 512 x 512 slice). For every item the "labeler" draws one polygon, waits until
the background work is idle (a labeler takes seconds; the next item's decode takes less), then
presses Submit. Timed: Submit pressed -> the window hands the next item's frame to the canvas
(MainWindow.frame_shown) -> the canvas repainted synchronously. Submit includes saving the polygon.

Ours: the queue's prefetch (item k+1 decoded and its annotations loaded while item k is labeled).
Peer, same run, same files: prefetch off, i.e. decode on demand through the editor's plain
open_asset path. Each round runs both on fresh projects (order alternating); figures are medians
over all Submits of all rounds, plus the median of each round. ``ratio`` = peer / ours (above 1:
prefetch is faster). ``canvas_draw_only_ms_by_kind``: set_image + repaint alone on the same
frames, the floor no decoding ahead removes. Prints ONE JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
# keep bench/ off the path: a script there named like a standard module (queue) would shadow it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROUNDS = 3
PNGS, SERIES, SIDE = 16, 4, 2048
PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "camera.png", "coins.png", "moon.png", "rocket.jpg"]
GOAL_MS = 100.0


def _isolate(home: Path) -> None:
    """Per-user state (layout, journal, caches) in a temp dir, not the real home."""
    for var, sub in (("HOME", ""), ("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        os.environ[var] = str(home / sub)
    os.environ.pop("SITELABEL_CONFIG", None)


def _data(folder: Path) -> list[Path]:
    """The 20 items, PNGs and series interleaved (a series every fifth item)."""
    import cv2

    from app.sample_data import skimage_images
    from app.sources.synthetic import build_ct_series

    pngs = []
    for k in range(PNGS):
        image = cv2.imread(str(skimage_images() / PHOTOS[k % len(PHOTOS)]), cv2.IMREAD_UNCHANGED)
        big = cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
        big = cv2.flip(big, k % 3 - 1) if k >= len(PHOTOS) else big  # no two files alike
        path = folder / f"photo{k:02d}.png"
        cv2.imwrite(str(path), big)
        pngs.append(path)
    series = []
    for k in range(SERIES):
        target = folder / f"ct{k}"
        build_ct_series(target, 40, seed=k)
        series.append(target)
    items: list[Path] = []
    for k in range(PNGS + SERIES):
        items.append(series.pop(0) if k % 5 == 4 and series else pngs.pop(0))
    for path in [*folder.glob("*.png"), *folder.glob("ct*/*.dcm")]:
        path.read_bytes()  # both sides start from a warm OS file cache
    return items


def _wait(app: Any, until: Any, timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not until():
        if time.perf_counter() > deadline:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.002)


def _idle(app: Any, controller: Any) -> None:
    """The labeler's think time: every background job (claim, submit, decode ahead) has ended."""
    from PySide6.QtCore import QThreadPool

    pool = QThreadPool.globalInstance()
    _wait(app, lambda: controller.idle)
    for _ in range(3):
        pool.waitForDone()
        app.processEvents()


def _run(app: Any, items: list[Path], work: Path, *, prefetch: bool) -> list[dict[str, Any]]:
    """One labeler through the whole queue; per Submit: ms to frame handed over, ms to painted."""
    import numpy as np
    from PySide6.QtCore import QEventLoop, QTimer

    from app import api
    from app.core.annotations import Annotation, Kind
    from app.core.commands import AddAnnotation
    from app.core.records import ProjectSettings
    from app.editor.main_window import MainWindow
    from app.workflow.journal import Journal

    work.mkdir(parents=True)
    ontology = {"classes": [{"name": "lesion", "color": "#c0504d"}]}
    project = api.create_project(
        str(work / "labels.db"), "bench", ontology=ontology, settings=ProjectSettings(batch_size=10)
    )
    project.import_data(items)
    window = MainWindow(project, journal=Journal(work / "journal.db"))
    window.resize(1500, 950)
    window.show()
    controller = window.queue.controller
    controller.prefetch = prefetch
    _wait(app, lambda: window.current is not None)
    controller.start()
    _wait(app, lambda: controller.item is not None and not controller.opening)
    square = np.array([[100.0, 100.0], [400.0, 120.0], [380.0, 420.0]])
    times: list[dict[str, Any]] = []
    while controller.item is not None:
        _wait(app, lambda: window.current is not None and window.editing.session is not None)
        session = window.editing.session
        assert session is not None
        session.stack.push(
            AddAnnotation(Annotation(kind=Kind.POLYGON, label="lesion", frame=0, points=square))
        )
        _idle(app, controller)
        position = controller.current
        assert position is not None
        upcoming = [it for it in controller.items[position + 1 :] if it.state.value == "waiting"]
        if not upcoming:
            window.queue.submit()
            break
        wanted, kind = upcoming[0].asset.id, upcoming[0].asset.kind
        loop = QEventLoop()
        shown: list[float] = []

        def on_shown(
            asset_id: int,
            _index: int,
            wanted: int = wanted,
            loop: QEventLoop = loop,
            shown: list[float] = shown,
        ) -> None:
            if asset_id == wanted and not shown:
                shown.append(time.perf_counter())
                loop.quit()

        window.frame_shown.connect(on_shown)
        QTimer.singleShot(60_000, loop.quit)
        t0 = time.perf_counter()
        window.action_by_text["Submit item and open the next"].trigger()
        if not shown:
            loop.exec()
        window.canvas.backend.repaint_now()
        t1 = time.perf_counter()
        window.frame_shown.disconnect(on_shown)
        if not shown:
            raise TimeoutError("the next item never reached the canvas")
        times.append({"handed_ms": (shown[0] - t0) * 1000, "painted_ms": (t1 - t0) * 1000, "kind": kind})
    _idle(app, controller)
    submitted = project.queue_stats()["submitted"]
    window.close()
    _idle(app, controller)
    project.close()
    if submitted != len(items):
        raise RuntimeError(f"only {submitted} of {len(items)} items were submitted")
    return times


def _draw_floor(app: Any, items: list[Path]) -> dict[str, float]:
    """What drawing alone costs (set_image + a synchronous repaint of a canvas the size of the
    window's), per kind: the part of Submit -> pixels no decoding ahead can remove."""
    from app import api
    from app.editor.canvas import create_canvas

    canvas = create_canvas()
    canvas.resize(780, 860)
    canvas.show()
    app.processEvents()
    times: dict[str, list[float]] = {}
    for _ in range(3):
        for path in items:
            with api.open_source(path) as source:
                frame, kind = source.frame(0), "dicom-series" if path.is_dir() else "image"
                t0 = time.perf_counter()
                canvas.set_image(frame, window=source.window)
                canvas.backend.repaint_now()
                times.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
    canvas.close()
    return {kind: round(statistics.median(t), 2) for kind, t in sorted(times.items())}


def _summary(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    painted = [t["painted_ms"] for run in runs for t in run]
    handed = [t["handed_ms"] for run in runs for t in run]
    ordered = sorted(painted)
    by_kind = {
        kind: round(statistics.median(t["painted_ms"] for run in runs for t in run if t["kind"] == kind), 2)
        for kind in sorted({t["kind"] for run in runs for t in run})
    }
    return {
        "median_ms_by_kind": by_kind,
        "median_ms": round(statistics.median(painted), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 2),
        "median_handed_to_canvas_ms": round(statistics.median(handed), 2),
        "round_medians_ms": [round(statistics.median(t["painted_ms"] for t in run), 2) for run in runs],
        "submits": len(painted),
        "under_goal_share": round(sum(t < GOAL_MS for t in painted) / len(painted), 3),
    }


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="sitelabel-bench-queue-ui-"))
    _isolate(base / "home")
    from PySide6.QtWidgets import QApplication

    from app.editor.theme import apply_dark_theme

    app = QApplication.instance() or QApplication(sys.argv)
    apply_dark_theme(app)  # type: ignore[arg-type]
    data = base / "data"
    data.mkdir()
    items = _data(data)
    ours: list[list[dict[str, Any]]] = []
    peer: list[list[dict[str, Any]]] = []
    for r in range(ROUNDS):
        for prefetch in (True, False) if r % 2 == 0 else (False, True):
            times = _run(app, items, base / f"run{r}-{'on' if prefetch else 'off'}", prefetch=prefetch)
            (ours if prefetch else peer).append(times)
    mine, theirs = _summary(ours), _summary(peer)
    floor = _draw_floor(app, items)
    from app.editor.canvas import gl_unavailable_reason

    print(
        json.dumps(
            {
                "benchmark": "queue_ui: Submit -> next item's pixels on the canvas",
                "items": f"{PNGS} PNG {SIDE}x{SIDE} RGB + {SERIES} CT series of 40 slices 512x512",
                "platform": os.environ["QT_QPA_PLATFORM"],
                "canvas": "raster" if gl_unavailable_reason() else "gl",
                "rounds": ROUNDS,
                "ours_prefetch": mine,
                "peer_decode_on_demand": theirs,
                "ratio_peer_over_ours": round(theirs["median_ms"] / mine["median_ms"], 2),
                "canvas_draw_only_ms_by_kind": floor,
                "load_average_1min": round(os.getloadavg()[0], 2),
                "goal_ms": GOAL_MS,
                "goal_met_by_median": mine["median_ms"] < GOAL_MS,
            }
        )
    )


if __name__ == "__main__":
    main()
