"""Running ``lmis worker`` as a child process and watching it drain a topic backlog (bench and tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from lmis.settings import Settings
from schemas.events import TOPICS

ROOT = Path(__file__).resolve().parent.parent


def proc_status(pid: int | str = "self") -> dict[str, str]:
    """A process's /proc/<pid>/status as {field: text} (Linux); {} if it is gone or there is no /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in status.splitlines() if ":" in line)


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path, loglevel: str = "warn"):
        self.env, self.log, self.loglevel = env, log, loglevel
        self.proc: subprocess.Popen | None = None
        self.port = int({**os.environ, **env}.get("LMIS_WEB_PORT", "6066"))  # as the worker will see it
        # One client kept open for every poll: ``httpx.get`` builds a client (and its TLS context) per call,
        # ~35 ms of CPU -- a poll every 0.1 s took a third of a core from the worker it measures.
        self._http: httpx.Client | None = None

    def start(self) -> WorkerProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "lmis.cli", "worker", "--loglevel", self.loglevel],
                                     cwd=ROOT, env={**os.environ, **self.env}, stdout=open(self.log, "ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 120) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.close()
        return code

    def close(self) -> None:
        """Close the HTTP client the polls share (a later poll opens a new one)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def peak_rss_mb(self) -> float:
        """Peak resident memory of ``lmis worker``'s whole process tree (the worker and its matcher process):
        the sum of each process's peak."""
        return sum(self.peak_rss_by_process().values())

    def pids(self) -> list[int]:
        """The worker and every process under it (matcher, classifiers, multiprocessing's resource tracker)."""
        pids, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            pids.append(pid)
        return pids

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the worker's process tree."""
        return sum(self.cpu_seconds_by_process().values())

    def cpu_seconds_by_process(self) -> dict[str, float]:
        """CPU time (user + system) used so far by the worker and each process below it, by ``name pid``."""
        out: dict[str, float] = {}
        for pid in self.pids():
            try:
                head, tail = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
            except (FileNotFoundError, ProcessLookupError):
                continue
            fields = tail.split()
            name = head.split("(", 1)[1]
            out[f"{name} {pid}"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        return out

    def peak_rss_by_process(self) -> dict[str, float]:
        """Peak resident memory (MB) of the worker and of each process below it, by ``name pid``."""
        out: dict[str, float] = {}
        for pid in self.pids():
            fields = proc_status(pid)
            if not fields:
                continue
            out[f"{fields['Name'].strip()} {pid}"] = int(fields.get("VmHWM", "0 kB").split()[0]) / 1024
        return out

    def health(self, store: bool = True) -> dict | None:
        if self._http is None:
            self._http = httpx.Client(timeout=5)
        try:
            r = self._http.get(f"http://127.0.0.1:{self.port}/api/health", params={"store": str(store).lower()})
            return r.json() if r.status_code == 200 else None
        except httpx.TransportError:
            return None

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.health() is None:
            if not self.alive():
                raise RuntimeError(f"worker exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError("worker did not come up")
            time.sleep(0.2)


class KafkaProgress:
    """End offsets of the event topics and a group's committed offsets, over clients kept open (a poll every
    fraction of a second must not cost the machine a core: measured, new clients per poll took ~0.7 of one)."""

    def __init__(self, settings: Settings, group: str = "lmis-trends"):
        from kafka import KafkaAdminClient, KafkaConsumer

        opts = settings.kafka_client_options()
        self.group = group
        self.consumer = KafkaConsumer(**opts)
        self.admin = KafkaAdminClient(**opts)

    def read(self) -> tuple[dict, dict]:
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        tps = [TopicPartition(t, p) for t in TOPICS.values() for p in self.consumer.partitions_for_topic(t) or ()]
        ends = {(tp.topic, tp.partition): o for tp, o in self.consumer.end_offsets(tps).items()}
        try:
            offsets = self.admin.list_group_offsets(self.group).get(self.group, {})
        except KafkaError:  # a new broker's group coordinator is not ready yet: nothing committed
            offsets = {}
        committed = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
        return ends, committed

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()


def end_and_committed(settings: Settings, group: str = "lmis-trends") -> tuple[dict, dict]:
    progress = KafkaProgress(settings, group)
    try:
        return progress.read()
    finally:
        progress.close()


def wait_matcher_caught_up(worker: WorkerProcess, timeout: float = 1800, poll: float = 1.0) -> float | None:
    """Wait until the worker's matcher has applied every message of its topics (the lag it reports is 0);
    the seconds it took, or None if the worker runs no matcher."""
    started = time.monotonic()
    while True:
        health = worker.health(store=False)
        if health is not None:
            matching = health.get("matching")
            if matching is None:
                return None
            if matching.get("failed"):
                raise RuntimeError(f"the matcher failed: {matching['failed']}")
            if matching.get("lag") == 0:
                return time.monotonic() - started
        if not worker.alive():
            raise RuntimeError(f"worker exited:\n{worker.tail()}")
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"the matcher did not catch up: {health}")
        time.sleep(poll)


def wait_drained(settings: Settings, worker: WorkerProcess, expected: int, timeout: float = 600,
                 poll: float = 0.25) -> float:
    """Wait until every message is committed and rolled up; returns the time (monotonic) it happened."""
    deadline = time.monotonic() + timeout
    progress = KafkaProgress(settings)
    ends: dict = {}
    committed: dict = {}
    try:
        while True:
            health = worker.health(store=False)
            # Kafka is asked only once the worker's own counters say it may be done.
            if health and health["buffered_messages"] == 0 and health["days_awaiting_rollup"] == 0:
                ends, committed = progress.read()
                if sum(ends.values()) >= expected and all(committed.get(tp, 0) >= o for tp, o in ends.items()):
                    return time.monotonic()
            if not worker.alive():
                raise RuntimeError(f"worker exited:\n{worker.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not drained: ends={ends} committed={committed} health={health}")
            time.sleep(poll)
    finally:
        progress.close()
