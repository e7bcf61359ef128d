from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, date, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def run_lmis(*args: str, env: dict | None = None, timeout: float = 600,
             check: bool = True) -> subprocess.CompletedProcess:
    """Run the real ``lmis`` command in a subprocess (each process may own one embedded ClickHouse)."""
    full_env = {**os.environ, **(env or {})}
    res = subprocess.run([sys.executable, "-m", "lmis.cli", *args], capture_output=True, text=True,
                         env=full_env, timeout=timeout, cwd=ROOT)
    if check and res.returncode != 0:
        raise AssertionError(f"lmis {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


@pytest.fixture(scope="session")
def month_run(tmp_path_factory):
    """A simulated month at small scale with every scenario: (messages file, truth, simulator)."""
    from simulator.engine import SimConfig, Simulator
    from simulator.output import write_jsonl

    folder = tmp_path_factory.mktemp("month")
    sim = Simulator(SimConfig(seed=11, start=date(2026, 3, 2), days=28, scale=0.01, scenarios=("all",)))
    path = folder / "events.jsonl"
    write_jsonl(sim.messages(), path)
    return path, sim.truth.to_dict(), sim


@pytest.fixture(scope="session")
def engine_dsn(tmp_path_factory):
    # One embedded engine per test process; each test gets a database of its own in it.
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture()
def client(engine_dsn):
    from sinks.clickhouse import connect, migrate

    c = connect(engine_dsn, database=f"t_{uuid.uuid4().hex[:12]}")
    migrate(c)
    return c


@pytest.fixture(scope="session")
def judged(engine_dsn, month_run):
    """The month stored, then every alert instant judged in order (the alerts' and the briefings' tests)."""
    from alerts.jobs import AlertJobs
    from schemas.calendar import seoul_midnight
    from simulator.calibration import insured_snapshot
    from simulator.output import read_jsonl
    from sinks import alert_log
    from sinks.clickhouse import connect, migrate
    from sinks.insured import load_snapshot
    from streams.pipeline import TrendPipeline
    from streams.processing import Policy
    from tests.test_alerts import DAYS, START, judge_all
    from tests.test_pipeline import as_records

    client = connect(engine_dsn, database=f"a_{uuid.uuid4().hex[:12]}")
    migrate(client)
    path, _, sim = month_run
    load_snapshot(client, insured_snapshot(sim.cfg.start, sim.cfg.scale))  # the EI database's count at the start
    records = sorted(as_records(read_jsonl(path)), key=lambda r: r.timestamp)
    pipeline = TrendPipeline(client, Policy())
    for i in range(0, len(records), 20_000):
        pipeline.submit(records[i:i + 20_000])
        pipeline.checkpoint()
    pipeline.rollup()
    jobs = AlertJobs(client)
    end = seoul_midnight(START + timedelta(days=DAYS)).astimezone(UTC)
    judge_all(jobs, end)
    return client, records, sim, alert_log.history(client, limit=5000)
