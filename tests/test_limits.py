"""No request can flood the worker: on a store of national-scale days, the heaviest requests of the API and of
`lmis indicators` are refused with how to narrow them, or answered within the row budget, and the process's
memory stays bounded."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from fastapi.testclient import TestClient

from dashboards.api import create_api
from lmis.bench import national_year_measures
from sinks.clickhouse import connect, limit_reads, migrate
from sinks.indicators import MEASURES
from sinks.readers import DIMENSIONS, TooLarge, indicator_table
from tests.conftest import run_lmis

MAX_ROWS = 50_000
ALL = ",".join(("day", *DIMENSIONS))


def rss_mb(field: str = "VmRSS") -> float:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(field)


@pytest.fixture(scope="module")
def national(engine_dsn):
    """60 national-scale days (2025-01-01 ..) in region × industry × occupation cells, as the board's bench
    loads them; the API's client bounded as the worker bounds it."""
    database = f"limits_{uuid.uuid4().hex[:8]}"
    client = connect(engine_dsn, database=database)
    migrate(client)
    national_year_measures(client, days=60, log=lambda *_: None)
    return limit_reads(connect(engine_dsn, database=database), max_memory_mb=512, max_seconds=60)


def test_the_heaviest_requests_are_refused_with_how_to_narrow_them_and_memory_stays_bounded(national):
    api = TestClient(create_api(lambda: national, max_rows=MAX_ROWS))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak resident memory counts from here (Linux)
    before = rss_mb()
    # A week by every breakdown fits the budget (its non-empty cells only) ...
    week = api.get("/api/indicators", params={"from": "2025-01-01", "to": "2025-01-07", "by": ALL})
    assert week.status_code == 200 and 0 < len(week.json()["rows"]) <= MAX_ROWS
    # ... a month or two years do not.
    for lo, hi in (("2025-01-01", "2025-01-30"), ("2024-01-01", "2026-02-28")):
        res = api.get("/api/indicators", params={"from": lo, "to": hi, "by": ALL})
        assert res.status_code == 413, (lo, hi, res.status_code, res.text[:300])
        detail = res.json()["detail"]
        assert f"{MAX_ROWS:,} rows" in detail and "fewer days or fewer breakdowns" in detail, detail
    # Within the budget: a month by region and industry, every row a non-empty cell.
    res = api.get("/api/indicators", params={"from": "2025-01-01", "to": "2025-01-30", "by": "day,region,industry"})
    assert res.status_code == 200, res.text[:300]
    rows = res.json()["rows"]
    assert 0 < len(rows) <= MAX_ROWS and len(rows) <= 30 * 17 * 22  # 21 KSIC sections and none (seekers)
    assert all(any(r[k] is None or r[k] for k in MEASURES) for r in rows)  # a count, or one suppressed
    # A month's national series has its trends from the days before.
    national_rows = api.get("/api/indicators", params={"from": "2025-01-15", "to": "2025-02-28"}).json()["rows"]
    assert len(national_rows) == 45
    assert national_rows[-1]["ui_initial_claims_ma7"] is not None
    assert national_rows[-1]["ui_initial_claims_ma7_wow"] is not None
    assert national_rows[-1]["ui_initial_claims_ma7_yoy"] is None  # no year before in the store
    # What these requests added to the process (whatever earlier tests left in it): bounded by the engine's
    # per-query limit, not by what was asked.
    peak = rss_mb("VmHWM")
    assert peak - before < 600, (before, peak)


def test_the_reader_refuses_before_it_builds_rows(national):
    with pytest.raises(TooLarge, match="more than 1,000 rows"):
        indicator_table(national, date(2025, 1, 1), date(2025, 1, 7), DIMENSIONS, max_rows=1_000)


def test_a_query_beyond_its_engine_limits_is_a_413_not_a_crash(national, engine_dsn):
    tight = limit_reads(connect(engine_dsn, database=national.database), max_memory_mb=64, max_seconds=60)
    api = TestClient(create_api(lambda: tight, max_rows=10**9))
    res = api.get("/api/indicators", params={"from": "2025-01-01", "to": "2025-02-28", "by": ALL})
    assert res.status_code == 413, (res.status_code, res.text[:300])


@pytest.mark.parametrize("args", [("--from", "0001-01-01", "--to", "9999-12-31"),
                                  ("--from", "2026-03-09", "--to", "2026-03-02"),
                                  ("--from", "2020-01-01", "--to", "2026-01-01")])
def test_lmis_indicators_validates_dates_as_the_api_does(args, tmp_path):
    env = {"LMIS_DATA_DIR": str(tmp_path / "data"), "LMIS_WEB_PORT": "1"}
    res = run_lmis("indicators", *args, env=env, check=False, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-800:]
    assert any(w in res.stderr for w in ("outside 2000-2100", "after", "at most 800 days")), res.stderr[-800:]


def test_lmis_indicators_on_an_empty_store_says_so(tmp_path):
    env = {"LMIS_DATA_DIR": str(tmp_path / "data"), "LMIS_WEB_PORT": "1"}
    res = run_lmis("indicators", "--from", "2026-03-02", "--to", "2026-03-03", env=env, check=False, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-800:]
    assert "holds no LMIS data yet" in res.stdout + res.stderr
    assert oct((tmp_path / "data" / "clickhouse").stat().st_mode & 0o777) == "0o700"  # the store is private


def test_a_groups_trend_reads_its_history_even_when_the_range_has_only_its_stock(client):
    """The 7-day average of a day reads the six days before it, also for a group whose days asked hold only a
    stock (no claims then): its history is read for every group with any data in the range."""
    import pandas as pd

    from sinks.rollups import Rollup

    version = 1
    rows = [(date(2025, 1, d), "ui.initial_claim", 7) for d in range(1, 8)]
    rows += [(date(2025, 1, d), "stock.open_vacancies", 5) for d in range(8, 11)]
    client.insert_df("daily_measures", pd.DataFrame({
        "day": [r[0] for r in rows], "measure": [r[1] for r in rows], "region": "11", "industry": "C",
        "occupation": "74", "age_band": "", "sex": "", "size_band": "", "value": [r[2] for r in rows],
        "version": version}))
    days = {date(2025, 1, d) for d in range(1, 11)}
    slots = dict.fromkeys(days, 0)
    Rollup(client).board_products(days, version, slots)
    Rollup(client).record(version, slots)
    out = indicator_table(client, date(2025, 1, 8), date(2025, 1, 10), ("region", "industry"), max_rows=100)
    assert [(r["day"], r["ui_initial_claims"], r["open_vacancies"]) for r in out] == [
        ("2025-01-08", 0, 5), ("2025-01-09", 0, 5), ("2025-01-10", 0, 5)]
    assert [r["ui_initial_claims_ma7"] for r in out] == [6.0, 5.0, 4.0]
