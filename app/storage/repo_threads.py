"""Comment threads (issues) on assets: pinned to a frame and point, replies, resolve/reopen."""

from __future__ import annotations

import builtins
import re
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import NotFoundError, ValidationError
from app.core.records import Comment, Thread, ThreadStatus
from app.storage.tables import AssetRow, CommentRow, ThreadRow, UserRow

_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_.\-]+)")
MAX_BODY = 20_000
_CHUNK = 500  # thread ids per IN (...): well under SQLite's bound-parameter limit


def mentions_in(body: str) -> tuple[str, ...]:
    """User names written as @name, in order, without repeats."""
    return tuple(dict.fromkeys(_MENTION.findall(body)))


class ThreadRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def open(
        self,
        asset_id: int,
        author_id: int | None,
        body: str,
        *,
        frame: int = 0,
        x: float | None = None,
        y: float | None = None,
    ) -> Thread:
        if self._s.get(AssetRow, asset_id) is None:
            raise NotFoundError(f"asset {asset_id} does not exist")
        row = ThreadRow(
            asset_id=asset_id, frame=frame, x=x, y=y, status=ThreadStatus.OPEN.value, author_id=author_id
        )
        self._s.add(row)
        self._s.flush()
        self.reply(row.id, author_id, body)
        return self.get(row.id)

    def reply(self, thread_id: int, author_id: int | None, body: str) -> Comment:
        text = body.strip()
        if not text:
            raise ValidationError("a comment needs some text")
        if len(text) > MAX_BODY:
            raise ValidationError(f"a comment may be at most {MAX_BODY} characters")
        self._row(thread_id)
        row = CommentRow(thread_id=thread_id, author_id=author_id, body=text)
        self._s.add(row)
        self._s.flush()
        return self._comment(row, self._name(author_id))

    def set_status(self, thread_id: int, status: ThreadStatus) -> Thread:
        row = self._row(thread_id)
        row.status = status.value
        row.resolved_at = datetime.now(UTC) if status is ThreadStatus.RESOLVED else None
        self._s.flush()
        return self.get(thread_id)

    def get(self, thread_id: int) -> Thread:
        row = self._row(thread_id)
        return self._thread(row)

    def list(
        self,
        asset_id: int | None = None,
        *,
        project_id: int | None = None,
        status: ThreadStatus | None = None,
    ) -> builtins.list[Thread]:
        query = select(ThreadRow)
        if asset_id is not None:
            query = query.where(ThreadRow.asset_id == asset_id)
        if project_id is not None:
            query = query.join(AssetRow, AssetRow.id == ThreadRow.asset_id).where(
                AssetRow.project_id == project_id
            )
        if status is not None:
            query = query.where(ThreadRow.status == status.value)
        return self._threads(builtins.list(self._s.execute(query.order_by(ThreadRow.id)).scalars()))

    def open_counts(self, project_id: int) -> dict[int, int]:
        """Open threads per asset, for the queue and review lists."""
        rows = self._s.execute(
            select(ThreadRow.asset_id, func.count())
            .join(AssetRow, AssetRow.id == ThreadRow.asset_id)
            .where(AssetRow.project_id == project_id, ThreadRow.status == ThreadStatus.OPEN.value)
            .group_by(ThreadRow.asset_id)
        ).all()
        return {int(asset_id): int(count) for asset_id, count in rows}

    # --- mapping ------------------------------------------------------------------------------
    def _row(self, thread_id: int) -> ThreadRow:
        row = self._s.get(ThreadRow, thread_id)
        if row is None:
            raise NotFoundError(f"comment thread {thread_id} does not exist")
        return row

    def _name(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        user = self._s.get(UserRow, user_id)
        return None if user is None else user.name

    @staticmethod
    def _comment(row: CommentRow, author: str | None) -> Comment:
        return Comment(row.id, row.thread_id, author, row.body, row.created_at, mentions_in(row.body))

    def _thread(self, row: ThreadRow) -> Thread:
        return self._threads([row])[0]

    def _threads(self, rows: builtins.list[ThreadRow]) -> builtins.list[Thread]:
        """Threads with their comments: one query for all the comments (not one per thread)."""
        by_thread: dict[int, builtins.list[Comment]] = {row.id: [] for row in rows}
        ids = builtins.list(by_thread)
        for start in range(0, len(ids), _CHUNK):
            found = self._s.execute(
                select(CommentRow, UserRow.name)
                .outerjoin(UserRow, UserRow.id == CommentRow.author_id)
                .where(CommentRow.thread_id.in_(ids[start : start + _CHUNK]))
                .order_by(CommentRow.id)
            ).all()
            for comment, name in found:
                by_thread[comment.thread_id].append(self._comment(comment, name))
        authors = {row.author_id for row in rows if row.author_id is not None}
        names: dict[int, str] = {}
        if authors:
            query = select(UserRow.id, UserRow.name).where(UserRow.id.in_(authors))
            names = {int(user_id): str(name) for user_id, name in self._s.execute(query)}
        return [
            Thread(
                id=row.id,
                asset_id=row.asset_id,
                frame=row.frame,
                x=row.x,
                y=row.y,
                status=ThreadStatus(row.status),
                author=None if row.author_id is None else names.get(row.author_id),
                created_at=row.created_at,
                resolved_at=row.resolved_at,
                comments=tuple(by_thread[row.id]),
            )
            for row in rows
        ]
