"""The matcher in a process of its own, reading Kafka by itself; started, queried and stopped by the worker.

Why: measured (docs/benchmarks.md), learning (~2 ms per outcome) on a thread of the worker took the GIL
from the trend pipeline -- 10,081 events/s without it, 1,934 with it while catching up -- and its state
(~700 MB at half the national rate) counted against the worker's memory. Fed by the worker through a
bounded pipe, it still set the pace: the pipeline waited whenever the matcher was eight batches behind.
So the matcher consumes the topics that carry its events itself, at its own pace, with its own positions:
the trend pipeline is never held up by it, and a matcher that lags only makes recommendations older.

It validates with the pipeline's own ``judge`` (same acceptance, same lateness rules), applies the
matching events, and pickles its state together with the offsets it has read to every
``checkpoint_seconds``; at start it restores that and reads on from those offsets, so nothing is learned
twice and nothing is lost after any crash (no consumer group: the checkpoint is the only position).

The worker talks to it through two pipes: requests and answers (recommendations, the observatory's rows --
which the worker writes, since only one process may open an embedded ClickHouse -- and shutdown; answered
between slices of a batch), and status (counters, positions and lag every half second, read by a thread of
the worker, so the API's health never waits for the matcher). A worker that dies closes the pipes and its
matcher exits (a thread of its own waits for that on a third pipe, whatever the main thread is doing);
a matcher that dies is reported in the health and makes its requests fail.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sinks.observatory import write_matching
from streams.logs import quiet_repeats
from streams.matching import Matcher, Recommendation
from streams.matching_service import MATCHING_EVENTS, MatchingService
from streams.processing import Policy, judge

log = logging.getLogger("lmis.matching")
MATCHING_TOPICS = ("lmis.seekers", "lmis.vacancies", "lmis.applications")  # where MATCHING_EVENTS travel
SLICE = 64  # outcomes applied between two looks at the request pipe (~0.1 s at most)
STATUS_EVERY_S = 0.5
MATCHER_NICENESS = 10  # where SCHED_IDLE is not available
START_TIMEOUT_S = 600.0  # restoring a national checkpoint (GBs of pickle) takes a while
REQUEST_TIMEOUT_S = 30.0  # a request waits for one slice of a batch, or for a checkpoint being written


class MatcherFailed(RuntimeError):
    pass


class MatchingProcess:
    def __init__(self, client, checkpoint_path: Path, fresh: Matcher, kafka_options: dict[str, Any],
                 policy: Policy = Policy(), checkpoint_seconds: float = 30.0,
                 topics: tuple[str, ...] = MATCHING_TOPICS):
        self.client = client
        self.path = checkpoint_path
        self.fresh = fresh
        self.kafka_options = kafka_options
        self.policy = policy
        self.checkpoint_seconds = checkpoint_seconds
        self.topics = topics
        self.process: mp.process.BaseProcess | None = None
        self.failed: str | None = None
        self.restored = False
        self._stopping = False
        self._status: dict = {}
        self._rpc_lock = threading.Lock()
        self._request_id = 0
        self._redo: set[str] = set()
        self._requests: Connection | None = None
        self._lifeline: Connection | None = None
        self._life_lock = threading.Lock()  # starting, restarting and stopping the child, one at a time
        self._generation = 0  # which child a status listener belongs to
        self.restarts = 0
        self._restart_at = 0.0

    # --- life cycle
    def start(self) -> None:
        ctx = mp.get_context("spawn")  # never fork a process holding ClickHouse's and Kafka's threads
        requests, requests_child = ctx.Pipe()
        status_r, status_w = ctx.Pipe(duplex=False)
        lifeline_r, lifeline_w = ctx.Pipe(duplex=False)  # never written: its EOF is the worker's death
        self.process = ctx.Process(
            target=_child_main, name="lmis-matching", daemon=True,
            args=(requests_child, status_w, lifeline_r, self.path, self.fresh, self.checkpoint_seconds,
                  self.kafka_options, self.topics, self.policy, logging.getLogger().getEffectiveLevel()))
        self.process.start()
        # The child's ends belong to the child: closing ours lets each side see the other's death as EOF.
        requests_child.close()
        status_w.close()
        lifeline_r.close()
        self._requests = requests
        self._lifeline = lifeline_w
        if not status_r.poll(START_TIMEOUT_S):
            raise MatcherFailed(f"the matcher process did not start within {START_TIMEOUT_S:.0f}s")
        try:
            kind, body = status_r.recv()
        except EOFError:
            raise MatcherFailed(f"the matcher process exited at start (code {self.process.exitcode})") from None
        if kind != "ready":
            raise MatcherFailed(f"the matcher process did not start: {body}")
        self.restored = body.pop("restored")
        self._status = body
        self._generation += 1
        threading.Thread(target=self._listen, args=(status_r, self._generation), name="lmis-matching-status",
                         daemon=True).start()
        log.info("matcher process %d started (%s)", self.process.pid,
                 "restored from its checkpoint" if self.restored else "fresh")

    def _listen(self, status: Connection, generation: int) -> None:
        while True:
            try:
                kind, body = status.recv()
            except (EOFError, OSError):
                if self.failed is None and not self._stopping and generation == self._generation:
                    # Never join (reap) here: a second thread reaping the same child races the one that
                    # stops it, and the loser reads exitcode None for a process that is gone (seen in CI).
                    self.failed = "the matcher process exited unexpectedly (its log says why)"
                    log.error("%s", self.failed)
                return
            if generation != self._generation:
                return
            if kind == "status":
                self._status = body
            elif kind == "failed":
                self.failed = body
                log.error("the matcher failed: %s", body)

    def supervise(self) -> bool:
        """Start again a child that died or failed (a broker away too long, a bug), waiting longer after each
        restart (5 s, doubling, at most 5 minutes): recommendations come back without a worker restart,
        and the official numbers never depended on it."""
        with self._life_lock:
            if self.failed is None or self._stopping or time.monotonic() < self._restart_at:
                return False
            self.restarts += 1
            self._restart_at = time.monotonic() + min(300.0, 5.0 * 2 ** min(self.restarts - 1, 6))
            log.warning("restarting the matcher process (restart %d): %s", self.restarts, self.failed)
            self._end_child()
            self.failed = None
            try:
                self.start()
            except Exception as exc:  # noqa: BLE001 -- reported in the health, tried again later
                self.failed = f"restart failed: {exc}"
                log.error("%s", self.failed)
            return True

    def tick(self) -> int:
        """The worker's periodic job: restart a dead child (its rows come at the next tick), or write the
        observatory's new rows -- never raising for a matcher that is down or busy (the health says so)."""
        if self.supervise() or self.failed is not None:
            return 0
        try:
            return self.write_observatory()
        except MatcherFailed as exc:
            log.warning("the matcher's observatory rows wait: %s", exc)
            return 0

    def _end_child(self) -> None:
        if self.process is not None:
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)
        self.process = None
        for conn in (self._requests, self._lifeline):
            if conn is not None:
                conn.close()
        self._requests = self._lifeline = None

    def stop(self) -> None:
        """Ask the child to write its last checkpoint and exit; write the observatory's last rows."""
        with self._life_lock:
            self._stop()

    def _stop(self) -> None:
        if self.process is None:
            return
        self._stopping = True
        try:
            if self.failed is None:
                try:
                    days, daily, exposure = self._call("shutdown", self._redo, timeout=START_TIMEOUT_S)
                except MatcherFailed as exc:  # it died meanwhile: its last checkpoint stands
                    log.warning("the matcher did not shut down cleanly: %s", exc)
                else:
                    self._redo = set()
                    write_matching(self.client, daily, exposure)
        finally:
            self.process.join(60)
            if self.process.is_alive():
                self.process.kill()
            self.process = None
            for conn in (self._requests, self._lifeline):
                if conn is not None:
                    conn.close()

    # --- periodic job and API (any thread)
    def _call(self, name: str, *args, timeout: float = REQUEST_TIMEOUT_S):
        if self.failed is not None:
            raise MatcherFailed(self.failed)
        assert self._requests is not None
        with self._rpc_lock:
            self._request_id += 1
            deadline = time.monotonic() + timeout
            try:
                self._requests.send((self._request_id, name, args))
                while True:  # answers to requests that timed out earlier arrive late: skipped by their id
                    if not self._requests.poll(max(0.0, deadline - time.monotonic())):
                        raise MatcherFailed(f"the matcher process did not answer {name!r} within {timeout:.0f}s "
                                            "(busy writing its checkpoint?)")
                    answer_id, kind, body = self._requests.recv()
                    if answer_id == self._request_id:
                        break
            except (EOFError, OSError) as exc:
                raise MatcherFailed("the matcher process is gone") from exc
        if kind == "error":
            error, message = body
            raise (KeyError(message) if error == "KeyError" else MatcherFailed(f"{error}: {message}"))
        return body

    def write_observatory(self) -> int:
        """The days whose metrics changed since the last write, into ClickHouse (from the worker)."""
        days, daily, exposure = self._call("observatory", self._redo)
        self._redo = set()
        try:
            write_matching(self.client, daily, exposure)
        except Exception:
            self._redo |= days  # asked for again next time
            raise
        return len(days)

    def recommend_vacancies(self, seeker_id: str, k: int) -> list[Recommendation]:
        return self._call("recommend_vacancies", seeker_id, k)

    def recommend_seekers(self, vacancy_id: str, k: int) -> list[Recommendation]:
        return self._call("recommend_seekers", vacancy_id, k)

    def summary(self) -> dict:
        """The child's last status (counters, lag behind the topics' ends), never waiting for it."""
        return {**self._status, "process": self.process.pid if self.process else None, "failed": self.failed,
                "restarts": self.restarts}


# --- the child
def _watch(lifeline: Connection) -> None:
    """Exit the moment the worker is gone, whatever the main thread is doing (a Kafka call may block)."""
    try:
        lifeline.recv()
    except (EOFError, OSError):
        pass
    os._exit(0)


def _child_main(requests: Connection, status: Connection, lifeline: Connection, path: Path, fresh: Matcher,
                checkpoint_seconds: float, kafka_options: dict[str, Any], topics: tuple[str, ...], policy: Policy,
                loglevel: int) -> None:
    threading.Thread(target=_watch, args=(lifeline,), name="lmis-matching-lifeline", daemon=True).start()
    logging.basicConfig(level=loglevel, format="[%(asctime)s] [matching %(process)d] %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:  # a broker away: a line a while, not hundreds a second
        quiet_repeats(handler)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    _below_the_pipeline()
    try:
        service = MatchingService.restore(None, path, fresh, checkpoint_seconds)
    except BaseException as exc:  # noqa: BLE001 -- reported to the worker
        log.exception("restoring the matcher failed")
        status.send(("failed", f"restoring {path}: {exc!r}"))
        return
    child = _Child(service, requests, status, kafka_options, topics, policy)
    status.send(("ready", {**child.status(), "restored": service.restored}))
    try:
        child.run()
    except _WorkerGone:
        return
    except BaseException as exc:  # noqa: BLE001 -- the worker reports it; never silently
        log.exception("the matcher failed")
        try:
            status.send(("failed", repr(exc)))
        except OSError:
            pass


def _below_the_pipeline() -> None:
    """The official numbers come first: the matcher (this thread and those it starts) gets only the CPU that
    the trend pipeline, the engine and the broker leave. Measured on the bench's backlog, 7 drains each,
    alternating: niceness 10 drained at 25,514-31,385 events/s (mean 27,900), SCHED_IDLE at 28,500-37,291
    (mean 32,900); the matcher still got 0.24-0.37 cores and answered requests during the drain within 2 s.
    A matcher starved for long only makes recommendations older (and a request may time out)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux
        os.nice(MATCHER_NICENESS)


class _WorkerGone(Exception):
    pass


class _Child:
    def __init__(self, service: MatchingService, requests: Connection, status: Connection,
                 kafka_options: dict[str, Any], topics: tuple[str, ...], policy: Policy):
        self.service, self.requests, self.status_pipe = service, requests, status
        self.kafka_options, self.topics, self.policy = kafka_options, topics, policy
        self.consumer = None
        self.parent = os.getppid()
        self.lag: int | None = None
        self.consumed = 0

    def status(self) -> dict:
        body = self.service.summary()
        body["lag"] = self.lag  # messages behind the ends of its topics, when the status was taken
        body["consumed"] = self.consumed  # messages read since this process started
        body["status_at"] = time.time()
        return body

    def _connect(self):
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(**self.kafka_options, group_id=None, enable_auto_commit=False,
                                 auto_offset_reset="earliest", client_id="lmis-matcher",
                                 max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
        while True:  # the topics may not exist yet (a worker started before `lmis stack up` made them)
            tps = [TopicPartition(t, p) for t in self.topics for p in sorted(consumer.partitions_for_topic(t) or ())]
            if {tp.topic for tp in tps} == set(self.topics):
                break
            self.answer()
            time.sleep(1.0)
        consumer.assign(tps)
        positions = self.service.matcher.positions
        for tp in tps:
            applied = positions.get((tp.topic, tp.partition))
            if applied is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, applied + 1)  # the checkpoint's offsets: on from there, nothing twice
        log.info("reading %s from the checkpoint's offsets", ", ".join(self.topics))
        self.consumer, self.tps = consumer, tps

    def run(self) -> None:
        service = self.service
        self._connect()
        consumer = self.consumer
        next_status = 0.0
        while True:
            self.answer()
            batches = consumer.poll(timeout_ms=200, max_records=2000)
            accepted = []
            last: dict[tuple[str, int], int] = {}
            for tp, records in batches.items():
                for r in records:
                    judged = judge(r, self.policy, fast=True)  # the same events, read faster
                    if type(judged) is tuple and judged[0].event_type in MATCHING_EVENTS:
                        event, occurred_ms = judged
                        accepted.append((tp.topic, tp.partition, r.offset, event, occurred_ms))
                    last[tp.topic, tp.partition] = r.offset
                    self.consumed += 1
            service.apply(accepted, SLICE, self.answer)
            positions = service.matcher.positions
            for tp, offset in last.items():  # also past messages that are not the matcher's (or dead letters)
                if offset > positions.get(tp, -1):
                    positions[tp] = offset
            now = time.monotonic()
            if now >= next_status:
                ends = consumer.end_offsets(self.tps)
                self.lag = sum(max(0, end - consumer.position(tp)) for tp, end in ends.items())
                self.status_pipe.send(("status", self.status()))
                next_status = now + STATUS_EVERY_S
            service.checkpoint()  # every checkpoint_seconds, here, off the worker's CPU

    def answer(self) -> None:
        """Answer the requests waiting. Raises _WorkerGone after a shutdown or when the worker is gone."""
        service = self.service
        if os.getppid() != self.parent:
            raise _WorkerGone()  # adopted by init: the worker died (its pipe may not have said so yet)
        while True:
            try:
                if not self.requests.poll():
                    return
                request_id, name, args = self.requests.recv()
            except (EOFError, OSError):
                raise _WorkerGone() from None  # its successor restores the last checkpoint
            try:
                if name == "shutdown":
                    rows = service.observatory_rows(set(args[0]))
                    started = time.monotonic()
                    service.checkpoint(force=True)
                    log.info("matcher checkpoint written in %.1fs; exiting", time.monotonic() - started)
                    self.requests.send((request_id, "ok", rows))
                    raise _WorkerGone()
                if name == "observatory":
                    body = service.observatory_rows(set(args[0]))
                elif name == "recommend_vacancies":
                    body = service.recommend_vacancies(*args)
                elif name == "recommend_seekers":
                    body = service.recommend_seekers(*args)
                else:
                    raise ValueError(f"unknown request {name!r}")
                self.requests.send((request_id, "ok", body))
            except _WorkerGone:
                raise
            except Exception as exc:  # noqa: BLE001 -- the caller raises it
                self.requests.send((request_id, "error", (type(exc).__name__, str(exc))))
