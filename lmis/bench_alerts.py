"""``lmis bench alerts``: do the detectors find every injected anomaly, soon, and nothing else?

Each run simulates a quarter (91 days) with every scenario at random knobs (region, industry, employer,
source, day, size) in its last month, stores it through the trend pipeline into the embedded engine, and
judges every hour and day of that last month as the worker's event-time jobs do (the data faults read
what was sent by each instant; see tests/test_alerts.py for the worker and a replay doing the same). A
normal quarter without scenarios counts the labour-market alerts of its last month: false alarms.

An alert matches an injected anomaly when its class and cells are the anomaly's (a layoff: its employer,
or a labour-market alert in its region; the national shock: a national or regional labour-market alert; an
outage or a duplicate burst: a data fault of its source) and it starts between the anomaly's start and a
week after its end. Recall: anomalies matched within 24 h (the shock: 72 h); precision: delivered alerts
(not explained away by a data fault) that match one.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from alerts.jobs import AlertJobs
from schemas.calendar import SEOUL, seoul_midnight
from schemas.codes import code_list
from simulator.calibration import VACANCY_SOURCE_SHARES
from simulator.engine import SimConfig, Simulator
from simulator.scenarios import parse
from sinks import alert_log
from sinks.clickhouse import connect, migrate
from streams.pipeline import TrendPipeline
from streams.processing import Policy, Record

DAYS = 91
JUDGED_FROM = 56  # eight weeks of history before the judged month


def random_specs(rng: random.Random) -> list[str]:
    """Every scenario once, at random knobs, in the judged month."""
    regions = [c for c in code_list("regions").values() if c != "50"]  # Jeju: too few manufacturers to lay off
    industries = ["C", "F", "G", "H", "I", "N", "Q"]
    sources = list(VACANCY_SOURCE_SHARES)
    day = lambda lo, hi: rng.randint(lo, hi)  # noqa: E731
    employer = "E" + "".join(rng.choice("0123456789abcdef") for _ in range(16))
    dup_source, out_source = rng.sample(sources, 2)
    return [f"regional_layoff:region={rng.choice(regions)},industry={rng.choice(industries)},employer={employer},"
            f"day={day(62, 80)},workers={rng.choice([800, 1500, 3000])}",
            f"national_shock:day={day(62, 72)},days=30",
            f"source_outage:source={out_source},day={day(60, 84)},hour={rng.randint(0, 20)},"
            f"hours={rng.choice([12, 36])}",
            f"duplicate_burst:source={dup_source},day={day(60, 84)},hour={rng.randint(8, 16)}",
            "malformed", "late"]


def records_of(sim: Simulator) -> list[Record]:
    import zlib

    offsets: dict[tuple[str, int], int] = {}
    out = []
    for m in sim.messages():
        p = zlib.crc32(m.key.encode()) % 4
        o = offsets.get((m.topic, p), 0)
        offsets[(m.topic, p)] = o + 1
        out.append(Record(m.topic, p, o, m.emit_ms, m.key.encode(), m.value))
    out.sort(key=lambda r: r.timestamp)
    return out


@dataclass
class QuarterRun:
    alerts: list[dict]
    injected: list[dict]
    messages: int
    hourly_s: list[float]
    daily_s: list[float]


def judge_quarter(dsn: str, seed: int, scale: float, specs: list[str], start: date = date(2026, 1, 5),
                  log=print) -> QuarterRun:
    """Simulate, store and judge one quarter (its last month)."""
    names, plan = parse(specs)
    sim = Simulator(SimConfig(seed=seed, start=start, days=DAYS, scale=scale, scenarios=names, plan=plan))
    records = records_of(sim)
    client = connect(dsn, database=f"b_{uuid.uuid4().hex[:12]}")
    migrate(client)
    pipeline = TrendPipeline(client, Policy())
    for i in range(0, len(records), 20_000):
        pipeline.submit(records[i:i + 20_000])
        pipeline.checkpoint()
    pipeline.rollup()
    log(f"seed {seed}: {len(records):,} messages stored; judging days {JUDGED_FROM}-{DAYS} ...")
    jobs = AlertJobs(client, history_from=start)  # the simulated go-live: before it, only survivors' history
    t = seoul_midnight(start + timedelta(days=JUDGED_FROM)).astimezone(UTC)
    end = seoul_midnight(start + timedelta(days=DAYS)).astimezone(UTC)
    hourly, daily = [], []
    while t <= end:
        began = time.perf_counter()
        jobs.hourly(t, t)
        hourly.append(time.perf_counter() - began)
        if t.astimezone(SEOUL).hour == 0:
            began = time.perf_counter()
            jobs.daily(t, t)
            daily.append(time.perf_counter() - began)
        t += timedelta(hours=1)
    alerts = alert_log.history(client, limit=5000)
    client.command(f"DROP DATABASE IF EXISTS {client.database}")
    return QuarterRun(alerts, sim.truth.to_dict()["injected"], len(records), hourly, daily)


def matches(alert: dict, anomaly: dict) -> bool:
    lo = datetime.fromisoformat(anomaly["from"])
    hi = datetime.fromisoformat(anomaly["until"]) + timedelta(days=7)
    if not lo <= alert["starts_at"] <= hi or alert["class"] != anomaly["class"]:
        return False
    kind = anomaly["scenario"]
    if kind == "regional_layoff":
        return alert["employer_id"] == anomaly["employer_id"] or (
            alert["name"] != "LayoffWarning" and alert["region"] == anomaly["region"])
    if kind == "national_shock":
        return alert["name"] in ("LabourMarketShift", "LabourMarketSpike") and alert["industry"] == ""
    return alert["source"] == anomaly["source"]


def first_match(alerts: list[dict], anomaly: dict) -> datetime | None:
    kind = anomaly["scenario"]
    own = [a for a in alerts if matches(a, anomaly) and (
        kind != "regional_layoff" or a["employer_id"] == anomaly["employer_id"]) and (
        kind != "national_shock" or a["region"] == "")]
    return min((a["starts_at"] for a in own), default=None)


@dataclass
class AlertsBench:
    recall: float
    precision: float
    false_alerts_normal_month: int
    detect_p50_h: float
    detect_max_h: float
    missed: list[str]
    unmatched: list[str]
    hourly_p50_s: float
    daily_p50_s: float

    def line(self) -> str:
        return (f"recall={self.recall:.2f} precision={self.precision:.2f} "
                f"false_alerts_normal_month={self.false_alerts_normal_month} detect_p50_h={self.detect_p50_h:.1f} "
                f"detect_max_h={self.detect_max_h:.1f}")


def run_alerts_bench(folder: Path, seeds: int = 3, scale: float = 0.05, log=print) -> AlertsBench:
    folder.mkdir(parents=True, exist_ok=True)
    dsn = f"chdb://{folder.resolve()}"
    found, total, delays, missed, matched, delivered, unmatched = 0, 0, [], [], 0, 0, []
    hourly, daily = [], []
    for seed in range(1, seeds + 1):
        specs = random_specs(random.Random(seed))
        log(f"seed {seed}: {' '.join(specs[:4])}")
        run = judge_quarter(dsn, seed, scale, specs, log=log)
        hourly += run.hourly_s
        daily += run.daily_s
        for anomaly in run.injected:
            total += 1
            first = first_match(run.alerts, anomaly)
            limit = timedelta(hours=72 if anomaly["scenario"] == "national_shock" else 24)
            start = datetime.fromisoformat(anomaly["from"])
            if first is not None and first - start <= limit:
                found += 1
                delays.append((first - start).total_seconds() / 3600)
            else:
                missed.append(f"seed {seed} {anomaly['scenario']} {anomaly} (first alert: {first})")
        for alert in run.alerts:
            if alert["inhibited_by"]:
                continue
            delivered += 1
            if any(matches(alert, a) for a in run.injected):
                matched += 1
            else:
                unmatched.append(f"seed {seed} {alert['name']} {alert['summary_en']}")
    log("normal quarter (no scenarios) ...")
    normal = judge_quarter(dsn, 99, scale, [], log=log)
    false_normal = [a for a in normal.alerts if a["class"] == "labour_market" and not a["inhibited_by"]]
    unmatched += [f"normal {a['name']} {a['summary_en']}" for a in normal.alerts]
    return AlertsBench(
        recall=found / max(1, total), precision=matched / max(1, delivered),
        false_alerts_normal_month=len(false_normal), detect_p50_h=statistics.median(delays) if delays else 0.0,
        detect_max_h=max(delays, default=0.0), missed=missed, unmatched=unmatched,
        hourly_p50_s=statistics.median(hourly + normal.hourly_s), daily_p50_s=statistics.median(daily + normal.daily_s))
