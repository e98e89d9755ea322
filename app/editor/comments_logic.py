"""The comments panel's state and rules, usable without the widget (3D Slicer's Logic): the asset's
threads and their numbers, the "only mentioning me" filter, which pins a frame shows, the pin being
written, and the API calls behind reply, resolve and post with the messages a refusal gives. No Qt:
:mod:`app.editor.comments_panel` shows it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.core.errors import SitelabelError
from app.core.records import Asset, Thread, ThreadStatus

if TYPE_CHECKING:
    from app.api import Project

# (thread id, number, x, y, open, selected): the fields of a canvas Pin, in its order
PinFields = tuple[int, int, float, float, bool, bool]


# --- plain helpers ---------------------------------------------------------------------------------
def mentions_me(thread: Thread, me: str) -> bool:
    mine = me.casefold()
    return any(mine == name.casefold() for c in thread.comments for name in c.mentions)


def split_mentions(body: str, names: Sequence[str]) -> list[tuple[str, str | None]]:
    """``body`` cut into (text, mentioned name or None) runs, for formatting @name without markup."""
    if not names:
        return [(body, None)] if body else []
    pattern = re.compile(
        r"(?<![\w@])@(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")"
        r"(?![A-Za-z0-9_\-])"
    )
    runs: list[tuple[str, str | None]] = []
    last = 0
    for match in pattern.finditer(body):
        if match.start() > last:
            runs.append((body[last : match.start()], None))
        runs.append((match.group(0), match.group(1)))
        last = match.end()
    if last < len(body):
        runs.append((body[last:], None))
    return runs


def when(moment: datetime | None, *, short: bool = False, now: datetime | None = None) -> str:
    """Local time of a stored moment (SQLite hands back naive UTC, PostgreSQL aware); ``short``
    gives the list's compact form: the time today, the day this year, else the date."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone()
    if not short:
        return local.strftime("%Y-%m-%d %H:%M")
    today = (now or datetime.now(UTC)).astimezone()
    if local.date() == today.date():
        return local.strftime("%H:%M")
    return local.strftime("%d %b" if local.year == today.year else "%Y-%m-%d")


def first_line(thread: Thread, limit: int = 90) -> str:
    text = thread.comments[0].body if thread.comments else ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


# --- the state -------------------------------------------------------------------------------------
class CommentsLogic:
    """The current asset's threads as the panel lists them and the canvas pins them."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.asset: Asset | None = None
        self.frame = 0
        self.on_screen = False  # the asset's frame is shown: its pins may be drawn
        self.threads: list[Thread] = []
        self.numbers: dict[int, int] = {}  # thread id -> its number on pins and in the list
        self.only_mine = False  # list and pin only the threads mentioning the acting user
        self.draft: tuple[int, float, float] | None = None  # (frame, x, y) of the pin being written

    def set_asset(self, asset: Asset | None) -> None:
        self.asset, self.frame, self.on_screen = asset, 0, False

    def show_frame(self, index: int) -> None:
        self.frame, self.on_screen = index, True

    def reload(self) -> str | None:
        """Read the asset's threads again and number them; the API's refusal, if any."""
        self.threads, refused = [], None
        if self.asset is not None:
            try:
                self.threads = self.project.threads(self.asset.id)
            except SitelabelError as exc:
                refused = str(exc)
        self.numbers = {t.id: i for i, t in enumerate(sorted(self.threads, key=lambda t: t.id), start=1)}
        return refused

    # --- reading -----------------------------------------------------------------------------------
    def visible(self) -> list[Thread]:
        if not self.only_mine:
            return list(self.threads)
        return [t for t in self.threads if mentions_me(t, self.project.user_name)]

    def thread(self, thread_id: int | None) -> Thread | None:
        return next((t for t in self.threads if t.id == thread_id), None)

    def summary(self) -> str:
        """ "3 open / 5" over the list (empty without threads)."""
        total_open = sum(t.status is ThreadStatus.OPEN for t in self.threads)
        return f"{total_open} open / {len(self.threads)}" if self.threads else ""

    def label(self, thread: Thread) -> tuple[str, bool]:
        """The thread's number as listed ("@3" when it mentions the acting user) and whether it does."""
        mine = mentions_me(thread, self.project.user_name)
        number = self.numbers.get(thread.id, 0)
        return (f"@{number}" if mine else str(number)), mine

    def next_open(self, current: int | None) -> int | None:
        """The open thread listed after ``current`` (wrapping); None when none is open."""
        ids = [t.id for t in self.visible() if t.status is ThreadStatus.OPEN]
        if not ids:
            return None
        after = ids.index(current) + 1 if current in ids else 0
        return ids[after % len(ids)]

    def pins(self, selected: int | None) -> list[PinFields]:
        """The pins of the frame on screen: the listed threads with a point, the selected one last
        (drawn on top). The draft is :meth:`draft_here`."""
        return [
            (t.id, self.numbers.get(t.id, 0), t.x, t.y, t.status is ThreadStatus.OPEN, t.id == selected)
            for t in sorted(self.visible(), key=lambda t: (t.id == selected, t.id))
            if t.frame == self.frame and t.x is not None and t.y is not None
        ]

    # --- changes through the API -------------------------------------------------------------------
    def reply(self, thread_id: int, body: str) -> str | None:
        """Send a reply; the refusal's message, if any."""
        try:
            self.project.reply(thread_id, body)
        except SitelabelError as exc:
            return f"Reply not sent: {exc}"
        return None

    def toggle_resolved(self, thread: Thread) -> str | None:
        """Resolve an open thread, reopen a resolved one; the refusal's message, if any (only the
        author or a reviewer may)."""
        reopen = thread.status is ThreadStatus.RESOLVED
        try:
            self.project.resolve(thread.id, reopen=reopen)
        except SitelabelError as exc:
            return f"Not {'reopened' if reopen else 'resolved'}: {exc}"
        return None

    # --- the pin being written ---------------------------------------------------------------------
    def place_draft(self, x: float, y: float) -> None:
        self.draft = (self.frame, x, y)

    def draft_here(self) -> tuple[float, float] | None:
        """Where the draft pin sits on the frame on screen (None: no draft there)."""
        if self.draft is None or self.draft[0] != self.frame:
            return None
        return self.draft[1], self.draft[2]

    def drop_draft(self) -> bool:
        """Forget the draft; True when there was one."""
        had, self.draft = self.draft is not None, None
        return had

    def post_draft(self, body: str) -> Thread | None:
        """Open the thread the draft marks (None: no draft, or no asset); a refusal raises the API's
        SitelabelError and keeps the draft."""
        draft, asset = self.draft, self.asset
        if draft is None or asset is None:
            return None
        frame, x, y = draft
        thread = self.project.comment(asset.id, body, frame=frame, x=x, y=y)
        self.draft = None
        return thread
