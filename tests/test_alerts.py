"""The detectors at work on a simulated month with every scenario (the real engine, no Kafka): each injected
anomaly alerted with its class and cells, nothing else, and the same alerts whether judged as the data
stream in or after."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from alerts.detectors import month_edge
from alerts.jobs import AlertJobs
from alerts.judge import DAILY, HOURLY
from schemas.calendar import is_holiday, month_factor, seoul_midnight
from schemas.codes import code_list
from simulator.scenarios import ScenarioPlan
from sinks import alert_log
from streams.pipeline import TrendPipeline
from streams.processing import Policy
from tests.test_dashboards import RecordedGrafana

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


# ---------------------------------------------------------------- Grafana alert rules


def test_each_grafana_rules_sql_runs_on_the_engine_and_finds_the_layoffs_claims(judged):
    from alerts.grafana_rules import rules
    from dashboards.macros import QueryContext, expand
    from sinks.signals import daily_series

    client, _, sim, _ = judged
    judged_day = START + timedelta(days=22)  # a Tuesday, two weeks after the layoff: its claims come in
    ctx = QueryContext(day_of_run(22, 12), day_of_run(23, 12))
    for rule in rules():
        sql = rule["data"][0]["model"]["rawSql"]
        result = client.query(expand(sql, ctx))
        assert result.column_names == ("region", "value")
        values = dict(result.result_rows)
        assert set(values) == {"", *code_list("regions").values()}
        measure = rule["labels"]["measure"]
        if measure == "ui.initial_claim":
            assert values[sim.plan.layoff_region] >= 4, values
            # The same score from the stored series, by the rule's definition.
            series = daily_series(client, [measure], judged_day - timedelta(days=56), judged_day)
            cell = series[measure, sim.plan.layoff_region, ""]
            weeks = (judged_day - timedelta(weeks=k) for k in range(1, 9))
            base = sorted(cell[d] / month_factor("ui", d) for d in weeks
                          if d in cell and not is_holiday(d) and month_edge(d) == "")
            mid = len(base) // 2
            plain = base[mid] if len(base) % 2 else (base[mid - 1] + base[mid]) / 2
            deviations = sorted(abs(b - plain) for b in base)
            mad = deviations[mid] if len(base) % 2 else (deviations[mid - 1] + deviations[mid]) / 2
            level = month_factor("ui", judged_day)
            expected = plain * level
            sigma = max(1.4826 * mad * level, expected ** 0.5, 1)
            assert values[sim.plan.layoff_region] == pytest.approx((cell[judged_day] - expected) / sigma, abs=1e-3)
        quiet = {r: v for r, v in values.items() if r != sim.plan.layoff_region}
        assert all(abs(v) < 4 for v in quiet.values()) or measure != "ui.initial_claim", quiet


def test_the_committed_grafana_alert_rules_are_current(tmp_path):
    import yaml

    from alerts.grafana_rules import export

    fresh = yaml.safe_load(export(tmp_path).read_text())
    committed = Path(__file__).resolve().parent.parent / "deploy/grafana/provisioning/alerting/lmis.yaml"
    assert yaml.safe_load(committed.read_text()) == fresh, "run `lmis alerts export`"
    rule = fresh["groups"][0]["rules"][0]
    assert rule["data"][1]["model"]["conditions"][0]["evaluator"] == {"type": "outside_range", "params": [-4.0, 4.0]}
    assert {r["labels"]["measure"] for r in fresh["groups"][0]["rules"]} == {
        "ui.initial_claim", "insurance.loss", "insurance.acquisition", "openings.posted", "seeker.registered"}


class RecordedAlertRules(RecordedGrafana):
    """A recording of Grafana's documented alerting provisioning API (GET/POST/PUT
    /api/v1/provisioning/alert-rules[/:uid], X-Disable-Provenance) -- not Grafana."""

    rules: dict = {}
    log: list = []

    def do_GET(self) -> None:  # noqa: N802
        uid = self.path.rsplit("/", 1)[-1]
        type(self).log.append(("GET", uid))
        rule = self.rules.get(uid)
        return self._send(200, rule) if rule else self._send(404, {"message": "rule not found"})

    def _store(self, code: int) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).log.append((self.command, body["uid"], self.headers.get("X-Disable-Provenance")))
        self.rules[body["uid"]] = {**body, "id": 1, "updated": "2026-12-07T00:00:00Z", "provenance": ""}
        self._send(code, self.rules[body["uid"]])

    def do_POST(self) -> None:  # noqa: N802
        self._store(201)

    def do_PUT(self) -> None:  # noqa: N802
        self._store(200)


def test_push_the_rules_twice_changes_nothing_the_second_time():
    from alerts.grafana_rules import push

    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordedAlertRules)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        first = push(url, "glsa_test_token")
        assert set(first.values()) == {"created"} and len(first) == 5
        assert all(entry[2] == "true" for entry in RecordedAlertRules.log if entry[0] == "POST")
        writes = sum(1 for entry in RecordedAlertRules.log if entry[0] != "GET")
        assert set(push(url, "glsa_test_token").values()) == {"unchanged"}
        assert sum(1 for entry in RecordedAlertRules.log if entry[0] != "GET") == writes
    finally:
        server.shutdown()


def test_a_worker_behind_its_feeds_is_a_data_fault_but_one_catching_up_is_not():
    from alerts.judge import pipeline_behind

    now = datetime(2026, 12, 7, 12, tzinfo=UTC)

    def ticks(lag_at, p99=1.2):  # a health tick every 5 s for the last 11 minutes, oldest first
        return [(now - timedelta(seconds=5 * i), lag_at(i), p99) for i in range(132)][::-1]

    growing = pipeline_behind(now, ticks(lambda i: 300_000 - 100 * i))
    assert [a.name for a in growing] == ["PipelineBehind"] and growing[0].cls == "data_fault"
    assert "300,000 messages behind" in growing[0].summary_en
    assert pipeline_behind(now, ticks(lambda i: 300_000 + 1_000 * i)) == []  # shrinking: catching up
    assert pipeline_behind(now, ticks(lambda i: 50_000)) == []
    slow = pipeline_behind(now, ticks(lambda i: 0, p99=420.0))
    assert [a.name for a in slow] == ["PipelineSlow"] and "420초" in slow[0].summary_ko
    assert pipeline_behind(now, ticks(lambda i: 0, p99=420.0)[-20:]) == []  # a worker just started: too few
