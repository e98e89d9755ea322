"""Shared set-up of the review tests: a team on real sample images, labelers working through the
queue API, and hand-made annotations whose overlaps are known."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app import api, sample_data
from app.core.annotations import BoolMask
from app.workflow import queue

ONTOLOGY: dict[str, Any] = {
    "classes": [
        {"name": "coin", "color": "#c0504d", "kinds": ["polygon", "mask", "box"]},
        {"name": "lesion", "color": "#4f81bd", "kinds": ["box", "polygon", "mask"]},
        # one kind each: a consensus must give these classes a box and polygons, never a mask
        {"name": "nodule", "color": "#9bbb59", "kinds": ["box"]},
        {"name": "vessel", "color": "#8064a2", "kinds": ["polygon"]},
    ]
}
IMAGES = ("coins.png", "camera.png", "astronaut.png", "chelsea.png", "coffee.png")
LABELERS = ("lee", "kim", "max")
REVIEWERS = ("rey", "sam")


@dataclass
class Team:
    ada: api.Project  # site admin who set the project up
    people: dict[str, api.Project]
    assets: list[int]  # in IMAGES order

    def __getitem__(self, name: str) -> api.Project:
        return self.ada if name == "ada" else self.people[name]


def make_team(db: str, *, images: int = 2, consensus: dict[int, int] | None = None) -> Team:
    """A project on the first ``images`` sample images; ``consensus`` maps image index -> labelers."""
    ada = api.create_project(db, "review", ontology=ONTOLOGY, user="ada")
    ids = ada.import_data([sample_data.skimage_images() / name for name in IMAGES[:images]])
    for index, required in (consensus or {}).items():
        queue.set_required(ada.db, ada.id, [ids[index]], required)
    for name in LABELERS:
        ada.set_member(name, "labeler")
    for name in REVIEWERS:
        ada.set_member(name, "reviewer")
    people = {n: api.open_project(ada.db, "review", user=n) for n in (*LABELERS, *REVIEWERS)}
    return Team(ada, people, ids)


def square(x0: float, y0: float, x1: float, y1: float, label: str = "coin") -> dict[str, Any]:
    return {"kind": "polygon", "label": label, "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}


def box(x0: float, y0: float, x1: float, y1: float, label: str = "lesion") -> dict[str, Any]:
    return {"kind": "box", "label": label, "box": [x0, y0, x1, y1]}


def mask(shape: tuple[int, int], rows: slice, cols: slice, label: str = "coin") -> dict[str, Any]:
    bits: BoolMask = np.zeros(shape, dtype=bool)
    bits[rows, cols] = True
    return {"kind": "mask", "label": label, "mask": bits}


def task_of(project: api.Project, asset_id: int) -> Any:
    with project.db.unit_of_work(readonly=True) as uow:
        return uow.tasks.for_asset(project.id, asset_id)
