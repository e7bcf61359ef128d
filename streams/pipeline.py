"""The trend pipeline's processing step, independent of the broker (as in sentry-arroyo).

``submit`` takes messages, ``checkpoint`` writes them through the sink and says which offsets may be
committed, ``rollup`` rebuilds the measures of the days that changed. The worker drives it from Kafka; the
tests drive it from memory.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from sinks.rollups import Rollup, RollupReport
from sinks.sink import BatchingSink, ClickHouseTable, TopicPartition
from streams.processing import (
    DEAD_LETTER_COLUMNS,
    EVENT_COLUMNS,
    TOO_LATE,
    Accepted,
    DeadLetter,
    Policy,
    Record,
    classify,
)

log = logging.getLogger("lmis.pipeline")
KST_MS = 9 * 3_600_000  # Korea keeps UTC+9 all year
DAY_MS = 86_400_000
EPOCH_DAY = date(1970, 1, 1)
FRESHNESS_SAMPLES = 5000


class Observer(Protocol):
    """Another consumer of the validated events (the matcher): the accepted messages, batch by batch, in the
    pipeline's thread."""

    def observe(self, accepted: list[Accepted]) -> None: ...


@dataclass
class TopicStats:
    events: int = 0
    dead_letters: int = 0
    too_late: int = 0


@dataclass
class Checkpoint:
    offsets: dict[TopicPartition, int]
    dead_letters: list[DeadLetter]


class FreshnessHistogram:
    """Freshness (received → visible in the rolled-up measures) since start: counts per 10 ms up to two
    minutes, so quantiles over hours of samples are exact to 10 ms in constant memory."""

    STEP_S = 0.01
    BUCKETS = 12_000

    def __init__(self) -> None:
        self.counts = [0] * (self.BUCKETS + 1)  # the last bucket: two minutes or more
        self.n = 0

    def add(self, seconds: float) -> None:
        self.counts[min(self.BUCKETS, max(0, int(seconds / self.STEP_S)))] += 1
        self.n += 1

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
    freshness: list[float] = field(default_factory=list)  # since the last health tick (sampled)
    freshness_since_start: FreshnessHistogram = field(default_factory=FreshnessHistogram)


class TrendPipeline:
    def __init__(self, client, policy: Policy = Policy(), max_rows: int = 20_000, max_seconds: float = 1.0,
                 rollup: Rollup | None = None, observers: Iterable[Observer] = ()):
        self.client = client
        self.observers = list(observers)
        self.policy = policy
        self.sink = BatchingSink({
            "events": (ClickHouseTable(client, "events"), EVENT_COLUMNS),
            "dead_letters": (ClickHouseTable(client, "dead_letters"), DEAD_LETTER_COLUMNS),
        }, max_rows=max_rows, max_seconds=max_seconds)
        self.rollup_job = rollup or Rollup(client)
        self.dirty: set[date] = set()
        self._pending_dirty: set[date] = set()
        self._pending_dead: list[DeadLetter] = []
        self._received: list[float] = []  # wall time each written event was received (sampled)
        self._awaiting_rollup: list[float] = []
        self.stats = Stats()
        self._rand = random.Random(0)
        # Rollups run on a thread of their own beside the writes (ClickHouse releases the GIL while it
        # works): what passes between the two is swapped under this lock.
        self._lock = threading.Lock()
        self._rolling_up: set[date] = set()

    def recover(self) -> set[date]:
        """At start-up: days whose rollup may be incomplete (a crash between write and rollup), and the newest
        day -- its stocks move with event time, and rolling it up before consuming warms the engine's caches,
        so the first live events are not held up by a cold rollup (measured: 2.6 s cold, 0.5 s warm)."""
        days = self.rollup_job.dirty_since_last_rollup()
        span = self.rollup_job.event_days_range()
        with self._lock:
            self.dirty |= days | ({span[1]} if span else set())
        return days

    def submit(self, records: Iterable[Record], received_at: float | None = None) -> None:
        received_at = time.time() if received_at is None else received_at
        accepted = []
        for record in records:
            outcome = classify(record, self.policy)
            tp = (record.topic, record.partition)
            stats = self.stats.by_topic[record.topic]
            if isinstance(outcome, Accepted):
                self.sink.add("events", tp, record.offset, outcome.row)
                if self.observers:
                    accepted.append(outcome)
                self._pending_dirty.add((outcome.row[3] + KST_MS) // DAY_MS)  # Asia/Seoul day number
                stats.events += 1
                if len(self._received) < FRESHNESS_SAMPLES:
                    self._received.append(received_at)
            else:
                self.sink.add("dead_letters", tp, record.offset, outcome.row)
                self._pending_dead.append(outcome)
                stats.dead_letters += 1
                stats.too_late += outcome.reason == TOO_LATE
                self.stats.dead_by_reason[outcome.reason] += 1
            self.sink.consumed(tp, record.offset)
        for observer in self.observers:
            observer.observe(accepted)

    def due(self) -> bool:
        return self.sink.due()

    @property
    def days_awaiting_rollup(self) -> int:
        return len(self.dirty) + len(self._pending_dirty) + len(self._rolling_up)

    def checkpoint(self, should_stop: Callable[[], bool] = lambda: False) -> Checkpoint | None:
        """Write what is buffered. The offsets (and dead letters to publish) once ClickHouse acknowledged."""
        offsets = self.sink.flush(should_stop)
        if offsets is None:
            return None
        dead, self._pending_dead = self._pending_dead, []
        with self._lock:
            self.dirty |= {EPOCH_DAY + timedelta(days=n) for n in self._pending_dirty}
            self._awaiting_rollup.extend(self._received)
        self._pending_dirty = set()
        self._received = []
        return Checkpoint(offsets, dead)

    def rollup(self) -> RollupReport | None:
        """Rebuild the days written since the last rollup (any thread; one rollup at a time). The events
        of a checkpoint acknowledged while a rollup runs wait for the next one."""
        with self._lock:
            if not self.dirty:
                return None
            dirty, self.dirty = self.dirty, set()
            awaiting, self._awaiting_rollup = self._awaiting_rollup, []
            self._rolling_up = dirty
        try:
            report = self.rollup_job.run(dirty)
        except Exception:
            with self._lock:
                self.dirty |= dirty  # redone next time
                self._awaiting_rollup[:0] = awaiting
            raise
        finally:
            self._rolling_up = set()
        now = time.time()
        waited = [now - t for t in awaiting]
        with self._lock:
            for w in waited:
                self.stats.freshness_since_start.add(w)
            if waited:
                self.stats.freshness.extend(waited if len(waited) <= 1000 else self._rand.sample(waited, 1000))
                self.stats.freshness = self.stats.freshness[-FRESHNESS_SAMPLES:]
        return report

    def take_freshness(self) -> list[float]:
        """The freshness samples since the last call (the health tick's)."""
        with self._lock:
            fresh, self.stats.freshness = self.stats.freshness, []
        return fresh
