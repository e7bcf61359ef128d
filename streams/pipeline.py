"""The trend pipeline's processing step, independent of the broker (as in sentry-arroyo).

``submit`` takes messages, ``checkpoint`` writes them through the sink and says which offsets may be
committed, ``rollup`` rebuilds the measures of the days that changed. The worker drives it from Kafka; the
tests drive it from memory.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from sinks.rollups import Rollup, RollupReport, record_clean_stop
from sinks.sink import BatchingSink, ClickHouseTable, SinkCut, TopicPartition
from streams.native import encode_rows, native_block
from streams.processing import (
    DEAD_LETTER_COLUMNS,
    EVENT_COLUMNS,
    TOO_LATE,
    Accepted,
    Classified,
    DeadLetter,
    Policy,
    Record,
    classify_batch,
    union_cells,
)

log = logging.getLogger("lmis.pipeline")
EPOCH_DAY = date(1970, 1, 1)


class Observer(Protocol):
    """Another consumer of the validated events (the matcher): the accepted messages, batch by batch, in the
    pipeline's thread."""

    def observe(self, accepted: list[Accepted]) -> None: ...


class Classifier(Protocol):
    """Classifies batches elsewhere (``streams.classifier.ClassifierPool``), as ``classify_batch`` would."""

    def __call__(self, records: list[Record], policy: Policy) -> list[Classified]: ...

    def close(self) -> None: ...


@dataclass
class TopicStats:
    events: int = 0
    dead_letters: int = 0
    too_late: int = 0


@dataclass
class Checkpoint:
    offsets: dict[TopicPartition, int]
    dead_letters: list[DeadLetter]


@dataclass
class PendingCheckpoint:
    """A cut of the pipeline on its way to ClickHouse: the rows, and what follows their acknowledgement."""

    sink: SinkCut
    dead_letters: list[DeadLetter]
    days: set[int]  # Asia/Seoul day numbers its events fall on
    vacancies: set[str]  # the vacancies its events concern (their states are refreshed by the rollup)
    cells: set[tuple] | None  # the measure cells of its events (None: too many to list)
    received: list[tuple[float, int]]


class FreshnessHistogram:
    """Freshness (received → visible in the rolled-up measures) since start: counts per 10 ms up to two
    minutes, so quantiles over hours of samples are exact to 10 ms in constant memory."""

    STEP_S = 0.01
    BUCKETS = 12_000

    def __init__(self) -> None:
        self.counts = [0] * (self.BUCKETS + 1)  # the last bucket: two minutes or more
        self.n = 0

    def add(self, seconds: float, n: int = 1) -> None:
        self.counts[min(self.BUCKETS, max(0, int(seconds / self.STEP_S)))] += n
        self.n += n

    def quantile(self, q: float) -> float | None:
        """The upper edge of the bucket holding the q-quantile (None before any sample)."""
        if not self.n:
            return None
        rank = max(1, math.ceil(q * self.n))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return round((i + 1) * self.STEP_S, 2)
        return None  # pragma: no cover -- the counts sum to n


@dataclass
class Stats:
    by_topic: dict[str, TopicStats] = field(default_factory=lambda: defaultdict(TopicStats))
    dead_by_reason: Counter = field(default_factory=Counter)
    # Since the last health tick: (seconds, events) per received batch -- every event, weighted.
    freshness: list[tuple[float, int]] = field(default_factory=list)
    freshness_since_start: FreshnessHistogram = field(default_factory=FreshnessHistogram)


class TrendPipeline:
    def __init__(self, client, policy: Policy = Policy(), max_rows: int = 20_000, max_seconds: float = 1.0,
                 rollup: Rollup | None = None, observers: Iterable[Observer] = (),
                 classifier: Classifier | None = None):
        self.client = client
        self.observers = list(observers)
        # Classification elsewhere (streams.classifier: processes of their own) unless observers need the events.
        self.classifier = classifier
        self.policy = policy
        self.sink = BatchingSink({
            "events": (ClickHouseTable(client, "events", encode=encode_rows, to_native=native_block), EVENT_COLUMNS),
            "dead_letters": (ClickHouseTable(client, "dead_letters"), DEAD_LETTER_COLUMNS),
        }, max_rows=max_rows, max_seconds=max_seconds)
        self.rollup_job = rollup or Rollup(client)
        self.dirty: set[date] = set()
        self._pending_dirty: set[int] = set()  # Asia/Seoul day numbers, until written
        self._pending_vacancies: set[str] = set()
        self._pending_cells: set[tuple] | None = set()
        # Vacancies with events written since the last rollup; None when unknown (until the first rollup, and
        # after a failed one: the rollup then refreshes every vacancy its days and reviews reach).
        self.touched_vacancies: set[str] | None = None
        # The measure cells (day, region, industry, occupation, age band, sex, size band) of the events written
        # since the last rollup began: a live rollup recounts only those. None when unknown or too many.
        self.touched_cells: set[tuple] | None = None
        self._pending_dead: list[DeadLetter] = []
        # (wall time received, events) per submitted batch: every event's freshness, at the cost of a batch's.
        self._received: list[tuple[float, int]] = []
        self._awaiting_rollup: list[tuple[float, int]] = []
        self.stats = Stats()
        # Rollups run on a thread of their own beside the writes (ClickHouse releases the GIL while it
        # works): what passes between the two is swapped under this lock.
        self._lock = threading.Lock()
        self._rolling_up: set[date] = set()
        self._writing: PendingCheckpoint | None = None  # the cut on its way (the worker's writer thread)

    def recover(self) -> set[date]:
        """At start-up: days whose rollup may be incomplete (a crash between write and rollup), rebuilt whole
        with the newest day. None (a clean stop): every stored event is rolled up, nothing is rebuilt, and the
        first rollup recounts only the cells of new events. (The newest day was rebuilt at every start to warm
        the engine's caches: 2.6 s cold against 0.5 s warm in stop 8; in stop 24 a first live rollup took 0.6-0.7
        s cold against 0.3 warm, while the whole day's rebuild held ~250 MB of the worker's memory at start.)"""
        self.rollup_job.missing_vacancy_states()
        days = self.rollup_job.dirty_since_last_rollup()
        if not days:
            with self._lock:  # known: nothing written since the last rollup
                if self.touched_vacancies is None and not self.dirty:
                    self.touched_vacancies, self.touched_cells = set(), set()
            return days
        span = self.rollup_job.event_days_range()
        with self._lock:
            self.dirty |= days | ({span[1]} if span else set())
            self.touched_vacancies = self.touched_cells = None
        return days

    def submit(self, records: Iterable[Record], received_at: float | None = None) -> None:
        """Classify and buffer a batch: in this thread, or in the classifier's processes. Per topic-partition
        run, one buffer extension, one offset range and one stats update."""
        received_at = time.time() if received_at is None else received_at
        observers = self.observers
        if self.classifier is not None and not observers:
            batches = self.classifier(records if isinstance(records, list) else list(records), self.policy)
        else:
            batches = [classify_batch(records, self.policy, keep_accepted=bool(observers))]
        sink, by_topic = self.sink, self.stats.by_topic
        n_events = 0
        for batch in batches:
            self._pending_dirty |= batch.days
            self._pending_vacancies |= batch.vacancies
            self._pending_cells = union_cells(self._pending_cells, batch.cells)
            for run in batch.runs:
                tp = (run.topic, run.partition)
                accepted = run.accepted
                by_topic[run.topic].events += accepted
                n_events += accepted
                if run.rows:
                    sink.add_run("events", tp, run.lo, run.hi, run.rows)
                if run.n_encoded:
                    sink.add_encoded("events", tp, run.lo, run.hi, run.encoded, run.n_encoded)
                for dead in run.dead_letters:
                    sink.add("dead_letters", tp, dead.record.offset, dead.row)
                    self._dead_letter(dead)
                sink.consumed(tp, run.hi)
        if n_events:
            self._received.append((received_at, n_events))
        for observer in observers:
            observer.observe(batches[0].accepted)

    def _dead_letter(self, outcome: DeadLetter) -> None:
        self._pending_dead.append(outcome)
        stats = self.stats.by_topic[outcome.record.topic]
        stats.dead_letters += 1
        stats.too_late += outcome.reason == TOO_LATE
        self.stats.dead_by_reason[outcome.reason] += 1

    def due(self) -> bool:
        return self.sink.due()

    @property
    def days_awaiting_rollup(self) -> int:
        writing = self._writing
        return (len(self.dirty) + len(self._pending_dirty) + len(self._rolling_up)
                + (len(writing.days) if writing is not None else 0))

    @property
    def buffered_messages(self) -> int:
        """Rows not yet acknowledged by ClickHouse: buffered, and being written."""
        writing = self._writing
        return self.sink.pending() + (len(writing.sink) if writing is not None else 0)

    def cut(self) -> PendingCheckpoint:
        """Take what is buffered for writing (the pipeline's thread); submitting goes on meanwhile."""
        pending = PendingCheckpoint(self.sink.cut(), self._pending_dead, self._pending_dirty,
                                    self._pending_vacancies, self._pending_cells, self._received)
        self._pending_dead, self._pending_dirty, self._pending_vacancies, self._received = [], set(), set(), []
        self._pending_cells = set()
        self._writing = pending  # counted as buffered until written (one cut at a time)
        return pending

    def write(self, pending: PendingCheckpoint,
              should_stop: Callable[[], bool] = lambda: False) -> Checkpoint | None:
        """Write a cut (any thread, one at a time, in the order cut). The offsets (and dead letters to
        publish) once ClickHouse acknowledged; None if asked to stop first -- nothing may then be committed
        after it. Only then do its days wait for the rollup: it reads what is stored."""
        try:
            if not self.sink.write(pending.sink, should_stop):
                return None
            with self._lock:
                self.dirty |= {EPOCH_DAY + timedelta(days=n) for n in pending.days}
                if self.touched_vacancies is not None:
                    self.touched_vacancies |= pending.vacancies
                self.touched_cells = union_cells(self.touched_cells, pending.cells)
                self._awaiting_rollup.extend(pending.received)
        finally:
            self._writing = None
        return Checkpoint(pending.sink.offsets, pending.dead_letters)

    def checkpoint(self, should_stop: Callable[[], bool] = lambda: False) -> Checkpoint | None:
        """Cut and write at once; if it gave up, what was buffered stays buffered."""
        pending = self.cut()
        cp = self.write(pending, should_stop)
        if cp is None:
            self.sink.restore(pending.sink)
            self._pending_dead, self._pending_dirty, self._pending_vacancies, self._received = (
                pending.dead_letters, pending.days, pending.vacancies, pending.received)
            self._pending_cells = pending.cells
        return cp

    def rollup(self, before: date | None = None) -> RollupReport | None:
        """Rebuild the days written since the last rollup (any thread; one rollup at a time). The events
        of a checkpoint acknowledged while a rollup runs wait for the next one.

        ``before`` (a backlog's day being read): only the dirty days before it, and what they reach up to the
        first dirty day left; the others stay dirty, with the vacancies, cells and freshness of every event
        since the last whole rollup, for the next one.
        While catching up, each day is then rebuilt about once, when the reading has passed it, instead of
        again and again while its events come in."""
        with self._lock:
            later = {d for d in self.dirty if before is not None and d >= before}
            if not self.dirty or (later and later == self.dirty):
                return None
            if later:
                # Cut at the first day left, not at ``before``: the rollup that takes the days left rebuilds
                # what they reach from the first of them on, and a day between (no new events of its own)
                # has stocks and reviews that the days rebuilt now reach.
                before = min(later)
                dirty, self.dirty = self.dirty - later, later
                touched = cells = None  # whole days, and every vacancy with events on them
                awaiting: list[tuple[float, int]] = []
            else:
                before = None
                dirty, self.dirty = self.dirty, set()
                touched, self.touched_vacancies = self.touched_vacancies, set()
                cells, self.touched_cells = self.touched_cells, set()
                awaiting, self._awaiting_rollup = self._awaiting_rollup, []
            self._rolling_up = dirty
        try:
            report = self.rollup_job.run(dirty, touched, _cell_dates(cells), before)
        except Exception:
            with self._lock:
                self.dirty |= dirty  # redone next time
                # and every state and cell its days and reviews reach with them: the measures of the failed
                # version are superseded by whole days (sinks.rollups: readers take each cell's newest row)
                self.touched_vacancies = self.touched_cells = None
                self._awaiting_rollup[:0] = awaiting
            raise
        finally:
            self._rolling_up = set()
        now = time.time()
        waited = [(now - t, n) for t, n in awaiting]
        with self._lock:
            for w, n in waited:
                self.stats.freshness_since_start.add(w, n)
            self.stats.freshness.extend(waited)
        return report

    def record_clean_stop(self) -> bool:
        """At a stop, on the thread that writes (after its last write): record that every stored event is
        rolled up, if so -- nothing written since the last rollup took its days, nothing being rolled up or
        written. Whether it was recorded. A start-up after it rebuilds nothing (``recover``)."""
        with self._lock:
            if self.dirty or self._rolling_up or self._writing is not None:
                return False
        record_clean_stop(self.client)
        return True

    def take_freshness(self) -> list[tuple[float, int]]:
        """(seconds, events) since the last call (the health tick's); see :func:`weighted_quantile`."""
        with self._lock:
            fresh, self.stats.freshness = self.stats.freshness, []
        return fresh


def _cell_dates(cells: set[tuple] | None) -> set[tuple] | None:
    if cells is None:
        return None
    return {(EPOCH_DAY + timedelta(days=c[0]), *c[1:]) for c in cells}


def weighted_quantile(samples: list[tuple[float, int]], q: float) -> float:
    """The q-quantile of values given as (value, count); 0.0 for no samples."""
    total = sum(n for _, n in samples)
    if not total:
        return 0.0
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value, n in sorted(samples):
        seen += n
        if seen >= rank:
            return value
    return samples[-1][0]  # pragma: no cover -- the counts sum to total
