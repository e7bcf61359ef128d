"""What the stream processors do to one message: pure functions, no I/O, testable without Kafka.

A message is accepted (a row for the ``events`` table) or dead-lettered with a reason. Lateness and the
future are judged against the message's emission time (the Kafka record timestamp), so the decision for
an offset is the same live, in a replay at full speed, and after any crash.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from itertools import groupby

import orjson

from schemas.calendar import SEOUL
from schemas.codec import EventError, decode_event, original_digest, screened_original
from schemas.codes import code_list, minimum_wage, wage_hours
from schemas.events import EVENT_MODELS, KEY_FIELD, Event
from schemas.fastpath import decode_fast
from schemas.pii import normalise
from sinks.rollups import VACANCY_EVENT_TYPES
from streams.schedule import from_ms

TOO_LATE = "too_late"
FUTURE = "future_occurred_at"
KST_MS = 9 * 3_600_000  # Korea keeps UTC+9 all year
DAY_MS = 86_400_000
# More measure cells than this in a batch (a backlog), and its rollup recounts whole days instead.
MAX_CELLS = 2_000

EVENT_COLUMNS = (
    "event_id", "event_type", "schema_version", "occurred_at", "source", "entity_id", "vacancy_id", "employer_id",
    "region", "industry", "occupation", "size_band", "age_band", "sex", "subtype", "review_rule", "title_key",
    "openings", "deadline", "message", "topic", "partition", "offset", "emitted_at",
)
DEAD_LETTER_COLUMNS = (
    "topic", "partition", "offset", "reason", "field", "value", "rule", "event_id", "occurred_at", "raw", "emitted_at",
)
_WAGE_HOURS = wage_hours()
_SPACES = re.compile(r"\s+")


def compact_title(title: str) -> str:
    """A title as the review reads it for prohibited terms: normalised as screened text is (NFKC, invisible
    characters removed), lower case, without spaces -- so '유 흥' or a zero-width space does not hide '유흥'."""
    return _SPACES.sub("", normalise(title)).lower()


# The prohibited *terms* (the code list's codes), not their labels: '유흥' is in '유흥 서빙 직원'.
PROHIBITED = tuple(compact_title(c.code) for c in code_list("prohibited_job_terms"))
SUBTYPE_FIELD = {
    "vacancy.closed": "reason", "application.submitted": "channel", "application.outcome": "outcome",
    "ui.initial_claim": "separation_reason", "ui.claim_ended": "reason", "insurance.loss": "separation_reason",
}


# Records and outcomes are made for every message: slotted, not frozen (a frozen dataclass's __init__ costs
# several times more, measured ~2 µs per message on the bench machine).
@dataclass(slots=True)
class Record:
    """One message as the broker delivered it. aiokafka's ``ConsumerRecord`` has these attributes too, and
    the worker hands those over as read (building a Record for every message cost ~1 µs of the GIL)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class Policy:
    allowed_lateness: timedelta = timedelta(hours=72)
    future_tolerance: timedelta = timedelta(hours=1)

    # Read for every message: computed once.
    @cached_property
    def allowed_lateness_ms(self) -> int:
        return int(self.allowed_lateness.total_seconds() * 1000)

    @cached_property
    def future_tolerance_ms(self) -> int:
        return int(self.future_tolerance.total_seconds() * 1000)


@dataclass(slots=True)
class Accepted:
    record: Record
    event: Event
    row: tuple


@dataclass(slots=True)
class DeadLetter:
    record: Record
    reason: str
    field: str
    value: str
    rule: str
    event_id: str = ""
    occurred_at: datetime | None = None
    _original: str | None = None

    @property
    def original(self) -> str:
        """The message as the dead letter keeps it: screened and capped (:func:`schemas.codec.screened_original`),
        made once for its row and its message."""
        if self._original is None:
            self._original = screened_original(self.record.value)
        return self._original

    @property
    def row(self) -> tuple:
        occurred = None if self.occurred_at is None else epoch_ms(self.occurred_at)
        return (self.record.topic, self.record.partition, self.record.offset, self.reason, self.field, self.value,
                self.rule, self.event_id, occurred, self.original, self.record.timestamp)

    def message(self) -> bytes:
        """The dead-letter topic's message: the reason, where it came from, the original screened and capped,
        with its full length and hash. A few kilobytes whatever arrived: it can always be published."""
        return orjson.dumps({
            "reason": self.reason, "field": self.field, "value": self.value, "rule": self.rule,
            "source_topic": self.record.topic, "source_partition": self.record.partition,
            "source_offset": self.record.offset, "emitted_at": from_ms(self.record.timestamp).isoformat(),
            "event_id": self.event_id or None, "original": self.original,
            "original_bytes": len(self.record.value), "original_sha256": original_digest(self.record.value),
        })

    @property
    def key(self) -> bytes:
        # Keyed by source position: a dead letter re-sent after a crash is recognisably the same one.
        return f"{self.record.topic}/{self.record.partition}/{self.record.offset}".encode()


def epoch_ms(ts: datetime) -> int:
    """Milliseconds since the epoch (ClickHouse's DateTime64(3) ticks); exact for millisecond times, since a
    double holds today's epoch milliseconds to about 1e-4 ms."""
    return round(ts.timestamp() * 1000)


def review_rule(event: Event) -> str:
    """The rule-based part of the vacancy review: '' if the submission passes, else the reason.

    Rules: a prohibited job term (code list `prohibited_job_terms`) in the title, read by :func:`compact_title`;
    missing mandatory fields (wage, hours, deadline);
    a wage below the statutory minimum of the year (hourly equivalent; monthly = 209 h). The cross-portal
    duplicate rule needs other submissions and is applied by the rollup (``sinks.rollups``).
    """
    p = event.payload  # type: ignore[attr-defined]
    title = compact_title(p.title)
    if any(term in title for term in PROHIBITED):
        return "prohibited_job"
    if p.wage_type is None or p.wage_amount is None or p.work_hours_per_week is None or p.deadline is None:
        return "missing_fields"
    hourly = p.wage_amount / _WAGE_HOURS[p.wage_type]
    if hourly < minimum_wage(event.occurred_at.astimezone(SEOUL).year):
        return "below_min_wage"
    return ""


def title_key(title: str) -> str:
    """A posting's title, normalised for the cross-portal duplicate rule."""
    return _SPACES.sub(" ", title.strip().lower())


# The row's optional columns: the payload's field, '' (0 for openings, None for the deadline) where an event
# type has no such field or leaves it empty.
_OPTIONAL_TEXT = ("vacancy_id", "employer_id", "industry", "size_band", "age_band", "sex")


def _row_builder(model: type[Event]) -> tuple[str, Callable[[Event, Record, int], tuple]]:
    """The event type and its ``to_row``, generated from its model: the payload's fields it has are read as
    attributes, the ones it lacks are constants (a getter per field of every event cost ~15 % of classifying).
    Both a pydantic event and a fast-path struct have these attributes."""
    etype = typing.get_args(model.model_fields["event_type"].annotation)[0]
    fields = model.model_fields["payload"].annotation.model_fields

    def text(name: str | None) -> str:
        return f"(p.{name} or '')" if name in fields else "''"

    subtype = SUBTYPE_FIELD.get(etype)
    openings = "0"
    if etype in ("vacancy.submitted", "vacancy.updated") and "openings" in fields:
        openings = "(p.openings or 0)"
    elif etype == "vacancy.closed":
        openings = "p.openings_filled"
    submitted = etype == "vacancy.submitted"  # reviewed: its rule and title key
    review, title = ("review_rule(event)", "title_key(p.title)") if submitted else ("''", "''")
    subtype_expr = "''" if subtype is None else f"p.{subtype}" if subtype in fields else "None"
    vacancy_id, employer_id, industry, size_band, age_band, sex = (text(n) for n in _OPTIONAL_TEXT)
    src = (
        "def to_row(event, record, occurred_ms):\n"
        "    p = event.payload\n"
        "    return (\n"
        f"        event.event_id, {etype!r}, event.schema_version, occurred_ms, event.source, p.{KEY_FIELD[etype]},\n"
        f"        {vacancy_id}, {employer_id}, p.region, {industry}, p.occupation, {size_band}, {age_band}, {sex},\n"
        f"        {subtype_expr}, {review}, {title},\n"
        f"        {openings}, {'p.deadline' if 'deadline' in fields else 'None'},\n"
        "        record.value, record.topic, record.partition, record.offset, record.timestamp)\n"
    )
    env = {"review_rule": review_rule, "title_key": title_key}
    exec(compile(src, f"<row of {etype}>", "exec"), env)  # noqa: S102 -- generated from the models
    return etype, env["to_row"]


_ROW_OF: dict[str, Callable[[Event, Record, int], tuple]] = dict(_row_builder(m) for m in EVENT_MODELS)


def to_row(event: Event, record: Record, occurred_ms: int) -> tuple:
    """The ``events`` row of an accepted event (columns :data:`EVENT_COLUMNS`). Times as DateTime64(3) ticks
    and the message as received (bytes, UTF-8 as validated): no per-row conversions on insert."""
    return _ROW_OF[event.event_type](event, record, occurred_ms)  # type: ignore[attr-defined]


def classify(record: Record, policy: Policy = Policy(), fast: bool = False) -> Accepted | DeadLetter:
    """Validate one message and judge its timing; never raises for bad input. ``fast``: the event may be
    read by :mod:`schemas.fastpath` (a struct with the model's attributes, not a pydantic model) -- the
    outcome and the row are the same."""
    judged = judge(record, policy, fast)
    if type(judged) is DeadLetter:
        return judged
    event, occurred = judged  # type: ignore[misc]
    return Accepted(record, event, to_row(event, record, occurred))


@dataclass(slots=True)
class PartitionRun:
    """Consecutive messages of one topic-partition, classified: the offsets they span, the rows of the accepted
    ones and the dead letters, in offset order. The rows are tuples, or (read by the compiled reader,
    :mod:`streams.native`) all of them in ``encoded``: ClickHouse's RowBinary, ``n_encoded`` rows, in no
    particular order."""

    topic: str
    partition: int
    lo: int
    hi: int
    rows: list[tuple]
    dead_letters: list[DeadLetter]
    encoded: bytes = b""
    n_encoded: int = 0

    @property
    def accepted(self) -> int:
        return len(self.rows) + self.n_encoded


@dataclass(slots=True)
class Classified:
    """A batch of messages classified: per topic-partition run, plus what the rollup needs to know of them."""

    runs: list[PartitionRun]
    days: set[int]  # Asia/Seoul day numbers of the accepted events
    vacancies: set[str]  # the vacancies whose lifecycle events were accepted
    accepted: list[Accepted]  # kept only when asked (another consumer of the events needs them)
    # The measure cells of the accepted events (day number, region, industry, occupation, age band, sex, size
    # band): a live rollup recounts only those. None once more than MAX_CELLS (a backlog: whole days then).
    cells: set[tuple] | None = None


def classify_batch(records: Iterable[Record], policy: Policy = Policy(), keep_accepted: bool = False,
                   native: bool | None = None) -> Classified:
    """:func:`classify` for a batch: a pure function of the messages, so it may run in another process (the
    worker's classifier pool) with the same result. Consecutive messages of a topic-partition form one run.
    The events are read by the compiled reader (``native``, by default when it is available: the rows
    encoded) and the fast path, unless they are kept for another consumer (who gets pydantic's events and
    tuples)."""
    if native is None:
        from streams.native import available

        native = available()
    if native and not keep_accepted:
        return _classify_batch_native(records, policy)
    fast = not keep_accepted
    out = Classified([], set(), set(), [], set())
    days, vacancies, accepted, cells = out.days, out.vacancies, out.accepted, out.cells
    row_of = _ROW_OF
    for (topic, partition), run in groupby(records, key=_tp_of):
        rows: list[tuple] = []
        dead: list[DeadLetter] = []
        lo = hi = -1
        for record in run:
            judged = judge(record, policy, fast)  # classify(), without an Accepted unless it is kept
            offset = record.offset
            if lo < 0 or offset < lo:
                lo = offset
            if offset > hi:
                hi = offset
            if type(judged) is tuple:
                event, occurred = judged
                row = row_of[event.event_type](event, record, occurred)
                rows.append(row)
                day = (row[3] + KST_MS) // DAY_MS
                days.add(day)
                if cells is not None:
                    cells.add((day, row[8], row[9], row[10], row[12], row[13], row[11]))
                    if len(cells) > MAX_CELLS:
                        cells = out.cells = None
                if row[1] in VACANCY_EVENT_TYPES:
                    vacancies.add(row[6])
                if keep_accepted:
                    accepted.append(Accepted(record, event, row))
            else:
                dead.append(judged)
        out.runs.append(PartitionRun(topic, partition, lo, hi, rows, dead))
    return out


def _tp_of(record: Record) -> tuple[str, int]:
    return record.topic, record.partition


def _classify_batch_native(records: Iterable[Record], policy: Policy) -> Classified:
    """:func:`classify_batch` with each run read by the compiled reader; the messages it leaves (a dead letter,
    an unusual form) are judged here as before, and their rows encoded beside its own."""
    from streams.native import encode_rows, reader

    read = reader().classify_run
    out = Classified([], set(), set(), [], set())
    days, vacancies = out.days, out.vacancies
    future_ms, lateness_ms = policy.future_tolerance_ms, policy.allowed_lateness_ms
    for (topic, partition), group in groupby(records, key=_tp_of):
        run = list(group)
        encoded, n, left, run_days, cells, run_vacancies = read(run, topic, partition, future_ms, lateness_ms,
                                                                MAX_CELLS)
        days |= run_days
        vacancies |= run_vacancies
        out.cells = union_cells(out.cells, cells)
        # What it left goes the Python way (classify_batch's own loop): one run, in offset order.
        dead: list[DeadLetter] = []
        if left:
            rest = classify_batch([run[i] for i in left], policy, native=False)
            days |= rest.days
            vacancies |= rest.vacancies
            out.cells = union_cells(out.cells, rest.cells)
            (python_run,) = rest.runs
            dead = python_run.dead_letters
            if python_run.rows:
                encoded += encode_rows(python_run.rows)
                n += len(python_run.rows)
        offsets = [r.offset for r in run]
        out.runs.append(PartitionRun(topic, partition, min(offsets), max(offsets), [], dead, encoded, n))
    return out


def union_cells(cells: set[tuple] | None, more: set[tuple] | None) -> set[tuple] | None:
    """Measure cells of two batches (or parts of one); None (too many to list: a backlog, whole days) once
    either is, or past MAX_CELLS. ``cells`` is updated in place."""
    if cells is None or more is None:
        return None
    cells |= more
    return cells if len(cells) <= MAX_CELLS else None


def judge(record: Record, policy: Policy = Policy(), fast: bool = False) -> tuple[Event, int] | DeadLetter:
    """:func:`classify` without the row (for the matcher, which needs only the event): the event and its
    ``occurred_at`` in epoch milliseconds, or the dead letter. ``fast``: as in :func:`classify`."""
    event = decode_fast(record.value) if fast else None
    if event is None:  # not read by the fast path (or not asked to): pydantic's answer stands
        try:
            event = decode_event(record.value)
        except EventError as exc:
            return DeadLetter(record, exc.reason, exc.field, exc.value, exc.rule)
    occurred = epoch_ms(event.occurred_at)
    if occurred > record.timestamp + policy.future_tolerance_ms:
        return DeadLetter(record, FUTURE, "occurred_at", event.occurred_at.isoformat(),
                          f"more than {policy.future_tolerance} after the message was sent "
                          f"({from_ms(record.timestamp).isoformat()})", event.event_id, event.occurred_at)
    if occurred < record.timestamp - policy.allowed_lateness_ms:
        return DeadLetter(record, TOO_LATE, "occurred_at", event.occurred_at.isoformat(),
                          f"arrived more than the allowed lateness ({policy.allowed_lateness}) after it happened",
                          event.event_id, event.occurred_at)
    return event, occurred
