"""Classification on other cores: the per-message work of the pipeline (validation, judging, the row) in
processes of their own.

The worker's Python threads share one GIL, and validating and building the rows was most of what held the
reading back (docs/benchmarks.md). The step is a pure function of the message
(:func:`streams.processing.classify_batch`), so a batch split into slices and classified in other
processes gives the same result as in the pipeline's thread, slice by slice in the original order; the
pipeline buffers, writes and commits exactly as before.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, wait

from streams.processing import Classified, Policy, Record, classify_batch

log = logging.getLogger("lmis.classifier")

# A batch smaller than this per process is not split: sending a slice costs more than classifying it.
MIN_SLICE = 1_000
# Nor is a slice larger than this: a process's memory follows its slice (measured at their peak: ~83 MB a
# process with slices of 10,000 messages, ~63 MB with 5,000), and the results of a slice are taken in while
# the next is classified.
MAX_SLICE = 5_000

Packed = tuple[str, int, int, int, bytes | None, bytes]


def _classify_packed(packed: list[Packed], policy: Policy) -> Classified:
    return classify_batch([Record(*p) for p in packed], policy)


def _in_child(parent: int) -> None:
    import signal
    import threading
    import time

    # Ctrl-C reaches the whole process group: the worker stops itself, and then the pool; its classifiers
    # must not die under a batch first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    # A worker killed outright (SIGKILL, OOM) cannot stop its pool, and the pool's processes hold both ends
    # of their task queue, so they would wait for work forever: they leave once the worker is gone.
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="lmis-lifeline", daemon=True).start()


def _ready() -> int:
    return os.getpid()


class ClassifierPool:
    """``pool(records, policy)`` → the batch classified, as :func:`classify_batch` would in-process (a list of
    :class:`Classified`, one per slice, in order). A process that dies breaks the pool: the call raises,
    and the worker stops (a restart replays from the last commit, exactly)."""

    def __init__(self, processes: int):
        if processes < 1:
            raise ValueError(f"processes must be at least 1, not {processes}")
        self.processes = processes
        # Spawned, never forked: the worker holds ClickHouse's and Kafka's threads.
        self._pool = ProcessPoolExecutor(processes, mp_context=mp.get_context("spawn"),
                                         initializer=_in_child, initargs=(os.getpid(),))
        # Start every process now (importing the schemas takes about a second), not at the first batch.
        pids = {f.result() for f in [self._pool.submit(_ready) for _ in range(processes)]}
        log.info("classifying in %d process(es): %s", processes, ", ".join(map(str, sorted(pids))))

    def __call__(self, records: list[Record], policy: Policy) -> list[Classified]:
        if not records:
            return []
        n = len(records)
        slices = max(1, min(self.processes, n // MIN_SLICE), -(-n // MAX_SLICE))
        size = -(-n // slices)
        futures = [self._pool.submit(_classify_packed,
                                     [(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value)
                                      for r in records[i:i + size]], policy)
                   for i in range(0, n, size)]
        wait(futures)
        return [f.result() for f in futures]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
