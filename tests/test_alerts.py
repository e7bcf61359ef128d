"""The detectors at work on a simulated month with every scenario (the real engine, no Kafka): each injected
anomaly alerted with its class and cells, nothing else, and the same alerts whether judged as the data
stream in or after."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from alerts.jobs import AlertJobs
from alerts.judge import DAILY, HOURLY
from schemas.calendar import seoul_midnight
from simulator.scenarios import ScenarioPlan
from sinks import alert_log
from streams.pipeline import TrendPipeline
from streams.processing import Policy
from tests.test_pipeline import as_records

START = datetime(2026, 3, 2).date()
DAYS = 28


def instants(last: datetime):
    """Every hourly and daily instant of the month, in the scheduler's order (hourly before daily)."""
    t = seoul_midnight(START).astimezone(UTC) + timedelta(hours=1)
    while t <= last:
        yield HOURLY, t
        if t.astimezone(seoul_midnight(START).tzinfo).hour == 0:
            yield DAILY, t
        t += timedelta(hours=1)


def judge_all(jobs: AlertJobs, until: datetime) -> None:
    for job, t in instants(until):
        (jobs.hourly if job == HOURLY else jobs.daily)(t, t)


@pytest.fixture(scope="module")
def judged(engine_dsn, month_run):
    """The month stored, then every instant judged in order."""
    from simulator.output import read_jsonl
    from sinks.clickhouse import connect, migrate

    client = connect(engine_dsn, database=f"a_{uuid.uuid4().hex[:12]}")
    migrate(client)
    path, _, sim = month_run
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


def episodes(rows, name):
    return [r for r in rows if r["name"] == name]


def day_of_run(offset: int, hour: int = 0) -> datetime:
    return seoul_midnight(START + timedelta(days=offset)).astimezone(UTC) + timedelta(hours=hour)


def test_the_layoff_is_alerted_within_a_day_naming_employer_region_industry_size_and_count(judged):
    _, _, sim, rows = judged
    plan: ScenarioPlan = sim.plan
    layoffs = episodes(rows, "LayoffWarning")
    assert [r["employer_id"] for r in layoffs] == [plan.layoff_employer]
    alert = layoffs[0]
    assert (alert["region"], alert["industry"], alert["size_band"], alert["class"]) == (
        plan.layoff_region, plan.layoff_industry, "300+", "labour_market")
    began = day_of_run(plan.layoff_day)
    assert began < alert["starts_at"] <= began + timedelta(hours=24)
    assert alert["observed"] >= 10
    assert plan.layoff_employer in alert["summary_en"] and "Gyeongnam" in alert["summary_en"]
    assert "경상남도" in alert["summary_ko"] and "제조업" in alert["summary_ko"]
    labels = json.loads(alert["labels"])
    assert labels["employer_id"] == plan.layoff_employer and labels["region"] == plan.layoff_region


def test_the_portal_outage_is_a_data_fault_that_resolves_after_the_backfill(judged):
    _, _, sim, rows = judged
    plan: ScenarioPlan = sim.plan
    silent = sorted(episodes(rows, "SourceSilent"), key=lambda r: r["starts_at"])
    # Each of the portal's feeds, once its silence is longer than that feed's own norm: at this scale (1 %)
    # the portal sends ~40 applications and ~4 vacancies a day, so the vacancies' silence takes longer to
    # be sure of.
    assert {(r["source"], r["family"], r["class"]) for r in silent} == {
        (plan.outage_source, "vacancy", "data_fault"), (plan.outage_source, "application", "data_fault")}
    began = day_of_run(plan.outage_day, plan.outage_start_hour)
    back = began + timedelta(hours=plan.outage_hours)
    assert began < silent[0]["starts_at"] <= began + timedelta(hours=24)
    assert all(r["state"] == "resolved" and back <= r["ends_at"] <= back + timedelta(hours=2) for r in silent)
    assert plan.outage_source in silent[0]["summary_en"] and "KST" in silent[0]["summary_en"]


def test_the_resent_day_is_a_duplicate_burst_of_its_source(judged):
    _, _, sim, rows = judged
    plan: ScenarioPlan = sim.plan
    bursts = episodes(rows, "DuplicateBurst")
    assert {(r["source"], r["class"]) for r in bursts} == {(plan.duplicate_source, "data_fault")}
    resent = day_of_run(plan.duplicate_day + 1, plan.duplicate_resend_hour)
    assert all(resent < r["starts_at"] <= resent + timedelta(hours=2) for r in bursts)
    assert all(r["state"] == "resolved" for r in bursts)


def test_no_other_data_fault_and_no_other_layoff(judged):
    # (Spikes and shifts need eight weeks of history: the normal quarter below and `lmis bench alerts`.)
    _, _, _, rows = judged
    faults = {(r["name"], r["source"]) for r in rows if r["class"] == "data_fault"}
    assert faults == {("SourceSilent", "saramin"), ("DuplicateBurst", "jobkorea")}
    assert len(episodes(rows, "LayoffWarning")) == 1


def test_judged_as_the_data_stream_in_gives_the_same_alerts(engine_dsn, judged):
    """A live worker judges each instant once the data up to it are in; a replay, after reading further. The
    same alerts either way (the data faults and layoffs read what was sent by the instant)."""
    from sinks.clickhouse import connect, migrate

    _, records, _, after = judged
    client = connect(engine_dsn, database=f"l_{uuid.uuid4().hex[:12]}")
    migrate(client)
    pipeline, jobs = TrendPipeline(client, Policy()), AlertJobs(client)
    i = 0
    for job, t in instants(seoul_midnight(START + timedelta(days=DAYS)).astimezone(UTC)):
        cut = t.timestamp() * 1000
        j = i
        while j < len(records) and records[j].timestamp <= cut:
            j += 1
        if j > i:
            pipeline.submit(records[i:j])
            pipeline.checkpoint()
            i = j
        if job == DAILY:
            pipeline.rollup()  # (the hourly checks read the stored events, not the rollups)
        (jobs.hourly if job == HOURLY else jobs.daily)(t, t)
    live = alert_log.history(client, limit=5000)

    def key(r):
        # Spikes and shifts read the rolled-up day, which after the fact also holds the day's late events
        # (sent after the instant): their numbers may differ, not which alerts there are.
        exact = r["class"] == "data_fault" or r["name"] == "LayoffWarning"
        return (r["name"], r["fingerprint"], r["starts_at"], r["state"], r["ends_at"],
                r["observed"] if exact else None)

    assert sorted(map(key, live)) == sorted(map(key, after))
