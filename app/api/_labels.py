"""Annotations: uploads (pre-labels), reads with labeler blindness, conflict-checked saves, renders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from app.api._project import ProjectBase
from app.core.annotations import HUMAN, Annotation
from app.core.errors import ValidationError
from app.core.permissions import Action
from app.core.records import CONSENSUS_SOURCE, TaskStatus

if TYPE_CHECKING:
    from app.storage import Database


class LabelsMixin(ProjectBase):
    def upload_annotations(
        self,
        asset_id: int,
        annotations: Sequence[Mapping[str, Any]],
        *,
        source: str = HUMAN,
        confidence: float | None = None,
    ) -> list[int]:
        """Store annotations (e.g. model pre-labels, ``source="model:NAME@VER"``); returns their ids.

        All are checked against the ontology first; nothing is stored unless all fit.
        """
        self.require(Action.ANNOTATE)
        asset = self.asset(asset_id)
        ontology = self.ontology
        frame_shape = (asset.height, asset.width)
        parsed: list[Annotation] = []
        for index, raw in enumerate(annotations):
            try:
                ann = Annotation.from_dict(
                    raw,
                    frame_shape=frame_shape,
                    source=raw.get("source", source),
                    confidence=raw.get("confidence", confidence),
                )
            except (ValidationError, TypeError, ValueError) as exc:
                raise ValidationError(f"annotation #{index + 1}: {exc}") from None
            if ann.frame >= max(asset.frame_count, 1):
                raise ValidationError(
                    f"annotation #{index + 1}: frame {ann.frame} is past the last frame "
                    f"({asset.frame_count - 1}) of asset {asset_id}"
                )
            if ontology.classes:
                problems = ontology.check(ann)
                if problems:
                    raise ValidationError(f"annotation #{index + 1}: " + "; ".join(problems))
            parsed.append(ann)
        with self.db.unit_of_work() as uow:
            stored = uow.annotations.add_many(asset_id, parsed, self.user.id)
        return [a.id for a in stored if a.id is not None]

    def annotations(
        self, asset_id: int, frame: int | None = None, labeler: str | None = None
    ) -> list[dict[str, Any]]:
        """The current annotations of an asset as plain dicts (masks full-frame bool arrays)."""
        return [a.to_dict() for a in self.annotation_objects(asset_id, frame=frame, labeler=labeler)]

    def annotation_objects(
        self, asset_id: int, frame: int | None = None, labeler: str | None = None
    ) -> list[Annotation]:
        """Reviewers and above see everyone's labels; a labeler sees their own and machine-made ones
        (model pre-labels, imports), so labelers stay blind to each other until review."""
        self.asset(asset_id)
        see_all = self.can(Action.SEE_ALL_LABELS)
        if labeler is not None and labeler != self.user_name and not see_all:
            self.require(Action.SEE_ALL_LABELS)
        with self.db.unit_of_work() as uow:
            author_id = uow.users.get_by_name(labeler).id if labeler else None
            found = list(uow.annotations.list(asset_id, frame=frame, author_id=author_id))
        if see_all:
            return found
        # consensus labels are shown to labelers only while the item is done: a requeued item is
        # labeled again blind, without the earlier verdict to copy from
        done = task_done(self.db, self.id, asset_id)
        return [
            a
            for a in found
            if a.author == self.user_name or (a.source != HUMAN and (a.source != CONSENSUS_SOURCE or done))
        ]

    def save_annotation(self, annotation: Annotation) -> Annotation:
        """Insert a new annotation or update one (conflict-checked against its version)."""
        self._require_edit(annotation)
        with self.db.unit_of_work() as uow:
            if annotation.id is None:
                if annotation.asset_id is None:
                    raise ValidationError("a new annotation needs its asset_id")
                return uow.annotations.add(annotation.asset_id, annotation, self.user.id)
            return uow.annotations.update(annotation, editor_id=self.user.id)

    def delete_annotation(self, annotation: Annotation) -> None:
        if annotation.id is None:
            raise ValidationError("only a saved annotation can be deleted")
        self._require_edit(annotation)
        with self.db.unit_of_work() as uow:
            uow.annotations.delete(annotation.id, annotation.version, user_id=self.user.id)

    def _require_edit(self, annotation: Annotation) -> None:
        """Anyone labeling may change their own labels; changing someone else's is a reviewer's fix."""
        self.require(Action.ANNOTATE)
        if annotation.id is None:
            if annotation.asset_id is not None:
                self.asset(annotation.asset_id)  # NotFoundError for another project's asset
            return
        with self.db.unit_of_work(readonly=True) as uow:
            stored = uow.annotations.get(annotation.id)
        # the stored row decides, not what the caller passed: it may name another project's asset
        if stored.asset_id is None or (annotation.asset_id not in (None, stored.asset_id)):
            raise ValidationError(f"annotation {annotation.id} belongs to asset {stored.asset_id}")
        self.asset(stored.asset_id)
        if stored.author not in (None, self.user_name):
            self.require(Action.REVIEW)

    def render(self, asset_id: int, frame: int = 0, *, labeler: str | None = None) -> npt.NDArray[np.uint8]:
        """The frame with its annotations drawn as the canvas shows them: RGBA uint8 (H, W, 4)."""
        from app.exchange.render import render_asset

        self.asset(asset_id)
        if not self.can(Action.SEE_ALL_LABELS):  # a labeler's render shows their own labels only
            if labeler not in (None, self.user_name):
                self.require(Action.SEE_ALL_LABELS)
            labeler = self.user_name
        with self.db.unit_of_work() as uow:
            author_id = uow.users.get_by_name(labeler).id if labeler else None
        return render_asset(
            self.db,
            self.id,
            asset_id,
            frame=frame,
            roots=self.config.all_data_roots,
            max_pixels=self.config.max_image_pixels,
            author_id=author_id,
        )


def task_done(db: Database, project_id: int, asset_id: int) -> bool:
    """Whether the asset's labeling task is finished (reviewed and accepted)."""
    with db.unit_of_work(readonly=True) as uow:
        task = uow.tasks.for_asset(project_id, asset_id)
    return task is not None and task.status is TaskStatus.DONE
