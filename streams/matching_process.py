"""The matcher in a process of its own, fed and queried by the worker.

Why a process: measured in the worker (docs/benchmarks.md, runs 4-7), learning on a thread (~2 ms per
outcome) took the GIL from the trend pipeline -- 10,081 events/s without it, 1,934 with it while catching up
-- and its state (~700 MB at half the national rate) counted against the worker's memory. In a process of
its own it uses the other core and its own heap. The worker still reads Kafka and validates once; it sends
the matching events' original bytes (re-validated here: ~10 µs each, cheaper than pickling models) and, per
partition, how far it has read.

The semantics are ``MatchingService``'s (the child runs one, without its thread): offsets applied are never
learned twice, the state and its offsets are pickled together every ``checkpoint_seconds`` (by the child,
off the worker's CPU), ``replay_from`` says where the worker must start a partition so nothing is lost.
Back-pressure: at most ``max_queued_batches`` batches in flight; ``observe`` waits for a free slot. A child
that fails makes ``observe`` raise (the worker stops and is restarted, as for any ingest failure); a worker
that dies closes the pipe and its child exits.

Three pipes: batches (worker → child), requests and answers (recommendations, observatory rows, shutdown;
answered between slices of a batch), and status (child → worker after every batch: positions and counters,
read by a thread of the worker, so the API's health never waits for the matcher).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path

from sinks.observatory import write_matching
from streams.matching import Matcher, Recommendation
from streams.matching_service import MATCHING_EVENTS, MatchingService
from streams.processing import Accepted

log = logging.getLogger("lmis.matching")
SLICE = 64  # outcomes applied between two looks at the request pipe (~0.1 s at most)
START_TIMEOUT_S = 600.0  # restoring a national checkpoint (GBs of pickle) takes a while


class MatcherFailed(RuntimeError):
    pass


class MatchingProcess:
    def __init__(self, client, checkpoint_path: Path, fresh: Matcher, checkpoint_seconds: float = 30.0,
                 max_queued_batches: int = 8):
        self.client = client
        self.path = checkpoint_path
        self.fresh = fresh
        self.checkpoint_seconds = checkpoint_seconds
        self.max_queued_batches = max_queued_batches
        self.process: mp.process.BaseProcess | None = None
        self.failed: str | None = None
        self.restored = False
        self._stopping = False
        self._slots = threading.Semaphore(max_queued_batches)
        self._in_flight = 0
        self._status: dict = {}
        self._positions: dict[tuple[str, int], int] = {}
        self._rpc_lock = threading.Lock()
        self._redo: set[str] = set()
        self._batches: Connection | None = None
        self._requests: Connection | None = None
        self._listener: threading.Thread | None = None

    # --- life cycle
    def start(self) -> None:
        ctx = mp.get_context("spawn")  # never fork a process holding ClickHouse's and Kafka's threads
        batches_r, batches_w = ctx.Pipe(duplex=False)
        requests, requests_child = ctx.Pipe()
        status_r, status_w = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_child_main, name="lmis-matching", daemon=True,
            args=(batches_r, requests_child, status_w, self.path, self.fresh, self.checkpoint_seconds,
                  logging.getLogger().getEffectiveLevel()))
        self.process.start()
        # The child's ends belong to the child: closing ours lets each side see the other's death as EOF.
        batches_r.close()
        requests_child.close()
        status_w.close()
        self._batches, self._requests = batches_w, requests
        if not status_r.poll(START_TIMEOUT_S):
            raise MatcherFailed(f"the matcher process did not start within {START_TIMEOUT_S:.0f}s")
        kind, body = status_r.recv()
        if kind != "ready":
            raise MatcherFailed(f"the matcher process did not start: {body}")
        self.restored = body["restored"]
        self._positions = body.pop("positions")
        self._status = body
        self._listener = threading.Thread(target=self._listen, args=(status_r,), name="lmis-matching-status",
                                          daemon=True)
        self._listener.start()
        log.info("matcher process %d started (%s)", self.process.pid,
                 "restored from its checkpoint" if self.restored else "fresh")

    def _listen(self, status: Connection) -> None:
        while True:
            try:
                kind, body = status.recv()
            except (EOFError, OSError):
                if self.failed is None and not self._stopping:
                    code = self.process.exitcode if self.process else None
                    self.failed = f"the matcher process exited (code {code})"
                    log.error("%s", self.failed)
                self._release_all()
                return
            if kind == "done":
                self._positions = body.pop("positions")
                self._status = body
                self._in_flight -= 1
                self._slots.release()
            elif kind == "failed":
                self.failed = body
                log.error("the matcher failed: %s", body)

    def _release_all(self) -> None:
        for _ in range(self.max_queued_batches):
            self._slots.release()

    def stop(self) -> None:
        """Ask the child to write its last checkpoint and exit; write the observatory's last rows. Batches
        still in flight are not applied (so not in its positions: the next start replays them)."""
        if self.process is None:
            return
        self._stopping = True
        try:
            if self.failed is None:
                days, daily, exposure = self._call("shutdown", self._redo)
                self._redo = set()
                write_matching(self.client, daily, exposure)
        finally:
            self.process.join(60)
            if self.process.is_alive():
                self.process.kill()
            self.process = None

    # --- fed by the pipeline (its thread)
    def observe(self, accepted: list[Accepted]) -> None:
        if self.failed is not None:
            raise MatcherFailed(self.failed)
        if not accepted:
            return
        through: dict[tuple[str, int], int] = {}
        items = []
        for a in accepted:
            r = a.record
            through[r.topic, r.partition] = r.offset  # in order within a partition: the last is the highest
            if a.event.event_type in MATCHING_EVENTS:  # type: ignore[attr-defined]
                items.append((r.topic, r.partition, r.offset, r.value, a.row[3]))
        while not self._slots.acquire(timeout=1.0):  # back-pressure
            if self.failed is not None:
                raise MatcherFailed(self.failed)
        if self.failed is not None:
            raise MatcherFailed(self.failed)
        self._in_flight += 1
        assert self._batches is not None
        self._batches.send((items, through))

    def pending(self) -> int:
        return self._in_flight

    def replay_from(self, topic: str, partition: int, committed: int | None) -> int | None:
        """As ``MatchingService.replay_from``, from the positions the child last reported."""
        applied = self._positions.get((topic, partition))
        start = 0 if applied is None else applied + 1
        if committed is not None and start < committed:
            return start
        return None

    # --- periodic job and API (any thread)
    def _call(self, name: str, *args):
        if self.failed is not None:
            raise MatcherFailed(self.failed)
        assert self._requests is not None
        with self._rpc_lock:
            try:
                self._requests.send((name, args))
                kind, body = self._requests.recv()
            except (EOFError, OSError) as exc:
                raise MatcherFailed("the matcher process is gone") from exc
        if kind == "error":
            error, message = body
            raise (KeyError(message) if error == "KeyError" else MatcherFailed(f"{error}: {message}"))
        return body

    def write_observatory(self) -> int:
        days, daily, exposure = self._call("observatory", self._redo)
        self._redo = set()
        try:
            write_matching(self.client, daily, exposure)
        except Exception:
            self._redo |= days  # asked for again next time
            raise
        return len(days)

    def checkpoint(self, force: bool = False) -> bool:
        return self._call("checkpoint", force)

    def recommend_vacancies(self, seeker_id: str, k: int) -> list[Recommendation]:
        return self._call("recommend_vacancies", seeker_id, k)

    def recommend_seekers(self, vacancy_id: str, k: int) -> list[Recommendation]:
        return self._call("recommend_seekers", vacancy_id, k)

    def summary(self) -> dict:
        return {**self._status, "queued_batches": self.pending(),
                "process": self.process.pid if self.process else None, "failed": self.failed}


# --- the child
def _child_main(batches: Connection, requests: Connection, status: Connection, path: Path, fresh: Matcher,
                checkpoint_seconds: float, loglevel: int) -> None:
    logging.basicConfig(level=loglevel, format="[%(asctime)s] [matching %(process)d] %(levelname)s %(message)s")
    try:
        service = MatchingService.restore(None, path, fresh, checkpoint_seconds)
    except BaseException as exc:  # noqa: BLE001 -- reported to the worker, which stops
        log.exception("restoring the matcher failed")
        status.send(("failed", f"restoring {path}: {exc!r}"))
        return
    status.send(("ready", {**_status_of(service), "restored": service.restored}))
    _Child(service, batches, requests, status).run()


def _status_of(service: MatchingService) -> dict:
    body = service.summary()
    body.pop("queued_batches", None)
    body["positions"] = dict(service.matcher.positions)
    return body


class _Child:
    def __init__(self, service: MatchingService, batches: Connection, requests: Connection, status: Connection):
        self.service, self.batches, self.requests, self.status = service, batches, requests, status

    def run(self) -> None:
        from schemas.codec import decode_event

        service = self.service
        while True:
            ready = wait([self.requests, self.batches], timeout=1.0)
            if self.requests in ready and not self.answer():
                return
            if self.batches in ready:
                try:
                    items, through = self.batches.recv()
                except (EOFError, OSError):
                    os._exit(0)  # the worker is gone: its successor restores the last checkpoint
                try:
                    batch = [(t, p, o, decode_event(raw), ms) for t, p, o, raw, ms in items]
                    for start in range(0, len(batch), SLICE):
                        service._apply(batch[start:start + SLICE])
                        if self.requests.poll() and not self.answer():
                            return
                    positions = service.matcher.positions
                    for tp, offset in through.items():
                        if offset > positions.get(tp, -1):
                            positions[tp] = offset
                except BaseException as exc:  # noqa: BLE001 -- the worker stops on it; never silently
                    log.exception("the matcher failed")
                    self.status.send(("failed", repr(exc)))
                    return
                self.status.send(("done", _status_of(service)))
            service.checkpoint()  # every checkpoint_seconds, here, off the worker's CPU

    def answer(self) -> bool:
        """Answer the requests waiting; False after a shutdown (or when the worker is gone)."""
        service = self.service
        while self.requests.poll():
            try:
                name, args = self.requests.recv()
            except (EOFError, OSError):
                os._exit(0)
            try:
                if name == "shutdown":
                    rows = service.observatory_rows(set(args[0]))
                    started = time.monotonic()
                    service.checkpoint(force=True)
                    log.info("matcher checkpoint written in %.1fs; exiting", time.monotonic() - started)
                    self.requests.send(("ok", rows))
                    return False
                if name == "observatory":
                    body = service.observatory_rows(set(args[0]))
                elif name == "checkpoint":
                    body = service.checkpoint(*args)
                elif name == "recommend_vacancies":
                    body = service.matcher.recommend_vacancies(*args)
                elif name == "recommend_seekers":
                    body = service.matcher.recommend_seekers(*args)
                else:
                    raise ValueError(f"unknown request {name!r}")
                self.requests.send(("ok", body))
            except Exception as exc:  # noqa: BLE001 -- the caller raises it
                self.requests.send(("error", (type(exc).__name__, str(exc))))
        return True
