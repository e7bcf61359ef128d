"""The trend pipeline without Kafka: an in-memory source, the real ClickHouse engine (chdb)."""

from __future__ import annotations

import itertools
import json
import math
import random
import uuid
from datetime import date, datetime, timedelta

import pytest

from lmis.truthcheck import compare
from simulator.calibration import insured_snapshot
from sinks.indicators import PLACEMENT_EVENTS, active_job_seekers
from sinks.insured import load_snapshot
from sinks.readers import dead_letter_counts, duplicate_count
from streams.native import available, decode_rows
from streams.pipeline import TrendPipeline
from streams.processing import Policy, Record, classify_batch


def as_records(messages, partitions: int = 3) -> list[Record]:
    """Messages as a broker would deliver them: keyed into partitions, offsets per partition."""
    import zlib

    offsets: dict[tuple[str, int], int] = {}
    out = []
    for m in messages:
        p = zlib.crc32(m.key.encode()) % partitions
        o = offsets.get((m.topic, p), 0)
        offsets[(m.topic, p)] = o + 1
        out.append(Record(m.topic, p, o, m.emit_ms, m.key.encode(), m.value))
    return out


def registrations_and_placements(client) -> tuple[list, list]:
    """From the stored events (each once): the inputs of ``sinks.indicators.active_job_seekers``."""
    regs, placed = [], []
    for (message,) in client.query("SELECT message FROM events WHERE event_type IN ('seeker.registered', "
                                   "'application.outcome', 'ui.claim_ended') LIMIT 1 BY event_id").result_rows:
        e = json.loads(message)
        at, p = datetime.fromisoformat(e["occurred_at"]), e["payload"]
        if e["event_type"] == "seeker.registered":
            regs.append((p["seeker_id"], at, p["region"]))
        elif (e["event_type"], p.get("outcome") or p.get("reason")) in PLACEMENT_EVENTS:
            placed.append((p["seeker_id"], at))
    return regs, placed


@pytest.fixture(scope="module")
def month(month_run):
    from simulator.output import read_jsonl

    path, truth, _ = month_run
    return as_records(read_jsonl(path)), truth


def run(pipeline: TrendPipeline, records: list[Record], batch: int = 5000, rollup_every: int = 3) -> None:
    for i, start in enumerate(range(0, len(records), batch)):
        pipeline.submit(records[start:start + batch])
        assert pipeline.checkpoint() is not None
        if i % rollup_every == 0:
            pipeline.rollup()
    pipeline.rollup()


@pytest.fixture(scope="module")
def classifier_pool():
    from streams.classifier import ClassifierPool

    pool = ClassifierPool(2)
    yield pool
    pool.close()


@pytest.mark.parametrize("classify_in", ["pipeline thread", "classifier processes", "python reader"])
def test_a_month_with_every_scenario_equals_the_truth(client, month, classify_in, request, monkeypatch):
    """Also without the compiled reader (not built, or turned off): every message the Python way, the rows
    inserted as clickhouse-connect encodes them -- the same numbers."""
    records, truth = month
    if classify_in == "python reader":
        monkeypatch.setenv("LMIS_COMPILED_READER", "false")
        assert not available()
    pool = request.getfixturevalue("classifier_pool") if classify_in == "classifier processes" else None
    load_snapshot(client, insured_snapshot(date.fromisoformat(truth["start"]), truth["scale"]))
    pipeline = TrendPipeline(client, classifier=pool)
    run(pipeline, records)
    result = compare(client, truth)
    # Insured persons: the EI database's count at the start carried forward by the flows, rollup by rollup.
    insured = dict(client.query("SELECT day, sum(value) FROM measures_daily WHERE measure = 'stock.insured' "
                                "AND day >= toDate('2026-03-02') GROUP BY day").result_rows)
    assert {d.isoformat(): n for d, n in insured.items()} == truth["stocks"]["insured_persons"]
    assert result["mismatches"] == {}
    assert result["measures"] >= 30
    expected_dead = {}
    for kind in truth["anomalies"]["malformed"]["by_kind"].values():
        expected_dead[kind["dead_letter_reason"]] = expected_dead.get(kind["dead_letter_reason"], 0) + kind["count"]
    expected_dead["too_late"] = truth["anomalies"]["late_beyond"]["count"]
    assert dead_letter_counts(client) == expected_dead
    assert duplicate_count(client) == truth["anomalies"]["duplicates"]["count"]
    # The hourly measures add up to the daily ones.
    hourly = client.query("SELECT day, measure, sum(value) FROM measures_hourly GROUP BY day, measure").result_rows
    daily = client.query("SELECT day, measure, sum(value) FROM measures_daily WHERE NOT startsWith(measure, "
                         "'stock.') GROUP BY day, measure").result_rows
    assert sorted(hourly) == sorted(daily) and len(daily) > 100
    # Active job seekers (유효구직자): each region's, as the pure definition counts them from the stored events.
    active = {(day, region): n for day, region, n in client.query(
        "SELECT day, region, value FROM measures_daily WHERE measure = 'stock.active_seekers'").result_rows}
    regs, placed = registrations_and_placements(client)
    for day in sorted({day for day, _ in active})[::5]:
        expected = active_job_seekers(regs, placed, day)
        assert {r: n for (d, r), n in active.items() if d == day} == expected, day
    assert len(active) > 100 and len(placed) > 100


def test_classifier_processes_give_what_the_pipeline_thread_gives(month, classifier_pool):
    """The same runs, rows, dead letters, days and vacancies, in the same order, for a month with every kind
    of bad input; split across both processes (a slice each) or not (a small batch)."""
    records, _ = month

    def flat(batches):
        # The compiled reader's rows are encoded, and those it left to Python come after them: by offset.
        runs = [(r.topic, r.partition, r.lo, r.hi, sorted(r.rows + decode_rows(r.encoded), key=lambda row: row[22]),
                 [d.row for d in r.dead_letters])
                for b in batches for r in b.runs]
        return runs, set().union(*(b.days for b in batches)), set().union(*(b.vacancies for b in batches))

    dead_letters = 0
    for start, size in ((0, 20_000), (20_000, 500), (len(records) - 7_000, 7_000)):
        batch = records[start:start + size]
        here = flat([classify_batch(batch, Policy())])
        there = classifier_pool(batch, Policy())
        assert len(there) == {20_000: 4, 500: 1, 7_000: 2}[size]
        there_flat = flat(there)
        # Where a slice ends inside a topic-partition run, the run continues in the next slice.
        merged: list = []
        for run_ in there_flat[0]:
            if merged and merged[-1][:2] == run_[:2] and merged[-1][3] < run_[2]:
                t, p, lo, _, rows, dead = merged[-1]
                merged[-1] = (t, p, lo, run_[3], sorted(rows + run_[4], key=lambda row: row[22]), dead + run_[5])
            else:
                merged.append(run_)
        assert merged == here[0] and there_flat[1:] == here[1:]
        assert sum(len(r[4]) for r in here[0]) > 0
        dead_letters += sum(len(r[5]) for r in here[0])
    assert dead_letters > 0


def test_replays_at_other_batch_boundaries_and_lost_rollups_stay_exact(client, engine_dsn, month):
    from sinks.clickhouse import connect
    from sinks.rollups import Rollup

    records, truth = month
    rng = random.Random(7)
    # As the worker has it: the statements of a rollup of the live days at once, on clients of their own,
    # those of a backlog's many days one after another (LMIS_ROLLUP_STATEMENTS_AT_ONCE=1).
    rollup = Rollup(connect(engine_dsn, client.database),
                    more_clients=[connect(engine_dsn, client.database) for _ in range(2)], backlog_lanes=1)

    def restarted() -> TrendPipeline:
        return TrendPipeline(client, rollup=rollup)

    pipeline = restarted()
    position = 0
    while position < len(records):
        # A "crash": some messages are processed again from an earlier position, in other batch sizes,
        # and sometimes the rollup of a checkpoint never happens.
        step = rng.randint(500, 9000)
        pipeline.submit(records[position:position + step])
        assert pipeline.checkpoint() is not None
        if rng.random() < 0.5:
            pipeline.rollup()
        else:
            pipeline = restarted()  # restart: the dirty days are found again
            pipeline.recover()
        position += step - rng.randint(0, min(step, 2000))
    pipeline.rollup()
    assert compare(client, truth)["mismatches"] == {}


class _Recording:
    """A client that notes the thread each statement ran on."""

    def __init__(self, client, threads: list[str]):
        self._client, self._threads = client, threads

    def command(self, *args, **kwargs):
        import threading

        self._threads.append(threading.current_thread().name)
        return self._client.command(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_a_rollup_runs_its_statements_at_once_for_the_live_days_and_one_by_one_for_a_backlog(
        client, engine_dsn, month):
    from sinks.clickhouse import connect
    from sinks.rollups import LIVE_DAYS, Rollup

    records, truth = month
    threads: list[str] = []
    rollup = Rollup(_Recording(connect(engine_dsn, client.database), threads),
                    more_clients=[_Recording(connect(engine_dsn, client.database), threads) for _ in range(2)],
                    backlog_lanes=1)
    pipeline = TrendPipeline(client, rollup=rollup)
    pipeline.submit(records)
    assert pipeline.checkpoint() is not None
    backlog = pipeline.rollup()
    assert backlog is not None and backlog.days > LIVE_DAYS
    assert threads and not any(t.startswith("lmis-rollup-part") for t in threads)
    threads.clear()
    last_day = max(pipeline.rollup_job.event_days_range())
    pipeline.dirty = {last_day}  # the live day again, as after a checkpoint of its new events
    live = pipeline.rollup()
    assert live is not None and live.days <= LIVE_DAYS
    assert sum(t.startswith("lmis-rollup-part") for t in threads) >= 2  # the other two clients took part
    assert compare(client, truth)["mismatches"] == {}


def test_a_cut_is_written_while_the_next_batch_fills_and_commits_only_its_own_offsets(client, month):
    """The worker's writer thread writes a cut while classifying goes on: the cut's offsets are the ones to
    commit, its days await the rollup only once written, and the next batch stays buffered meanwhile."""
    records, truth = month
    pipeline = TrendPipeline(client)
    half = len(records) // 2
    pipeline.submit(records[:half])
    first = pipeline.cut()
    pipeline.submit(records[half:])
    assert pipeline.buffered_messages == len(records)  # the cut, not yet written, and the next batch
    assert pipeline.dirty == set()
    cp = pipeline.write(first)
    assert cp is not None
    assert cp.offsets == {tp: o for tp, o in _next_offsets(records[:half]).items()}
    assert pipeline.buffered_messages == len(records) - half and pipeline.dirty
    second = pipeline.checkpoint()
    assert second is not None and set(second.offsets.items()) <= set(_next_offsets(records).items())
    assert {**cp.offsets, **second.offsets} == _next_offsets(records)
    pipeline.rollup()
    assert compare(client, truth)["mismatches"] == {}


def _next_offsets(records: list[Record]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for r in records:
        out[r.topic, r.partition] = max(out.get((r.topic, r.partition), 0), r.offset + 1)
    return out


def _count_cells_rewritten(client, version: int) -> tuple[int, int]:
    """The count cells a rollup's ``version`` wrote, and all the count cells of the days it wrote."""
    return client.query(
        f"SELECT countIf(version = {version}), uniqExact(day, measure, region, industry, occupation, "
        f"age_band, sex, size_band) FROM daily_measures WHERE day IN (SELECT day FROM daily_measures "
        f"WHERE version = {version}) AND NOT startsWith(measure, 'stock.')").result_rows[0]


def test_a_rollup_cut_short_is_redone_at_start_up(client, month):
    records, truth = month
    pipeline = TrendPipeline(client)
    run(pipeline, records)
    # More events arrive, then the worker dies half-way through their rollup: measures written under a new
    # version (garbage here), no rollup_log entry.
    before = client.query("SELECT now64(3)").result_rows[0][0]
    late = records[-50:]
    pipeline.submit(late)
    assert pipeline.checkpoint() is not None
    # The interrupted rollup had rewritten the days of those events (only those: a rollup's days).
    client.command("INSERT INTO daily_measures (day, measure, region, industry, occupation, age_band, sex, "
                   "size_band, value, version, slot) SELECT day, measure, region, industry, occupation, age_band, sex, "
                   "size_band, value * 1000, toUInt64(toUnixTimestamp64Nano(now64(9))), slot FROM daily_measures "
                   f"WHERE day IN (SELECT DISTINCT day FROM events WHERE stored_at >= '{before}')")
    # ... and a cell that no count has (a version left unrecorded is superseded by whole days, zeros too)
    client.command("INSERT INTO daily_measures (day, measure, region, value, version) SELECT max(day), "
                   "'application.submitted', 'nowhere', 7, toUInt64(toUnixTimestamp64Nano(now64(9))) FROM events")
    client.command("OPTIMIZE TABLE daily_measures FINAL")  # merges may keep only the newest version of a key
    restarted = TrendPipeline(client)
    assert restarted.recover(), "the days of the interrupted rollup are found again"
    restarted.rollup()
    client.command("OPTIMIZE TABLE daily_measures FINAL")
    assert compare(client, truth)["mismatches"] == {}
    assert client.query("SELECT count() FROM measures_daily WHERE region = 'nowhere'").result_rows == [(0,)]


def test_a_start_up_after_a_clean_stop_rebuilds_nothing_and_a_crash_after_it_loses_none(client, month):
    """Start-up redoes the days stored in the 5 s before the last whole rollup began (a write begun before it
    may have been acknowledged after it began): after a fast drain, every day. A worker that stops with every
    stored event rolled up records the instant, and start-up then looks only at what was stored since."""
    records, truth = month
    pipeline = TrendPipeline(client)
    run(pipeline, records[:-400])
    found = TrendPipeline(client).recover()
    assert len(found) > 1, "stored within 5 s of the last rollup: its days are redone without a clean stop"
    pipeline.submit(records[-400:-200])
    assert pipeline.checkpoint() is not None
    assert not pipeline.record_clean_stop(), "recorded with days written and not rolled up"
    pipeline.rollup()
    assert pipeline.record_clean_stop()
    restarted = TrendPipeline(client)
    assert restarted.recover() == set() and restarted.dirty == set()
    # Nothing is rebuilt; the first rollup recounts only the new events' cells.
    restarted.submit(records[-200:-190])
    assert restarted.checkpoint() is not None
    report = restarted.rollup()
    assert report is not None
    written, cells = _count_cells_rewritten(client, report.version)
    assert 0 < written < cells / 5, (written, cells)
    # More events after the clean stop, then a crash before their rollup: start-up finds their days.
    writer = TrendPipeline(client)
    writer.submit(records[-200:])
    assert writer.checkpoint() is not None and writer.dirty
    again = TrendPipeline(client)
    assert again.recover() == writer.dirty
    again.rollup()
    assert compare(client, truth)["mismatches"] == {}


def test_a_backlog_rolled_up_as_the_reading_passes_each_day_is_exact_and_a_crash_loses_none(client, month):
    """Catching up, the worker rebuilds only the days its reading has passed (``before``: the day being read,
    by message time) and leaves that day and any after it dirty. Each partial rollup rebuilds nothing from
    ``before`` on; a worker killed after one finds the days it left again at start-up; the end is exact."""
    from schemas.calendar import seoul_day
    from sinks.rollups import Rollup
    from streams.schedule import from_ms

    class SlowPartials(Rollup):
        """Versions (when a rollup began) a minute late from the first partial rollup on, as on a busy
        machine: the days a partial rollup leaves then hold events stored well before it began."""

        late = 0

        def run(self, dirty, touched_vacancies=None, touched_cells=None, before=None):
            self.late = self.late or (60 * 10**9 if before is not None else 0)
            return super().run(dirty, touched_vacancies, touched_cells, before)

        def _version(self) -> int:
            return super()._version() + self.late

    records, truth = month
    rollup = SlowPartials(client)
    pipeline = TrendPipeline(client, rollup=rollup)
    pipeline.submit(records[:4_000])
    assert pipeline.checkpoint() is not None
    pipeline.rollup()  # a whole rollup: where start-up looks from
    partial_versions = []
    crashed = False
    for start in range(4_000, len(records), 4_000):
        batch = records[start:start + 4_000]
        pipeline.submit(batch)
        assert pipeline.checkpoint() is not None
        before = seoul_day(from_ms(max(r.timestamp for r in batch)))
        report = pipeline.rollup(before)
        assert all(d >= before for d in pipeline.dirty), "a day the reading passed was left dirty"
        if report is not None:
            assert report.partial == bool(pipeline.dirty)
        if report is not None and pipeline.dirty:
            partial_versions.append(report.version)
            rolled = client.query(f"SELECT min(day), max(day), min(partial) FROM rollup_log "
                                  f"WHERE version = {report.version}").result_rows[0]
            assert rolled[1] < min(pipeline.dirty) and rolled[2] == 1, (rolled, pipeline.dirty)
        if not crashed and start >= len(records) // 2 and pipeline.dirty:
            left = set(pipeline.dirty)
            pipeline = TrendPipeline(client, rollup=rollup)  # killed: the days it left are found again
            assert left <= pipeline.recover()
            crashed = True
    assert crashed and len(partial_versions) > 10
    pipeline.rollup()
    assert compare(client, truth)["mismatches"] == {}
    with pytest.raises(ValueError, match="not before"):
        Rollup(client).run({date(2026, 3, 5)}, before=date(2026, 3, 5))


def test_a_partial_rollup_rebuilds_up_to_the_first_day_it_leaves(client, month):
    """A day after the day being read and before the first dirty one (no new events of its own) still has
    stocks and reviews that the passed days' changes reach; the rollup that takes the days left starts from
    the first of them, so the partial rollup must rebuild the day between."""
    records, truth = month
    first = date.fromisoformat(truth["first_full_day"])  # stocks are compared from there on
    days = sorted({d for r in records if (d := _day_of(r)) is not None and d >= first})
    d = days[len(days) // 2]
    held = [r for r in records if _day_of(r) in (d, d + timedelta(days=2))]
    assert any(b'"vacancy.submitted"' in r.value for r in held if _day_of(r) == d)
    pipeline = TrendPipeline(client)
    held_ids = {id(r) for r in held}
    pipeline.submit([r for r in records if id(r) not in held_ids])
    assert pipeline.checkpoint() is not None
    pipeline.rollup()
    pipeline.submit(held)  # the events of d and d + 2 arrive late; d + 1 is being read
    assert pipeline.checkpoint() is not None
    assert pipeline.dirty == {d, d + timedelta(days=2)}
    report = pipeline.rollup(before=d + timedelta(days=1))
    assert report is not None and report.partial and pipeline.dirty == {d + timedelta(days=2)}
    pipeline.rollup()
    assert compare(client, truth)["mismatches"] == {}


def test_catching_up_the_worker_shows_the_days_its_reading_passed_and_the_rest_once_caught_up(client, month):
    """The worker's rollups without Kafka: behind, the day being read (by the stored clock) is left dirty and
    the visible clock -- what the event-time jobs go by -- stops at its start; caught up, or after
    ``backlog_whole_rollup_s`` behind, a whole rollup shows everything stored."""
    import asyncio

    from schemas.calendar import seoul_day
    from streams.schedule import day_start_ms, from_ms
    from streams.worker import Ingest, WorkerConfig

    records, truth = month

    async def scenario() -> None:
        pipeline = TrendPipeline(client)
        ingest = Ingest(WorkerConfig(kafka_options={}), pipeline, pipeline_executor)
        for part, how in ((records[:20_000], "behind"), (records[20_000:40_000], "behind too long"),
                          (records[40_000:], "caught up")):
            pipeline.submit(part)
            assert pipeline.checkpoint() is not None
            newest = max(r.timestamp for r in part)
            ingest.clock["stored"] = newest
            ingest._next_rollup = 0.0  # no rest: this test is not about pacing
            if how == "behind too long":
                ingest._whole_rollup_at -= ingest.cfg.backlog_whole_rollup_s
            ingest.caught_up = how == "caught up"
            await ingest.rollup()
            day = seoul_day(from_ms(newest))
            if how == "behind":
                assert pipeline.dirty and min(pipeline.dirty) >= day, (pipeline.dirty, day)
                assert ingest.clock["visible"] == day_start_ms(day)
            else:
                assert not pipeline.dirty, how
                assert ingest.clock["visible"] == newest, how

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pipeline_executor:
        asyncio.run(scenario())
    assert len(records) > 40_000
    assert compare(client, truth)["mismatches"] == {}


def test_live_rollups_recount_only_the_cells_that_changed_and_stay_exact(client, month):
    """At the live rate a rollup rewrites the cells of the events written since the last one (and of the
    submissions whose decision they changed), not whole days; readers take each cell's newest row."""
    records, truth = month
    pipeline = TrendPipeline(client)
    run(pipeline, records[:-3_000], batch=20_000, rollup_every=1)
    share = []
    for start in range(len(records) - 3_000, len(records), 100):
        pipeline.submit(records[start:start + 100])
        assert pipeline.checkpoint() is not None
        report = pipeline.rollup()
        assert report is not None
        written, cells = _count_cells_rewritten(client, report.version)
        share.append(written / cells)
    assert compare(client, truth)["mismatches"] == {}
    assert sorted(share)[len(share) // 2] < 0.2, f"live rollups rewrote whole days: {sorted(share)}"
    # A rollup of whole days (as after a restart) finds nothing to change.
    restarted = TrendPipeline(client)
    restarted.recover()
    restarted.rollup()
    assert compare(client, truth)["mismatches"] == {}


def test_a_live_rollup_recounts_only_what_changed_when_the_reviews_merge_during_it(client, month):
    """The engine merges ``vacancy_reviews`` in the background whenever it likes: also between a rollup's
    review and its search for the decisions that review changed. The merge keeps only each submission's newest
    decision, so that search must not need the older ones (when it did, every submission of the review's days
    read as changed and a live rollup recounted whole days: 2.35 s instead of ~0.25 in bench run 78). Each
    live rollup here recounts exactly the cells of its events and of the submissions whose decision changed."""
    from sinks.rollups import CELL_SQL, Rollup

    class MergedAfterReview(Rollup):
        recounted: list = []

        def _reviews(self, days, version, last_day=None):
            reviewed = super()._reviews(days, version, last_day)
            self.client.command("OPTIMIZE TABLE vacancy_reviews FINAL")
            return reviewed

        def _cells_to_recount(self, touched, review_days, version, reviewed):
            cells = super()._cells_to_recount(touched, review_days, version, reviewed)
            self.recounted.append((touched, cells))
            return cells

    def decisions() -> dict:
        return dict(client.query("SELECT toString(event_id), decision FROM vacancy_reviews FINAL").result_rows)

    records, truth = month
    pipeline = TrendPipeline(client)
    run(pipeline, records[:-600], batch=20_000, rollup_every=1)
    rollup = pipeline.rollup_job = MergedAfterReview(client)
    changed_some = False
    for start in range(len(records) - 600, len(records), 100):
        before = decisions()
        pipeline.submit(records[start:start + 100])
        assert pipeline.checkpoint() is not None
        assert pipeline.rollup() is not None
        after = decisions()
        changed = sorted(e for e, d in after.items() if before.get(e) != d)
        changed_some |= bool(changed)
        listed = ", ".join(repr(e) for e in changed) or "''"
        of_changed = {tuple(c) for c in client.query(
            f"SELECT DISTINCT day, {CELL_SQL} FROM events WHERE event_type = 'vacancy.submitted' "
            f"AND event_id IN ({listed})").result_rows}
        touched, cells = rollup.recounted[-1]
        assert touched is not None and cells == touched | of_changed
    assert changed_some  # the reviews did change decisions (new submissions at least)
    assert compare(client, truth)["mismatches"] == {}


def test_a_day_first_counted_by_live_rollups_shows_what_a_whole_rebuild_shows(client, month):
    """A day whose events arrive only after the days around it were rolled up (its stocks are, its counts
    are not): live rollups (their cells listed) write its first counts where there is nothing to replace,
    and the board's products add up their changes. What readers see equals a rebuild of every day."""
    from sinks.rollups import MAX_LISTED_CELLS

    records, truth = month
    first = date.fromisoformat(truth["first_full_day"])
    days = sorted({d for r in records if (d := _day_of(r)) is not None and d >= first})
    held_day = days[len(days) // 2]
    held = [r for r in records if _day_of(r) == held_day]
    pipeline = TrendPipeline(client)
    run(pipeline, [r for r in records if _day_of(r) != held_day], batch=20_000, rollup_every=1)
    assert client.query(f"SELECT count() FROM daily_measures WHERE day = '{held_day}' "
                        f"AND NOT startsWith(measure, 'stock.')").result_rows[0][0] == 0
    for start in range(0, len(held), 300):
        pipeline.submit(held[start:start + 300])
        assert pipeline.checkpoint() is not None
        cells = pipeline.touched_cells
        assert cells is not None and len(cells) <= MAX_LISTED_CELLS  # a live rollup: its cells listed
        assert pipeline.rollup() is not None
    assert compare(client, truth)["mismatches"] == {}
    seen = _what_readers_see(client)
    rebuilt = TrendPipeline(client)
    rebuilt.dirty = {r[0] for r in client.query("SELECT DISTINCT day FROM events").result_rows}
    assert rebuilt.rollup() is not None
    assert _what_readers_see(client) == seen


def _day_of(r: Record) -> date | None:
    """The Asia/Seoul day a record's event occurred on (+09:00 in the simulator's messages); None for the
    broken messages."""
    import re

    found = re.search(rb'"occurred_at":"(\d{4}-\d\d-\d\d)T[^"]*\+09:00"', r.value)
    return date.fromisoformat(found.group(1).decode()) if found else None


ROLLED_UP_TABLES = ("daily_measures", "hourly_measures", "daily_region_measures", "daily_dimension_measures",
                    "daily_headline")


def _what_readers_see(client) -> dict[str, list]:
    from dashboards.boards import latest

    every_day = "day > toDate('2000-01-01')"
    queries = {
        "measures_daily": "SELECT day, measure, sum(value), count() FROM measures_daily GROUP BY ALL ORDER BY ALL",
        "measures_hourly": "SELECT hour, measure, sum(value), count() FROM measures_hourly GROUP BY ALL ORDER BY ALL",
        "measures_by_region": "SELECT * FROM measures_by_region ORDER BY ALL",
        "breakdowns": f"SELECT day, measure, dimension, sum(value), count() FROM "
                      f"{latest('daily_dimension_measures', every_day)} GROUP BY ALL ORDER BY ALL",
        "headline": f"SELECT day, indicator, value FROM {latest('daily_headline', every_day)} ORDER BY ALL",
    }
    return {name: client.query(q).result_rows for name, q in queries.items()}


def test_merges_while_a_rollup_writes_never_change_what_readers_see(client, month):
    """The tables keep the newest row of each key when they merge. Found on the bench's store: merges that
    ran while a rollup was writing took away the rows of the recorded version that readers use (the region
    totals read 0 until the rollup recorded its own). Here every merge runs at the worst moment: after the
    next rollup has written everything and before it records its version."""
    from sinks.rollups import Rollup

    records, _ = month
    run(TrendPipeline(client), records[:40_000])
    seen = _what_readers_see(client)
    assert seen["measures_by_region"] and seen["headline"]
    during: list[dict] = []

    class MergedBeforeRecording(Rollup):
        def record(self, version, slots, partial=False):
            for table in ROLLED_UP_TABLES:
                client.command(f"OPTIMIZE TABLE {table} FINAL")
            during.append(_what_readers_see(client))
            super().record(version, slots, partial)

    days = {r[0] for r in client.query("SELECT DISTINCT day FROM events").result_rows}
    for _ in range(3):  # each slot written over at least once
        MergedBeforeRecording(client).run(days)
        assert during.pop() == seen
    assert _what_readers_see(client) == seen  # the same events: the new versions read the same


def test_vacancies_stored_before_their_states_were_kept_get_them_at_start_up(client, month):
    records, truth = month
    run(TrendPipeline(client), records, batch=20_000, rollup_every=100)
    client.command("TRUNCATE TABLE vacancy_states")  # a store from before migration 0007
    restarted = TrendPipeline(client)
    restarted.recover()
    # As after a crash: the newest day is rebuilt at start-up (here with every day, all stored moments ago),
    # and its stocks need the state of every vacancy posted before it.
    restarted.dirty = {max(restarted.rollup_job.event_days_range())}
    assert restarted.rollup() is not None
    assert compare(client, truth)["mismatches"] == {}
    assert client.query("SELECT count() FROM vacancy_states FINAL").result_rows[0][0] == client.query(
        "SELECT uniqExact(vacancy_id) FROM vacancy_lifecycle").result_rows[0][0]


def _submission(event_id: str, vacancy_id: str, occurred: str, openings: int) -> bytes:
    import orjson

    return orjson.dumps({
        "event_id": event_id, "event_type": "vacancy.submitted", "schema_version": 1,
        "occurred_at": f"2026-03-02T{occurred}:00.000+09:00", "source": "worknet",
        "payload": {"vacancy_id": vacancy_id, "employer_id": "E0123456789abcdef", "region": "48", "industry": "C",
                    "occupation": "74", "size_band": "300+", "title": "선박 용접공 경력 채용", "openings": openings,
                    "employment_type": "permanent", "wage_type": "monthly", "wage_amount": 3_200_000,
                    "work_hours_per_week": 40, "deadline": "2026-04-01"}})


def test_a_late_original_turns_its_posted_copy_into_a_duplicate_in_the_stock_too(client):
    from datetime import UTC, datetime

    def at(hhmm: str) -> int:
        return int(datetime.fromisoformat(f"2026-03-02T{hhmm}:00+09:00").astimezone(UTC).timestamp() * 1000)

    def stock(measure: str) -> int:
        return client.query(f"SELECT sum(value) FROM measures_daily WHERE day = '2026-03-02' "
                            f"AND measure = '{measure}'").result_rows[0][0]

    pipeline = TrendPipeline(client)
    copy = _submission("b" * 32, "V" + "b" * 16, "10:00", openings=3)
    pipeline.submit([Record("lmis.vacancies", 0, 0, at("10:00"), b"Vb", copy)])
    assert pipeline.checkpoint() is not None and pipeline.rollup() is not None
    assert (stock("stock.open_vacancies"), stock("stock.open_openings")) == (1, 3)
    # The original, posted an hour earlier on the same portal, arrives late: the copy becomes a duplicate,
    # although no event of the copy's came in (only the original's vacancy is new to this rollup).
    original = _submission("a" * 32, "V" + "a" * 16, "09:00", openings=2)
    pipeline.submit([Record("lmis.vacancies", 0, 1, at("11:00"), b"Va", original)])
    assert pipeline.checkpoint() is not None
    assert pipeline.touched_vacancies == {"V" + "a" * 16}
    assert pipeline.rollup() is not None
    assert (stock("vacancy.posted"), stock("vacancy.rejected:duplicate_posting")) == (1, 1)
    assert (stock("stock.open_vacancies"), stock("stock.open_openings")) == (1, 2)


def test_a_late_original_turns_a_counted_copy_in_another_cell_into_a_duplicate(client):
    """The copy (another industry: a cell of its own) has no new event when the original comes in; its cell's
    counts change all the same (the posting moves to the duplicates), in the days' and the hours' measures."""
    from datetime import UTC, datetime

    def at(hhmm: str) -> int:
        return int(datetime.fromisoformat(f"2026-03-02T{hhmm}:00+09:00").astimezone(UTC).timestamp() * 1000)

    def count(measure: str, industry: str) -> int:
        return client.query(f"SELECT sum(value) FROM measures_daily WHERE day = '2026-03-02' AND measure = "
                            f"'{measure}' AND industry = '{industry}'").result_rows[0][0]

    pipeline = TrendPipeline(client)
    copy = _submission("d" * 32, "V" + "d" * 16, "10:00", openings=3).replace(b'"industry":"C"', b'"industry":"F"')
    pipeline.submit([Record("lmis.vacancies", 0, 0, at("10:00"), b"Vd", copy)])
    assert pipeline.checkpoint() is not None and pipeline.rollup() is not None
    assert (count("vacancy.posted", "F"), count("openings.posted", "F")) == (1, 3)
    original = _submission("c" * 32, "V" + "c" * 16, "09:00", openings=2)
    pipeline.submit([Record("lmis.vacancies", 0, 1, at("11:00"), b"Vc", original)])
    assert pipeline.checkpoint() is not None and pipeline.rollup() is not None
    assert (count("vacancy.posted", "F"), count("openings.posted", "F"),
            count("vacancy.rejected:duplicate_posting", "F")) == (0, 0, 1)
    assert (count("vacancy.posted", "C"), count("openings.posted", "C")) == (1, 2)
    hourly = client.query("SELECT measure, industry, sum(value) FROM measures_hourly WHERE day = '2026-03-02' "
                          "GROUP BY measure, industry ORDER BY measure, industry").result_rows
    assert hourly == [("openings.posted", "C", 2), ("vacancy.posted", "C", 1),
                      ("vacancy.rejected:duplicate_posting", "F", 1), ("vacancy.submitted", "C", 1),
                      ("vacancy.submitted", "F", 1)]


def test_the_duplicate_window_runs_from_the_posted_submission_and_a_late_one_moves_every_later_window(client):
    """A job re-submitted every 6 days (window 7) is posted every second time, not merged forever; a late
    submission before the first moves each later decision, beyond the window after it."""
    from datetime import UTC, date, datetime, timedelta

    import orjson

    def submission(n: int, day: date) -> Record:
        at = datetime.fromisoformat(f"{day.isoformat()}T10:00:00+09:00")
        raw = orjson.dumps({
            "event_id": f"{n:032x}", "event_type": "vacancy.submitted", "schema_version": 1,
            "occurred_at": at.isoformat(timespec="milliseconds"), "source": "worknet",
            "payload": {"vacancy_id": f"V{n:016x}", "employer_id": "E0123456789abcdef", "region": "48",
                        "industry": "C", "occupation": "74", "size_band": "300+", "title": "선박 용접공 경력 채용",
                        "openings": 1, "employment_type": "permanent", "wage_type": "monthly",
                        "wage_amount": 3_200_000, "work_hours_per_week": 40, "deadline": "2026-05-01"}})
        return Record("lmis.vacancies", 0, n, int(at.astimezone(UTC).timestamp() * 1000) + 3_600_000, b"k", raw)

    def decisions() -> list[str]:
        rows = client.query("SELECT day, argMax(decision, version) FROM vacancy_reviews GROUP BY day "
                            "ORDER BY day").result_rows
        return [decision for _, decision in rows]

    pipeline = TrendPipeline(client)
    first = date(2026, 3, 10)
    for n in range(4):  # days 0, 6, 12, 18
        pipeline.submit([submission(n, first + timedelta(days=6 * n))])
        assert pipeline.checkpoint() is not None and pipeline.rollup() is not None
    assert decisions() == ["posted", "duplicate_posting", "posted", "duplicate_posting"]
    # Two days before the first: it is posted, and every later window moves.
    late = submission(9, first - timedelta(days=2))  # read after the others (its lateness is judged by its
    pipeline.submit([late])                           # own emission time, an hour after it happened)
    assert pipeline.checkpoint() is not None and pipeline.rollup() is not None
    assert decisions() == ["posted", "duplicate_posting", "posted", "duplicate_posting", "posted"]
    posted = client.query("SELECT sum(value) FROM measures_daily WHERE measure = 'vacancy.posted'").result_rows
    assert posted == [(3,)]


def test_a_re_submission_after_the_vacancy_closed_is_a_new_vacancy(client):
    """Within the window, a re-submission is merged while the posted vacancy is open; once it is closed (its
    close event may come late), the re-submission is a vacancy of its own, counted as posted."""
    from datetime import UTC, datetime

    import orjson

    def at(day: int, hhmm: str) -> int:
        return int(datetime.fromisoformat(f"2026-03-0{day}T{hhmm}:00+09:00").astimezone(UTC).timestamp() * 1000)

    def submission(n: int, day: int) -> Record:
        raw = _submission(f"{n:032x}", f"V{n:016x}", "10:00", openings=1).replace(
            b"2026-03-02T", f"2026-03-0{day}T".encode())
        return Record("lmis.vacancies", 0, n, at(day, "10:00") + 60_000, b"k", raw)

    def decisions() -> list[str]:
        return [d for _, d in client.query("SELECT day, argMax(decision, version) FROM vacancy_reviews GROUP BY day "
                                           "ORDER BY day").result_rows]

    pipeline = TrendPipeline(client)
    pipeline.submit([submission(1, 2), submission(2, 4)])
    assert pipeline.checkpoint() is not None and pipeline.rollup() is not None
    assert decisions() == ["posted", "duplicate_posting"]
    closed = orjson.dumps({
        "event_id": "c" * 32, "event_type": "vacancy.closed", "schema_version": 1,
        "occurred_at": "2026-03-03T10:00:00.000+09:00", "source": "worknet",
        "payload": {"vacancy_id": f"V{1:016x}", "employer_id": "E0123456789abcdef", "region": "48", "industry": "C",
                    "occupation": "74", "size_band": "300+", "reason": "filled", "openings_filled": 1}})
    pipeline.submit([Record("lmis.vacancies", 0, 3, at(4, "12:00"), b"k", closed)])  # a day late
    assert pipeline.checkpoint() is not None and pipeline.rollup() is not None
    assert decisions() == ["posted", "posted"]
    posted = client.query("SELECT sum(value) FROM measures_daily WHERE measure = 'vacancy.posted'").result_rows
    assert posted == [(2,)]


def test_bad_input_never_stops_the_pipeline(client):
    good = b'{"event_id":"%s","event_type":"seeker.registered","schema_version":1,' \
           b'"occurred_at":"2026-03-02T10:00:00+09:00","source":"worknet","payload":{"seeker_id":"S0123456789abcdef",' \
           b'"region":"11","occupation":"31","age_band":"30-39","sex":"F","education":"university",' \
           b'"experience_years":3}}'
    ts = 1772413200000  # 2026-03-02 10:00 KST
    bad = [b"", b"\xff\xfe\x00garbage", b"{", b"[]", b"null", b'{"event_type": 5}', good.replace(b"31", b"3")]
    records = []
    for i in range(200):
        records.append(Record("lmis.seekers", 0, len(records), ts, b"k", good % uuid.uuid4().hex.encode()))
        records.append(Record("lmis.seekers", 0, len(records), ts, b"k", bad[i % len(bad)]))
    pipeline = TrendPipeline(client)
    pipeline.submit(records)
    assert pipeline.checkpoint() is not None
    pipeline.rollup()
    assert sum(dead_letter_counts(client).values()) == 200
    n = client.query("SELECT sum(value) FROM daily_measures WHERE measure = 'seeker.registered'").result_rows[0][0]
    assert n == 200


def test_offsets_are_reported_only_after_the_write_is_acknowledged(client):
    from sinks.sink import Backoff

    class Flaky:
        def __init__(self):
            self.fail = 3

        def insert(self, *args, **kwargs):
            if self.fail:
                self.fail -= 1
                raise ConnectionError("ClickHouse is down")
            return client.insert(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(client, name)

    flaky = Flaky()
    pipeline = TrendPipeline(flaky)
    for adapter, _ in pipeline.sink.adapters.values():
        adapter.client = flaky
    pipeline.sink.backoff = Backoff(first=0.01, cap=0.02)
    records = list(itertools.islice(
        (Record("lmis.seekers", 0, i, 1772413200000, b"k", b"{}") for i in itertools.count()), 10))
    pipeline.submit(records)
    stops = iter([False, True])
    assert pipeline.checkpoint(lambda: next(stops)) is None, "gave up: nothing may be committed"
    flaky.fail = 2
    cp = pipeline.checkpoint()
    assert cp is not None and cp.offsets == {("lmis.seekers", 0): 10}
    assert dead_letter_counts(client) == {"unknown_event_type": 10}


def test_a_copy_whose_original_was_lost_in_an_outage_is_posted(client):
    """Found by the pipeline benchmark at scale 0.5: the truth must follow what actually arrived."""
    from datetime import date

    from simulator.engine import SimConfig, Simulator

    sim = Simulator(SimConfig(seed=1, start=date(2026, 3, 2), days=3, scale=0.2, scenarios=("source_outage",),
                              warmup_days=20))
    records = as_records(list(sim.messages()))
    run(TrendPipeline(client), records, batch=20_000)
    assert compare(client, sim.truth.to_dict())["mismatches"] == {}


def test_freshness_histogram_quantiles_are_exact_to_its_step():
    from streams.pipeline import FreshnessHistogram

    h = FreshnessHistogram()
    assert h.quantile(0.99) is None
    samples = [i / 1000 for i in range(1, 2001)]  # 1 ms .. 2 s, uniform
    for s in samples:
        h.add(s)
    h.add(500.0)  # beyond two minutes: counted in the last bucket
    assert h.n == 2001
    for q in (0.5, 0.9, 0.99):
        exact = sorted(samples + [500.0])[math.ceil(q * 2001) - 1]
        assert exact <= h.quantile(q) <= exact + FreshnessHistogram.STEP_S + 1e-9, (q, exact, h.quantile(q))
    assert h.quantile(1.0) == round((FreshnessHistogram.BUCKETS + 1) * FreshnessHistogram.STEP_S, 2)


def test_freshness_is_weighted_by_the_events_of_each_batch():
    """The pipeline records (seconds, events) per batch: quantiles over them equal those over every event."""
    from streams.pipeline import FreshnessHistogram, weighted_quantile

    batches = [(0.3, 5000), (1.7, 40), (0.9, 700), (2.5, 3)]
    every = sorted(v for v, n in batches for _ in range(n))
    for q in (0.5, 0.99, 0.999, 1.0):
        assert weighted_quantile(batches, q) == every[math.ceil(q * len(every)) - 1], q
    assert weighted_quantile([], 0.99) == 0.0
    h = FreshnessHistogram()
    for v, n in batches:
        h.add(v, n)
    assert h.n == len(every) and h.quantile(0.999) == 1.71  # the 10 ms bucket above 1.7 s


def test_the_sink_is_due_by_size_or_by_the_age_of_its_oldest_message():
    from sinks.sink import BatchingSink

    now = [100.0]
    sink = BatchingSink({}, max_rows=3, max_seconds=1.0, clock=lambda: now[0])
    assert sink.age() == 0.0 and not sink.due()  # nothing buffered: never due, however long
    now[0] += 5
    sink.consumed(("t", 0), 7)
    assert sink.age() == 0.0 and not sink.due()
    now[0] += 0.25
    assert sink.age() == 0.25 and not sink.due()  # the worker's live checkpoint looks at the age
    now[0] += 0.75
    assert sink.due()
    assert sink.flush() == {("t", 0): 8}
    assert sink.age() == 0.0 and not sink.due()


def test_each_days_figures_are_published_once_at_its_end_and_final_after_the_lateness(client, month):
    from lmis.worker import publication_jobs
    from sinks.published import publish_day, revisions
    from sinks.schedule_log import ClickHouseRunLog
    from streams.schedule import Scheduler, from_ms

    records, _ = month
    pipeline = TrendPipeline(client)
    lateness = Policy().allowed_lateness
    jobs = publication_jobs(client, lateness)
    log = ClickHouseRunLog(client)
    ran = []
    for i, start in enumerate(range(0, len(records), 5000)):
        batch = records[start:start + 5000]
        pipeline.submit(batch)
        assert pipeline.checkpoint() is not None
        pipeline.rollup()
        # The clock: the newest emission time rolled up (the month's messages come in emission order). A
        # scheduler made anew each time reads its place from ClickHouse, as after a restart.
        ran += Scheduler(jobs, log).run_due(from_ms(max(r.timestamp for r in batch)))
        if i == 3:  # a run repeated after a crash before it was recorded adds nothing
            first = next(r for r in ran if r.job == "published.first")
            day = jobs[0].schedule.day_of(first.instant)
            publish_day(client, day, "first", first.instant, first.instant,
                        f"published.first:{int(first.instant.timestamp() * 1000)}")
    assert all(r.error is None for r in ran)
    first_days = [jobs[0].schedule.day_of(r.instant) for r in ran if r.job == "published.first"]
    final_days = [jobs[1].schedule.day_of(r.instant) for r in ran if r.job == "published.final"]
    for days in (first_days, final_days):  # each day once, in order, none left out
        assert days == [days[0] + timedelta(days=k) for k in range(len(days))] and len(days) >= 25
    # Both were armed with the first clock: the final figures start with the day whose lateness ends next.
    assert lateness == timedelta(days=3)
    assert final_days[0] == first_days[0] - lateness and final_days[-1] == first_days[-1] - lateness
    copies = client.query("SELECT day, stage, measure, region, count() FROM published_measures "
                          "GROUP BY day, stage, measure, region HAVING count() > 1").result_rows
    assert copies == []
    rows = revisions(client, min(first_days), max(first_days))
    national = [r for r in rows if r["region"] == ""]
    # Final figures are the figures: nothing accepted after the lateness changed them.
    assert all(r["final"] == r["now"] for r in national if r["final"] is not None)
    assert sum(r["final"] is not None for r in national) > 300
    # Late events revised some days' first figures (the month has late events within the lateness).
    revised = [r for r in national if r["final"] is not None and r["first"] != r["final"]]
    assert len(revised) >= 5, revised
