"""``lmis bench recovery``: a worker killed (SIGKILL) in the middle of a backlog, and started again.

``restart_to_api_s``: from the new worker's launch until its API answers; ``restart_to_caught_up_s``: until
every message is committed and rolled up. The store is then compared with the simulator's truth (exact).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

from lmis import stack
from lmis.bench import bench_stack, matches_truth, simulated_backlog
from lmis.procs import WorkerProcess, wait_drained
from lmis.settings import Settings
from simulator.output import send_kafka


@dataclass
class RecoveryBench:
    restart_to_api_s: float
    restart_to_caught_up_s: float
    exact: bool
    messages: int
    committed_at_kill: int

    def line(self) -> str:
        return (f"restart_to_api_s={self.restart_to_api_s:.1f} "
                f"restart_to_caught_up_s={self.restart_to_caught_up_s:.1f} exact={'true' if self.exact else 'false'}")


def run_recovery_bench(base: Settings, scale: float = 0.5, days: int = 3, kill_after_s: float = 3.0,
                       log=print) -> RecoveryBench:
    folder, env, s = bench_stack(base, "bench-recovery", kafka_port=18192, web_port=16266)
    messages, truth_path = simulated_backlog(folder, date(2026, 3, 2), scale, days, log)
    stack.up(s, log=log)
    worker = WorkerProcess(env, folder / "worker.log")
    try:
        log(f"producing {len(messages)} messages ...")
        send_kafka(messages, s.kafka_client_options())
        produced = len(messages)
        del messages
        worker.start()
        worker.wait_ready()
        time.sleep(kill_after_s)
        health = worker.health(store=False) or {}
        committed = sum(health.get("committed", {}).values())
        log(f"killing the worker (SIGKILL) with {committed} of {produced} messages committed ...")
        if committed >= produced:
            log("the backlog was drained before the kill: ask for a larger one (--scale, --days) or --kill-after")
        worker.kill()
        started = time.monotonic()
        worker.start()
        while worker.health(store=False) is None:
            if not worker.alive():
                raise RuntimeError(f"worker exited:\n{worker.tail()}")
            time.sleep(0.05)
        api = time.monotonic() - started
        log(f"the API answers {api:.1f}s after the restart: {worker.health(store=False).get('reasons')}")
        caught_up = wait_drained(s, worker, produced, timeout=3600, poll=0.1) - started
        worker.stop()
        exact, check = matches_truth(folder, truth_path)
        if not exact:
            log(f"NOT exact: {check.stdout[-2000:]} {check.stderr[-2000:]}")
        return RecoveryBench(api, caught_up, exact, produced, committed)
    finally:
        worker.kill()
        stack.down(s, log=log)
