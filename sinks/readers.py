"""Reading the measures back: each cell as of its day's newest complete rollup."""

from __future__ import annotations

from datetime import date

from sinks.rollups import latest_versions, recorded_measures

DIMENSIONS = ("region", "industry", "occupation", "age_band", "sex", "size_band")


def _d(value: date) -> str:
    return f"toDate('{value.isoformat()}')"


def measure_rows(client, measures: list[str], lo: date, hi: date, by: tuple[str, ...] = ()) -> list[tuple]:
    """(day, *by, measure, value) for each day in [lo, hi] with data, summed over the other dimensions."""
    for dim in by:
        if dim not in DIMENSIONS:
            raise ValueError(f"unknown breakdown {dim!r}; use {', '.join(DIMENSIONS)}")
    dims = "".join(f", {d}" for d in by)
    ms = ", ".join("'" + m.replace("'", "") + "'" for m in measures)
    if set(by) <= {"region"}:
        # National and regional: the region totals of each day's recorded rollup (the board's product, the
        # cells summed per region) -- a row per day and region instead of every cell's newest row (measured
        # over 34 days of the bench's store: 0.51 s from the cells).
        source = (f"daily_region_measures WHERE measure IN ({ms}) AND day BETWEEN {_d(lo)} AND {_d(hi)} "
                  f"AND (day, version) IN ({latest_versions(_d(lo), _d(hi))})")
    else:
        source = f"({recorded_measures('daily_measures', 'day', f'measure IN ({ms})', _d(lo), _d(hi))})"
    return client.query(f"""
        SELECT day{dims}, measure, sum(value)
        FROM {source}
        GROUP BY day{dims}, measure
        ORDER BY day{dims}, measure
    """).result_rows


def measure_cells(client, measure: str, lo: date, hi: date) -> dict[tuple[str, str], int]:
    """{(day, 'region|industry|occupation'): value} -- the simulator truth's layout ('-': no industry)."""
    rows = measure_rows(client, [measure], lo, hi, ("region", "industry", "occupation"))
    return {(d.isoformat(), f"{r}|{i or '-'}|{o}"): int(v) for d, r, i, o, _, v in rows if v}


def dead_letter_counts(client) -> dict[str, int]:
    rows = client.query("SELECT reason, uniqExact(topic, partition, offset) FROM dead_letters GROUP BY reason")
    return {r: int(n) for r, n in rows.result_rows}


def duplicate_count(client) -> int:
    """Messages that repeated an already stored event_id (a replayed offset is not a duplicate). Day by day, in
    the table's order: a re-sent event carries its occurred_at, so its copies share a day (the rollups count it
    once a day too), and the engine holds a day's ids at a time, not the whole history's. Measured on the
    bench's store (540,000 events): 80-110 MB of the worker's memory, against 215-220 for all at once."""
    return int(client.query(
        "SELECT sum(n) FROM (SELECT uniqExact(topic, partition, offset) - uniqExact(event_id) AS n FROM events "
        "GROUP BY day) SETTINGS optimize_aggregation_in_order = 1").result_rows[0][0])


def engine_memory_bytes(client) -> int:
    """What the ClickHouse engine accounts for (its ``MemoryTracking``: queries, inserts, merges, caches):
    the worker's embedded engine with ``chdb://``, the server's with ``http(s)://``."""
    return int(client.query("SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'").result_rows[0][0])


def _first_day(client) -> date | None:
    rows = client.query("SELECT min(day), count() FROM rollup_log").result_rows
    return rows[0][0] if rows and rows[0][1] else None


def time_to_fill(client, lo: date, hi: date, by: tuple[str, ...]) -> dict[tuple, float]:
    """Median days from posting to filling, per closing day and group (vacancies carry no age or sex)."""
    from sinks.rollups import open_vacancies_sql

    if any(d in ("age_band", "sex") for d in by):
        return {}
    dims = "".join(f", {d}" for d in by)
    rows = client.query(f"""
        SELECT toDate(closed_at, 'Asia/Seoul') AS day{dims},
               median(dateDiff('second', submitted_at, closed_at) / 86400.0)
        FROM ({open_vacancies_sql()})
        WHERE close_reason = 'filled' AND closed_at IS NOT NULL AND day BETWEEN {_d(lo)} AND {_d(hi)}
        GROUP BY day{dims}
    """).result_rows
    return {tuple(r[:-1]): float(r[-1]) for r in rows}


TREND_SERIES = ("ui_initial_claims", "openings_posted", "new_job_seekers", "hires", "insured_acquisitions",
                "insured_losses")


def indicator_table(client, lo: date, hi: date, by: tuple[str, ...] = ()) -> list[dict]:
    """Counts and indicators per day in [lo, hi] and per group of ``by`` (see ``sinks.indicators``)."""
    from datetime import timedelta

    from sinks import indicators as ind

    if lo > hi:
        raise ValueError(f"--from {lo} is after --to {hi}")
    lookback = max(364 + 6, ind.ACTIVE_SEEKER_DAYS - 1)
    fetch_lo = lo - timedelta(days=lookback)
    first = _first_day(client)
    names = {v: k for k, v in ind.MEASURES.items()}
    data: dict[tuple, dict[date, dict[str, int]]] = {}
    for row in measure_rows(client, list(ind.MEASURES.values()), fetch_lo, hi, by):
        day, group, measure, value = row[0], tuple(row[1:-2]), row[-2], row[-1]
        data.setdefault(group, {}).setdefault(day, {})[names[measure]] = int(value)
    fills = time_to_fill(client, lo, hi, by)
    days = [fetch_lo + timedelta(days=i) for i in range((hi - fetch_lo).days + 1)]
    out: list[dict] = []
    for group in sorted(data):
        by_day = data[group]

        def series(name: str, by_day=by_day) -> list[int | None]:
            return [None if first is None or d < first else by_day.get(d, {}).get(name, 0) for d in days]

        columns = {name: series(name) for name in ind.MEASURES}
        derived: dict[str, list] = {}
        for name in TREND_SERIES:
            ma = ind.moving_average(columns[name])
            derived[f"{name}_ma7"] = ma
            derived[f"{name}_ma7_wow"] = ind.week_on_week(ma)
            derived[f"{name}_ma7_yoy"] = ind.year_on_year(ma)
        for i, d in enumerate(days):
            if d < lo:
                continue
            row = {"day": d.isoformat(), **dict(zip(by, group, strict=True))}
            row.update({name: columns[name][i] for name in ind.MEASURES})
            for spec in ind.INDICATORS:
                row[spec.name] = spec.function(*(row[k] for k in spec.inputs))
            row["median_time_to_fill_days"] = fills.get((d, *group))
            row.update({k: v[i] for k, v in derived.items()})
            out.append(row)
    return out
