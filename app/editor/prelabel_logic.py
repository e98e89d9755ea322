"""The pre-label review's state and rules, usable without the widget (3D Slicer's Logic): the item's
pending pre-labels in review order, the accept-all default from the models' thresholds, accept and
reject through the EditSession, and which low-confidence maps the heat needs (fetched once, kept by
database id). No Qt: :mod:`app.editor.prelabel_panel` shows it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from app.core.annotations import Annotation, Kind
from app.core.commands import RemoveAnnotation
from app.editor.prelabel_overlay import combine, heat_rgba

if TYPE_CHECKING:
    from app.api import Project
    from app.workflow.editing import EditSession

DEFAULT_THRESHOLD = 0.8  # when no manifest of the item's models says otherwise
HEAT_MARGIN = 24  # pixels around the selected pre-label whose uncertainty is shown

Bounds = tuple[float, float, float, float]
Map = npt.NDArray[np.float32]
HeatResult = tuple[dict[int, Map], npt.NDArray[np.uint8] | None]  # maps fetched, the overlay (or none)


def bounds_of(annotation: Annotation) -> Bounds | None:
    """(x0, y0, x1, y1) around an annotation in image coordinates (None: a classification)."""
    if annotation.kind is Kind.BOX and annotation.box is not None:
        return annotation.box
    if annotation.kind is Kind.MASK and annotation.mask is not None:
        ys, xs = np.nonzero(annotation.mask.bits)
        if xs.size == 0:
            return None
        x0, y0 = annotation.mask.x0, annotation.mask.y0
        return x0 + float(xs.min()), y0 + float(ys.min()), x0 + float(xs.max()) + 1, y0 + float(ys.max()) + 1
    if annotation.points is not None and len(annotation.points):
        pts = np.asarray(annotation.points, dtype=np.float64)
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)
    return None


def centre_of(annotation: Annotation) -> tuple[float, float] | None:
    """Where to centre the view on an annotation (None: a classification has no place)."""
    b = bounds_of(annotation)
    return None if b is None else ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)


def near(uncertainty: Map, bounds: Bounds | None) -> Map:
    """A segmentation model's map covers the whole frame: keep the part around one pre-label."""
    if bounds is None:
        return uncertainty
    h, w = uncertainty.shape
    x0, y0 = max(0, int(bounds[0]) - HEAT_MARGIN), max(0, int(bounds[1]) - HEAT_MARGIN)
    x1, y1 = min(w, int(np.ceil(bounds[2])) + HEAT_MARGIN), min(h, int(np.ceil(bounds[3])) + HEAT_MARGIN)
    out = np.zeros_like(uncertainty)
    out[y0:y1, x0:x1] = uncertainty[y0:y1, x0:x1]
    return out


@dataclass(frozen=True)
class HeatRequest:
    """One heat overlay to compute on the pool: ``work`` fetches the missing maps and composes."""

    token: object  # only the newest request's result is shown
    work: Callable[[], HeatResult]
    fetching: bool  # some maps are not known yet (the panel says it is computing)


class PrelabelLogic:
    """The open item's pre-labels as the panel reviews them."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.session: EditSession | None = None
        self.frame = 0
        self.thresholds: dict[str, float] = {}  # score threshold by model source, from the manifests
        self.thresholds_asked = False
        self.maps: dict[int, Map] = {}  # low-confidence maps by database id
        self.heat_token: object = None  # the newest heat request
        self._tokens = itertools.count()

    def open(self, session: EditSession) -> bool:
        """A new item; True when the models' thresholds should be read now (the first item with
        pre-labels)."""
        self.session, self.frame = session, 0
        self.maps.clear()
        return not self.thresholds_asked and bool(session.prelabels())

    def set_thresholds(self, thresholds: dict[str, float]) -> None:
        self.thresholds = thresholds

    def pending(self) -> dict[int, Annotation]:
        """This frame's undecided pre-labels by local id, least confident first."""
        if self.session is None:
            return {}
        found = self.session.prelabels(self.frame)
        order = sorted(found, key=lambda aid: (found[aid].confidence or 0.0, aid))
        return {aid: found[aid] for aid in order}

    @property
    def total(self) -> int:
        """Undecided pre-labels on the whole item."""
        return len(self.session.prelabels()) if self.session is not None else 0

    def default_threshold(self) -> float | None:
        """Accept all's default: the highest threshold of the models that made the item's pre-labels."""
        if self.session is None:
            return None
        sources = {a.source for a in self.session.prelabels().values()}
        known = [self.thresholds[s] for s in sources if s in self.thresholds]
        return max(known) if known else None

    def target(self, current: int | None, delta: int) -> int | None:
        """The pre-label after (``delta`` 1) or before (-1) ``current`` in review order, wrapping."""
        rows = list(self.pending())
        if not rows:
            return None
        if current in rows:
            return rows[(rows.index(current) + delta) % len(rows)]
        return rows[0] if delta > 0 else rows[-1]

    # --- decisions ---------------------------------------------------------------------------------
    def is_prelabel(self, aid: int | None) -> bool:
        return self.session is not None and aid is not None and aid in self.session.prelabels()

    def accept(self, aid: int) -> None:
        """The pre-label becomes the labeler's own annotation (one undo step)."""
        if self.session is not None:
            self.session.accept_prelabels([aid])

    def reject(self, aid: int) -> None:
        if self.session is not None:
            self.session.stack.push(RemoveAnnotation(aid, text="Reject pre-label"))

    def accept_above(self, level: float) -> int | None:
        """Accept every pre-label of the item at ``level`` or above; how many (None: no item)."""
        if self.session is None:
            return None
        return self.session.accept_prelabels(None, min_confidence=level)

    # --- low-confidence heat -----------------------------------------------------------------------
    def heat_targets(self, selected: int | None, whole_frame: bool) -> list[tuple[int, Bounds | None]]:
        """(database id, region or None for all of it) of the pre-labels whose maps are shown: the
        selected one's neighbourhood, or every pre-label of the frame. The maps of one segmentation
        model for one class on one frame are the same whole-frame map: one of them is fetched."""
        pending = self.pending()
        if not whole_frame:
            ann = pending.get(selected) if selected is not None else None
            return [(ann.id, bounds_of(ann))] if ann is not None and ann.id is not None else []
        seen: set[tuple[str, str]] = set()
        targets: list[tuple[int, Bounds | None]] = []
        for ann in pending.values():
            if ann.id is None:
                continue
            if ann.kind in (Kind.POLYGON, Kind.MASK):
                if (ann.source, ann.label) in seen:
                    continue
                seen.add((ann.source, ann.label))
            targets.append((ann.id, None))
        return targets

    def heat_request(self, targets: list[tuple[int, Bounds | None]]) -> HeatRequest | None:
        """The overlay for ``targets`` to compute (None: no heat to show; older requests are void)."""
        if not targets:
            self.heat_token = None
            return None
        token = self.heat_token = (next(self._tokens), tuple(targets))
        known = {i: self.maps[i] for i, _ in targets if i in self.maps}
        missing = [i for i, _ in targets if i not in self.maps]
        project = self.project

        def work() -> HeatResult:
            fresh = {i: project.low_confidence_map(i) for i in missing}
            maps = {**known, **fresh}
            merged = combine(near(maps[i], region) for i, region in targets)
            return fresh, None if merged is None else heat_rgba(merged)

        return HeatRequest(token, work, bool(missing))

    def heat_arrived(self, token: object, fresh: dict[int, Map]) -> bool:
        """Keep the maps fetched; True when ``token`` is still the newest request."""
        self.maps.update(fresh)
        return self.is_current(token)

    def is_current(self, token: object) -> bool:
        return token is self.heat_token
