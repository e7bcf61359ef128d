"""``lmis bench pipeline``: simulator → Kafka → worker → ClickHouse, measured end to end.

Phase 1 (throughput, exactness): a simulated backlog with every scenario is produced to a broker of the
bench's own, then a fresh worker drains it; events/s = messages ÷ (drained − worker ready). The result is
compared with the simulator's truth. Phase 2 (freshness): national events at the live rate (scale 1,
speed 1) for a few minutes from 15:00 KST, after the day's earlier events (drained first, untimed, and
applied by the matcher too, as live); freshness = received by the worker → visible in the rolled-up
measures. ``rss_mb``: the highest peak of the worker's process tree in either phase.
"""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from lmis import stack
from lmis.procs import ROOT, WorkerProcess, wait_drained, wait_matcher_caught_up
from lmis.settings import Settings
from simulator.engine import SimConfig, Simulator
from simulator.output import paced, send_kafka
from sinks.rollups import Rollup


@dataclass
class PipelineBench:
    events_per_s: float
    freshness_p50_s: float
    freshness_p99_s: float
    rss_mb: float
    exact: bool
    messages: int
    seconds: float
    live_events: int
    reader: str = "compiled"  # which reader the worker used: compiled (native/) or python

    def line(self) -> str:
        return (f"events_per_s={self.events_per_s:.0f} freshness_p50_s={self.freshness_p50_s:.2f} "
                f"freshness_p99_s={self.freshness_p99_s:.2f} rss_mb={self.rss_mb:.0f} "
                f"exact={'true' if self.exact else 'false'} reader={self.reader}")


def _query(dsn: str, sql: str) -> list:
    code = ("import json,sys; from sinks.clickhouse import connect; "
            "print(json.dumps(connect(sys.argv[1]).query(sys.argv[2]).result_rows, default=str))")
    res = subprocess.run([sys.executable, "-c", code, dsn, sql], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


LIVE_HOUR_KST = 15  # an afternoon peak hour (about 2.6 events/s), most of the day's events stored before it


def bench_stack(base: Settings, name: str, kafka_port: int, web_port: int,
                extra_env: dict[str, str] | None = None) -> tuple[Path, dict[str, str], Settings]:
    """A bench's own folder (emptied), the environment of its worker and the settings of its broker."""
    folder = (base.data_dir / name).resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # Ports below Linux's ephemeral range (32768-60999): polling a port there before its server listens can
    # connect the client to itself (seen: the worker's HTTP port then stayed taken and the worker exited).
    env = {"LMIS_DATA_DIR": str(folder), "LMIS_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
           "LMIS_KAFKA_CONTROLLER_PORT": str(kafka_port + 1), "LMIS_ALERTMANAGER_PORT": str(kafka_port + 2),
           "LMIS_WEB_PORT": str(web_port),
           "LMIS_TOPIC_PARTITIONS": "4", **(extra_env or {})}
    s = Settings(data_dir=folder, kafka_bootstrap=env["LMIS_KAFKA_BOOTSTRAP"], kafka_controller_port=kafka_port + 1,
                 topic_partitions=4)
    return folder, env, s


def simulated_backlog(folder: Path, start: date, scale: float, days: int, log=print) -> tuple[list, Path]:
    """The messages of ``days`` days with every scenario (after a 30-day warm-up), and their truth's file."""
    log(f"simulating {days} day(s) at scale {scale} with every scenario ...")
    sim = Simulator(SimConfig(seed=1, start=start, days=days, scale=scale, scenarios=("all",), warmup_days=30))
    messages = list(sim.messages())
    truth_path = folder / "truth.json"
    sim.truth.write(truth_path)
    return messages, truth_path


def matches_truth(folder: Path, truth_path: Path) -> tuple[bool, subprocess.CompletedProcess]:
    """Whether the stopped worker's store holds exactly the truth's counts (and the check's output)."""
    dsn = f"chdb://{folder / 'clickhouse'}"
    check = subprocess.run([sys.executable, "-m", "lmis.truthcheck", dsn, str(truth_path)], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    return check.returncode == 0 and json.loads(check.stdout.splitlines()[-1])["mismatches"] == {}, check


def run_pipeline_bench(base: Settings, scale: float = 0.5, days: int = 3, live_seconds: int = 180,
                       log=print) -> PipelineBench:
    folder, env, s = bench_stack(base, "bench", kafka_port=18092, web_port=16166,
                                 extra_env={"LMIS_HEALTH_INTERVAL_SECONDS": "2"})
    start = date(2026, 3, 2)
    messages, truth_path = simulated_backlog(folder, start, scale, days, log)
    stack.up(s, log=log)
    worker = WorkerProcess(env, folder / "worker.log")

    def log_rss() -> None:
        log("peak RSS by process (MB): " + ", ".join(f"{k}: {v:.0f}" for k, v in worker.peak_rss_by_process().items()))
    try:
        log(f"producing {len(messages)} messages ...")
        send_kafka(messages, s.kafka_client_options())
        produced = len(messages)
        del messages  # GBs of Python objects the bench's own garbage collector would keep walking
        gc.collect()
        worker.start()
        worker.wait_ready()
        ready = time.monotonic()
        log("worker ready; draining the backlog ...")
        drained = wait_drained(s, worker, produced, timeout=3600, poll=0.1)
        seconds = drained - ready
        rss = worker.peak_rss_mb()
        log_rss()
        worker.stop()
        dsn = f"chdb://{folder / 'clickhouse'}"
        exact, check = matches_truth(folder, truth_path)
        if not exact:
            log(f"NOT exact: {check.stdout[-2000:]} {check.stderr[-2000:]}")
        # Phase 2: the live rate in the afternoon of the next day, one simulated second per second, with the
        # day's earlier events already stored: a rollup rebuilds the whole day, so its cost (and freshness)
        # grows through the day, and a window on an empty day would flatter it.
        live_day = start + timedelta(days=days)
        live = Simulator(SimConfig(seed=2, start=live_day, days=1, scale=1.0, warmup_days=0))
        t0 = live.t0_ms + LIVE_HOUR_KST * 3_600_000
        day_messages = list(live.messages())
        earlier = [m for m in day_messages if m.emit_ms < t0]
        window = [m for m in day_messages if t0 <= m.emit_ms < t0 + live_seconds * 1000]
        del day_messages
        worker.start()
        worker.wait_ready()
        log(f"the live day until {LIVE_HOUR_KST}:00 KST first: {len(earlier)} messages ...")
        send_kafka(earlier, s.kafka_client_options())
        wait_drained(s, worker, produced + len(earlier), timeout=1800, poll=0.25)
        # The matcher applies the same events at its own pace; caught up, as it is live, before the window:
        # its memory then holds the whole history, and its catching up does not compete with the window.
        caught_up = wait_matcher_caught_up(worker)
        if caught_up is not None:
            log(f"the matcher caught up {caught_up:.0f}s after the trend pipeline")
        rss = max(rss, worker.peak_rss_mb())
        log_rss()
        worker.stop()  # a fresh worker for the window: its freshness histogram holds the live events only
        worker.start()
        worker.wait_ready()
        live_started = time.time()
        log(f"live rate: {len(window)} messages over {live_seconds}s ...")
        cpu0 = worker.cpu_seconds_by_process()
        send_kafka(paced(window, 1.0), s.kafka_client_options())
        cpu1, took = worker.cpu_seconds_by_process(), time.time() - live_started
        cores = {k: (v - cpu0.get(k, 0.0)) / took for k, v in cpu1.items()}
        log(f"CPU used by the worker's processes at the live rate: {sum(cores.values()):.2f} cores ("
            + ", ".join(f"{k}{' (the worker)' if k.endswith(f' {worker.proc.pid}') else ''}: {v:.2f}"
                        for k, v in cores.items()) + ")")
        time.sleep(6)
        health = worker.health() or {}
        since_start = health.get("freshness_since_start") or {}
        rss = max(rss, worker.peak_rss_mb())
        log_rss()
        # Whether the matcher had caught up with the day by then (its memory grows with what it has applied).
        log(f"the matcher after the live window: {health.get('matching')}")
        worker.stop()
        rows = _query(dsn, "SELECT freshness_p50_s, freshness_p99_s FROM pipeline_health "
                           f"WHERE ts >= fromUnixTimestamp64Milli({int(live_started * 1000)}) AND events > 0")
        # Every live event's freshness, from the worker's histogram since its start (exact to 10 ms); the
        # health table's 2-second intervals are shown beside it (their worst p99 is an upper bound).
        log(f"freshness since the worker's start: {since_start}; worst 2-second interval p99: "
            f"{max((r[1] for r in rows), default=0.0):.2f}s over {len(rows)} health rows")
        if not since_start.get("samples"):
            raise RuntimeError(f"the worker reported no freshness samples: {health}")
        from streams.native import available

        return PipelineBench(produced / seconds, since_start["p50_s"], since_start["p99_s"], rss, exact,
                             produced, seconds, len(window), "compiled" if available() else "python")
    finally:
        worker.kill()
        stack.down(s, log=log)


def profile_pipeline(scale: float = 0.01, days: int = 28, top: int = 18) -> str:
    """Where the time goes: the pipeline step in-process (no Kafka), under cProfile."""
    import cProfile
    import io
    import pstats
    import tempfile
    import uuid

    from sinks.clickhouse import connect, migrate
    from streams.pipeline import TrendPipeline
    from streams.processing import Record

    sim = Simulator(SimConfig(seed=11, start=date(2026, 3, 2), days=days, scale=scale, scenarios=("all",)))
    records = [Record(m.topic, 0, i, m.emit_ms, m.key.encode(), m.value) for i, m in enumerate(sim.messages())]
    client = connect(f"chdb://{tempfile.mkdtemp(prefix='lmis-prof-')}", database=f"p_{uuid.uuid4().hex[:8]}")
    migrate(client)
    pipeline = TrendPipeline(client)

    def run() -> None:
        for i in range(0, len(records), 20_000):
            pipeline.submit(records[i:i + 20_000])
            pipeline.checkpoint()
        pipeline.rollup()

    started = time.perf_counter()
    run_profile = cProfile.Profile()
    run_profile.runcall(run)
    elapsed = time.perf_counter() - started
    out = io.StringIO()
    pstats.Stats(run_profile, stream=out).sort_stats("tottime").print_stats(top)
    return f"{len(records)} messages in {elapsed:.2f}s under cProfile\n{out.getvalue()}"


@dataclass
class BoardBench:
    panels: int
    p95_ms: float
    max_ms: float
    rows: int
    per_panel: dict[str, float]

    def line(self) -> str:
        return f"panels={self.panels} p95_ms={self.p95_ms:.1f} max_ms={self.max_ms:.1f}"


def national_year_measures(client, year: int = 2025, seed: int = 7, log=print, days: int = 365) -> int:
    """Fill the rollup tables with a national year (scale 1): the simulator's count-only daily totals, spread
    over region × industry × occupation cells with its calibrated mixes. Events for a national year would
    take hours to generate in Python; the panels read only these tables, so their cost is what counts."""
    import numpy as np
    import pandas as pd

    from simulator.engine import IND_CUM, INDUSTRIES, OCC_CUM, OCCUPATIONS, REGION_P, REGIONS

    start = date(year, 1, 1)
    totals = Simulator(SimConfig(seed=seed, start=start, days=days, scale=1.0)).count_only()
    rng = np.random.default_rng(seed)
    # Cell probabilities: region × industry × occupation, as the simulator draws them.
    ind_p = np.diff(np.concatenate([np.zeros((len(REGIONS), 1)), IND_CUM], axis=1), axis=1)
    occ_p = np.diff(np.concatenate([np.zeros((len(INDUSTRIES), 1)), OCC_CUM], axis=1), axis=1)
    cell_p = (REGION_P[:, None, None] * ind_p[:, :, None] * occ_p[None, :, :]).ravel()
    cell_p /= cell_p.sum()
    r_idx, i_idx, o_idx = np.unravel_index(np.arange(cell_p.size), (len(REGIONS), len(INDUSTRIES), len(OCCUPATIONS)))
    regions, industries, occupations = np.array(REGIONS), np.array(INDUSTRIES), np.array(OCCUPATIONS)
    version = time.time_ns()
    measures = {k: v for k, v in totals.items() if k != "stock.open_openings"}
    measures["stock.open_openings"] = totals["stock.open_openings"]
    seekers = totals["seeker.registered"]
    active = np.array([seekers[max(0, i - 89): i + 1].sum() for i in range(len(seekers))])
    written = 0
    for day_index in range(days):
        day = start + timedelta(days=day_index)
        frames = []
        for measure, series in measures.items():
            n = int(series[day_index])
            if n <= 0:
                continue
            counts = rng.multinomial(n, cell_p)
            nz = np.nonzero(counts)[0]
            frames.append(pd.DataFrame({
                "day": day, "measure": measure, "region": regions[r_idx[nz]], "industry": industries[i_idx[nz]],
                "occupation": occupations[o_idx[nz]], "age_band": "", "sex": "", "size_band": "",
                "value": counts[nz].astype("int64"), "version": version}))
        counts = rng.multinomial(int(active[day_index]), REGION_P)
        frames.append(pd.DataFrame({
            "day": day, "measure": "stock.active_seekers", "region": regions, "industry": "", "occupation": "",
            "age_band": "", "sex": "", "size_band": "", "value": counts.astype("int64"), "version": version}))
        frame = pd.concat(frames, ignore_index=True)
        client.insert_df("daily_measures", frame)
        written += len(frame)
        if day_index % 60 == 0:
            log(f"  {day} … {written} rows")
    stored = {start + timedelta(days=i) for i in range(days)}
    # The region totals, the breakdowns and the headline, in the slot the rows above went to; then recorded.
    rollup, slots = Rollup(client), dict.fromkeys(stored, 0)
    rollup.board_products(stored, version, slots)
    rollup.record(version, slots)
    # A year of data on a server sits in a few merged parts; a fresh load is dozens of parts, and chDB in a
    # short-lived process never merges them. Merge now so the panels are timed on the steady state (measured:
    # unmerged, a breakdown panel reads 10 parts and takes ~50 ms instead of ~27 ms).
    for table in ("daily_measures", "daily_region_measures", "daily_dimension_measures", "daily_headline",
                  "rollup_log"):
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    return written


def run_board_bench(base: Settings, repeats: int = 20, log=print) -> BoardBench:
    """Every panel of the national and region boards over a national year on chdb://: latency per query."""
    import random
    import uuid

    from dashboards import panels
    from dashboards.boards import NATIONAL, REGION
    from sinks.clickhouse import connect, migrate

    folder = (base.data_dir / "bench-board").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    client = connect(f"chdb://{folder}", database=f"board_{uuid.uuid4().hex[:8]}")
    migrate(client)
    log("loading a national year of measures ...")
    rows = national_year_measures(client, log=log)
    rng = random.Random(1)
    timings: list[float] = []
    per_panel: dict[str, float] = {}
    year_end = date(2025, 12, 31)
    for board in (NATIONAL, REGION):
        for panel in board.panels:
            mine = []
            for i in range(repeats):
                hi = year_end - timedelta(days=rng.randint(0, 300))
                lo = hi - timedelta(days=rng.choice([6, 29, 89]))
                variables = {}
                if board.variables and i % 2:
                    variables = {"region": [rng.choice(panels.VARIABLE_CODES["region"])]}
                if board.variables and i % 4 == 3:  # a breakdown filtered by the other dimension: every cell
                    variables["industry"] = [rng.choice(panels.VARIABLE_CODES["industry"])]
                started = time.perf_counter()
                panels.run(client, board, panel, lo, hi, variables)
                mine.append((time.perf_counter() - started) * 1000)
            timings.extend(mine[1:])  # the first run of each panel warms caches
            per_panel[f"{board.uid}/{panel.id}"] = sorted(mine)[int(0.95 * (len(mine) - 1))]
    timings.sort()
    return BoardBench(len(per_panel), timings[int(0.95 * (len(timings) - 1))], timings[-1], rows, per_panel)


@dataclass
class MatchingBench:
    p50_ms: float
    p99_ms: float
    quality: MatchingQuality  # of the month learned
    open_vacancies: int
    candidates: float

    def line(self) -> str:
        return (f"p50_ms={self.p50_ms:.2f} p99_ms={self.p99_ms:.2f} "
                f"precision_at_10={self.quality.precision_at_10['model']:.4f} "
                f"baseline_precision_at_10={self.quality.precision_at_10['rule']:.4f}")


def learn_month(scale: float, seed: int = 11, log=print):
    """A simulated month (every scenario) through the matcher as the worker feeds it: accepted events only."""
    from streams.matching import Matcher
    from streams.processing import Accepted, Record, classify

    sim = Simulator(SimConfig(seed=seed, start=date(2026, 3, 2), days=28, scale=scale, scenarios=("all",)))
    matcher = Matcher(seed=0)
    n = 0
    for i, message in enumerate(sim.messages()):
        accepted = classify(Record(message.topic, 0, i, message.emit_ms, None, message.value))
        if isinstance(accepted, Accepted):
            matcher.apply(accepted.event, accepted.row[3])
            n += 1
    log(f"learned from {n} events: {matcher.learned} outcomes, {len(matcher.seekers)} seekers, "
        f"{sum(1 for v in matcher.vacancies.values() if v.closed_ms is None)} open vacancies")
    return matcher


@dataclass(frozen=True)
class MatchingQuality:
    """How the three rankers did over one simulated month: precision@10, NDCG@10 and AUC of each."""

    scale: float
    seed: int
    precision_at_10: dict[str, float]
    ndcg_at_10: dict[str, float]
    auc: dict[str, float]

    def line(self) -> str:
        cells = " ".join(f"{k}_p10={self.precision_at_10[k]:.4f} {k}_auc={self.auc[k]:.3f}" for k in RANKERS)
        return f"scale={self.scale} seed={self.seed} {cells}"


RANKERS = ("model", "rule", "random")


def matching_quality(matcher, scale: float, seed: int) -> MatchingQuality:
    m = {k: matcher.metrics[k] for k in RANKERS}
    return MatchingQuality(scale, seed, {k: v.precision_at_10 for k, v in m.items()},
                           {k: v.ndcg_at_10 for k, v in m.items()}, {k: float(v.auc.get()) for k, v in m.items()})


def run_matching_grid(months: list[tuple[float, int]], log=print) -> list[MatchingQuality]:
    """The three rankers over a simulated month for every (scale, seed) (one month in memory at a time)."""
    grid = []
    for scale, seed in months:
        quality = matching_quality(learn_month(scale, seed=seed, log=log), scale, seed)
        log(quality.line())
        grid.append(quality)
    return grid


def run_matching_bench(scale: float = 0.03, open_vacancies: int = 130_000, requests: int = 2000,
                       seed: int = 11, log=print) -> MatchingBench:
    """Precision@10 by progressive validation over a simulated month, then recommendation latency with the
    open stock filled up to ``open_vacancies``: the month's open vacancies cloned (new ids, posting times
    spread over the last 30 days), which keeps the simulator's occupation × region mix."""
    import dataclasses
    import random

    matcher = learn_month(scale, seed=seed, log=log)
    quality = matching_quality(matcher, scale, seed)
    log(quality.line())
    rng = random.Random(5)
    now = matcher.clock_ms
    templates = [v for v in matcher.vacancies.values() if v.closed_ms is None]
    have = len(templates)
    for i in range(max(0, open_vacancies - have)):
        t = templates[rng.randrange(len(templates))]
        clone = dataclasses.replace(t, vacancy_id=f"V{0xc0000000 + i:016x}",
                                    posted_ms=now - rng.randrange(30 * 86_400_000),
                                    deadline_ms=now + 30 * 86_400_000, posting_key=("bench", i), vec=())
        matcher._open(clone)
    stock = sum(1 for v in matcher.vacancies.values() if v.closed_ms is None)
    log(f"{stock} open vacancies ({have} from the month, the rest cloned)")
    seekers = [s.seeker_id for s in matcher.seekers.values() if not s.hired]
    timings, sizes = [], []
    for i in range(requests + 50):
        sid = seekers[rng.randrange(len(seekers))]
        started = time.perf_counter()
        matcher.recommend_vacancies(sid, 10)
        elapsed = (time.perf_counter() - started) * 1000
        if i >= 50:  # warm-up
            timings.append(elapsed)
            sizes.append(len(matcher.candidates(matcher.seekers[sid])))
    timings.sort()
    return MatchingBench(timings[len(timings) // 2], timings[int(0.99 * (len(timings) - 1))], quality, stock,
                         sum(sizes) / len(sizes))
