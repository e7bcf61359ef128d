"""``lmis bench recovery``: a worker killed (SIGKILL) in the middle of a backlog, and started again.

``restart_to_api_s``: from the new worker's launch until its API answers; ``restart_to_caught_up_s``: until
every message is committed and rolled up. The store is then compared with the simulator's truth (exact).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date

from lmis import stack
from lmis.procs import ROOT, WorkerProcess, wait_drained
from lmis.settings import Settings
from simulator.engine import SimConfig, Simulator
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
    folder = (base.data_dir / "bench-recovery").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {"LMIS_DATA_DIR": str(folder), "LMIS_KAFKA_BOOTSTRAP": "127.0.0.1:18192",
           "LMIS_KAFKA_CONTROLLER_PORT": "18193", "LMIS_WEB_PORT": "16266", "LMIS_TOPIC_PARTITIONS": "4"}
    s = Settings(data_dir=folder, kafka_bootstrap=env["LMIS_KAFKA_BOOTSTRAP"], kafka_controller_port=18193,
                 topic_partitions=4)
    log(f"simulating {days} day(s) at scale {scale} with every scenario ...")
    sim = Simulator(SimConfig(seed=1, start=date(2026, 3, 2), days=days, scale=scale, scenarios=("all",),
                              warmup_days=30))
    messages = list(sim.messages())
    truth_path = folder / "truth.json"
    sim.truth.write(truth_path)
    stack.up(s, log=log)
    worker = WorkerProcess(env, folder / "worker.log")
    try:
        log(f"producing {len(messages)} messages ...")
        send_kafka(messages, s.kafka_client_options())
        produced = len(messages)
        del messages, sim
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
        dsn = f"chdb://{folder / 'clickhouse'}"
        check = subprocess.run([sys.executable, "-m", "lmis.truthcheck", dsn, str(truth_path)], cwd=ROOT,
                               capture_output=True, text=True, timeout=600)
        exact = check.returncode == 0 and json.loads(check.stdout.splitlines()[-1])["mismatches"] == {}
        return RecoveryBench(api, caught_up, exact, produced, committed)
    finally:
        worker.kill()
        stack.down(s, log=log)
