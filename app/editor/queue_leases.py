"""Queue mode's round trips to the database: claiming items, Submit, Skip and lease renewal.

Each runs on the thread pool; its answer goes to the batch (:class:`app.workflow.queue_batch.
QueueBatch`), which decides the items' states, and the controller shows what the batch returns
(:class:`app.editor.queue_items.BatchDriver`: this module does not know the controller).

What the labeler sees while an answer is awaited:
- Submit with edits saves first; once saved the next item opens at once and the submit itself
  is answered in the background (a failure marks the item "not submitted", to submit again).
- Submit with nothing to save, and Skip, wait for the database's answer with the item on screen:
  no save proved the database reachable, and offline the item must stay where it is.
- Submit is refused for an item whose image never reached the screen (still opening, or its open
  failed): nobody has seen it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from app.core.errors import SitelabelError
from app.editor.queue_items import BatchDriver, offline_message, still_opening_message, unopened_message
from app.editor.workers import submit
from app.workflow.editing import SaveState, unreachable
from app.workflow.queue import Lease, LeaseExpired
from app.workflow.queue_batch import Answer, ClaimRequest, LeaseAnswer, QueueItem, Step

if TYPE_CHECKING:
    from app.api import Project
    from app.workflow.editing import EditSession, SaveResult


@dataclass(frozen=True)
class Claimed:
    items: list[QueueItem]
    stats: dict[str, int]


@dataclass(frozen=True)
class Renewed:
    leases: dict[int, Lease | None]  # by item key; None: the lease ran out
    stats: dict[str, int]


# --- the jobs (run on a worker) -----------------------------------------------------------------
def claim_items(project: Project, request: ClaimRequest) -> Claimed:
    """The user's batch (held leases first), minus the items already in the panel."""
    leases = [lease for lease in project.claim(request.size) if lease.assignment_id not in request.known]
    issues = project.open_thread_counts() if leases else {}
    items = [
        QueueItem(lease, project.asset(lease.asset_id), issues.get(lease.asset_id, 0)) for lease in leases
    ]
    return Claimed(items, project.queue_stats())


def lease_answer(project: Project, action: Callable[[], None]) -> LeaseAnswer:
    """Submit or skip: an expired lease (the item is back in the pool) and an unreachable database
    are answers the batch handles; anything else is a failure."""
    try:
        action()
    except LeaseExpired as exc:
        return LeaseAnswer(Answer.EXPIRED, str(exc), project.queue_stats())
    except SitelabelError as exc:
        if not unreachable(exc):
            raise
        return LeaseAnswer(Answer.OFFLINE, str(exc))
    return LeaseAnswer(Answer.DONE, stats=project.queue_stats())


def renew_leases(project: Project, leases: Sequence[tuple[int, Lease]]) -> Renewed:
    """Renew each (item key, lease); a lease that ran out comes back as None."""
    out: dict[int, Lease | None] = {}
    for key, lease in leases:
        try:
            out[key] = project.renew(lease)
        except LeaseExpired:
            out[key] = None
    return Renewed(out, project.queue_stats())  # the counts move as others work: keep them fresh


def _failed(message: str) -> LeaseAnswer:
    return LeaseAnswer(Answer.FAILED, message)


# --- the binding ----------------------------------------------------------------------------------
class LeaseActions:
    """Claims, Submit, Skip and renewal for ``driver``'s batch (see the module doc)."""

    def __init__(self, driver: BatchDriver) -> None:
        self.driver = driver

    def _run(self, fn: Callable[[], LeaseAnswer], answered: Callable[[LeaseAnswer], Step]) -> None:
        """Run a submit or a skip; its answer (a worker failure too) goes to ``answered``."""
        apply = self.driver.apply
        submit(fn, lambda reply: apply(answered(reply)), lambda message: apply(answered(_failed(message))))

    # --- claims ----------------------------------------------------------------------------------
    def claim(self, *, refill: bool = False) -> None:
        """Claim items for the batch (``refill``: only when few are left); one claim at a time."""
        d = self.driver
        request = d.batch.begin_claim(refill=refill)
        if request is None:
            return
        submit(
            partial(claim_items, d.project, request),
            lambda claimed: d.apply(d.batch.claimed(claimed.items, claimed.stats)),
            lambda message: d.apply(d.batch.claim_failed(message)),
        )

    # --- submit ----------------------------------------------------------------------------------
    def submit(self) -> None:
        """See QueueController.submit."""
        d = self.driver
        item = d.batch.item
        if item is None:
            d.apply(Step(notice="Nothing to submit: start labeling first (Ctrl+Shift+L)."))
            return
        if d.busy:
            return
        unseen = self._unseen(item)
        if unseen is not None:
            d.apply(Step(notice=unseen))
            return
        session = d.host.editing.session
        offline = session is not None and session.status is SaveState.OFFLINE
        if session is None or (session.pending_count == 0 and not session.conflicts and not offline):
            # no save just showed the database reachable: the item stays on screen until the
            # submit is answered (a Submit with edits saves first, and that save is the proof)
            d.batch.begin_submit(save=False)
            d.apply(Step())
            key, lease = item.key, item.lease
            self._run(partial(self._submit_job, lease), partial(d.batch.submit_answered, key))
            return
        d.batch.begin_submit(save=True)
        d.apply(Step())
        submit(session.flush, partial(self._flushed, item.key, session), self._flush_failed)

    def _unseen(self, item: QueueItem) -> str | None:
        """Why Submit must not take ``item``: its image has not been on screen since it was opened."""
        host = self.driver.host
        if host.is_opening(item.asset.id):
            return still_opening_message(item.name)
        if host.open_failure(item.asset.id) is not None:
            return unopened_message(item.name)
        return None

    def _submit_job(self, lease: Lease) -> LeaseAnswer:
        project = self.driver.project
        return lease_answer(project, lambda: project.submit(lease))

    def _flushed(self, key: int, session: EditSession, result: SaveResult) -> None:
        d = self.driver
        offline = session.status is SaveState.OFFLINE
        if result.error and offline:  # the item stays open; nothing is lost
            d.batch.save_refused(offline=True)
            d.apply(Step(notice=offline_message(session.edits_waiting)))
        elif result.error:
            d.batch.save_refused(offline=False)
            d.apply(
                Step(
                    notice=f"Not submitted: the edits could not be saved ({result.error}). They are kept; "
                    "try again."
                )
            )
        elif d.host.editing.saves.show_conflicts(session):
            d.batch.save_refused(offline=False)
            d.apply(
                Step(
                    notice="Not submitted: a save conflict had to be resolved first. Submit again when done."
                )
            )
        else:
            item = d.batch.saved(key)
            if item is None:  # the item was dropped meanwhile (its lease expired)
                d.apply(Step())
                return
            self._run(partial(self._submit_job, item.lease), partial(d.batch.submit_answered, key))
            d.apply(Step(advance=True))

    def _flush_failed(self, message: str) -> None:
        self.driver.batch.save_refused(offline=False)
        self.driver.apply(
            Step(notice=f"Not submitted: the edits could not be saved ({message}). They are kept; try again.")
        )

    # --- skip ------------------------------------------------------------------------------------
    def skip(self, reason: str = "") -> None:
        """See QueueController.skip. The item stays current until the database took the skip:
        offline it stays on screen with a message, and Skip works again once the server is back."""
        d = self.driver
        if d.batch.item is None or d.busy:
            return
        item = d.batch.begin_skip()
        d.apply(Step())
        project, lease, why = d.project, item.lease, reason.strip()
        job = partial(lease_answer, project, lambda: project.skip(lease, why))
        self._run(job, partial(d.batch.skip_answered, item.key))

    # --- lease renewal ---------------------------------------------------------------------------
    def renew(self) -> None:
        """See QueueController.renew."""
        d = self.driver
        held = d.batch.begin_renew()
        if held is None:
            return  # a renewal is running
        if not held:
            d.apply(Step(renewing=False))
            return
        submit(
            partial(renew_leases, d.project, held),
            lambda renewed: d.apply(d.batch.renewed(renewed.leases, renewed.stats)),
            lambda message: d.apply(d.batch.renew_failed(message)),
        )
