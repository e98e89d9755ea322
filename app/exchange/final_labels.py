"""Which annotations of which items an export holds (the ``labels``, ``status`` and
``include_prelabels`` options), and why: every pick carries the rule that made it, for
``provenance.json`` (app.exchange.provenance).

The final labels of an item (``labels="final"``, the default), by its status (app.core.item_status):

``accepted``
    The result of the review that closed it. A consensus chosen or merged then: the consensus
    labels (source ``consensus``). Fixed and accepted: the fixing reviewer's own labels where they
    made any (the editor's Fix saves the reviewer's labels, a labeler's copied as a start), else the
    labelers' labels as the reviewer edited them in place. Accepted as submitted: the labels of the
    labeler(s) whose submission was accepted. A consensus item accepted without a consensus label
    (e.g. accepted as relabeled after a requeue) has none: it is skipped, saying so.
``submitted``
    A single labeler's submission, not reviewed yet (the review state in provenance says so). A
    consensus item waiting for review has no final label yet.
``rejected``, ``new``, ``leased``, ``in_progress``
    Nothing: their labels are drafts (sent back, or not submitted yet).
``unqueued``, and ``new`` in a project whose queue nobody ever used
    Every item is queued on import, but a project may be labeled without claiming anything: while
    nobody has claimed an item of the project, the labels people made or imported (sources ``human``
    and ``import:*``) are final. Once the queue is used, only what went through it is final; an
    unqueued item's labels then count only when asked for with ``status="unqueued"``.

A person's label is one with source ``human``: drawn by them, or a pre-label they accepted or edited
(the editor stores it as theirs). Untouched model pre-labels and tracker output are never final:
``include_prelabels`` adds those of the exported items. A consensus a requeue superseded is deleted
(app.workflow.queue.requeue), so no rule can pick it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.core.annotations import HUMAN, Annotation
from app.core.errors import NotFoundError, ValidationError
from app.core.item_status import ItemStatus
from app.core.ontology import Ontology
from app.core.records import CONSENSUS_SOURCE, Asset, AssignmentStatus, Review, Task, Verdict
from app.exchange.label_rules import (
    ALL,
    CONSENSUS_RULE,
    FINAL,
    LABELER,
    LabelRule,
    is_person_made,
    is_prelabel,
    source_matches,
)
from app.exchange.pick_log import PickLog
from app.exchange.selection import ExportFilters, asset_display_path, expand_tracks

if TYPE_CHECKING:
    from app.storage.uow import UnitOfWork

#: the formats that archive everything: ``labels`` defaults to ``all`` there
ARCHIVES = ("project-json",)
PRELABEL_RULE = "untouched pre-label (include_prelabels)"
Keep = Callable[[Annotation], str | None]  # the rule that picks an annotation; None: left out


def select_assets(uow: UnitOfWork, project_id: int, dataset: str | None) -> list[Asset]:
    """The project's assets, or those of ``dataset`` (ValidationError naming the datasets there are).
    The status and consensus filters are decided per item, with the labels rule (LabelChooser)."""
    dataset_id = None
    if dataset is not None:
        datasets = uow.datasets.list(project_id)
        match = [d.id for d in datasets if d.name == dataset]
        if not match:
            raise ValidationError(
                f"the project has no dataset {dataset!r}; there are: {[d.name for d in datasets]}"
            )
        dataset_id = match[0]
    return list(uow.assets.list(project_id, dataset_id=dataset_id))


def _word(status: str) -> str:
    """The status word for people (``in progress``), also for a stored word outside the vocabulary."""
    try:
        return ItemStatus(status).label
    except ValueError:
        return status


def rule_for(filters: ExportFilters, fmt: str) -> LabelRule:
    """The labels rule of an export: ``filters.labels``, or the older ``labeler`` and ``consensus``
    filters it replaces (``labeler=NAME`` is ``labels="labeler:NAME"``, ``consensus="consensus"``
    is ``labels="source:consensus"`` on consensus items); ``final``, or ``all`` for an archive."""
    given = filters.labels not in (None, "")
    rule = LabelRule.parse(filters.labels if given else (ALL if fmt in ARCHIVES else FINAL))
    if filters.labeler is not None:
        by_name = LabelRule(LABELER, filters.labeler)
        if given and rule != by_name:
            raise ValidationError(
                f"labeler={filters.labeler!r} and labels={filters.labels!r} disagree; give one"
            )
        rule = by_name
    if filters.consensus_only:
        if given and rule.kind != FINAL and rule != CONSENSUS_RULE:
            raise ValidationError(
                f"consensus='consensus' exports consensus labels; labels={filters.labels!r} disagrees"
            )
        rule = CONSENSUS_RULE
    return rule


@dataclass(frozen=True)
class ItemState:
    """An item's place in the workflow, as provenance reports it."""

    status: str  # the word of app.core.item_status
    required_labelers: int | None = None  # None: never queued
    labelers: tuple[str, ...] = ()  # whose submissions the item holds now
    review: Review | None = None  # the latest review

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "required_labelers": self.required_labelers,
            "labelers": list(self.labelers),
            "review": None,
        }
        if self.review is not None:
            r = self.review
            out["review"] = {
                "id": r.id,
                "verdict": r.verdict.value,
                "reviewer": r.reviewer,
                "labeler": r.labeler,
                "at": r.created_at.astimezone(UTC).isoformat(),
                "consensus": r.details.get("consensus"),
            }
        return out


@dataclass(frozen=True)
class Decision:
    """What one item exports: ``keep`` picks annotations (None: nothing; ``skip`` says why)."""

    state: ItemState
    rule: str = ""  # the item's rule, for provenance
    keep: Keep | None = None
    skip: str = ""
    author_id: int | None = None  # narrows the query where the rule allows
    source: str | None = None


class LabelChooser:
    """Decides per item what an export holds; ``load``/``stored`` hand the picks to the format and
    record them in ``log`` for provenance. One per export, inside its read-only unit of work."""

    def __init__(
        self,
        uow: UnitOfWork,
        project_id: int,
        ontology: Ontology,
        filters: ExportFilters,
        fmt: str,
        *,
        now: datetime | None = None,
    ) -> None:
        self.uow, self.project_id, self.filters = uow, project_id, filters
        self.rule = rule_for(filters, fmt)
        self.wanted = filters.statuses()
        self.floor = filters.agreement_floor()
        self.classes = set(filters.classes)
        unknown = sorted(self.classes - {c.name for c in ontology.classes})
        if unknown:
            raise ValidationError(
                f"the ontology has no class {unknown}; known: {[c.name for c in ontology.classes]}"
            )
        self.labeler_id: int | None = None
        if self.rule.kind == LABELER:
            try:
                self.labeler_id = uow.users.get_by_name(self.rule.value).id
            except NotFoundError:
                raise ValidationError(f"there is no labeler called {self.rule.value!r}") from None
        self.tasks: dict[int, Task] = uow.tasks.by_asset(project_id)
        self.statuses = uow.activity.statuses(project_id, now or datetime.now(UTC)) if self.tasks else {}
        self.submitted: dict[int, list[str]] = defaultdict(list)  # task id -> labelers, claim order
        used = False
        for row in uow.activity.assignments(project_id) if self.tasks else []:
            used = True
            user_name, task_id, status = str(row[1]), int(row[2]), str(row[3])
            if status == AssignmentStatus.SUBMITTED.value and user_name not in self.submitted[task_id]:
                self.submitted[task_id].append(user_name)
        #: somebody claimed an item of this project: only what went through the queue is final
        self.queue_used = used
        self.decisions: dict[int, Decision] = {}
        self.log = PickLog()

    # --- which items -----------------------------------------------------------------------------
    def select(self, assets: Iterable[Asset]) -> tuple[list[Asset], list[tuple[str, str]]]:
        """The items that export something, and ``(item, why)`` for those left out whole."""
        kept: list[Asset] = []
        left: list[tuple[str, str]] = []
        for asset in assets:
            decision = self.decide(asset)
            if decision.keep is None:
                left.append((asset_display_path(asset), decision.skip))
            else:
                kept.append(asset)
        return kept, left

    def decide(self, asset: Asset) -> Decision:
        if asset.id not in self.decisions:
            self.decisions[asset.id] = self._decide(asset)
        return self.decisions[asset.id]

    def _decide(self, asset: Asset) -> Decision:
        task = self.tasks.get(asset.id)
        status = self.statuses.get(asset.id, ItemStatus.UNQUEUED.value)
        submitted = tuple(self.submitted.get(task.id, ())) if task is not None else ()
        needs_review = task is not None and status in (ItemStatus.ACCEPTED.value, ItemStatus.REJECTED.value)
        review = self.uow.reviews.latest(task.id) if needs_review and task is not None else None
        state = ItemState(status, task.required_labelers if task is not None else None, submitted, review)
        why = self._filtered_out(task, status)
        if why:
            return Decision(state, skip=why)
        if self.rule.kind == FINAL:
            return self._final(asset, task, state)
        return self._chosen(state)

    def _filtered_out(self, task: Task | None, status: str) -> str:
        """Why the status and consensus filters leave the item out ("" when they keep it)."""
        if self.wanted is not None and status != self.wanted.value:
            return f"its status is {_word(status)}, not {self.wanted.label} (status filter)"
        consensus_item = task is not None and task.required_labelers >= 2
        if self.filters.consensus_only and not consensus_item:
            return "not a consensus item (consensus filter)"
        if self.floor is not None and (
            task is None or task.agreement is None or task.agreement <= self.floor
        ):
            return f"its agreement is not above {self.floor} (consensus filter)"
        return ""

    # --- the explicit rules ------------------------------------------------------------------------
    def _chosen(self, state: ItemState) -> Decision:
        rule, prelabels = self.rule, self.filters.include_prelabels
        if rule.kind == ALL:
            return Decision(state, "every label", lambda a: "every label")
        if rule.kind == LABELER:
            mine, name = f"the labels of {rule.value}", rule.value

            def keep_mine(a: Annotation) -> str | None:
                if a.source == HUMAN:
                    return mine
                return (
                    f"a pre-label {name} ran (include_prelabels)"
                    if prelabels and is_prelabel(a.source)
                    else None
                )

            return Decision(state, mine, keep_mine, author_id=self.labeler_id)
        pattern, text = rule.value, f"source {rule.value}"

        def keep_source(a: Annotation) -> str | None:
            if source_matches(pattern, a.source):
                return text
            return PRELABEL_RULE if prelabels and is_prelabel(a.source) else None

        exact = pattern if pattern == CONSENSUS_SOURCE and not prelabels else None
        return Decision(state, text, keep_source, source=exact)

    # --- final labels ------------------------------------------------------------------------------
    def _final(self, asset: Asset, task: Task | None, state: ItemState) -> Decision:
        status = state.status
        if status in (ItemStatus.UNQUEUED.value, ItemStatus.NEW.value) and not self.queue_used:
            return self._people(state, "labels made without the labeling queue (nobody claimed an item)")
        if status == ItemStatus.UNQUEUED.value:
            if self.wanted is ItemStatus.UNQUEUED:
                return self._people(state, "labels of an item outside the labeling queue (status unqueued)")
            return Decision(
                state,
                skip="not in the labeling queue, which this project uses (status='unqueued' exports it)",
            )
        if status == ItemStatus.REJECTED.value:
            who = state.review.labeler if state.review is not None and state.review.labeler else "a labeler"
            return Decision(state, skip=f"rejected: review sent it back to {who}, its labels are not final")
        if status == ItemStatus.SUBMITTED.value:
            if task is not None and task.required_labelers >= 2:
                return Decision(state, skip="a consensus item waiting for review: no consensus label yet")
            return self._labelers(state, "single labeler submission, not reviewed yet")
        if status == ItemStatus.ACCEPTED.value:
            assert task is not None
            return self._accepted(asset, task, state)
        return Decision(state, skip=f"{_word(status)}: not submitted yet, its labels are drafts")

    def _accepted(self, asset: Asset, task: Task, state: ItemState) -> Decision:
        review = state.review
        tag = f"review #{review.id}" if review is not None else "no review recorded"
        consensus_item = task.required_labelers >= 2
        if review is not None and "consensus" in review.details:
            how = review.details["consensus"]
            if how == "labeler":
                text = f"consensus: the labels of {review.details.get('labeler')} chosen ({tag})"
            else:
                text = f"consensus merge ({how}) ({tag})"
            return self._with_prelabels(
                Decision(state, text, lambda a: text if a.source == CONSENSUS_SOURCE else None),
                source=CONSENSUS_SOURCE,
            )
        if review is not None and review.verdict is Verdict.FIXED:
            fixer = review.reviewer
            if fixer is not None and self._has_labels_of(asset, fixer):
                text = f"fixed and accepted by {fixer} ({tag}): the reviewer's labels"
                return self._with_prelabels(
                    Decision(state, text, lambda a: text if a.source == HUMAN and a.author == fixer else None)
                )
            if not consensus_item:
                return self._labelers(state, f"fixed in place and accepted ({tag})")
        if consensus_item:
            return Decision(
                state,
                skip="a consensus item accepted without a consensus label chosen or merged since it was "
                "last queued (labels='all' exports every labeler's)",
            )
        return self._labelers(state, f"accepted as submitted ({tag})")

    def _has_labels_of(self, asset: Asset, name: str) -> bool:
        try:
            user_id = self.uow.users.get_by_name(name).id
        except NotFoundError:
            return False
        return bool(self.uow.annotations.list(asset.id, author_id=user_id, source=HUMAN))

    def _labelers(self, state: ItemState, text: str) -> Decision:
        """The person-made labels of the labelers whose submission the item holds (any person's
        where none is recorded, e.g. a project restored without its assignments)."""
        names = set(state.labelers)

        def keep(a: Annotation) -> str | None:
            return text if a.source == HUMAN and (not names or a.author in names) else None

        return self._with_prelabels(Decision(state, text, keep))

    def _people(self, state: ItemState, text: str) -> Decision:
        return self._with_prelabels(
            Decision(state, text, lambda a: text if is_person_made(a.source) else None)
        )

    def _with_prelabels(self, decision: Decision, *, source: str | None = None) -> Decision:
        """``include_prelabels``: the item's untouched pre-labels too (any author)."""
        keep = decision.keep
        if not self.filters.include_prelabels or keep is None:
            return Decision(decision.state, decision.rule, keep, source=source)

        def with_them(a: Annotation) -> str | None:
            return keep(a) or (PRELABEL_RULE if is_prelabel(a.source) else None)

        return Decision(decision.state, decision.rule, with_them)

    # --- the annotations ---------------------------------------------------------------------------
    def stored(self, asset: Asset) -> list[Annotation]:
        """The item's picked annotations as stored (tracks not expanded), oldest first; the first
        call per item records them in ``log``."""
        decision = self.decide(asset)
        if decision.keep is None:
            return []
        picked: list[Annotation] = []
        rules: list[str] = []
        for ann in self.uow.annotations.list(asset.id, author_id=decision.author_id, source=decision.source):
            if self.classes and ann.label not in self.classes:
                continue
            why = decision.keep(ann)
            if why is not None:
                picked.append(ann)
                rules.append(why)
        if asset.id not in self.log:
            self.log.add(asset, decision.state.as_dict(), decision.rule, picked, rules)
        return picked

    def load(self, asset: Asset) -> list[Annotation]:
        """The picked annotations with every track expanded (what the formats write)."""
        return expand_tracks(asset, self.stored(asset))
