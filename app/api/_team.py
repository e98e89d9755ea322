"""Team work: comment threads, the labeling queue, and people's roles."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.api._project import ProjectBase
from app.core.errors import NotFoundError, PermissionDenied, ValidationError
from app.core.permissions import Action, allowed, effective_role
from app.core.records import Comment, Role, TaskStatus, Thread, ThreadStatus, User

if TYPE_CHECKING:
    from app.workflow.queue import Lease


class TeamMixin(ProjectBase):
    def comment(
        self, asset_id: int, body: str, *, frame: int = 0, x: float | None = None, y: float | None = None
    ) -> Thread:
        """Open a thread (an issue) on an asset, optionally pinned to a point of a frame; @name mentions."""
        self.require(Action.ANNOTATE)
        asset = self.asset(asset_id)
        if not 0 <= frame < max(asset.frame_count, 1):
            raise ValidationError(f"frame {frame} is not in asset {asset_id} (0..{asset.frame_count - 1})")
        with self.db.unit_of_work() as uow:
            thread = uow.threads.open(asset_id, self.user.id, body, frame=frame, x=x, y=y)
            uow.audit.record(self.user.id, "thread.open", "thread", thread.id, {"asset_id": asset_id})
            return thread

    def reply(self, thread_id: int, body: str) -> Comment:
        self.require(Action.ANNOTATE)
        self._thread_here(thread_id)
        with self.db.unit_of_work() as uow:
            return uow.threads.reply(thread_id, self.user.id, body)

    def resolve(self, thread_id: int, *, reopen: bool = False) -> Thread:
        """Close (or reopen) a thread: its author or a reviewer."""
        thread = self._thread_here(thread_id)
        if thread.author != self.user_name:
            self.require(Action.REVIEW)
        status = ThreadStatus.OPEN if reopen else ThreadStatus.RESOLVED
        with self.db.unit_of_work() as uow:
            changed = uow.threads.set_status(thread_id, status)
            uow.audit.record(self.user.id, f"thread.{status.value}", "thread", thread_id, None)
            return changed

    def threads(self, asset_id: int | None = None, *, open_only: bool = False) -> list[Thread]:
        """Comment threads of one asset, or of the whole project."""
        self.require(Action.VIEW)
        if asset_id is not None:
            self.asset(asset_id)
        with self.db.unit_of_work(readonly=True) as uow:
            found = uow.threads.list(
                asset_id, project_id=self.id, status=ThreadStatus.OPEN if open_only else None
            )
        return self._visible_threads(found)

    def open_thread_counts(self) -> dict[int, int]:
        """Open issues per asset id, shown beside the assets in queues and lists."""
        self.require(Action.VIEW)
        if not self.can(Action.SEE_ALL_LABELS):  # blind items: count only the threads shown
            counts: dict[int, int] = {}
            for thread in self.threads(open_only=True):
                counts[thread.asset_id] = counts.get(thread.asset_id, 0) + 1
            return counts
        with self.db.unit_of_work(readonly=True) as uow:
            return uow.threads.open_counts(self.id)

    def _visible_threads(self, threads: list[Thread]) -> list[Thread]:
        """Labelers stay blind on consensus items: another labeler's thread there (its pin and words
        describe their labels) shows only once the item is done. Own threads and those of reviewers
        and admins always show, so questions to a lead and the lead's answers get through."""
        if self.can(Action.SEE_ALL_LABELS):
            return threads
        others = {t.author for t in threads if t.author not in (None, self.user_name)}
        if not others:
            return threads
        with self.db.unit_of_work(readonly=True) as uow:
            labelers: set[str] = set()
            for name in others:
                assert name is not None
                user = uow.users.get_by_name(name)
                if not allowed(
                    effective_role(user.role, uow.users.role_in(user.id, self.id)), Action.SEE_ALL_LABELS
                ):
                    labelers.add(name)
            blind: dict[int, bool] = {}
            for asset_id in {t.asset_id for t in threads if t.author in labelers}:
                task = uow.tasks.for_asset(self.id, asset_id)
                blind[asset_id] = (
                    task is not None and task.required_labelers > 1 and task.status is not TaskStatus.DONE
                )
        return [t for t in threads if not (t.author in labelers and blind.get(t.asset_id, False))]

    def _thread_here(self, thread_id: int) -> Thread:
        with self.db.unit_of_work(readonly=True) as uow:
            thread = uow.threads.get(thread_id)
        self.asset(thread.asset_id)  # NotFoundError when the thread belongs to another project
        if not self._visible_threads([thread]):  # a blind item's thread reads as not there
            raise NotFoundError(f"comment thread {thread_id} does not exist")
        return thread

    # --- the labeling queue ---------------------------------------------------------------
    def claim(self, batch: int | None = None) -> list[Lease]:
        """Reserve the next items for the acting user (their live leases first), highest priority first."""
        from app.workflow.queue import claim

        self.require(Action.ANNOTATE)
        return claim(self.db, self.id, self.user.id, batch=batch)

    def submit(self, lease: Lease) -> None:
        """Done with an item; a late submit on an expired lease is refused (LeaseExpired)."""
        from app.workflow.queue import submit

        self._own_lease(lease)
        submit(self.db, lease)

    def skip(self, lease: Lease, reason: str = "") -> None:
        from app.workflow.queue import skip

        self._own_lease(lease)
        skip(self.db, lease, reason=reason)

    def renew(self, lease: Lease) -> Lease:
        from app.workflow.queue import renew

        self._own_lease(lease)
        return renew(self.db, lease)

    def queue_stats(self) -> dict[str, int]:
        """How many items have each status (``new``, ``leased``, ``in_progress``, ``submitted``,
        ``rejected``, ``accepted``, ``unqueued``: app.core.item_status says what each means) and
        ``total`` queued: the numbers the queue panel and ``sitelabel activity`` show."""
        from app.workflow.queue import queue_stats

        self.require(Action.VIEW)
        return queue_stats(self.db, self.id)

    def _own_lease(self, lease: Lease) -> None:
        self.require(Action.ANNOTATE)
        if lease.user_id != self.user.id:
            raise PermissionDenied(f"this lease belongs to another labeler, not {self.user_name}")

    def set_member(self, name: str, role: Role | str) -> User:
        """Add ``name`` to this project with ``role`` (or change it); project admins and above."""
        self.require(Action.MANAGE_PEOPLE)
        wanted = Role(role)
        if wanted is Role.ADMIN:
            raise ValidationError(
                "admin is a site-wide role: use set_site_role (sitelabel users add --role admin)"
            )
        with self.db.unit_of_work() as uow:
            target = uow.users.ensure(name)
            uow.users.set_role(target.id, wanted, project_id=self.id)
            uow.audit.record(
                self.user.id,
                "user.project_role",
                "user",
                target.id,
                {"project": self.id, "role": wanted.value},
            )
            return target

    def users(self) -> list[tuple[User, Role | None]]:
        self.require(Action.VIEW)
        with self.db.unit_of_work() as uow:
            return [(u, uow.users.role_in(u.id, self.id)) for u in uow.users.list()]
