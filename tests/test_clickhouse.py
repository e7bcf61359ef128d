"""ClickHouse through one clickhouse-connect client, on the embedded engine (chdb://)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime

from sinks.clickhouse import migrate
from tests.conftest import ROOT, run_lmis


def test_migrations_apply_twice_without_error(tmp_path):
    env = {"LMIS_DATA_DIR": str(tmp_path)}
    first = run_lmis("migrate", env=env)
    assert "applied migrations [1" in first.stderr
    second = run_lmis("migrate", env=env)
    assert "up to date" in second.stderr


def python(code: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=env)


def test_times_are_stored_in_utc_and_come_back_tz_aware(tmp_path):
    res = python(f"""
        from datetime import datetime
        from zoneinfo import ZoneInfo
        from sinks.clickhouse import as_utc, connect, migrate
        c = connect("chdb://{tmp_path}/ch")
        migrate(c)
        seoul = datetime(2026, 3, 2, 0, 30, tzinfo=ZoneInfo("Asia/Seoul"))
        c.insert("events", [["0" * 32, "seeker.registered", 1, seoul, "worknet", "S1", "11", "", "31", "",
                             "15-29", "F", "{{}}", "lmis.seekers", 0, 7]],
                 column_names=["event_id", "event_type", "schema_version", "occurred_at", "source", "entity_id",
                               "region", "industry", "occupation", "size_band", "age_band", "sex", "message",
                               "topic", "partition", "offset"])
        ts, day, shown = c.query(
            "SELECT occurred_at, day, toTimeZone(occurred_at, 'Asia/Seoul') FROM events").result_rows[0]
        ts = as_utc(ts)
        assert ts.utcoffset().total_seconds() == 0 and ts == seoul, (ts, seoul)
        assert shown.tzinfo is not None and shown.hour == 0 and shown.minute == 30, shown  # presented in Seoul
        assert str(day) == "2026-03-02", day  # the Asia/Seoul day, though it is still 1 March in UTC
        print("ok")
    """)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_a_second_process_gets_a_clear_error(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from sinks.clickhouse import connect
        client = connect("chdb://{tmp_path}/ch")
        client.query("SELECT 1")
        print("open", flush=True)
        time.sleep(60)
    """)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        res = run_lmis("migrate", env={"LMIS_CLICKHOUSE_DSN": f"chdb://{tmp_path}/ch"}, check=False)
        assert res.returncode == 1
        assert "open in another process" in res.stderr
    finally:
        holder.kill()
        holder.wait()


def test_a_store_from_before_the_newest_cell_readers_reads_the_same_after_migration(engine_dsn):
    """Before migration 0009 a day's cells were the rows of its newest recorded version: a cell an older
    version had and the newest did not (a posting turned duplicate) was absent. It must not come back as
    that cell's newest row."""
    import uuid

    from sinks.clickhouse import MIGRATIONS_TABLE, connect, migrations

    c = connect(engine_dsn, database=f"t_{uuid.uuid4().hex[:12]}")
    c.command(f"CREATE TABLE {MIGRATIONS_TABLE} (version UInt32, name String, applied_at DateTime64(3, 'UTC') "
              "DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version")
    for m in migrations():
        if m.version < 9:
            for statement in m.statements():
                c.command(statement)
            c.insert(MIGRATIONS_TABLE, [[m.version, m.name]], column_names=["version", "name"])
    cols = ["day", "measure", "region", "industry", "occupation", "value", "version", "slot"]
    day = date(2026, 3, 2)
    c.insert("daily_measures", [[day, "vacancy.posted", "11", "C", "A", 5, 1, 0],
                                [day, "vacancy.posted", "26", "C", "A", 3, 1, 0],
                                [day, "vacancy.posted", "11", "C", "A", 6, 2, 1]], column_names=cols)
    hour = datetime(2026, 3, 2, 1, tzinfo=UTC)
    c.insert("hourly_measures", [[hour, *row[1:]] for row in
                                 ([day, "vacancy.posted", "26", "C", "A", 3, 1, 0],
                                  [day, "vacancy.posted", "11", "C", "A", 6, 2, 1])],
             column_names=["hour", *cols[1:]])
    c.insert("rollup_log", [[day, 1, 0], [day, 2, 1]], column_names=["day", "version", "slot"])
    assert migrate(c) == [m.version for m in migrations() if m.version >= 9]
    assert c.query("SELECT region, value FROM measures_daily").result_rows == [("11", 6)]
    assert c.query("SELECT region, value FROM measures_hourly").result_rows == [("11", 6)]


def environment_without_allocator_conf() -> dict[str, str]:
    """This process's environment less the embedded allocator's settings (``sinks.clickhouse.connect`` set
    them here when this process loaded its engine)."""
    return {k: v for k, v in os.environ.items() if k != "JE_MALLOC_CONF"}


def test_the_embedded_engines_freed_memory_is_handed_back_to_the_system(tmp_path):
    # In a process of its own whose allocator never hands freed pages back by itself (this one's engine is
    # loaded already, with the product's 250 ms): what is handed back is the purge's doing.
    env = environment_without_allocator_conf() | {"JE_MALLOC_CONF": "dirty_decay_ms:-1"}
    res = python(f"""
        from sinks.clickhouse import connect, is_embedded, release_memory

        def resident_anon_kb() -> int:
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))

        c = connect("chdb://{tmp_path}")
        assert is_embedded(c)
        # A large aggregation: its hash table is freed when the query ends, and the allocator keeps the pages.
        c.query("SELECT count() FROM (SELECT number % 8000000 AS k, count() FROM numbers(16000000) GROUP BY k)")
        kept = resident_anon_kb()
        release_memory(c)
        print(kept - resident_anon_kb())
    """, env=env)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.split()[-1]) > 50_000, "less than 50 MB handed back"


def test_the_embedded_engines_allocator_hands_freed_pages_back_after_250_ms_unless_told_otherwise(tmp_path):
    code = f"""
        from sinks.clickhouse import connect
        c = connect("chdb://{tmp_path}")
        c.query("SELECT count() FROM (SELECT number % 1000000 AS k, count() FROM numbers(2000000) GROUP BY k)")
        stats = c.query("SELECT * FROM system.jemalloc_stats").result_rows[0][0]
        print([line.strip() for line in stats.splitlines() if line.strip().startswith("opt.dirty_decay_ms")])
    """
    env = environment_without_allocator_conf()
    res = python(code, env=env)
    assert res.returncode == 0, res.stderr
    assert "opt.dirty_decay_ms: 250 (arenas.dirty_decay_ms: 250)" in res.stdout
    res = python(code, env=env | {"JE_MALLOC_CONF": "dirty_decay_ms:1000"})
    assert res.returncode == 0, res.stderr
    assert "opt.dirty_decay_ms: 1000 (arenas.dirty_decay_ms: 1000)" in res.stdout
