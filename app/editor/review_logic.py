"""The review pane's state and rules, usable without the widget (3D Slicer's Logic): which item is
open, the mode (reviewing, fixing, a merge preview), whether a decision is being stored, and what
each decision sends to the review API. No Qt: the pane (:mod:`app.editor.review_pane`) and its
decision controls (:mod:`app.editor.review_decisions`) show what this object decides, and
``tests/unit/test_review_logic.py`` checks it without a display.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from app.core.annotations import HUMAN, Annotation, Kind
from app.core.commands import AddAnnotation, Command, PaintCommand
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.core.records import Asset, Review
from app.workflow.consensus import Consensus, Method
from app.workflow.review import ReviewItem

if TYPE_CHECKING:
    from app.api import Project

QUEUE_LIMIT = 200
NO_ITEM = "Open an item of the review queue first."
NO_REASON = "A rejection needs a reason for the labeler."
STILL_OPENING = "The item is still opening on the canvas; try again in a moment."
NOT_SAVED = "Your fix is not saved yet (see the save status); resolve that, then confirm again."
FIX_TEXT = (
    "Fixing: correct the labels with the tools (they are saved as your labels; a labeler's "
    "can be copied as a start), then confirm to save and accept."
)


# --- the data the pane shows ---------------------------------------------------------------------------
def asset_name(asset: Asset) -> str:
    return asset.rel_path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class QueueEntry:
    """One row of the review queue."""

    asset_id: int
    name: str
    labelers: tuple[str, ...]
    agreement: float | None  # None for single-labeler items
    open_threads: int


def status_text(item: ReviewItem) -> str:
    """One line about where the item stands: its status and the latest decision, if any."""
    text = item.task.status.value
    review = item.latest_review
    if review is not None:
        who = review.reviewer or "a removed user"
        text += f"; last review: {review.verdict.value} by {who}"
        if review.note:
            text += f" ({review.note})"
    return text


def item_title(item: ReviewItem) -> str:
    """The pane's heading for an open item: name, how many labelers, where it stands."""
    n = len(item.labelers)
    return f"{asset_name(item.asset)}  -  {n} labeler{'s' if n != 1 else ''}  -  {status_text(item)}"


def merge_text(method: Method, consensus: Consensus) -> str:
    """The confirm bar's text over a merge preview (ties and the classes the ontology does not let
    the merge write are named)."""
    ties = ", ".join(f"{label} (frame {frame + 1})" for label, frame in consensus.ties)
    text = f"Merge preview ({method}): white is the consensus. Confirm stores it and accepts."
    if ties:
        text += f" Tied classifications left out: {ties}."
    if consensus.skipped:
        skipped = ", ".join(sorted({f"{label} (frame {frame + 1})" for label, frame, _ in consensus.skipped}))
        text += f" Left out, as the ontology does not allow them: {skipped}."
    return text


class ReviewSource:
    """The pane's door to the review API; called on worker threads, touches no widget."""

    DECISIONS = frozenset({"accept", "reject", "fix_and_accept", "choose_consensus", "merge_consensus"})

    def __init__(self, project: Project) -> None:
        self.project = project

    def queue(self, limit: int = QUEUE_LIMIT) -> list[QueueEntry]:
        """Items waiting for review, lowest agreement first (the API's order)."""
        p = self.project
        return [
            QueueEntry(e.asset_id, asset_name(p.asset(e.asset_id)), e.labelers, e.agreement, e.open_threads)
            for e in p.review_queue(limit=limit)
        ]

    def item(self, asset_id: int) -> ReviewItem:
        return self.project.review_item(asset_id)

    def decide(self, verb: str, asset_id: int, **kwargs: Any) -> Review:
        if verb not in self.DECISIONS:
            raise ValidationError(f"{verb!r} is not a review decision")
        decision: Callable[..., Review] = getattr(self.project, verb)
        return decision(asset_id, **kwargs)


def fix_commands(annotations: Sequence[Annotation], ontology: Ontology, asset: Asset) -> list[Command]:
    """Commands copying a labeler's annotations into the reviewer's document (Fix from labeler).

    Plain human masks go into the label layer (so brush and eraser can correct them); everything
    else becomes a new vector annotation of the reviewer's.
    """
    shape = (asset.height, asset.width)
    names = {c.name for c in ontology.classes}
    commands: list[Command] = []
    for ann in annotations:
        if not 0 <= ann.frame < max(asset.frame_count, 1):
            continue
        m = ann.mask
        if (
            ann.kind is Kind.MASK
            and m is not None
            and not ann.attributes
            and ann.label in names
            and m.frame_shape == shape
        ):
            patch = (m.y0, m.x0, m.bits)
            commands.append(PaintCommand(ann.frame, [patch], ontology.index_of(ann.label), "Copy mask"))
        else:
            copy = ann.evolve(id=None, version=0, author=None, source=HUMAN, asset_id=asset.id)
            commands.append(AddAnnotation(copy))
    return commands


# --- the state -----------------------------------------------------------------------------------------
class Mode(StrEnum):
    REVIEW = "review"  # looking, deciding
    FIX = "fix"  # the reviewer edits the item with the tools, then confirms
    MERGE = "merge"  # a consensus preview is shown until confirmed or cancelled


@dataclass(frozen=True)
class Decision:
    """A verdict to store through :meth:`ReviewSource.decide` (the API method ``verb``)."""

    verb: str
    asset_id: int
    name: str  # the item's file name, for the messages
    done: str  # what happened, for the message once it is stored
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def done_text(self) -> str:
        return f"{self.name}: {self.done}."


@dataclass(frozen=True)
class Refusal:
    """Why a decision or a mode cannot start now (shown as an error)."""

    text: str


Step = Decision | Refusal | None  # None: nothing to do (a decision is being stored, wrong mode)


class SaveState(Protocol):
    """What confirming a fix asks of the reviewer's edit session."""

    @property
    def conflicts(self) -> Sized: ...

    @property
    def pending_count(self) -> int: ...


class ReviewLogic:
    """The open item, the mode and the decision in flight; each method says what the widget does."""

    def __init__(self, ontology: Ontology) -> None:
        self.ontology = ontology  # the project's: copied labels take its class indices
        self.item: ReviewItem | None = None
        self.mode = Mode.REVIEW
        self.preview: Consensus | None = None  # the consensus shown while MERGE
        self.deciding = False  # a decision is being stored: further ones wait for it

    # --- the item ----------------------------------------------------------------------------------
    def is_open(self, asset_id: int) -> bool:
        return self.item is not None and self.item.asset.id == asset_id

    def open(self, item: ReviewItem) -> None:
        self.item = item

    def close(self) -> None:
        self.item = None

    @property
    def reviewing(self) -> bool:
        """An item is open and neither fixed nor previewed."""
        return self.item is not None and self.mode is Mode.REVIEW

    @property
    def ready(self) -> bool:
        """Accept, reject and fix may start (the buttons are enabled)."""
        return self.reviewing and not self.deciding

    @property
    def can_choose(self) -> bool:
        """Consensus from one labeler needs two of them to choose from."""
        return self.reviewing and self.item is not None and len(self.item.labelers) >= 2

    @property
    def can_preview(self) -> bool:
        return self.item is not None and self.mode is not Mode.FIX and len(self.item.labelers) >= 2

    def looking_only(self, shown: tuple[int, int] | None) -> bool:
        """Reviewing is looking: while the canvas shows the open item (``shown``: asset id, frame)
        and no fix runs, no tool may be on it (a stray click must not draw)."""
        return (
            self.mode is not Mode.FIX
            and self.item is not None
            and shown is not None
            and shown[0] == self.item.asset.id
        )

    # --- decisions ---------------------------------------------------------------------------------
    def _begin(self, verb: str, done: str, **kwargs: Any) -> Step:
        if self.deciding:
            return None
        if self.item is None:
            return Refusal(NO_ITEM)
        self.deciding = True
        return Decision(verb, self.item.asset.id, asset_name(self.item.asset), done, kwargs)

    def accept(self, note: str) -> Step:
        if self.mode is not Mode.REVIEW:
            return None
        return self._begin("accept", "accepted", note=note.strip())

    def reject(self, labeler: str, reason: str) -> Step:
        if not reason.strip():
            return Refusal(NO_REASON)
        return self._begin("reject", f"sent back to {labeler}", labeler=labeler, reason=reason.strip())

    def choose(self, labeler: str) -> Step:
        return self._begin("choose_consensus", f"consensus taken from {labeler}", labeler=labeler)

    def confirm(self, note: str, session: SaveState | None) -> Step:
        """Store the fix (once the reviewer's edit ``session``, already told to save, has nothing
        left to write) or the merge previewed."""
        if self.mode is Mode.FIX:
            if session is not None and (session.conflicts or session.pending_count):
                return Refusal(NOT_SAVED)
            return self._begin("fix_and_accept", "fixed and accepted", note=note.strip())
        if self.mode is Mode.MERGE and self.preview is not None:
            method = self.preview.method
            return self._begin("merge_consensus", f"merged by {method} and accepted", method=method)
        return None

    def settled(self) -> None:
        """The decision in flight was stored or refused: others may start."""
        self.deciding = False

    # --- fix and merge -----------------------------------------------------------------------------
    def show_preview(self, method: Method, consensus: Consensus) -> str:
        """Enter the merge preview; returns the confirm bar's text."""
        self.mode, self.preview = Mode.MERGE, consensus
        return merge_text(method, consensus)

    def start_fix(self, session_asset: int | None) -> str | Refusal | None:
        """Enter fixing when the reviewer's edit session (on ``session_asset``) holds the open item;
        returns the confirm bar's text, or why not (None: no item in review)."""
        if self.item is None or self.mode is not Mode.REVIEW:
            return None
        if session_asset != self.item.asset.id:
            return Refusal(STILL_OPENING)
        self.mode = Mode.FIX
        return FIX_TEXT

    def copy_commands(self, labeler: str, session_asset: int | None) -> list[Command] | None:
        """The commands copying ``labeler``'s labels into the reviewer's session (None: nothing to copy
        into, or no such labeler)."""
        item = self.item
        if item is None or session_asset != item.asset.id or labeler not in item.annotations:
            return None
        return fix_commands(item.annotations[labeler], self.ontology, item.asset)

    def leave_mode(self) -> bool:
        """Back to reviewing; True when a merge preview was shown (its overlay goes)."""
        was_merge = self.mode is Mode.MERGE
        self.mode, self.preview = Mode.REVIEW, None
        return was_merge
