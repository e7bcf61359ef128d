"""The simulator: deterministic, calibrated to Korea's national flows, scenarios visible, truth exact."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from schemas.calendar import SEOUL, holiday_name
from schemas.codec import EventError, decode_event
from simulator import calibration as cal
from simulator.engine import SimConfig, Simulator
from simulator.output import read_jsonl, write_jsonl
from simulator.truth import cell_of
from tests.conftest import run_lmis

ROOT = Path(__file__).resolve().parent.parent


def digest(cfg: SimConfig) -> str:
    h = hashlib.sha256()
    for m in Simulator(cfg).messages():
        h.update(m.topic.encode() + m.key.encode() + m.value)
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    cfg = dict(start=date(2026, 1, 5), days=4, scale=0.005, scenarios=("all",), warmup_days=40)
    a = Simulator(SimConfig(seed=5, **cfg))
    write_jsonl(a.messages(), tmp_path / "a.jsonl")
    b = Simulator(SimConfig(seed=5, **cfg))
    write_jsonl(b.messages(), tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert a.truth.to_dict() == b.truth.to_dict()
    assert digest(SimConfig(seed=6, **cfg)) != hashlib.sha256((tmp_path / "a.jsonl").read_bytes()).hexdigest()


def test_count_only_mode_gives_the_full_modes_daily_totals():
    cfg = SimConfig(seed=3, start=date(2026, 2, 9), days=12, scale=0.01, warmup_days=150)
    full = Simulator(cfg)
    for _ in full.messages():
        pass
    counts = Simulator(cfg).count_only()
    days = [(cfg.start + timedelta(days=i)).isoformat() for i in range(cfg.days)]
    measures = ["vacancy.submitted", "vacancy.posted", "vacancy.rejected:below_min_wage",
                "vacancy.rejected:missing_fields", "vacancy.rejected:prohibited_job",
                "vacancy.rejected:duplicate_posting", "openings.posted", "vacancy.closed", "vacancy.updated",
                "application.submitted", "application.outcome:hired", "seeker.registered", "ui.initial_claim",
                "ui.continued_claim", "ui.claim_ended", "insurance.acquisition", "insurance.loss"]
    for measure in measures:
        truth = full.truth.daily_totals(measure)
        assert [truth.get(d, 0) for d in days] == counts[measure].tolist(), measure
    stock = full.truth.stocks["open_openings"]
    assert [sum(stock[d].values()) for d in days] == counts["stock.open_openings"].tolist()


@pytest.fixture(scope="module")
def national_year():
    return Simulator(SimConfig(seed=2025, start=date(2025, 1, 1), days=365, scale=1.0)).count_only()


def within(value: float, target: float, tolerance: float = 0.05) -> bool:
    return abs(value - target) <= tolerance * target


def test_calibration_national_year(national_year):
    c = national_year
    total = {k: int(v.sum()) for k, v in c.items()}
    assert within(total["openings.posted"], 1_300_000), total["openings.posted"]
    assert within(total["vacancy.posted"] / total["vacancy.submitted"], 0.60), "60% of submissions posted"
    assert within(total["seeker.registered"], 3_600_000)
    assert within(total["openings.posted"] / total["seeker.registered"], 0.36), "flow 구인배수 ≈ 0.36"
    assert within(total["application.outcome:hired"], 880_000)
    assert within(total["ui.initial_claim"] / 12, 86_000)
    assert within(float(np.mean(c["stock.open_openings"][60:])), 130_000)  # after the first two months
    insured_end = cal.INSURED_STOCK + total["insurance.acquisition"] - total["insurance.loss"]
    assert within(insured_end, 15_400_000)
    monthly_acq = total["insurance.acquisition"] / 12
    assert 500_000 < monthly_acq < 900_000
    assert 0 < total["insurance.acquisition"] - total["insurance.loss"] < 0.03 * cal.INSURED_STOCK


def test_weekly_seasonal_and_holiday_shapes(national_year):
    subs = national_year["vacancy.submitted"]
    ui = national_year["ui.initial_claim"]
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(365)]
    weekdays = [i for i, d in enumerate(days) if d.weekday() < 5 and not holiday_name(d)]
    sundays = [i for i, d in enumerate(days) if d.weekday() == 6]
    seollal = [i for i, d in enumerate(days) if holiday_name(d) == "Seollal" and d.weekday() < 5]
    chuseok = [i for i, d in enumerate(days) if holiday_name(d) == "Chuseok" and d.weekday() < 5]
    assert seollal and chuseok
    mean_weekday = subs[weekdays].mean()
    assert subs[sundays].mean() < 0.3 * mean_weekday
    assert subs[seollal].mean() < 0.35 * mean_weekday
    assert subs[chuseok].mean() < 0.35 * mean_weekday
    assert ui[seollal].mean() < 0.1 * ui[weekdays].mean(), "job centres are closed on Seollal"
    january = ui[:31].sum()
    assert january > 1.2 * ui.sum() / 12, "UI claims peak in January"
    acq = national_year["insurance.acquisition"]
    firsts = [i for i, d in enumerate(days) if d.day == 1 and d.weekday() < 5 and not holiday_name(d)]
    assert acq[firsts].mean() > 1.5 * acq[weekdays].mean(), "insured jobs start on the 1st"


def recount(path: Path, lateness=timedelta(hours=72), skew=timedelta(hours=1)):
    """Count a simulated file the way a correct pipeline must: valid, once, not too late, not future.

    Lateness and the future are judged against the emission time (the Kafka record timestamp).
    """
    seen: set[str] = set()
    counts: dict[str, Counter] = defaultdict(Counter)
    too_late, future, invalid, dupes = [], [], 0, 0
    for m in read_jsonl(path):
        try:
            e = decode_event(m.value)
        except EventError:
            invalid += 1
            continue
        emitted = datetime.fromtimestamp(m.emit_ms / 1000, SEOUL)
        if e.occurred_at > emitted + skew:
            future.append(e.event_id)
            continue
        if e.occurred_at < emitted - lateness:
            too_late.append(e.event_id)
            continue
        if e.event_id in seen:
            dupes += 1
            continue
        seen.add(e.event_id)
        day = e.occurred_at.astimezone(SEOUL).date().isoformat()
        counts[e.event_type][(day, cell_of(e.payload.model_dump()))] += 1
    return counts, too_late, future, invalid, dupes


def test_truth_equals_an_independent_recount_of_the_stream(month_run):
    path, truth, _ = month_run
    counts, too_late, future, invalid, dupes = recount(path)
    for etype, cells in counts.items():
        expected = Counter({(d, cell): n for d, by_cell in truth["counts"][etype].items()
                            for cell, n in by_cell.items()})
        assert cells == expected, etype
    an = truth["anomalies"]
    assert sorted(too_late) == sorted(an["late_beyond"]["event_ids"])
    assert dupes == an["duplicates"]["count"] > 0
    malformed = an["malformed"]["by_kind"]
    assert len(future) == malformed["future_occurred_at"]["count"]
    assert invalid == an["malformed"]["count"] - len(future)


def test_every_scenario_is_visible_in_the_truth(month_run):
    path, truth, sim = month_run
    an = truth["anomalies"]
    assert set(an["malformed"]["by_kind"]) == {
        "truncated_json", "not_an_object", "unknown_event_type", "unknown_schema_version", "unknown_region_code",
        "wrong_type", "missing_field", "naive_timestamp", "unknown_field", "pii_in_title", "future_occurred_at"}
    assert an["late_within"]["count"] > 0 and an["late_beyond"]["count"] > 0
    assert an["outage_dropped"]["count"] > 0 and an["outage_backfilled"]["count"] > 0
    assert an["duplicates"]["count"] > 0
    # Outage: the portal's births inside the window never arrive.
    lo, hi = sim._outage_window()
    for m in read_jsonl(path):
        try:
            e = decode_event(m.value)
        except EventError:
            continue
        if e.source == "saramin" and e.event_type == "vacancy.submitted":
            assert not lo <= e.occurred_at.timestamp() * 1000 < hi
    # Layoff: the employer's losses and a burst of UI claims in Gyeongnam manufacturing.
    plan = truth["scenario_plan"]
    start = date.fromisoformat(truth["start"])
    layoff_days = [(start + timedelta(days=plan["layoff_day"] + i)).isoformat() for i in range(20)]
    before_days = [(start + timedelta(days=i)).isoformat() for i in range(plan["layoff_day"])]

    def claims_48c(days):
        by_day = truth["counts"]["ui.initial_claim"]
        return sum(n for d in days for cell, n in by_day.get(d, {}).items() if cell.startswith("48|C|"))

    assert claims_48c(layoff_days) / 20 > 3 * max(claims_48c(before_days), 1) / len(before_days)


def test_national_shock_adds_about_31k_ui_claims_a_month_at_scale_1():
    base = SimConfig(seed=9, start=date(2026, 3, 2), days=40, scale=0.02, warmup_days=10)
    shocked = SimConfig(seed=9, start=date(2026, 3, 2), days=40, scale=0.02, warmup_days=10,
                        scenarios=("national_shock",))
    a, b = Simulator(base).count_only(), Simulator(shocked).count_only()
    window = slice(7, 37)
    extra = (b["ui.initial_claim"][window].sum() - a["ui.initial_claim"][window].sum()) / 0.02
    assert 25_000 < extra < 37_000, extra
    assert b["vacancy.submitted"][window].sum() < a["vacancy.submitted"][window].sum()


def test_the_hidden_suitability_is_used_only_by_the_simulator():
    users = []
    project = [p for d in ("schemas", "simulator", "streams", "sinks", "dashboards", "alerts", "lmis")
               for p in (ROOT / d).rglob("*.py")]
    for py in project:
        text = py.read_text("utf-8")
        if "_hidden" in text and py.relative_to(ROOT).as_posix() not in ("simulator/engine.py",
                                                                          "simulator/_hidden.py"):
            users.append(str(py))
    assert users == []


def test_scenario_knobs_move_the_layoff_and_the_truth_lists_every_injected_anomaly():
    from simulator.scenarios import parse

    names, plan = parse(["regional_layoff:region=11,industry=F,day=3,workers=100",
                         "source_outage:source=albamon,day=4,hour=2,hours=10", "duplicate_burst:source=worknet,day=2"])
    sim = Simulator(SimConfig(seed=3, start=date(2026, 5, 4), days=8, scale=0.01, scenarios=names, plan=plan,
                              warmup_days=30))
    losses = [json.loads(m.value) for m in sim.messages() if m.topic == "lmis.insurance"]
    laid_off = [e for e in losses if e["payload"]["employer_id"] == plan.layoff_employer]
    # 100 workers at scale 1 are 1 at this scale: the layoff keeps its smallest size that shows, 60.
    assert len(laid_off) == 60 and {(e["payload"]["region"], e["payload"]["industry"]) for e in laid_off} == {
        ("11", "F")}
    assert min(e["occurred_at"][:10] for e in laid_off) == "2026-05-07"
    injected = {a["scenario"]: a for a in sim.truth.to_dict()["injected"]}
    assert injected["regional_layoff"]["region"] == "11" and injected["regional_layoff"]["from"].startswith(
        "2026-05-07T00:00:00+09:00")
    assert injected["source_outage"] == {"scenario": "source_outage", "class": "data_fault", "source": "albamon",
                                         "from": "2026-05-08T02:00:00+09:00", "until": "2026-05-08T12:00:00+09:00"}
    assert injected["duplicate_burst"]["source"] == "worknet" and injected["duplicate_burst"]["from"].startswith(
        "2026-05-07T10:00")


@pytest.mark.parametrize("spec, words", [
    ("regional_layoff:regon=11", "no knob 'regon'"), ("regional_layoff:region=99", "시도 code"),
    ("source_outage:hours=x", "must be a number"), ("duplicate_burst:source=naver", "must be one of")])
def test_a_wrong_knob_is_named_on_the_command_line(spec, words):
    res = run_lmis("simulate", "--start", "2026-03-02", "--days", "1", "--scenario", spec, check=False)
    assert res.returncode == 2 and words in res.stderr.replace("\n", " ").replace("│", ""), res.stderr
