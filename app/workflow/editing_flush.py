"""What a flush of an edit session writes: planned from a snapshot by a pure function, then run
operation by operation in one unit of work (:mod:`app.workflow.editing` has the rules).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.annotations import HUMAN, Annotation, Kind, MaskPatch
from app.core.errors import ConflictError, NotFoundError
from app.core.ontology import Ontology
from app.storage import UnitOfWork
from app.workflow.editing_state import Conflict, ItemKey, Op, Snapshot


def own(annotation: Annotation) -> Annotation:
    """What a labeler's session stores: their own, human annotation (a pre-label they took over)."""
    if annotation.source == HUMAN and annotation.confidence is None:
        return annotation
    return annotation.evolve(source=HUMAN, confidence=None)


def is_layer_mask(ann: Annotation, class_names: set[str], shape: tuple[int, int]) -> bool:
    """Does ``ann`` go into the label layer (a plain human mask of a known class, full frame size)?"""
    return (
        ann.kind is Kind.MASK
        and ann.source == HUMAN
        and not ann.attributes
        and ann.label in class_names
        and ann.mask is not None
        and ann.mask.frame_shape == shape
    )


@dataclass(frozen=True, slots=True)
class FlushPlan:
    ops: list[Op]  # operations to run, in order
    clean: set[ItemKey]  # items already equal to the database: nothing to write


def plan_flush(snap: Snapshot, ontology: Ontology) -> FlushPlan:
    """The operations that bring the database to the snapshot (conflicted items left out)."""
    ops: list[Op] = []
    clean: set[ItemKey] = set()
    for aid, mine in snap.vectors.items():
        if aid in snap.blocked:
            continue
        saved, ids = snap.saved.get(aid), snap.db_ids.get(aid)
        changed = saved is None or (mine is not None and not mine.same_content(saved))
        if mine is None and ids is not None:
            ops.append(Op(aid, "delete", None, *ids))
        elif mine is not None and ids is None:
            ops.append(Op(aid, "add", own(mine), None, 0))
        elif (
            mine is not None
            and ids is not None
            and aid in snap.prelabels
            and (changed or mine.source == HUMAN)
        ):
            ops.append(Op(aid, "replace", own(mine), *ids))  # an edited or accepted pre-label
        elif mine is not None and ids is not None and changed:
            ops.append(Op(aid, "update", own(mine), *ids))
        else:
            clean.add(aid)
    for frame, labels in snap.maps.items():
        present = {int(v) for v in np.unique(labels)}
        names = {c.name for i, c in enumerate(ontology.classes, 1) if i in present}
        names |= {label for (f, label) in snap.layer if f == frame}
        for label in sorted(names):
            key = (frame, label)
            if key in snap.blocked:
                continue
            bits = labels == ontology.index_of(label)
            item = snap.layer.get(key)
            if not bits.any():
                if item is not None:
                    ops.append(Op(key, "delete", None, item.id, item.version))
                continue
            patch = MaskPatch.from_full(bits)
            if item is not None and item.mask is not None and item.mask == patch:
                continue
            content = Annotation(kind=Kind.MASK, label=label, frame=frame, mask=patch, source=HUMAN)
            if item is None:
                ops.append(Op(key, "add", content, None, 0))
            else:
                ops.append(Op(key, "update", content, item.id, item.version))
    return FlushPlan(ops, clean)


def apply_op(uow: UnitOfWork, op: Op, asset_id: int, user_id: int) -> Annotation | Conflict | None:
    """Run one operation; a stale version comes back as a Conflict, the rest still saves."""
    repo = uow.annotations
    try:
        if op.action == "add":
            assert op.content is not None
            return repo.add(asset_id, op.content.evolve(id=None, version=0), user_id)
        assert op.db_id is not None
        if op.action == "replace":
            assert op.content is not None
            repo.delete(op.db_id, op.version, user_id=user_id)
            return repo.add(asset_id, op.content.evolve(id=None, version=0), user_id)
        if op.action == "update":
            assert op.content is not None
            return repo.update(op.content.evolve(id=op.db_id, version=op.version), editor_id=user_id)
        repo.delete(op.db_id, op.version, user_id=user_id)
        return None
    except (ConflictError, NotFoundError) as exc:
        assert op.db_id is not None
        try:
            theirs: Annotation | None = repo.get(op.db_id)
        except NotFoundError:
            theirs = None
        version = getattr(exc, "current_version", None) or 0
        return Conflict(op.key, op.content, theirs, str(exc), int(version))
