"""`lmis worker` against the real Kafka broker: exact after SIGKILLs and a broker restart; bad input."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from lmis import procs
from lmis.procs import WorkerProcess
from lmis.settings import Settings
from simulator.engine import Message
from simulator.output import read_jsonl, send_kafka
from tests.conftest import ROOT, run_lmis

pytestmark = pytest.mark.kafka

KAFKA_PORT, CONTROLLER_PORT, WEB_PORT = 29192, 29193, 26066


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_leftover_workers():
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


@pytest.fixture()
def env(tmp_path):
    e = {"LMIS_DATA_DIR": str(tmp_path / "data"), "LMIS_KAFKA_BOOTSTRAP": f"127.0.0.1:{KAFKA_PORT}",
         "LMIS_KAFKA_CONTROLLER_PORT": str(CONTROLLER_PORT), "LMIS_ALERTMANAGER_PORT": str(CONTROLLER_PORT + 1),
         "LMIS_WEB_PORT": str(WEB_PORT),
         "LMIS_TOPIC_PARTITIONS": "3", "LMIS_HEALTH_INTERVAL_SECONDS": "1"}
    run_lmis("stack", "up", env=e, timeout=300)
    yield e
    run_lmis("stack", "down", env=e, timeout=120, check=False)


def settings_of(env: dict) -> Settings:
    return Settings(data_dir=env["LMIS_DATA_DIR"], kafka_bootstrap=env["LMIS_KAFKA_BOOTSTRAP"])


class Worker(WorkerProcess):
    def start(self) -> Worker:
        super().start()
        STARTED.append(self.proc)
        return self


def wait_drained(env: dict, worker: Worker, expected: int, timeout: float = 300) -> None:
    procs.wait_drained(settings_of(env), worker, expected, timeout)


def store_dsn(env: dict) -> str:
    """The worker's embedded store (read only once the worker has stopped: one process may open it)."""
    return f"chdb://{Path(env['LMIS_DATA_DIR']).resolve() / 'clickhouse'}"


def check_truth(env: dict, truth_path: Path) -> dict:
    dsn = store_dsn(env)
    res = subprocess.run([sys.executable, "-m", "lmis.truthcheck", dsn, str(truth_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def query_store(env: dict, sql: str) -> list:
    """Rows of a query on the stopped worker's store, in a process of its own (this one has an engine open)."""
    dsn = store_dsn(env)
    code = ("import json, sys\nfrom sinks.clickhouse import connect\n"
            f"print(json.dumps(connect({dsn!r}).query(sys.argv[1]).result_rows, default=str))")
    res = subprocess.run([sys.executable, "-c", code, sql], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def published(env: dict) -> dict:
    """What the event-time publication jobs wrote (sinks.published), read from the stopped worker's store."""
    dsn = store_dsn(env)
    code = f"""
import json
from datetime import date
from sinks.clickhouse import connect
from sinks.published import revisions
c = connect({dsn!r})
copies = c.query("SELECT count() FROM (SELECT 1 FROM published_measures "
                 "GROUP BY day, stage, measure, region HAVING count() > 1)").result_rows[0][0]
runs = {{}}
for job, instant in c.query("SELECT job, instant FROM scheduled_runs GROUP BY job, instant HAVING max(done) = 1 "
                            "ORDER BY job, instant").result_rows:
    runs.setdefault(job, []).append(instant.isoformat())
days = {{stage: [d.isoformat() for (d,) in c.query(
    f"SELECT DISTINCT day FROM published_measures WHERE stage = '{{stage}}' ORDER BY day").result_rows]
    for stage in ("first", "final")}}
national = [r for r in revisions(c, date(2000, 1, 1), date(2100, 1, 1)) if r["region"] == ""]
print(json.dumps({{"copies": copies, "runs": runs, "days": days,
                  "final_rows": sum(r["final"] is not None for r in national),
                  "final_not_now": [r for r in national if r["final"] is not None and r["final"] != r["now"]],
                  "revised": sum(r["final"] is not None and r["first"] != r["final"] for r in national)}}))
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def check_published(env: dict, final_is_now: bool = True) -> None:
    """Each day published once at its end and once final, in order; final figures never revised after
    (when the messages were all on the broker before the worker read them: produced while it reads, in
    chunks whose partitions land apart, the caught-up clock may run ahead of a partition's next messages)."""
    from datetime import date, timedelta

    from streams.schedule import SEOUL

    out = published(env)
    assert out["copies"] == 0, out
    for stage in ("first", "final"):
        # Every day's instant ran once, in order, none left out (a day without events publishes no rows).
        instants = [datetime.fromisoformat(i) for i in out["runs"][f"published.{stage}"]]
        assert len(instants) >= 20 and instants == [instants[0] + timedelta(days=k) for k in range(len(instants))]
        ran_for = {(i.astimezone(SEOUL) - timedelta(days=1 if stage == "first" else 4)).date() for i in instants}
        assert {date.fromisoformat(d) for d in out["days"][stage]} <= ran_for, out["days"]
    assert out["final_rows"] > 300, out
    if final_is_now:
        assert out["final_not_now"] == [], out
        assert out["revised"] > 0, out  # late events within the lateness revised some first figures


def dead_letter_messages(env: dict) -> list[dict]:
    """Every message on the dead-letter topic, read up to the end offsets of its partitions."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**settings_of(env).kafka_client_options(), group_id=None, enable_auto_commit=False)
    tps = [TopicPartition("lmis.dlq", p) for p in consumer.partitions_for_topic("lmis.dlq")]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    out = {}
    deadline = time.monotonic() + 120
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        assert time.monotonic() < deadline, "could not read the dead-letter topic to its end"
        for records in consumer.poll(timeout_ms=1000).values():
            for record in records:
                out[record.key] = orjson.loads(record.value)  # keyed by source position: re-sends collapse
    consumer.close()
    return list(out.values())


def write_truth(tmp_path: Path, month_run) -> tuple[list[Message], Path]:
    path, truth, _ = month_run
    truth_path = tmp_path / "truth.json"
    truth_path.write_text(json.dumps(truth))
    return list(read_jsonl(path)), truth_path


def expected_outcomes(messages: list[Message]) -> int:
    """Outcomes the matcher must account for: accepted, not withdrawn, once per (seeker, vacancy, outcome)."""
    from streams.processing import Accepted, Record, classify

    keys = set()
    for i, m in enumerate(messages):
        if m.topic != "lmis.applications":
            continue
        accepted = classify(Record(m.topic, 0, i, m.emit_ms, None, m.value))
        if isinstance(accepted, Accepted) and accepted.event.event_type == "application.outcome":
            p = accepted.event.payload
            if p.outcome != "withdrawn":
                keys.add((p.seeker_id, p.vacancy_id, p.outcome))
    return len(keys)


def caught_up(summary: dict, since: float) -> bool:
    """The matcher had read its topics to the end at a time after ``since`` (statuses come every 0.5 s)."""
    return summary.get("lag") == 0 and summary.get("status_at", 0) > since


def matching_summary(since: float, timeout: float = 300) -> dict:
    """The matcher's counters once it has read its topics to the end (it reads Kafka at its own pace)."""
    deadline = time.monotonic() + timeout
    while True:
        summary = httpx.get(f"http://127.0.0.1:{WEB_PORT}/api/health", timeout=30).json()["matching"]
        if caught_up(summary, since) or time.monotonic() > deadline:
            return summary
        time.sleep(0.5)


def wait_caught_up(process, since: float, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while not caught_up(summary := process.summary(), since):
        assert time.monotonic() < deadline, summary
        assert process.failed is None, process.failed
        time.sleep(0.2)
    return summary


def test_the_matcher_process_reads_kafka_at_its_own_pace_and_restarts_without_learning_twice(env, tmp_path,
                                                                                            month_run, client):
    """The matcher process against the real broker, without the worker: it learns every accepted outcome
    once, checkpoints with its offsets at stop, and a restart from that checkpoint reads on from there."""
    from streams.matching import Matcher
    from streams.matching_process import MATCHING_TOPICS, MatchingProcess

    messages, _ = write_truth(tmp_path, month_run)
    half = len(messages) // 2
    send_kafka(messages[:half], settings_of(env).kafka_client_options())
    opts = settings_of(env).kafka_client_options()
    path = tmp_path / "matching" / "matcher.pkl"
    process = MatchingProcess(client, path, Matcher(seed=0), opts, checkpoint_seconds=3600)
    process.start()
    try:
        assert not process.restored
        # Below the worker's priority: it runs only on the CPU the trend pipeline leaves (Linux's SCHED_IDLE).
        assert os.sched_getscheduler(process.process.pid) == os.SCHED_IDLE
        first = wait_caught_up(process, time.time())
        assert first["consumed"] == sum(m.topic in MATCHING_TOPICS for m in messages[:half])
        assert first["outcomes_learned"] + first["unresolved_outcomes"] + first["parked_outcomes"] == \
            expected_outcomes(messages[:half])
        assert first["outcomes_learned"] > 500
        seekers = [orjson.loads(m.value)["payload"]["seeker_id"] for m in messages[half - 4000:half]
                   if m.topic == "lmis.seekers" and b'"seeker.registered"' in m.value]
        items = process.recommend_vacancies(seekers[-1], 5)
        assert 1 <= len(items) <= 5 and all(len(r.reasons) == 3 for r in items)
        with pytest.raises(KeyError):
            process.recommend_vacancies("S" + "f" * 16, 5)
        assert process.write_observatory() >= 10  # the days so far
        rows = client.query("SELECT count() FROM matching_daily").result_rows[0][0]
        assert rows > 0
    finally:
        process.stop()
    assert path.exists()

    again = MatchingProcess(client, path, Matcher(seed=0), opts, checkpoint_seconds=3600)
    again.start()
    try:
        assert again.restored and again.summary()["outcomes_learned"] == first["outcomes_learned"]
        send_kafka(messages[half:], opts)
        second = wait_caught_up(again, time.time())
        # Read on from the checkpoint's offsets (not from the start): every outcome once, none lost.
        assert second["consumed"] == sum(m.topic in MATCHING_TOPICS for m in messages[half:])
        assert second["outcomes_learned"] + second["unresolved_outcomes"] + second["parked_outcomes"] == \
            expected_outcomes(messages)
    finally:
        again.stop()

    # A worker that dies closes the pipes: its matcher exits, without writing a checkpoint.
    orphan = MatchingProcess(client, tmp_path / "orphan.pkl", Matcher(seed=0), opts, checkpoint_seconds=3600)
    orphan.start()
    child = orphan.process
    orphan._requests.close()
    orphan._lifeline.close()
    child.join(60)
    assert child.exitcode == 0 and not (tmp_path / "orphan.pkl").exists()

    # A checkpoint that cannot be read: set aside (named in the log), and the matcher learns again from the
    # topics' start -- every outcome once.
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"not a pickle")
    rebuilt = MatchingProcess(client, broken, Matcher(seed=0), opts, checkpoint_seconds=3600)
    rebuilt.start()
    try:
        assert not rebuilt.restored and list(tmp_path.glob("broken.pkl.bad-*"))
        third = wait_caught_up(rebuilt, time.time())
        assert third["outcomes_learned"] + third["unresolved_outcomes"] + third["parked_outcomes"] == \
            expected_outcomes(messages)
    finally:
        rebuilt.stop()


def test_a_simulated_month_is_exact_in_clickhouse(env, tmp_path, month_run):
    messages, truth_path = write_truth(tmp_path, month_run)
    send_kafka(messages, settings_of(env).kafka_client_options())
    worker = Worker(env, tmp_path / "worker.log")
    worker.start()
    worker.wait_ready()
    wait_drained(env, worker, len(messages))
    # Event time: drained, the aggregates hold every message up to the newest one's emission time.
    from streams.schedule import SEOUL, from_ms

    newest = max(m.emit_ms for m in messages)
    deadline = time.monotonic() + 30
    while (clock := worker.health(store=False)["event_time"])["visible"] != clock["read"]:
        assert time.monotonic() < deadline, clock
        time.sleep(0.2)
    # (the quietest partition's last message, or an hour before the newest: see WorkerConfig)
    visible = datetime.fromisoformat(clock["visible"])
    assert clock["stored"] == clock["visible"] and from_ms(newest - 3_600_000) <= visible <= from_ms(newest), clock
    # The publication jobs report the day they last published: the last day that ended (or whose lateness
    # ended) by the clock.
    midnight = visible.astimezone(SEOUL).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC).isoformat()
    # (From the simulator's warm-up on: ~175 days of publications beside ~4,200 hours of detectors.)
    deadline = time.monotonic() + 300
    while (jobs := worker.health(store=False)["event_time_jobs"]).get("published.final", {}).get("done") != midnight:
        assert time.monotonic() < deadline, (jobs, midnight)
        time.sleep(0.5)
    assert jobs["published.first"]["done"] == midnight and jobs["published.first"]["error"] is None, jobs

    # The matcher learned from the same stream: recommendations with reasons, the observatory, 4xx.
    summary = matching_summary(time.time())
    assert summary["outcomes_learned"] + summary["unresolved_outcomes"] + summary["parked_outcomes"] == \
        expected_outcomes(messages)
    base = f"http://127.0.0.1:{WEB_PORT}/api"
    late_seekers = [orjson.loads(m.value)["payload"]["seeker_id"] for m in messages[-4000:]
                    if m.topic == "lmis.seekers" and b'"seeker.registered"' in m.value]
    got = httpx.get(f"{base}/recommendations/seeker/{late_seekers[-1]}", params={"k": 5}, timeout=30)
    assert got.status_code == 200, got.text
    vacancies = got.json()["vacancies"]
    assert 1 <= len(vacancies) <= 5 and all(len(v["reasons"]) == 3 for v in vacancies)
    assert [v["score"] for v in vacancies] == sorted((v["score"] for v in vacancies), reverse=True)
    for_vacancy = httpx.get(f"{base}/recommendations/vacancy/{vacancies[0]['id']}", timeout=30)
    assert for_vacancy.status_code == 200 and for_vacancy.json()["seekers"], for_vacancy.text
    assert httpx.get(f"{base}/recommendations/seeker/S{'0' * 16}", timeout=30).status_code == 404
    assert httpx.get(f"{base}/recommendations/seeker/not-an-id", timeout=30).status_code == 422
    observatory = httpx.get(f"{base}/matching", params={"from": "2026-03-02", "to": "2026-03-29"}, timeout=30).json()
    rankers = {r["ranker"] for r in observatory["metrics"] if r["queries"] > 0}
    assert rankers == {"model", "rule", "random"} and observatory["exposure"]
    # `lmis indicators` while the worker holds the store: only through the worker's API can it answer.
    week = ("--from", "2026-03-02", "--to", "2026-03-08", "--by", "day,region")
    running = {f: run_lmis("indicators", *week, "--format", f, env=env).stdout for f in ("json", "csv")}
    api = httpx.get(f"{base}/indicators", params={"from": "2026-03-02", "to": "2026-03-08", "by": "day,region"},
                    timeout=60).json()["rows"]
    regions = {r["region"] for r in api}
    assert json.loads(running["json"]) == api and len(regions) > 1 and len(api) == 7 * len(regions)
    assert sum(r["vacancies_submitted"] for r in api) > 0
    assert running["csv"].count("\n") == len(api) + 1  # the header and a line per row
    assert worker.stop() == 0
    # A clean stop, recorded after the last event stored: the next start rebuilds nothing.
    assert query_store(env, "SELECT count(), max(stopped_at) >= (SELECT max(stored_at) FROM events) "
                            "FROM clean_stops") == [[1, 1]]

    # Stopped: `lmis indicators` reads the store itself, the same numbers.
    for f in ("json", "csv"):
        assert run_lmis("indicators", *week, "--format", f, env=env).stdout == running[f]
    # Stopped: `lmis recommend` answers from the matcher's checkpoint.
    out = run_lmis("recommend", "seeker", late_seekers[-1], "--k", "5", "--format", "json", env=env)
    assert len(json.loads(out.stdout)) == len(vacancies)
    result = check_truth(env, truth_path)
    assert result["mismatches"] == {}, result
    check_published(env)
    truth = month_run[1]
    dlq = dead_letter_messages(env)
    reasons = Counter(m["reason"] for m in dlq)
    expected = Counter()
    for kind in truth["anomalies"]["malformed"]["by_kind"].values():
        expected[kind["dead_letter_reason"]] += kind["count"]
    expected["too_late"] = truth["anomalies"]["late_beyond"]["count"]
    assert reasons == expected
    # The pipeline's health, per topic and health tick (one worker from the start, so the ticks' counts add
    # up to every message it read): stored events plus dead letters are the topic's messages; none left.
    health = query_store(env, "SELECT topic, sum(events), sum(dead_letters), sum(too_late), "
                              "argMax(lag, ts), countIf(events > 0 AND freshness_p99_s >= freshness_p50_s), "
                              "countIf(events > 0), argMax(event_time, ts) IS NOT NULL, "
                              "countIf(fresh_events > 0), countIf(fresh_events > 0 AND freshness_p50_s <= 0) "
                              "FROM pipeline_health GROUP BY topic ORDER BY topic")
    produced = Counter(m.topic for m in messages)
    dead_by_topic = Counter(m["source_topic"] for m in dlq)
    assert [(t, e + d) for t, e, d, *_ in health] == sorted(produced.items())
    assert {t: d for t, _, d, *_ in health if d} == dict(dead_by_topic)
    assert sum(row[3] for row in health) == expected["too_late"]
    assert all(lag == 0 and ordered == busy > 0 and clock for _, _, _, _, lag, ordered, busy, clock, *_ in health), \
        health
    # Freshness is given for the ticks in which events became visible, never as 0 s for a tick without any.
    assert all(fresh > 0 and zero == 0 for *_, fresh, zero in health), health


def test_exact_after_six_sigkills_and_a_broker_restart(env, tmp_path, month_run):
    messages, truth_path = write_truth(tmp_path, month_run)
    # Classified in processes of the worker's own: killed with it, they must go too.
    env = {**env, "LMIS_SINK_MAX_ROWS": "2500", "LMIS_SINK_MAX_SECONDS": "0.3", "LMIS_MATCHING_CHECKPOINT_SECONDS": "1",
           "LMIS_CLASSIFY_PROCESSES": "2"}
    opts = settings_of(env).kafka_client_options()
    chunks = [messages[i:i + 3000] for i in range(0, len(messages), 3000)]
    producing = threading.Event()
    producing.set()

    def produce() -> None:
        for chunk in chunks:
            producing.wait()
            send_kafka(chunk, opts)
            time.sleep(0.4)

    producer = threading.Thread(target=produce)
    worker = Worker(env, tmp_path / "worker.log")
    worker.start()
    producer.start()
    rng = random.Random(2026)
    kills = 0
    left_behind: set[int] = set()  # the processes under each killed worker
    for round_no in range(6):
        time.sleep(rng.uniform(1.0, 3.0))
        if round_no == 3:
            # The broker goes away under the running worker, and comes back.
            producing.clear()
            run_lmis("stack", "down", env=env, timeout=120)
            time.sleep(2)
            run_lmis("stack", "up", env=env, timeout=300)
            producing.set()
        if round_no == 0:
            worker.wait_ready()  # its processes started (the later kills may come before)
            assert len(worker.pids()) >= 5  # the worker, its matcher, two classifiers, the resource tracker
        left_behind |= set(worker.pids()) - {worker.proc.pid}
        worker.kill()
        kills += 1
        worker.start()
    producer.join(600)
    worker.wait_ready()
    wait_drained(env, worker, len(messages), timeout=600)
    # The matcher, checkpointed every second and killed six times: every outcome accounted for exactly once
    # (learned, or waiting for / given up on a seeker or vacancy that never came) -- none lost, none twice.
    summary = matching_summary(time.time())
    assert summary["outcomes_learned"] + summary["unresolved_outcomes"] + summary["parked_outcomes"] == \
        expected_outcomes(messages)
    assert worker.stop() == 0
    assert kills >= 6
    # A killed worker's processes notice that it is gone and exit (none lingers holding memory).
    deadline = time.monotonic() + 60
    while (alive := [p for p in left_behind if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive, [Path(f"/proc/{p}/cmdline").read_bytes()[:200] for p in alive]
    result = check_truth(env, truth_path)
    assert result["mismatches"] == {}, result
    check_published(env, final_is_now=False)  # the event-time jobs ran each instant once, through the kills


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited (its parent, init, has yet to reap it)


BAD_MESSAGES = {
    "malformed_json": b'{"event_id": "00',
    "empty": b"",
    "not_utf8": b"\xff\xfe\xfa\x00",
    "not_an_object": b"[1, 2, 3]",
    "unknown_event_type": b'{"event_type": "vacancy.reposted", "schema_version": 1}',
    "unsupported_schema_version": None,  # filled from a good event below
    "missing_field": None,
    "invalid_code": None,
    "wrong_type": None,
    "naive_timestamp": None,
    "unknown_field": None,
    "pii_in_title": None,
    "future_occurred_at": None,
    "too_late": None,
    # Each of these once stopped ingest for good: its dead-letter copy (every control byte escaped) was over
    # the producer's 1 MB limit, and publishing it was retried forever.
    "control_bytes_200kb": bytes(range(1, 32)) * 6_500,
    "near_1mb_json": b'{"event_type": "vacancy.submitted", "x": "' + b"\\u0001" * 166_000 + b'"}',
    "binary_300kb": bytes((i * 7919) % 251 for i in range(300_000)),
    "duplicate_key": None,
    "pii_in_a_key": None,
}
EXPECTED_REASON = {
    "malformed_json": "malformed_json", "empty": "malformed_json", "not_utf8": "malformed_json",
    "not_an_object": "not_an_object", "unknown_event_type": "unknown_event_type",
    "unsupported_schema_version": "unsupported_schema_version", "missing_field": "missing_field",
    "invalid_code": "invalid_field", "wrong_type": "invalid_field", "naive_timestamp": "invalid_field",
    "unknown_field": "invalid_field", "pii_in_title": "pii_detected", "future_occurred_at": "future_occurred_at",
    "too_late": "too_late", "control_bytes_200kb": "malformed_json", "near_1mb_json": "unsupported_schema_version",
    "binary_300kb": "malformed_json", "duplicate_key": "duplicate_key", "pii_in_a_key": "invalid_field",
}


def test_bad_input_suite(env, tmp_path):
    good = {"event_id": "", "event_type": "vacancy.submitted", "schema_version": 1,
            "occurred_at": "2026-03-02T10:00:00.000+09:00", "source": "worknet",
            "payload": {"vacancy_id": "V0123456789abcdef", "employer_id": "E0123456789abcdef", "region": "48",
                        "industry": "C", "occupation": "74", "size_band": "300+", "title": "선박 용접공 채용",
                        "openings": 2, "employment_type": "permanent", "wage_type": "monthly",
                        "wage_amount": 3_000_000, "work_hours_per_week": 40, "deadline": "2026-04-01"}}
    sent_at = 1772413260000  # one minute after it happened

    def variant(i: int, change) -> bytes:
        doc = json.loads(json.dumps(good))
        doc["event_id"] = f"{i:032x}"
        doc["payload"]["vacancy_id"] = f"V{i:016x}"
        change(doc)
        return orjson.dumps(doc)

    changes = {
        "unsupported_schema_version": lambda d: d.update(schema_version=7),
        "missing_field": lambda d: d["payload"].pop("region"),
        "invalid_code": lambda d: d["payload"].update(region="99"),
        "wrong_type": lambda d: d["payload"].update(openings="two"),
        "naive_timestamp": lambda d: d.update(occurred_at="2026-03-02T10:00:00"),
        "unknown_field": lambda d: d["payload"].update(contact_name="홍길동"),
        "pii_in_title": lambda d: d["payload"].update(title="용접공 채용 문의 010-9876-5432"),
        "future_occurred_at": lambda d: d.update(occurred_at="2026-03-09T10:00:00.000+09:00"),
        "too_late": lambda d: d.update(occurred_at="2026-02-20T10:00:00.000+09:00"),
        "pii_in_a_key": lambda d: d["payload"].update({"kim.minsu@example.com": "x"}),
    }
    bad = dict(BAD_MESSAGES)
    for n, (kind, change) in enumerate(changes.items()):
        bad[kind] = variant(10_000 + n, change)
    bad["duplicate_key"] = variant(10_100, lambda d: None).replace(
        b'"title":"', '"title":"담당 010-9876-5432","title":"'.encode(), 1)
    messages, expected_good = [], 0
    for i in range(300):
        messages.append(Message(sent_at, i, "lmis.vacancies", f"V{i:016x}", variant(i, lambda d: None)))
        expected_good += 1
        kind = list(bad)[i % len(bad)]
        messages.append(Message(sent_at, i, "lmis.vacancies", f"bad-{i}", bad[kind]))
    send_kafka(messages, settings_of(env).kafka_client_options())
    worker = Worker(env, tmp_path / "worker.log")
    worker.start()
    worker.wait_ready()
    wait_drained(env, worker, len(messages))
    health = worker.health()
    assert health["status"] == "ok"
    got = Counter()
    for m in dead_letter_messages(env):
        got[m["reason"]] += 1
        assert m["source_topic"] == "lmis.vacancies" and m["source_offset"] >= 0
        assert "010-9876-5432" not in m["original"], "personal data must be masked in the dead-letter topic"
        assert "kim.minsu" not in m["original"] + m["field"] + m["value"]
        assert len(m["original"]) <= 2048 and m["original_bytes"] >= len(m["original"].encode()) // 6
    expected = Counter()
    for i in range(300):
        expected[EXPECTED_REASON[list(bad)[i % len(bad)]]] += 1
    assert got == expected
    assert len(bad) >= 10
    rows = httpx.get(f"http://127.0.0.1:{WEB_PORT}/api/indicators",
                     params={"from": "2026-03-02", "to": "2026-03-02"}).json()["rows"]
    assert rows[0]["vacancies_submitted"] == expected_good
    assert worker.stop() == 0


def test_one_worker_per_consumer_group(env, tmp_path):
    """A second worker with another store would take half the partitions into its own store: it refuses, as does
    one on a taken port -- before either joins the group. The first reads on, alone in the group."""
    from kafka.admin import KafkaAdminClient

    first = Worker(env, tmp_path / "first.log").start()
    first.wait_ready()
    elsewhere = {**env, "LMIS_DATA_DIR": str(tmp_path / "other"), "LMIS_WEB_PORT": str(WEB_PORT + 1)}
    res = run_lmis("worker", env=elsewhere, check=False, timeout=180)
    said = res.stdout + res.stderr
    assert res.returncode == 1 and "already has an active worker with another store" in said, said[-3000:]
    same_port = {**env, "LMIS_DATA_DIR": str(tmp_path / "third")}
    res = run_lmis("worker", env=same_port, check=False, timeout=60)
    said = res.stdout + res.stderr
    assert res.returncode == 1 and "is in use" in said, said[-3000:]
    admin = KafkaAdminClient(**settings_of(env).kafka_client_options())
    members = admin.describe_groups(["lmis-trends"])["lmis-trends"]["members"]
    admin.close()
    assert len(members) == 1 and members[0]["group_instance_id"] == "lmis-trends-worker", members
    # Still the only reader: what is sent now is counted by the first.
    messages = [Message(1772413260000, i, "lmis.seekers", f"S{i:016x}", orjson.dumps({
        "event_id": f"{i:032x}", "event_type": "seeker.registered", "schema_version": 1,
        "occurred_at": "2026-03-02T10:00:00.000+09:00", "source": "worknet",
        "payload": {"seeker_id": f"S{i:016x}", "region": "11", "occupation": "74", "age_band": "30-39", "sex": "F",
                    "education": "high", "experience_years": 3}})) for i in range(200)]
    send_kafka(messages, settings_of(env).kafka_client_options())
    wait_drained(env, first, len(messages))
    assert first.health()["events"]["lmis.seekers"] == 200
    assert first.stop() == 0


def test_a_dead_letter_topic_that_refuses_holds_the_batch_back_and_says_so(env, tmp_path):
    """The dead-letter topic refusing its messages (here: a size limit below theirs) holds the batch back --
    nothing after it committed, nothing lost -- and the health says why; once it accepts them again, every
    message is counted."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(**settings_of(env).kafka_client_options())

    def dlq_limit(n: int) -> None:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "lmis.dlq",
                                            configs={"max.message.bytes": str(n)})])

    worker = Worker(env, tmp_path / "worker.log").start()
    worker.wait_ready()
    dlq_limit(100)
    messages = [Message(1772413260000 + i, i, "lmis.vacancies", f"bad-{i}", b"{not json") for i in range(5)]
    send_kafka(messages, settings_of(env).kafka_client_options())
    deadline = time.monotonic() + 120
    while (health := worker.health(store=False))["status"] != "degraded":
        assert time.monotonic() < deadline, health
        time.sleep(0.5)
    assert any(r.startswith("publishing dead letters failing since") for r in health["reasons"]), health
    assert not health["committed"], "nothing may be committed while its dead letters wait"
    dlq_limit(1_048_588)
    wait_drained(env, worker, len(messages))
    health = worker.health(store=False)
    assert health["status"] == "ok" and health["dead_letters"] == {"malformed_json": 5}, health
    assert len(dead_letter_messages(env)) == 5
    admin.close()
    assert worker.stop() == 0


def test_a_worker_started_before_its_broker_waits_for_it(env, tmp_path):
    run_lmis("stack", "down", env=env, timeout=120)
    worker = Worker(env, tmp_path / "worker.log").start()
    deadline = time.monotonic() + 60
    while "waiting for Kafka" not in (tmp_path / "worker.log").read_text(errors="replace"):
        assert worker.alive(), worker.tail()
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(0.5)
    time.sleep(3)
    assert worker.alive(), worker.tail()
    run_lmis("stack", "up", env=env, timeout=300)
    worker.wait_ready(timeout=180)
    messages = [Message(1772413260000, i, "lmis.vacancies", f"bad-{i}", b"{not json") for i in range(3)]
    send_kafka(messages, settings_of(env).kafka_client_options())
    wait_drained(env, worker, len(messages))
    assert worker.stop() == 0
