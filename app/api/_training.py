"""Training data without an export: labelled frames with their pixels, and label volumes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from app.api._project import ProjectBase
from app.core.errors import ValidationError
from app.core.permissions import Action

if TYPE_CHECKING:
    from app.exchange.label_stream import LabelledFrame, LabelVolume


class TrainingMixin(ProjectBase):
    def iter_labels(
        self,
        final: bool = True,
        split: str | None = None,
        classes: Sequence[str] | None = None,
        *,
        include_empty: bool = False,
    ) -> Iterator[LabelledFrame]:
        """Yield ``(asset, frame, image, labels)`` for every frame holding selected labels, streamed
        (a page of assets at a time; one frame decoded at a time)::

            counts = Counter()
            for asset, frame, image, labels in project.iter_labels(classes=["lesion"]):
                for label in labels:
                    counts[label["label"]] += 1

        ``image`` is the frame as the canvas reads it (app.sources: 16-bit DICOM stays 16-bit,
        video frames RGB; read-only, copy before changing it); ``labels`` are the annotation dicts
        :meth:`annotations` returns (masks as full-frame bool arrays, tracks expanded to every
        frame they cover). ``final=True``: each item's final labels, exactly what a default export
        holds (the accepted review result, the consensus label or a single labeler's submission;
        never untouched model pre-labels or work in progress; the rule in full:
        app.exchange.final_labels); ``final=False``: every label.
        ``classes``: only these classes. ``split``: only the assets of that stored split (train,
        val or test: :meth:`splits`, the split every export uses; assets without one get one
        first). ``include_empty``: also the frames of selected items without labels.
        Reviewers and above (it reads everyone's labels, as an export does).
        """
        from app.exchange.label_stream import iter_labels

        self.require(Action.EXPORT)
        asset_ids = self._split_assets(split)
        return iter_labels(
            self.db,
            self.id,
            roots=self.config.all_data_roots,
            max_pixels=self.config.max_image_pixels,
            final=final,
            classes=classes,
            asset_ids=asset_ids,
            include_empty=include_empty,
        )

    def label_volume(
        self,
        asset_id: int,
        classes: Sequence[str] | None = None,
        mode: str = "index",
        *,
        priority: Sequence[str] = (),
        final: bool = True,
    ) -> LabelVolume:
        """A series' labels as one volume, with its class list: ``volume, classes = ...``.

        ``mode="index"``: ``(F, H, W)`` uint16, value k is ``classes[k - 1]`` (0 background); where
        classes overlap the class first in ``priority`` wins (default: a class later in the
        ontology), as in the NIfTI and png-masks exports. ``mode="one-hot"``: ``(C, F, H, W)``
        bool, channel c is ``classes[c]``, every class's pixels kept. ``classes``: which classes, in
        this order (default: every class with pixels, in ontology order). ``final`` as in
        :meth:`iter_labels`; an item without final labels raises ValidationError.
        """
        from app.exchange.label_stream import label_volume

        self.require(Action.EXPORT)
        self.asset(asset_id)  # NotFoundError for another project's asset
        return label_volume(
            self.db, self.id, asset_id, classes=classes, mode=mode, priority=priority, final=final
        )

    def _split_assets(self, split: str | None) -> frozenset[int] | None:
        """The assets of a stored split; assets without one are assigned first, as an export does."""
        if split is None:
            return None
        from app.core.splits import SPLITS
        from app.exchange.splits import assign_splits

        if split not in SPLITS:
            raise ValidationError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        summary = assign_splits(self.db, self.id, user_id=self.user.id)
        return frozenset(a.asset_id for a in summary.assignments if a.split == split)
