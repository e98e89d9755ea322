"""The activity view's figures: who labeled what, how long it took, what review said.

* :func:`item_rows` -- one row per item (asset) with its queue status, labelers, time spent,
  consensus size, agreement, review result, open issues, classes and DICOM tags; filtered, sorted
  and paged in the database with a fixed number of statements (see app.storage.repo_activity).
* :func:`labeler_rows` -- per labeler: submissions, throughput, agreement, rejections, skips.
* :func:`throughput_series` and :func:`agreement_histogram` -- the data of the two charts.
* :func:`requeue_items` -- put items back in the queue (app.workflow.queue.requeue), audited.

**Time spent is lease time.** An item's time is the sum, over the submissions that still stand, of
the time from the claim (``leased_at``) to the submit (``finished_at``); a submit is only accepted
while the lease runs, so every term is capped at the lease. A labeler claims a whole batch at once,
so the later items of a batch include the time spent on the earlier ones: read it as "how long the
item was held", not as hands-on time. Throughput divides a labeler's submissions by the wall-clock
time during which they held at least one lease (overlapping leases of a batch count once).
Submissions that still stand means: not voided by a requeue, and not sent back by review -- a
returned submission's ``finished_at`` is the time of the rejection, so it is left out of times,
submission counts and throughput (it still counts for agreement and rejections).

Everything takes an optional ``viewer_id``: a labeler's view is restricted to the items they took
part in, to their own name among the labelers and to their own (and machine-made) labels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from app.core.errors import NotFoundError, ValidationError
from app.core.item_status import STATUSES, ItemStatus, parse_status_filter, stored_status_word
from app.core.records import AssignmentStatus, TaskStatus
from app.workflow.clock import Clock, utcnow

if TYPE_CHECKING:
    from app.storage import Database
    from app.storage.uow import UnitOfWork

Progress = Callable[[int, int], bool | None]
#: what item rows can be sorted by (in the database, before paging)
SORT_KEYS = (
    "asset",
    "path",
    "dataset",
    "kind",
    "status",
    "time",
    "required",
    "agreement",
    "review",
    "reviewer",
    "threads",
    "modality",
    "body_part",
    "study_date",
    "series",
)
BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
_SUBMITTED = AssignmentStatus.SUBMITTED.value
_RETURNED = AssignmentStatus.RETURNED.value
_SKIPPED = AssignmentStatus.SKIPPED.value


def _study_date(value: date | str | None) -> str | None:
    """A date filter as DICOM DA text (YYYYMMDD), from a date, ``YYYY-MM-DD`` or ``YYYYMMDD``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    text = value.strip().replace("-", "").replace(".", "")
    if len(text) != 8 or not text.isdigit():
        raise ValidationError(f"study date {value!r} is not a date; write it as YYYY-MM-DD")
    return text


@dataclass(frozen=True)
class ItemFilters:
    """Which items the activity list shows (None: no restriction). ``label`` is a class name; text
    ``search`` matches the path and the DICOM series description (case-insensitive)."""

    status: str | None = None
    labeler: str | None = None
    label: str | None = None
    dataset: str | None = None
    modality: str | None = None
    body_part: str | None = None
    study_from: date | str | None = None
    study_to: date | str | None = None
    search: str | None = None

    def __post_init__(self) -> None:
        # any word of the status vocabulary (``done`` is ``accepted``); kept as the status word
        status = parse_status_filter(self.status)
        object.__setattr__(self, "status", None if status is None else status.value)
        _study_date(self.study_from)  # early, clear errors for a typed date
        _study_date(self.study_to)

    @classmethod
    def of(cls, **values: Any) -> ItemFilters:
        """From keyword arguments (``class_`` is accepted for ``label``); unknown names are refused."""
        if "class_" in values:
            values["label"] = values.pop("class_")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValidationError(
                f"unknown activity filter {unknown[0]!r}; filters are {', '.join(sorted(known))}"
            )
        cleaned = {k: (v if v != "" else None) for k, v in values.items()}
        return cls(**cleaned)


@dataclass(frozen=True)
class ItemActivity:
    """One item of the activity list. ``seconds`` is lease time (see the module doc)."""

    asset_id: int
    path: str  # data root : relative path
    dataset: str
    kind: str
    status: str  # an item status word (app.core.item_status)
    labelers: tuple[str, ...]
    seconds: float | None
    required: int | None  # labelers the item needs (>1: a consensus item)
    agreement: float | None
    review: str | None  # latest verdict: accepted | rejected | fixed
    reviewer: str | None
    open_threads: int
    classes: tuple[str, ...]
    modality: str | None
    body_part: str | None
    study_date: str | None  # YYYY-MM-DD
    series: str | None  # DICOM SeriesDescription

    def as_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class ItemPage:
    rows: list[ItemActivity]
    total: int  # items matching the filters (all pages)
    offset: int = 0
    limit: int | None = None


@dataclass(frozen=True)
class LabelerActivity:
    """One labeler's work in a period. ``per_hour`` = submitted / hours with a lease held."""

    name: str
    submitted: int
    skipped: int
    rejected: int
    lease_seconds: float
    per_hour: float | None
    mean_agreement: float | None  # over the consensus items they submitted that have a score
    consensus_items: int

    def as_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class ThroughputSeries:
    """Submitted items per time bucket per labeler; ``counts[name][i]`` belongs to ``starts[i]``."""

    bucket: str
    starts: list[datetime]
    counts: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class AgreementHistogram:
    """Items per agreement bin: ``counts[i]`` holds scores in ``[edges[i], edges[i+1])`` (1.0 in the
    last bin). Items without a score are not counted."""

    edges: list[float]
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class ActivityFacets:
    """Values the filter bar offers."""

    datasets: list[str]
    labelers: list[str]
    modalities: list[str]
    body_parts: list[str]
    statuses: tuple[str, ...] = STATUSES


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _now(clock: Clock) -> datetime:
    return clock().astimezone(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes, PostgreSQL aware ones."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _dicom_date(value: str | None) -> str | None:
    text = (value or "").strip()
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else (text or None)


# --- items -----------------------------------------------------------------------------------------
def item_rows(
    db: Database,
    project_id: int,
    filters: ItemFilters | None = None,
    *,
    sort: str = "asset",
    descending: bool = False,
    limit: int | None = None,
    offset: int = 0,
    viewer_id: int | None = None,
    now: Clock = utcnow,
) -> ItemPage:
    """One page of the activity list (``limit`` None: every matching item) and the total count."""
    from app.storage.repo_activity import ItemCriteria

    f = filters or ItemFilters()
    if sort not in SORT_KEYS:
        raise ValidationError(f"cannot sort activity by {sort!r}; choose one of {', '.join(SORT_KEYS)}")
    if (limit is not None and limit < 0) or offset < 0:
        raise ValidationError("limit and offset cannot be negative")
    criteria = ItemCriteria(
        statuses=(f.status,) if f.status else (),
        labeler=f.labeler,
        label=f.label,
        dataset=f.dataset,
        modality=f.modality,
        body_part=f.body_part,
        study_from=_study_date(f.study_from),
        study_to=_study_date(f.study_to),
        search=(f.search or "").strip() or None,
        viewer_id=viewer_id,
        sort=sort,
        descending=descending,
        limit=limit,
        offset=offset,
    )
    t = _now(now)
    found = db.run(lambda uow: uow.activity.items(project_id, criteria, t), readonly=True)
    rows = [_item(r, found.labelers, found.classes) for r in found.rows]
    return ItemPage(rows, found.total, offset, limit)


def _item(r: tuple[Any, ...], labelers: dict[int, list[str]], classes: dict[int, list[str]]) -> ItemActivity:
    """One row of app.storage.repo_activity.ITEM_FIELDS as an ItemActivity."""
    (asset_id, root, rel_path, member, dataset, kind, status, seconds, required, agreement, review,
     reviewer, threads, modality, body_part, study_date, series) = r  # fmt: skip
    archive = member if (member or "").startswith("!") else ""
    return ItemActivity(
        asset_id=int(asset_id),
        path=f"{root}:{rel_path}{archive}",
        dataset=str(dataset),
        kind=str(kind),
        status=str(status),
        labelers=tuple(labelers.get(asset_id, ())),
        seconds=None if seconds is None else float(seconds),
        required=None if required is None else int(required),
        agreement=None if agreement is None else float(agreement),
        review=review,
        reviewer=reviewer,
        open_threads=int(threads or 0),
        classes=tuple(classes.get(asset_id, ())),
        modality=modality or None,
        body_part=body_part or None,
        study_date=_dicom_date(study_date),
        series=series or None,
    )


# --- labelers --------------------------------------------------------------------------------------
# Assignment facts from app.storage.repo_activity.assignments; times are epoch seconds (floats).
_USER, _NAME, _TASK, _STATUS, _LEASED, _EXPIRES, _FINISHED, _REQUIRED, _SCORE = range(9)
Span = tuple[float, float]


def _lease_span(a: tuple[Any, ...], now: float) -> Span:
    """When the assignment held its lease: from the claim to the submit/skip/requeue, the expiry,
    or now for a running lease -- whichever came first."""
    start, finished = a[_LEASED], a[_FINISHED]
    end = min(a[_EXPIRES], now) if finished is None else min(a[_EXPIRES], now, finished)
    return start, max(start, end)


def _union_seconds(spans: Iterable[Span]) -> float:
    """Length of the union of time spans (a batch's leases overlap: count the time once)."""
    total = 0.0
    current: Span | None = None
    for start, end in sorted(spans):
        if current is None or start > current[1]:
            if current is not None:
                total += current[1] - current[0]
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current is not None:
        total += current[1] - current[0]
    return total


def _clip(span: Span, since: float | None, until: float | None) -> Span:
    start, end = span
    if since is not None:
        start = max(start, since)
    if until is not None:
        end = min(end, until)
    return start, max(start, end)


def _within(moment: float | None, since: float | None, until: float | None) -> bool:
    return moment is not None and (since is None or moment >= since) and (until is None or moment < until)


def _period(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    s = None if since is None else _aware(since)
    u = None if until is None else _aware(until)
    if s is not None and u is not None and u <= s:
        raise ValidationError(f"the period ends ({u:%Y-%m-%d %H:%M}) before it starts ({s:%Y-%m-%d %H:%M})")
    return s, u


def _seconds_of(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def labeler_rows(
    db: Database,
    project_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    viewer_id: int | None = None,
    now: Clock = utcnow,
) -> list[LabelerActivity]:
    """Per labeler who held a lease in [since, until): submissions (that still stand) and skips
    finished in the period, rejections reviewed in it, lease time within it, and throughput."""
    s, u = _period(since, until)
    t = _now(now).timestamp()
    lo, hi = _seconds_of(s), _seconds_of(u)

    def work(uow: UnitOfWork) -> tuple[list[tuple[Any, ...]], dict[int, int]]:
        rows = uow.activity.assignments(project_id, since=s, until=u, user_id=viewer_id)
        return rows, uow.activity.rejections(project_id, since=s, until=u, user_id=viewer_id)

    rows, rejected = db.run(work, readonly=True)
    by_user: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        by_user[int(row[_USER])].append(row)
    out = []
    for user_id, mine in by_user.items():
        # work a review sent back carries the rejection's time, not the work's: it counts for the
        # agreement and the rejections, not for submissions, lease time or throughput
        timed = [a for a in mine if a[_STATUS] != _RETURNED]
        submitted = [a for a in timed if a[_STATUS] == _SUBMITTED and _within(a[_FINISHED], lo, hi)]
        skipped = [a for a in timed if a[_STATUS] == _SKIPPED and _within(a[_FINISHED], lo, hi)]
        held = _union_seconds(_clip(_lease_span(a, t), lo, hi) for a in timed)
        scored = [a for a in mine if a[_STATUS] in (_SUBMITTED, _RETURNED) and a[_REQUIRED] > 1]
        scores = {a[_TASK]: a[_SCORE] for a in scored}
        known = [float(v) for v in scores.values() if v is not None]
        out.append(
            LabelerActivity(
                name=str(mine[0][_NAME]),
                submitted=len(submitted),
                skipped=len(skipped),
                rejected=rejected.get(user_id, 0),
                lease_seconds=held,
                per_hour=len(submitted) / (held / 3600.0) if held > 0 else None,
                mean_agreement=sum(known) / len(known) if known else None,
                consensus_items=len(scores),
            )
        )
    return sorted(out, key=lambda r: r.name)


def _bucket_start(moment: datetime, bucket: str, tz: tzinfo | None) -> datetime:
    """The start of the bucket holding ``moment``, in ``tz`` (None: the local zone, with the UTC
    offset that zone had at that moment)."""
    local = moment.astimezone(tz)
    if bucket == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if bucket == "week" else day


def throughput_series(
    db: Database,
    project_id: int,
    bucket: str = "day",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    viewer_id: int | None = None,
    tz: tzinfo | None = None,
) -> ThroughputSeries:
    """Submitted items per ``bucket`` ("hour", "day" or "week"; in ``tz``, default the local zone)
    per labeler, from the first to the last bucket with a submission, empty buckets as 0."""
    if bucket not in BUCKETS:
        raise ValidationError(f"unknown bucket {bucket!r}; choose one of {', '.join(BUCKETS)}")
    s, u = _period(since, until)
    lo, hi = _seconds_of(s), _seconds_of(u)
    rows = db.run(
        lambda uow: uow.activity.assignments(project_id, since=s, until=u, user_id=viewer_id), readonly=True
    )
    hits: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for a in rows:
        if a[_STATUS] == _SUBMITTED and _within(a[_FINISHED], lo, hi):
            moment = datetime.fromtimestamp(a[_FINISHED], UTC)
            hits[str(a[_NAME])][_bucket_start(moment, bucket, tz)] += 1
    seen = sorted({start for per in hits.values() for start in per})
    if not seen:
        return ThroughputSeries(bucket, [], {})
    starts = [seen[0]]
    # step past the next boundary and floor again: days of 23 or 25 hours (DST) stay aligned
    step = BUCKETS[bucket] * 1.1
    while starts[-1] < seen[-1]:
        starts.append(_bucket_start(starts[-1] + step, bucket, tz))
    counts = {name: [per.get(x, 0) for x in starts] for name, per in sorted(hits.items())}
    return ThroughputSeries(bucket, starts, counts)


def agreement_histogram(
    db: Database, project_id: int, bins: int = 10, *, viewer_id: int | None = None, now: Clock = utcnow
) -> AgreementHistogram:
    """Consensus items per agreement score bin over [0, 1]."""
    if not 1 <= bins <= 100:
        raise ValidationError(f"the histogram needs 1 to 100 bins, got {bins}")
    t = _now(now)
    scores = db.run(lambda uow: uow.activity.agreements(project_id, t, viewer_id=viewer_id), readonly=True)
    counts = [0] * bins
    for score in scores:
        counts[min(bins - 1, max(0, int(score * bins)))] += 1
    return AgreementHistogram([i / bins for i in range(bins + 1)], counts)


def facets(db: Database, project_id: int, *, viewer_id: int | None = None) -> ActivityFacets:
    found = db.run(lambda uow: uow.activity.facets(project_id, viewer_id=viewer_id), readonly=True)
    return ActivityFacets(found["datasets"], found["labelers"], found["modalities"], found["body_parts"])


# --- re-enqueue ------------------------------------------------------------------------------------
def requeue_items(
    db: Database,
    project_id: int,
    asset_ids: Sequence[int],
    *,
    user_id: int,
    progress: Progress | None = None,
    now: Clock = utcnow,
) -> int:
    """Put items back in the labeling queue for a fresh start (app.workflow.queue.requeue): their
    leases, submissions and returned work are voided. An asset that was never queued is queued.

    Each item is requeued and audited (``queue.requeue``, with the status it came from) in one
    transaction: ``progress(done, total)`` returning False stops after the current item.
    Returns how many items were put back.
    """
    from app.workflow import queue

    wanted = sorted(set(asset_ids))

    def tasks(uow: UnitOfWork) -> dict[int, tuple[int, str]]:
        known = uow.activity.asset_ids_in(project_id, wanted)
        missing = [a for a in wanted if a not in known]
        if missing:
            raise NotFoundError(f"assets {missing[:5]} are not part of project {project_id}")
        return uow.activity.tasks_of(project_id, wanted)

    current = db.run(tasks, readonly=True) if wanted else {}
    settings = db.run(lambda uow: uow.projects.get(project_id).settings, readonly=True)
    done = 0
    for asset_id in wanted:
        task = current.get(asset_id)
        if task is None:  # the consensus sample is a hash of the ids: queuing one at a time agrees
            share, count = settings.consensus_share, settings.consensus_count
            queue.enqueue_with_consensus(db, project_id, [asset_id], share=share, count=count, now=now)
            _audit(db, user_id, asset_id, {"task_id": None, "from": ItemStatus.UNQUEUED.value})
        else:
            came_from = stored_status_word(TaskStatus(task[1]))
            queue.requeue(db, task[0], now=now, audit=(user_id, {"task_id": task[0], "from": came_from}))
        done += 1
        if progress is not None and progress(done, len(wanted)) is False:
            break
    return done


def _audit(db: Database, user_id: int, asset_id: int, details: dict[str, Any]) -> None:
    db.run(lambda uow: uow.audit.record(user_id, "queue.requeue", "asset", asset_id, details))
