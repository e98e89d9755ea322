"""Flush planning of an edit session is a pure function of its snapshot: no database, no Qt."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.core.annotations import HUMAN, Annotation, Kind, MaskPatch
from app.core.ontology import Ontology
from app.workflow.editing_flush import plan_flush
from app.workflow.editing_state import ItemKey, Layer, LayerKey, Snapshot

ONTOLOGY = Ontology.from_dict({"classes": [{"name": "liver"}, {"name": "lesion"}]})


def box(x0: float, label: str = "liver", **kw: Any) -> Annotation:
    return Annotation(kind=Kind.BOX, label=label, box=(x0, 1.0, x0 + 2.0, 3.0), **kw)


def snapshot(
    vectors: dict[int, Annotation | None] | None = None,
    *,
    saved: dict[int, Annotation] | None = None,
    db_ids: dict[int, tuple[int, int]] | None = None,
    maps: dict[int, np.ndarray] | None = None,
    layer: dict[LayerKey, Layer] | None = None,
    blocked: frozenset[ItemKey] = frozenset(),
    prelabels: frozenset[int] = frozenset(),
) -> Snapshot:
    maps = maps or {}
    return Snapshot(
        upto=7,
        gens=dict.fromkeys(maps, 1),
        maps=maps,
        vectors=vectors or {},
        blocked=blocked,
        saved=saved or {},
        db_ids=db_ids or {},
        layer=layer or {},
        prelabels=prelabels,
    )


def test_vectors_are_added_updated_deleted_or_left_clean() -> None:
    old, same = box(0.0), box(5.0)
    snap = snapshot(
        {1: box(1.0), 2: box(9.0), 3: None, 4: same},
        saved={2: old, 3: old, 4: box(5.0)},
        db_ids={2: (20, 1), 3: (30, 2), 4: (40, 1)},
    )
    plan = plan_flush(snap, ONTOLOGY)
    assert [(op.key, op.action, op.db_id, op.version) for op in plan.ops] == [
        (1, "add", None, 0),
        (2, "update", 20, 1),
        (3, "delete", 30, 2),
    ]
    assert plan.clean == {4}


def test_an_accepted_or_edited_prelabel_replaces_its_row_with_the_labelers_own() -> None:
    pre = box(0.0, source="model:m@1", confidence=0.9)
    accepted = pre.evolve(source=HUMAN, confidence=None)
    untouched = box(4.0, source="model:m@1", confidence=0.5)
    snap = snapshot(
        {1: accepted, 2: untouched},
        saved={1: pre, 2: untouched},
        db_ids={1: (10, 1), 2: (11, 1)},
        prelabels=frozenset({1, 2}),
    )
    plan = plan_flush(snap, ONTOLOGY)
    assert [(op.key, op.action, op.db_id) for op in plan.ops] == [(1, "replace", 10)]
    content = plan.ops[0].content
    assert content is not None and content.source == HUMAN and content.confidence is None
    assert plan.clean == {2}


def test_conflicted_items_are_left_out() -> None:
    labels = np.zeros((4, 4), dtype=np.uint16)
    labels[1:3, 1:3] = 1
    snap = snapshot({1: box(1.0)}, maps={0: labels}, blocked=frozenset({1, (0, "liver")}))
    plan = plan_flush(snap, ONTOLOGY)
    assert plan.ops == [] and plan.clean == set()


def test_a_label_map_becomes_one_mask_per_class_added_updated_or_deleted() -> None:
    labels = np.zeros((4, 4), dtype=np.uint16)
    labels[0, 0] = 1  # liver: new
    labels[3, 3] = 2  # lesion: stored already, unchanged
    lesion = MaskPatch.from_full(labels == 2)
    other = np.zeros((4, 4), dtype=np.uint16)  # frame 1: its stored liver mask was erased
    layer = {(0, "lesion"): Layer(5, 2, lesion), (1, "liver"): Layer(6, 3, None)}
    plan = plan_flush(snapshot(maps={0: labels, 1: other}, layer=layer), ONTOLOGY)
    assert [(op.key, op.action, op.db_id, op.version) for op in plan.ops] == [
        ((0, "liver"), "add", None, 0),
        ((1, "liver"), "delete", 6, 3),
    ]
    added = plan.ops[0].content
    assert added is not None and added.mask is not None and added.mask.area == 1


def test_a_mask_the_database_holds_in_unknown_form_is_written_again() -> None:
    labels = np.zeros((4, 4), dtype=np.uint16)
    labels[2, 2] = 1
    plan = plan_flush(snapshot(maps={0: labels}, layer={(0, "liver"): Layer(8, 4, None)}), ONTOLOGY)
    assert [(op.key, op.action, op.db_id, op.version) for op in plan.ops] == [((0, "liver"), "update", 8, 4)]
