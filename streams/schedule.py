"""Jobs on an event-time schedule: they run once the data up to their instant is visible (pure; no I/O).

The worker's clock is the sources' message time that everything read so far has reached, on every
partition (``streams.alignment.TimeAlignment.watermark``), as of the newest rollup: what the aggregates
hold. A job due at 00:00 Asia/Seoul runs when the aggregates hold the day that ended then -- live, a little
after midnight; in a replay at full speed, as soon as the replay gets there. So the daily briefing, the
detectors and the snapshots run at the same instants, in the same order, live and in a replay, and are
tested with the simulator. What differs is how far past its instant the data go when a job runs (seconds
live; in a replay, as far as the rollup that passed the instant got): each run is told (``clock``).

A clock that stops (no messages) stops the jobs too: a silent feed is for the wall-clock health checks to
catch, not for a schedule to paper over.

Each job's instants are recorded (:class:`RunLog`; ``sinks.schedule_log`` in ClickHouse) once done, so an
instant runs once in order, also across restarts. A crash between a job's effect and its record runs the
instant again: a job's effect must be idempotent per instant (e.g. an insert deduplicated by a token made
of the job and the instant).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from schemas.calendar import SEOUL, seoul_day, seoul_midnight

log = logging.getLogger("lmis.schedule")


class Schedule(Protocol):
    def next_after(self, instant: datetime) -> datetime:
        """The first instant of the schedule strictly after ``instant`` (aware datetimes, UTC)."""
        ...


@dataclass(frozen=True)
class AfterEachDay:
    """Once per Asia/Seoul day, ``delay`` after it ended: 0 for the day's end, 8 h for a briefing at 08:00 the
    next morning, the allowed lateness for the day's final numbers."""

    delay: timedelta = timedelta(0)

    def next_after(self, instant: datetime) -> datetime:
        day_end = seoul_midnight(seoul_day(instant - self.delay) + timedelta(days=1))
        return (day_end + self.delay).astimezone(UTC)

    def day_of(self, due: datetime) -> date:
        """The Asia/Seoul day an instant of this schedule is for."""
        return seoul_day(due - self.delay) - timedelta(days=1)


@dataclass(frozen=True)
class Every:
    """Every ``period`` of event time, aligned to Asia/Seoul midnight (a period that divides a day): a
    detector over the hours' aggregates every 15 minutes, say."""

    period: timedelta

    def __post_init__(self) -> None:
        if self.period <= timedelta(0) or timedelta(days=1) % self.period:
            raise ValueError(f"period must divide a day: {self.period}")

    def next_after(self, instant: datetime) -> datetime:
        local = instant.astimezone(SEOUL)
        midnight = seoul_midnight(local.date())
        steps = (local - midnight) // self.period + 1
        return (midnight + steps * self.period).astimezone(UTC)


@dataclass(frozen=True)
class EventTimeJob:
    """``run(instant, clock)`` at each instant of ``schedule``, once the aggregates hold the data up to it;
    ``clock`` is how far they hold it (at or after the instant: live, by seconds; in a replay at full speed,
    by as far as the rollup that passed the instant got -- a job that must see the data exactly as of its
    instant reads it as of then). It must be idempotent per instant (see the module's doc)."""

    name: str
    schedule: Schedule
    run: Callable[[datetime, datetime], Any]
    follows: str = ""  # a job whose instants this one's wait for (listed before it)
    # No instant before this one (a go-live: the stream before it holds only the history of what was still
    # open then, nothing to judge or publish).
    begins: datetime | None = None


class RunLog(Protocol):
    """Where the scheduler keeps each job's place: the newest instant it knows and whether it was done (an
    instant not done yet is the job's first, armed when the job was first seen)."""

    def newest(self, job: str) -> tuple[datetime, bool] | None: ...

    def arm(self, job: str, instant: datetime) -> None: ...

    def done(self, job: str, instant: datetime, clock: datetime) -> None: ...


@dataclass
class MemoryRunLog:
    """A :class:`RunLog` in memory, for tests without ClickHouse."""

    rows: dict[tuple[str, datetime], bool] = field(default_factory=dict)

    def newest(self, job: str) -> tuple[datetime, bool] | None:
        mine = [(instant, done) for (name, instant), done in self.rows.items() if name == job]
        return max(mine) if mine else None

    def arm(self, job: str, instant: datetime) -> None:
        self.rows.setdefault((job, instant), False)

    def done(self, job: str, instant: datetime, clock: datetime) -> None:
        self.rows[job, instant] = True


@dataclass(frozen=True)
class Ran:
    job: str
    instant: datetime
    error: str | None = None


class Scheduler:
    """Runs the instants of its jobs that the clock has reached, each job's in order."""

    def __init__(self, jobs: Iterable[EventTimeJob], log: RunLog):
        self.jobs = tuple(jobs)
        names = [j.name for j in self.jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique: {names}")
        for k, job in enumerate(self.jobs):
            if job.follows and job.follows not in names[:k]:
                raise ValueError(f"{job.name} follows {job.follows!r}, which must be listed before it")
        self.log = log
        # Jobs tied by ``follows`` (transitively) run in one time order; unrelated ones go at their own pace.
        group = {job.name: k for k, job in enumerate(self.jobs)}
        for job in self.jobs:
            if job.follows:
                old, new = group[job.name], group[job.follows]
                group = {name: new if g == old else g for name, g in group.items()}
        self.chains = [[k for k, job in enumerate(self.jobs) if group[job.name] == g]
                       for g in sorted(set(group.values()))]
        # Each job's next instant once read from (or armed in) the log: this scheduler is the log's only
        # writer while it runs, so the log is read once per job, not at every clock.
        self._next: dict[str, datetime] = {}
        self._failed: set[str] = set()  # the jobs that failed in the last call

    def next_instant(self, job: EventTimeJob, start: datetime) -> datetime:
        """The job's next instant to run; a job never seen before is armed at its first instant after
        ``start``: where the worker began reading when it first had the job (the beginning of the data for a
        new deployment; now, for a job added to a running one -- not a backfill of every past instant)."""
        if job.name in self._next:
            return self._next[job.name]
        newest = self.log.newest(job.name)
        if newest is None:
            first = job.schedule.next_after(start)
            if job.begins is not None and first < job.begins:
                first = job.schedule.next_after(job.begins - timedelta(microseconds=1))
            self.log.arm(job.name, first)
        else:
            instant, done = newest
            first = job.schedule.next_after(instant) if done else instant
        self._next[job.name] = first
        return first

    def run_due(self, clock: datetime, start: datetime | None = None, limit: int | None = None,
                on_ran: Callable[[Ran], Any] | None = None) -> list[Ran]:
        """Run every instant at or before ``clock`` not yet done (a new job's from ``start``, by default the
        clock). Jobs tied by ``follows`` run in the order of their instants (at the same instant, in the
        jobs' order), as live streaming would, however far the clock is ahead: a briefing due at 08:00 runs
        after the day's detectors and before the next day's, so it never sees what they judged later; a job
        runs an instant only once the one it follows has. Unrelated jobs go at their own pace. At most
        ``limit`` instants of a job per call (a replay's thousands of hourly instants then do not hold the
        worker's other news back: call again while :meth:`behind`); its chain's turn ends when one of its jobs
        reaches it, so the order holds across calls. A job that fails stops at that instant and is retried
        at the next call; the others go on. ``on_ran`` hears of each instant as it is done."""
        ran: list[Ran] = []
        self._failed = set()

        def record(r: Ran) -> None:
            ran.append(r)
            if r.error is not None:
                self._failed.add(r.job)
            if on_ran is not None:
                on_ran(r)

        start = clock if start is None else start
        upcoming = {job.name: self.next_instant(job, start) for job in self.jobs}
        done = dict.fromkeys(upcoming, 0)
        for chain in self.chains:
            while True:
                due = [(upcoming[self.jobs[k].name], k) for k in chain
                       if upcoming[self.jobs[k].name] <= clock and self.jobs[k].name not in self._failed
                       and (not self.jobs[k].follows or upcoming[self.jobs[k].name] < upcoming[self.jobs[k].follows])]
                if not due:
                    break
                instant, k = min(due)
                job = self.jobs[k]
                done[job.name] += 1
                try:
                    job.run(instant, clock)
                except Exception as exc:  # noqa: BLE001 -- reported, and retried when the clock moves
                    log.exception("event-time job %s failed at %s; retried when the clock next moves", job.name,
                                  instant.isoformat())
                    record(Ran(job.name, instant, f"{type(exc).__name__}: {exc}"))
                    continue
                self.log.done(job.name, instant, clock)
                record(Ran(job.name, instant))
                upcoming[job.name] = self._next[job.name] = job.schedule.next_after(instant)
                if limit is not None and done[job.name] >= limit:
                    break
        return ran

    def behind(self, clock: datetime) -> bool:
        """Whether a job seen, that did not fail in the last call, has an instant at or before ``clock``
        still to run (a failing job waits for the clock to move; the others go on)."""
        def can_run(job: EventTimeJob) -> bool:
            instant = self._next.get(job.name)
            return (instant is not None and instant <= clock and job.name not in self._failed
                    and (not job.follows or instant < self._next.get(job.follows, instant)))

        return any(can_run(job) for job in self.jobs)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def day_start_ms(day: date) -> int:
    """When an Asia/Seoul day begins, epoch ms."""
    return int(seoul_midnight(day).timestamp() * 1000)
