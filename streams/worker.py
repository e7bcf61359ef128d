"""The worker: a faust app whose ingest service feeds the trend pipeline from Kafka.

Why not faust agents: measured here, faust's agent stream delivered about 2,000 events/s even with
``stream.take`` (CPU idle), and ``take`` acknowledges a batch in a ``finally`` -- also when the agent is
cancelled before its write is acknowledged, which would commit offsets of lost rows. The ingest therefore
runs as a faust-managed service on aiokafka's batch API (about 140,000 messages/s here) and commits offsets
itself, only after ClickHouse (and the dead-letter topic) acknowledged. faust still owns the process:
start-up and shutdown, signals, timers (rollups, health) and the web server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust
import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from schemas.calendar import seoul_day
from schemas.events import DLQ_TOPIC, TOPICS
from sinks.clickhouse import release_memory
from sinks.schedule_log import last_visible
from sinks.sink import Backoff
from streams import kafka_records
from streams.alignment import TimeAlignment
from streams.logs import quiet_repeats
from streams.pipeline import PendingCheckpoint, TrendPipeline, weighted_quantile
from streams.processing import Record
from streams.schedule import Ran, Scheduler, day_start_ms, from_ms

log = logging.getLogger("lmis.worker")


# A replay reaches thousands of an hourly job's instants at once: each job runs at most this many per call,
# so that the others (and the reading's own news) are not held back until it is through.
JOB_INSTANTS_PER_CALL = 100


@dataclass
class WorkerConfig:
    kafka_options: dict[str, Any]
    group_id: str = "lmis-trends"
    # Who this worker is in the group (streams.membership): its client id names its store, and the static
    # member id lets a restarted worker take its partitions back at once.
    client_id: str = "lmis-worker"
    group_instance_id: str | None = None
    topics: tuple[str, ...] = tuple(TOPICS.values())
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    rollup_interval_s: float = 1.0
    health_interval_s: float = 5.0
    max_poll_records: int = 20_000
    # Caught up (the live rate): a checkpoint, and the rollup after it, once no rollup is running and the
    # oldest buffered message has waited long enough to become visible (stored and rolled up) within
    # freshness_target_s -- the target less the time a checkpoint and its rollup take (a running average),
    # at least live_checkpoint_s. Rollups back to back made events visible sooner than anyone reads them
    # and kept a core busy at a few events a second (measured: 1.13 cores at 3 events/s).
    freshness_target_s: float = 1.5
    live_checkpoint_s: float = 0.2
    # Partitions are read in step by message time: what runs more than this ahead of the slowest partition
    # with messages left waits for it (streams.alignment). A day: a batch then touches a day or two of a
    # backlog, and the step is long enough not to starve the reading (an hour: 4,800 messages/s, a day:
    # 15,600, on the bench's backlog; windows of an hour hold the fast partitions back for every fetch).
    align_window_s: float = 86_400.0
    # A partition not read yet (not fetched yet, or with messages on the broker) holds the others back this
    # long at most after it was assigned.
    unread_wait_s: float = 10.0
    stop_flush_attempts: int = 3
    # Caught up, the event-time clock waits for the partition furthest behind, but for one more than this
    # behind the newest (a quiet topic) it does not: live at national rates every partition is seconds from
    # the newest, and a feed gone silent must not hold the day's publications back (streams.schedule).
    event_time_idle_s: float = 3600.0
    # While catching up, a rollup rests this many times its own duration before the next: rollups compete
    # with the writes for the engine and the cores, but what they leave undone at the end of a backlog is
    # waited for, and a rollup of more days at once takes more memory. Measured on the bench's backlog
    # (docs/benchmarks.md, stop 16): a rest of 4 rolled up 30-33 days at once at the end (engine 520 MB,
    # the worker's peak 1.23-1.34 GB; 11.1-12.9k events/s), 1 the same backlog at 12.8-13.5k with peaks of
    # 1.14-1.15 GB, 0 (back to back) at 12.4-12.6k.
    backlog_rollup_rest: float = 1.0
    # While catching up, a rollup rebuilds only the days the reading has passed; a whole one (the day being
    # read too) runs at least this often, so that a worker that cannot catch up still shows the day it reads.
    backlog_whole_rollup_s: float = 60.0
    # The embedded engine's allocator keeps what inserts and merges freed; a rollup hands it back after it
    # runs. With no rollup for this long (catching up on one day: none until caught up), a write does.
    release_memory_s: float = 2.0
    extra: dict[str, Any] = field(default_factory=dict)


def _aiokafka_options(opts: dict[str, Any]) -> dict[str, Any]:
    out = {"bootstrap_servers": ",".join(opts["bootstrap_servers"]),
           "security_protocol": opts.get("security_protocol", "PLAINTEXT")}
    for k in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        if opts.get(k) is not None:
            out[k] = opts[k]
    if opts.get("ssl_cafile"):
        from aiokafka.helpers import create_ssl_context

        out["ssl_context"] = create_ssl_context(cafile=opts["ssl_cafile"])
    return out


class Ingest(mode.Service):
    """Kafka → trend pipeline → ClickHouse; commits offsets after the write is acknowledged."""

    def __init__(self, cfg: WorkerConfig, pipeline: TrendPipeline, executor: ThreadPoolExecutor,
                 jobs: tuple[PeriodicJob, ...] = (), scheduler: Scheduler | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.jobs = jobs
        # Event time (streams.schedule): the message time every partition has been read up to (epoch ms),
        # as handed to the pipeline (``read``), buffered, acknowledged by ClickHouse (``stored``) and rolled
        # up (``visible``: what the aggregates hold). Each only moves forward.
        self.clock: dict[str, int | None] = {"read": None, "buffered": None, "stored": None, "visible": None}
        self._submitting_clock: int | None = None  # the read clock of the batch being classified
        self.first_read: int | None = None  # the read clock when this run first had one: new jobs start there
        self.scheduler = scheduler
        self._jobs_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmis-event-time-jobs")
        self._jobs_lock = asyncio.Lock()
        self._jobs_tasks: set[asyncio.Task] = set()
        self._armed = scheduler is None  # each new job's first instant recorded (before the first commit)
        # Per event-time job: the newest instant it ran for and its last failure since (for /api/health).
        self.jobs_status: dict[str, dict[str, str | None]] = {}
        self.pipeline = pipeline
        self.executor = executor  # the one thread that classifies
        # The one thread that writes (and the health rows, on the same client), beside the classifying.
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmis-writer")
        self._write_task: asyncio.Future | None = None
        self._submitting: asyncio.Future | None = None  # the batch being classified and buffered
        self.classifying = 0  # its messages (handed over, not buffered yet)
        self._gave_up = False
        # Rollups on a thread of their own, with a ClickHouse client of their own (lmis/worker.py): the engine
        # releases the GIL while it rebuilds a day and runs the writes beside it, so nothing waits for it.
        self.rollup_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmis-rollup")
        self._rollup_lock = asyncio.Lock()
        self._rollup_again = False
        self._rollup_tasks: set[asyncio.Task] = set()  # kicked rollups (a reference keeps them alive)
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.stopping = False
        self.last_checkpoint = time.time()
        self.committed: dict[tuple[str, int], int] = {}
        self._delivered: dict[TopicPartition, int] = {}  # the next offset to hand to the pipeline
        self._alignment = TimeAlignment(int(cfg.align_window_s * 1000))
        self._unread_since: dict[TopicPartition, float] = {}  # when a partition was first seen unread
        self._next_rollup = 0.0
        self.caught_up = False  # the reading is at the live rate (what the broker holds is read)
        self._whole_rollup_at = time.monotonic()  # when the last rollup that left no day dirty began
        self._memory_released_at = time.monotonic()  # by a rollup or a write (``release_memory_s``)
        # Running averages of a checkpoint's write and of a rollup, seconds (start pessimistic: no waiting).
        self._write_s = self._rollup_s = cfg.freshness_target_s
        self._health_mark = (time.time(), {})
        # What keeps the worker from its work now, by what it was doing: /api/health reports "degraded".
        self.problems: dict[str, str] = {}
        self._problems_since: dict[str, str] = {}

    @staticmethod
    async def _on(executor: ThreadPoolExecutor, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def _in_pipeline_thread(self, fn, *args):
        return await self._on(self.executor, fn, *args)

    async def on_start(self) -> None:
        for handler in logging.getLogger().handlers:  # as set up by faust's worker
            quiet_repeats(handler)
        opts = _aiokafka_options(self.cfg.kafka_options)
        recovered = await self._in_pipeline_thread(self.pipeline.recover)
        if recovered:
            log.info("rolling up %d day(s) left dirty by the previous run", len(recovered))
            # The API answers meanwhile, and says why the numbers are not up to date yet.
            self.problems["rebuilding"] = (f"rebuilding {len(recovered)} day(s) from {min(recovered)} to "
                                           f"{max(recovered)} left dirty by the previous run")
        await self.rollup(force=True)
        self.problems.pop("rebuilding", None)
        self.producer = AIOKafkaProducer(**opts, acks="all", enable_idempotence=True, linger_ms=20,
                                         client_id="lmis-worker-dlq")
        await self.producer.start()
        kafka_records.install()  # the fetched messages made in compiled code
        self.consumer = AIOKafkaConsumer(
            **opts, group_id=self.cfg.group_id, client_id=self.cfg.client_id,
            group_instance_id=self.cfg.group_instance_id,
            # A megabyte a partition and fetch: the messages held back in time order stay a few tens of MB.
            enable_auto_commit=False, auto_offset_reset="earliest", max_partition_fetch_bytes=1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024, max_poll_interval_ms=600_000)
        await self.consumer.start()
        self.consumer.subscribe(list(self.cfg.topics))
        log.info("consuming %s as group %s", ", ".join(self.cfg.topics), self.cfg.group_id)

    async def _restore_visible_clock(self) -> None:
        """Start from the visible clock the last run reached (the aggregates still hold that far): the
        event-time jobs it had not run yet run now, not only once new messages come -- a replay that ended,
        then a restart, would otherwise leave its last mornings unbriefed until the next live message."""
        if self.scheduler is None:
            return
        try:
            visible = await self._on(self.writer, partial(last_visible, self.pipeline.client))
        except Exception as exc:  # noqa: BLE001 -- the clock comes back with the next messages anyway
            log.warning("could not read the last visible clock (%s); the jobs wait for new messages", exc)
            return
        if visible is not None and self._advance("visible", int(visible.timestamp() * 1000)):
            log.info("event time visible up to %s (the last run's); due event-time jobs run now", visible.isoformat())
            self.kick_event_time_jobs()

    @mode.Service.task
    async def _consume(self) -> None:
        assert self.consumer is not None
        await self._restore_visible_clock()
        try:
            while not self.should_stop and not self.stopping:
                try:
                    batches = await self.consumer.getmany(timeout_ms=100, max_records=self.cfg.max_poll_records)
                except KafkaError as exc:
                    if self._problem("reading from Kafka", exc):
                        log.error("reading from Kafka failed, retrying: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                self._solved("reading from Kafka")
                records = await self._in_time_order(batches)
                clock = self.clock["read"]
                if not self._armed and self.first_read is not None:
                    await self._arm_event_time_jobs()
                if not records:  # the clock moved (partitions caught up) without new messages
                    self._buffered_up_to(clock)
                # The previous batch was classified while this one was read (in the classifier's processes the
                # GIL is free meanwhile); it is buffered before anything is cut.
                await self._submitted()
                few = self.cfg.max_poll_records // 4
                small = len(records) < few
                if records and small:  # the live rate: buffered at once, so that it is cut without waiting
                    self._submit(records, clock)
                    await self._submitted()
                # Caught up (the live rate) by what the broker still holds, not by a short read: a read
                # returns what the fetches brought so far, often a few thousand messages while far behind.
                caught_up = self.caught_up = small and sum((await self.lag()).values()) < few
                if self.pipeline.due() or (caught_up and not self._rollup_lock.locked()
                                           and self.pipeline.sink.age() >= self.live_wait()):
                    if not await self.checkpoint(wait=False, then_rollup=caught_up):
                        return  # a write gave up (stopping): nothing more is read or committed
                if records and not small:  # classified while the next batch is read
                    self._submit(records, clock)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Never limp on without ingesting: stop the worker (a supervisor restarts it; replays are exact).
            log.exception("ingest failed")
            await self.crash(exc)

    def _submit(self, records: list[Record], clock: int | None) -> None:
        self.classifying = len(records)
        self._submitting_clock = clock
        self._submitting = asyncio.ensure_future(self._in_pipeline_thread(self.pipeline.submit, records, time.time()))

    def _advance(self, name: str, ms: int | None) -> bool:
        """Move a clock forward to ``ms``; whether it moved."""
        current = self.clock[name]
        if ms is not None and (current is None or ms > current):
            self.clock[name] = ms
            return True
        return False

    def _buffered_up_to(self, clock: int | None) -> None:
        """Everything read up to ``clock`` is buffered once the batch being classified (if any) is."""
        if self._submitting is None:
            self._advance("buffered", clock)
        elif clock is not None and (self._submitting_clock is None or clock > self._submitting_clock):
            self._submitting_clock = clock

    async def _submitted(self) -> None:
        """Wait for the batch being classified and buffered, if any (raising its failure)."""
        task = self._submitting
        if task is not None:
            await asyncio.shield(task)  # a cancelled reader must not cancel the buffering half-way
            if self._submitting is task:
                self._submitting = None
                self.classifying = 0
                self._advance("buffered", self._submitting_clock)

    def _problem(self, what: str, exc: BaseException) -> bool:
        """Record a problem for the health (since when, the latest error); whether it is new (worth a log
        line: not one per retry)."""
        new = what not in self.problems
        since = self._problems_since.setdefault(what, datetime.now(UTC).isoformat(timespec="seconds"))
        self.problems[what] = f"{what} failing since {since}: {exc}"
        return new

    def _solved(self, what: str) -> None:
        self._problems_since.pop(what, None)
        if self.problems.pop(what, None) is not None:
            log.info("%s works again", what)

    async def _retrying(self, what: str, action) -> bool:
        for delay in Backoff(first=0.5, cap=10.0).delays():
            try:
                await action()
                self._solved(what)
                return True
            except asyncio.CancelledError:
                raise
            except CommitFailedError as exc:
                # The group rebalanced: whoever owns the partitions now replays from the last commit.
                log.warning("%s: %s", what, exc)
                return False
            except Exception as exc:  # noqa: BLE001
                if self._problem(what, exc) or delay >= 10.0:
                    log.error("%s failed, retrying in %.1fs: %s", what, delay, exc)
                if self.stopping:
                    return False
                await asyncio.sleep(delay)
        return False  # pragma: no cover

    async def checkpoint(self, wait: bool = True, then_rollup: bool = False) -> bool:
        """Cut what is buffered and write it on the writer thread; then publish its dead letters and commit
        its offsets. One write at a time, in the order cut: a new cut first waits for the one being written
        (back-pressure). ``wait=False`` returns once cut, so reading and validating go on beside the write
        (the engine's insert releases the GIL). False once a write or its publishing gave up (only while
        stopping, after ``stop_flush_attempts``): nothing may be committed after that."""
        if not await self._wait_for_write():
            return False
        await self._submitted()
        clock = self.clock["buffered"]  # what this cut holds, read up to
        pending = await self._in_pipeline_thread(self.pipeline.cut)
        self._write_task = asyncio.ensure_future(self._write_and_commit(pending, then_rollup, clock))
        self._write_task.add_done_callback(self._write_done)
        return await self._wait_for_write() if wait else True

    def _write_done(self, task: asyncio.Future) -> None:
        # A write that failed unexpectedly stops the worker at once, even if no checkpoint waits for it.
        if not task.cancelled() and task.exception() is not None:
            log.error("writing a checkpoint failed", exc_info=task.exception())
            asyncio.ensure_future(self.crash(task.exception()))

    def live_wait(self) -> float:
        """How long the oldest buffered message may wait, caught up, before its checkpoint and rollup start:
        the freshness target less what they are expected to take (with a quarter to spare)."""
        return max(self.cfg.live_checkpoint_s,
                   self.cfg.freshness_target_s - 1.25 * (self._write_s + self._rollup_s))

    @staticmethod
    def _average(mean: float, sample: float) -> float:
        return 0.7 * mean + 0.3 * sample

    async def _wait_for_write(self) -> bool:
        task = self._write_task
        if task is not None:
            await asyncio.shield(task)  # a cancelled reader must not cancel a write half-way
            if self._write_task is task:
                self._write_task = None
        return not self._gave_up

    async def _write_and_commit(self, pending: PendingCheckpoint, then_rollup: bool, clock: int | None) -> bool:
        tries = [0]

        def give_up() -> bool:  # never while running: ClickHouse unavailable holds the reading back instead
            if not self.stopping:
                return False
            tries[0] += 1
            return tries[0] >= self.cfg.stop_flush_attempts

        started = time.monotonic()
        cp = await self._on(self.writer, self.pipeline.write, pending, give_up)
        self._write_s = self._average(self._write_s, time.monotonic() - started)
        if cp is None:
            log.error("ClickHouse did not acknowledge the last batch; its offsets are NOT committed")
            self._gave_up = True
            return False
        self._advance("stored", clock)
        producer, consumer = self.producer, self.consumer
        assert producer is not None and consumer is not None

        async def publish_dead_letters() -> None:
            # Timestamped now (the original's emission time is in the body): the topic's retention counts
            # from record timestamps, and a replayed past would otherwise expire at once.
            sends = [await producer.send(DLQ_TOPIC, key=d.key, value=d.message()) for d in cp.dead_letters]
            await asyncio.gather(*sends)

        async def commit() -> None:
            await consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "") for (t, p), o in cp.offsets.items()})

        if cp.dead_letters and not await self._retrying("publishing dead letters", publish_dead_letters):
            self._gave_up = True
            return False  # not committed: the batch is replayed, its rows are idempotent
        if cp.offsets and await self._retrying("committing offsets", commit):
            self.committed.update(cp.offsets)
        self.last_checkpoint = time.time()
        if then_rollup:
            # Make the new events visible now, not at the next tick, without waiting for it.
            self.kick_rollup()
        # After the commit, so that it holds nothing up but the next write (~20 ms, at most every
        # ``release_memory_s``).
        if (time.monotonic() - self._memory_released_at >= self.cfg.release_memory_s
                and not self._rollup_lock.locked()):
            self._memory_released_at = time.monotonic()
            try:
                await self._on(self.writer, release_memory, self.pipeline.client)
            except Exception as exc:  # noqa: BLE001 -- memory handed back later is no reason to stop
                log.warning("handing the engine's freed memory back failed: %s", exc)
        return True

    async def rollup(self, force: bool = False) -> None:
        """One rollup at a time, on the rollup thread. While catching up on a backlog, a rollup is followed by
        a rest (``backlog_rollup_rest``) and rebuilds only the days the stored clock has passed (the pipeline
        keeps the day being read, and any after it, for a later rollup); ``force`` runs a whole one now, or
        right after the running one."""
        if not force and time.monotonic() < self._next_rollup:
            return
        if self._rollup_lock.locked():
            self._rollup_again |= force
            if not force:
                return
        async with self._rollup_lock:
            self._rollup_again = False
            while True:
                started = time.monotonic()
                # Every write acknowledged by now has its days in the pipeline's dirty set, which this
                # rollup takes: once it is done, the aggregates hold the events up to this clock.
                clock = self.clock["stored"]
                # Catching up, the day being read (in event time) is rebuilt once the reading has passed it,
                # rather than again and again while its events come in (measured: docs/benchmarks.md, stop 22).
                whole = (force or self.caught_up or clock is None
                         or started - self._whole_rollup_at >= self.cfg.backlog_whole_rollup_s)
                before = None if whole else seoul_day(from_ms(clock))  # type: ignore[arg-type]
                try:
                    report = await self._on(self.rollup_executor, self.pipeline.rollup, before)
                except Exception:
                    log.exception("rollup failed; it is retried at the next tick")
                    return
                took = time.monotonic() - started
                # (None: nothing was dirty, or only days from ``before`` on.)
                if before is None or (report is not None and not report.partial):
                    self._whole_rollup_at = started
                else:  # the aggregates hold everything before that day
                    clock = min(clock, day_start_ms(before))  # type: ignore[type-var]
                if self._advance("visible", clock):
                    self.kick_event_time_jobs()
                self._next_rollup = time.monotonic() + self.cfg.backlog_rollup_rest * took
                if report:
                    self._memory_released_at = time.monotonic()  # Rollup.run did
                    self._rollup_s = self._average(self._rollup_s, took)
                    log.debug("rolled up %d day(s) in %.3fs", report.days, report.seconds)
                if not self._rollup_again:
                    return
                self._rollup_again = False  # a checkpoint came in while it ran: its days, now
                force = True

    def kick_rollup(self) -> None:
        """A rollup now (or after the running one) without waiting for it."""
        if self._rollup_lock.locked():
            self._rollup_again = True
        else:
            task = asyncio.ensure_future(self.rollup(force=True))
            self._rollup_tasks.add(task)
            task.add_done_callback(self._rollup_tasks.discard)

    async def _arm_event_time_jobs(self) -> None:
        """Record each new job's first instant (after where this run began reading) before anything read is
        committed: a worker killed before its jobs first ran would leave the next run to begin reading later,
        and the days between would never be published."""
        scheduler, start = self.scheduler, from_ms(self.first_read)  # type: ignore[arg-type]
        assert scheduler is not None

        async def arm() -> None:
            async with self._jobs_lock:
                await self._on(self._jobs_executor,
                               lambda: [scheduler.next_instant(j, start) for j in scheduler.jobs])

        # Nothing is committed until it is done: ClickHouse away holds the reading back, as for a write.
        self._armed = await self._retrying("recording the event-time jobs' first instants", arm)

    def kick_event_time_jobs(self) -> None:
        """Run the event-time jobs due by the visible clock, on their own thread, without waiting; one run
        at a time (a run that starts later sees the newer clock)."""
        if self.scheduler is None or self._jobs_lock.locked():
            return
        task = asyncio.ensure_future(self.run_event_time_jobs())
        self._jobs_tasks.add(task)
        task.add_done_callback(self._jobs_tasks.discard)

    async def run_event_time_jobs(self) -> None:
        scheduler, clock = self.scheduler, self.clock["visible"]
        if scheduler is None or clock is None:
            return

        def report(r: Ran) -> None:  # on the jobs' thread, as each instant is done (a dict's update)
            status = self.jobs_status.setdefault(r.job, {"done": None, "failed": None, "error": None})
            if r.error is None:
                log.info("event-time job %s ran for %s", r.job, r.instant.isoformat())
                status.update(done=r.instant.isoformat(), failed=None, error=None)
            else:
                status.update(failed=r.instant.isoformat(), error=r.error)

        async with self._jobs_lock:
            while True:
                try:
                    start = from_ms(self.first_read if self.first_read is not None else clock)
                    await self._on(self._jobs_executor, partial(
                        scheduler.run_due, from_ms(clock), start, limit=JOB_INSTANTS_PER_CALL, on_ran=report))
                except Exception:
                    log.exception("event-time jobs failed; retried when the clock next moves")
                    return
                if not scheduler.behind(from_ms(clock)) and self.clock["visible"] == clock:
                    return
                # More instants than one call runs (a replay), or the clock moved meanwhile: again, to the
                # newest clock (a job caught up goes on at once, not after the slowest one).
                clock = self.clock["visible"]

    async def _in_time_order(self, batches: dict[TopicPartition, list]) -> list[Record]:
        """The messages read, less those held back where they run ahead of the slowest partition
        (streams.alignment); fetching a partition pauses while some of it is held back."""
        consumer, alignment = self.consumer, self._alignment
        assert consumer is not None
        for tp, messages in batches.items():
            alignment.add(tp, messages)  # aiokafka's records as they are: they have Record's attributes
        assigned = consumer.assignment()
        alignment.forget(assigned)
        more, unread = set(), set()
        now = time.monotonic()
        for tp in assigned:
            high = consumer.highwater(tp)
            delivered = self._delivered.get(tp)
            if high is not None and delivered is not None and delivered >= high:
                continue  # everything on the broker handed over
            # The fetch position, not what was handed over: it also passes offsets that carry no message
            # (transaction markers), which would otherwise look like messages still to come.
            position = await self._position(tp)
            if position is not None and (high is None or position < high):
                more.add(tp)
                if delivered is None and now - self._unread_since.setdefault(tp, now) < self.cfg.unread_wait_s:
                    # None read yet: the others wait for its first messages, for a while (should they not
                    # come, reading goes on without it).
                    unread.add(tp)
        records, holding = alignment.release(more, unread)
        self._advance("read", alignment.watermark(more | holding, int(self.cfg.event_time_idle_s * 1000)))
        if self.first_read is None:
            self.first_read = self.clock["read"]
        last: dict[tuple[str, int], int] = {}
        for r in records:
            last[r.topic, r.partition] = r.offset
        for (topic, partition), offset in last.items():
            self._delivered[TopicPartition(topic, partition)] = offset + 1
        paused = consumer.paused()
        if holding - paused:
            consumer.pause(*(holding - paused))
        if (paused & assigned) - holding:
            consumer.resume(*((paused & assigned) - holding))
        return records

    async def _position(self, tp: TopicPartition) -> int | None:
        """The partition's fetch position; None if a rebalance took it away meanwhile (asked between awaits)."""
        assert self.consumer is not None
        try:
            return await self.consumer.position(tp)
        except IllegalStateError:
            return None

    async def lag(self) -> dict[str, int]:
        """Messages on the broker not yet handed to the pipeline, per topic: the newest fetches' high-water
        marks less the next offset to deliver (partitions not fetched yet are left out)."""
        assert self.consumer is not None
        lag: dict[str, int] = {}
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is None:
                continue
            position = await self._position(tp)  # the next to fetch: prefetched messages are ahead
            if position is None:
                continue
            delivered = self._delivered.get(tp, position)
            if delivered > position:  # handed out before the partition was revoked and assigned again
                delivered = position
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - delivered)
        return lag

    async def health(self) -> None:
        """Lag, rate, dead letters and freshness per topic since the last tick, into pipeline_health."""
        if self.consumer is None:
            return
        now = time.time()
        then, before = self._health_mark
        stats = self.pipeline.stats
        lag = await self.lag()
        fresh = self.pipeline.take_freshness()
        p50, p99 = weighted_quantile(fresh, 0.5), weighted_quantile(fresh, 0.99)
        fresh_events = sum(n for _, n in fresh)
        stamp = datetime.now(UTC)  # one tick, one time: its rows (a row per topic) read together
        rows = []
        current = {}
        visible = None if self.clock["visible"] is None else from_ms(self.clock["visible"])
        for topic in self.cfg.topics:
            t = stats.by_topic[topic]
            current[topic] = (t.events, t.dead_letters, t.too_late)
            e0, d0, l0 = before.get(topic, (0, 0, 0))
            events = t.events - e0
            rows.append([stamp, topic, lag.get(topic, 0), events, events / max(now - then, 1e-9),
                         t.dead_letters - d0, t.too_late - l0, p50, p99, visible, fresh_events])
        self._health_mark = (now, current)
        cols = ["ts", "topic", "lag", "events", "events_per_s", "dead_letters", "too_late", "freshness_p50_s",
                "freshness_p99_s", "event_time", "fresh_events"]
        await self._on(self.writer, lambda: self.pipeline.client.insert("pipeline_health", rows, column_names=cols))

    async def on_stop(self) -> None:
        self.stopping = True
        if self.consumer is not None:
            try:
                # The write in flight, then what is still buffered.
                if not await self.checkpoint():
                    # Exit at once: nothing more may be committed (a restart replays from the last commit).
                    os._exit(3)
                await self.rollup(force=True)
                try:
                    # On the writer's thread: no write can come between the check and the record.
                    if await self._on(self.writer, self.pipeline.record_clean_stop):
                        log.info("every stored event is rolled up: the next start rebuilds nothing")
                except Exception as exc:  # noqa: BLE001 -- the next start then redoes a few seconds' days
                    log.warning("recording the clean stop failed: %s", exc)
                for job in self.jobs:
                    if job.at_stop is not None:
                        try:
                            await self._in_pipeline_thread(job.at_stop)
                        except Exception:
                            log.exception("periodic job %s failed at shutdown", job.name)
            finally:
                await self.consumer.stop()
                if self.pipeline.classifier is not None:
                    self.pipeline.classifier.close()
        if self.producer is not None:
            await self.producer.stop()


@dataclass(frozen=True)
class PeriodicJob:
    """Work every ``interval_s`` of wall-clock time, on the pipeline's thread unless told otherwise (and once
    more at shutdown, after the last checkpoint, if ``at_stop``): the matcher's checkpoint and observatory.
    Work that belongs to a moment of the data (a day's end, a briefing, a detector over the aggregates) is
    an event-time job instead (streams.schedule), run once the aggregates hold the data up to its instant."""

    name: str
    interval_s: float
    run: Callable[[], Any]
    at_stop: Callable[[], Any] | None = None
    # False: on a thread of its own, for a job that does not touch the pipeline (and would hold up its
    # writes and rollups, e.g. pickling the matcher). Never two runs of one job at once.
    on_pipeline_thread: bool = True


def build_app(cfg: WorkerConfig, pipeline: TrendPipeline, asgi_app: Any | None = None,
              jobs: tuple[PeriodicJob, ...] = (), scheduler: Scheduler | None = None) -> faust.App:
    """The faust app of ``lmis worker``: the ingest service, its timers, periodic and event-time jobs and the
    HTTP API."""
    opts = cfg.kafka_options
    app = faust.App(
        "lmis-worker", broker=[f"kafka://{b}" for b in opts["bootstrap_servers"]], store="memory://",
        autodiscover=False, web_host=cfg.web_host, web_port=cfg.web_port, web_bind=cfg.web_host,
        web_enabled=asgi_app is not None, topic_partitions=1, consumer_auto_offset_reset="earliest",
        # faust's own (idle) consumer as a static member too: a restart after a kill does not wait for its group.
        consumer_group_instance_id=cfg.client_id,
        broker_credentials=_faust_credentials(opts),
    )
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmis-pipeline")
    ingest = Ingest(cfg, pipeline, executor, jobs=jobs, scheduler=scheduler)
    app.ingest = ingest  # type: ignore[attr-defined]

    @app.service
    class IngestService(mode.Service):
        async def on_start(self) -> None:
            await self.add_runtime_dependency(ingest)

    @app.timer(interval=cfg.rollup_interval_s)
    async def rollup_tick() -> None:
        await ingest.rollup()

    @app.timer(interval=cfg.health_interval_s)
    async def health_tick() -> None:
        try:
            await ingest.health()
        except Exception:
            log.exception("health metrics failed")

    for job in jobs:
        app.timer(interval=job.interval_s, name=f"lmis.job.{job.name}")(_job_tick(ingest, job))

    if asgi_app is not None:
        from faust.contrib.asgi import serve_asgi

        serve_asgi(app, asgi_app, host=cfg.web_host, port=cfg.web_port, log_level="warning")
    return app


def _job_tick(ingest: Ingest, job: PeriodicJob):
    own = None if job.on_pipeline_thread else ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lmis-{job.name}")

    async def tick() -> None:
        try:
            if own is None:
                await ingest._in_pipeline_thread(job.run)
            else:
                await ingest._on(own, job.run)
        except Exception:
            log.exception("periodic job %s failed; it runs again at the next tick", job.name)

    return tick


def _faust_credentials(opts: dict[str, Any]):
    if opts.get("sasl_mechanism"):
        ssl_context = None
        if opts.get("ssl_cafile"):
            from aiokafka.helpers import create_ssl_context

            ssl_context = create_ssl_context(cafile=opts["ssl_cafile"])
        return faust.SASLCredentials(username=opts.get("sasl_plain_username"),
                                     password=opts.get("sasl_plain_password"),
                                     mechanism=opts["sasl_mechanism"], ssl_context=ssl_context)
    if opts.get("ssl_cafile"):
        from aiokafka.helpers import create_ssl_context

        return faust.SSLCredentials(create_ssl_context(cafile=opts["ssl_cafile"]))
    return None
