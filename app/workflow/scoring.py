"""Consensus agreement scores: whose annotations make up an item, and its stored agreement.

The queue stores the score when a consensus item reaches review (:func:`store_agreement`); the
review queue scores the items nobody could score before (:func:`score_unscored`), and the review
pane shows the same figures live. A labeler's annotations on an item are those they authored,
consensus labels excluded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from app.core.annotations import Annotation
from app.core.ontology import Ontology
from app.core.records import CONSENSUS_SOURCE, Asset, AssignmentStatus, Task, TaskStatus
from app.workflow.agreement import ItemAgreement, item_agreement

if TYPE_CHECKING:
    from app.storage import Database
    from app.storage.uow import UnitOfWork

_log = logging.getLogger(__name__)
LABELER_STATES = (AssignmentStatus.SUBMITTED, AssignmentStatus.RETURNED, AssignmentStatus.ACTIVE)


def scorable(
    by_labeler: Mapping[str, Sequence[Annotation]], ontology: Ontology
) -> dict[str, list[Annotation]]:
    """Leave out labels the current ontology no longer has: agreement is scored per ontology class."""
    known = {c.name for c in ontology.classes}
    return {name: [a for a in anns if not a.label or a.label in known] for name, anns in by_labeler.items()}


def agreement_of(
    item_annotations: Mapping[str, Sequence[Annotation]], ontology: Ontology, asset: Asset
) -> ItemAgreement:
    """The labelers' agreement on one asset, over every frame."""
    return item_agreement(
        scorable(item_annotations, ontology),
        ontology,
        (asset.height, asset.width),
        max(asset.frame_count, 1),
    )


def current_ontology(uow: UnitOfWork, project_id: int) -> Ontology:
    return uow.ontologies.current(project_id) or Ontology(classes=(), version=0)


def labeler_ids(uow: UnitOfWork, task: Task) -> dict[str, int]:
    """Name -> user id of the task's labelers (submitted, sent back or redoing), in claim order."""
    out: dict[str, int] = {}
    for assignment in uow.leases.assignments(task.id):
        if assignment.status in LABELER_STATES and assignment.user_id not in out.values():
            if assignment.status is AssignmentStatus.ACTIVE and task.status is not TaskStatus.REJECTED:
                continue  # still labeling: not part of the item yet
            out[uow.users.get(assignment.user_id).name] = assignment.user_id
    return out


def labeler_annotations(
    uow: UnitOfWork, asset_id: int, labelers: Mapping[str, int]
) -> dict[str, list[Annotation]]:
    return {
        name: [a for a in uow.annotations.list(asset_id, author_id=user_id) if a.source != CONSENSUS_SOURCE]
        for name, user_id in labelers.items()
    }


def store_agreement(db: Database, task_id: int) -> float | None:
    """Compute and store a consensus task's agreement (item_agreement's overall score)."""

    def load(uow: UnitOfWork) -> tuple[Task, Asset, Ontology, dict[str, list[Annotation]]]:
        task = uow.tasks.get(task_id)
        labelers = labeler_ids(uow, task)
        return (
            task,
            uow.assets.get(task.asset_id),
            current_ontology(uow, task.project_id),
            labeler_annotations(uow, task.asset_id, labelers),
        )

    task, asset, ontology, by_labeler = db.run(load, readonly=True)
    if task.required_labelers < 2 or len(by_labeler) < 2:
        return None
    overall = agreement_of(by_labeler, ontology, asset).overall
    db.run(lambda uow: uow.tasks.set_agreement(task_id, overall))
    return overall


def score_unscored(db: Database, project_id: int) -> None:
    """Store the agreement of waiting consensus items without one, if this connection sees all."""
    from app.storage.row_security import sees_all_labels

    def unscored(uow: UnitOfWork) -> list[int]:
        if not sees_all_labels(uow.session, project_id):
            return []
        waiting = uow.reviews.waiting(project_id, limit=None)
        return [t.id for t, _ in waiting if t.required_labelers > 1 and t.agreement is None]

    for task_id in db.run(unscored, readonly=True):
        try:
            store_agreement(db, task_id)
        except Exception:  # e.g. a label the ontology lost: the pane computes it live
            _log.warning("could not compute the agreement of task %s", task_id, exc_info=True)
