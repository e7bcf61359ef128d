"""Reading the measures back: each cell as of its day's newest complete rollup."""

from __future__ import annotations

from datetime import date, timedelta

from sinks.rollups import latest_versions, recorded_measures

DIMENSIONS = ("region", "industry", "occupation", "age_band", "sex", "size_band")


def _d(value: date) -> str:
    return f"toDate('{value.isoformat()}')"


MAX_DAYS = 800


class RequestError(ValueError):
    """A request this reader does not serve as asked (bad range, or too large): the message says why and how
    to ask instead."""


class TooLarge(RequestError):
    pass


def check_range(lo: date, hi: date) -> None:
    """Days the readers serve: years 2000-2100, ``lo`` ≤ ``hi``, at most :data:`MAX_DAYS` days."""
    for d in (lo, hi):
        if not 2000 <= d.year <= 2100:
            raise RequestError(f"{d} is outside 2000-2100")
    if lo > hi:
        raise RequestError(f"`from` ({lo}) is after `to` ({hi})")
    if (hi - lo).days >= MAX_DAYS:
        raise RequestError(f"at most {MAX_DAYS} days per request")


def _measure_source(measures: list[str], lo: date, hi: date, by: tuple[str, ...]) -> str:
    """SQL: a subquery of (day, *DIMENSIONS, measure, value) rows of each day's newest complete rollup."""
    for dim in by:
        if dim not in DIMENSIONS:
            raise ValueError(f"unknown breakdown {dim!r}; use {', '.join(DIMENSIONS)}")
    ms = ", ".join("'" + m.replace("'", "") + "'" for m in measures)
    if set(by) <= {"region"}:
        # National and regional: the region totals of each day's recorded rollup (the board's product, the
        # cells summed per region) -- a row per day and region instead of every cell's newest row.
        return (f"(SELECT day, region, measure, value FROM daily_region_measures WHERE measure IN ({ms}) "
                f"AND day BETWEEN {_d(lo)} AND {_d(hi)} AND (day, version) IN ({latest_versions(_d(lo), _d(hi))}))")
    if tuple(by) == ("region", "industry"):
        # Region × industry: the board's per-industry product of each region (one row per day, region, industry
        # and measure, not every cell's): the detectors read 120 days of it daily (1.2 s → see benchmarks).
        return (f"(SELECT day, region, code AS industry, measure, value FROM daily_dimension_measures "
                f"WHERE dimension = 'industry|occupation' AND filter = '' AND region != '' AND measure IN ({ms}) "
                f"AND day BETWEEN {_d(lo)} AND {_d(hi)} AND (day, version) IN ({latest_versions(_d(lo), _d(hi))}))")
    return f"({recorded_measures('daily_measures', 'day', f'measure IN ({ms})', _d(lo), _d(hi))})"


def measure_rows(client, measures: list[str], lo: date, hi: date, by: tuple[str, ...] = ()) -> list[tuple]:
    """(day, *by, measure, value) for each day in [lo, hi] with data, summed over the other dimensions."""
    dims = "".join(f", {d}" for d in by)
    return client.query(f"""
        SELECT day{dims}, measure, sum(value)
        FROM {_measure_source(measures, lo, hi, by)}
        GROUP BY day{dims}, measure
        ORDER BY day{dims}, measure
    """).result_rows


def measure_matrix(client, measures: list[str], lo: date, hi: date, by: tuple[str, ...] = (),
                   max_rows: int | None = None, groups_in: tuple[date, date, list[str]] | None = None) -> list[tuple]:
    """(day, *by, value of each of ``measures``) for each day and group in [lo, hi] with data: the non-empty
    cells only, a row each. ``max_rows``: more fails the query (TOO_MANY_ROWS_OR_BYTES) before it is sent;
    ``groups_in`` (first day, last day, measures): only the groups with data of those measures then."""
    dims = "".join(f", {d}" for d in by)
    values = ", ".join("sumIf(value, measure = '" + m.replace("'", "") + "')" for m in measures)
    where = ""
    if groups_in is not None and by:
        g_lo, g_hi, g_measures = groups_in
        where = (f"WHERE ({', '.join(by)}) IN (SELECT {', '.join(by)} FROM "
                 f"{_measure_source(g_measures, g_lo, g_hi, by)} GROUP BY {', '.join(by)})")
    settings = {"max_result_rows": max_rows, "result_overflow_mode": "throw"} if max_rows else None
    return client.query(f"""
        SELECT day{dims}, {values}
        FROM {_measure_source(measures, lo, hi, by)}
        {where}
        GROUP BY day{dims}
        ORDER BY day{dims}
    """, settings=settings).result_rows


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


def first_day(client) -> date | None:
    rows = client.query("SELECT min(day), count() FROM rollup_log").result_rows
    return rows[0][0] if rows and rows[0][1] else None


def last_day(client) -> date | None:
    rows = client.query("SELECT max(day), count() FROM rollup_log").result_rows
    return rows[0][0] if rows and rows[0][1] else None


def first_whole_day(client, measures: list[str]) -> date | None:
    """The first day on which every one of ``measures`` counted something nationally: where a deployment's
    feeds are all flowing (a history load before it carries only some)."""
    lo, hi = "toDate('1970-01-02')", "toDate('2149-06-06')"
    listed = ", ".join(f"'{m}'" for m in measures)
    rows = client.query(f"""
        SELECT min(day), count() FROM (
            SELECT day FROM daily_region_measures
            WHERE measure IN ({listed}) AND value > 0 AND (day, version) IN ({latest_versions(lo, hi)})
            GROUP BY day HAVING uniqExact(measure) = {len(measures)})""").result_rows
    return rows[0][0] if rows and rows[0][1] else None


def time_to_fill(client, lo: date, hi: date, by: tuple[str, ...]) -> dict[tuple, float]:
    """Median days from posting to filling, per closing day and group (vacancies carry no age or sex): the
    exact median of ``sinks.indicators.median_time_to_fill`` over every filled vacancy (ClickHouse's
    ``median`` samples)."""
    from sinks.indicators import median_time_to_fill
    from sinks.rollups import open_vacancies_sql

    if any(d in ("age_band", "sex") for d in by):
        return {}
    dims = "".join(f", {d}" for d in by)
    rows = client.query(f"""
        SELECT toDate(closed_at, 'Asia/Seoul') AS day{dims},
               groupArray(dateDiff('second', submitted_at, closed_at) / 86400.0)
        FROM ({open_vacancies_sql()})
        WHERE close_reason = 'filled' AND closed_at IS NOT NULL AND day BETWEEN {_d(lo)} AND {_d(hi)}
        GROUP BY day{dims}
    """).result_rows
    return {tuple(r[:-1]): median_time_to_fill(r[-1]) for r in rows}


TREND_SERIES = ("ui_initial_claims", "openings_posted", "new_job_seekers", "hires", "insured_acquisitions",
                "insured_losses")


def indicator_table(client, lo: date, hi: date, by: tuple[str, ...] = (), max_rows: int | None = None) -> list[dict]:
    """Counts and indicators per day in [lo, hi] and per group of ``by`` (see ``sinks.indicators``): a row for
    each non-empty cell (a day and group with any count or stock), in group then day order. More than
    ``max_rows`` rows raise :class:`TooLarge` before any is built; the reading is bounded by the range asked
    (the trends' history is read only for the groups in it, and only the days they need)."""
    from sinks import indicators as ind
    from sinks.clickhouse import too_large

    check_range(lo, hi)
    names = list(ind.MEASURES)
    if max_rows is not None and by:
        # A cheap estimate first (HyperLogLog: a few KB whatever the cells): grouping every cell of a large
        # request only to find it too large held ~1 GB of the engine's memory (measured, 800 days by all).
        (estimate,), = client.query(f"SELECT uniq(day, {', '.join(by)}) FROM "
                                    f"{_measure_source([ind.MEASURES[n] for n in names], lo, hi, by)}").result_rows
        if estimate > max_rows * 1.05:
            raise TooLarge(_narrow(lo, hi, by, max_rows, None))
    try:
        cells = measure_matrix(client, [ind.MEASURES[n] for n in names], lo, hi, by, max_rows=max_rows)
    except Exception as exc:
        if too_large(exc):
            raise TooLarge(_narrow(lo, hi, by, max_rows, exc)) from None
        raise
    if max_rows is not None and len(cells) > max_rows:
        raise TooLarge(_narrow(lo, hi, by, max_rows, None))
    width = len(by)
    data: dict[tuple, dict[date, dict[str, int]]] = {}
    for row in cells:
        values = dict(zip(names, map(int, row[1 + width:]), strict=True))
        if any(values.values()):
            data.setdefault(tuple(row[1:1 + width]), {})[row[0]] = values
    if not data:
        return []
    # The trends' history: a 7-day average needs 6 days before, its week-on-week change 7 more, its
    # year-on-year change the average 364 days earlier.
    windows = [(lo - timedelta(days=13), lo - timedelta(days=1)), (lo - timedelta(days=370), hi - timedelta(days=364))]
    if windows[1][1] >= windows[0][0] - timedelta(days=1):
        windows = [(windows[1][0], windows[0][1])]
    for w_lo, w_hi in windows:
        for row in measure_matrix(client, [ind.MEASURES[n] for n in TREND_SERIES], w_lo, w_hi, by,
                                  groups_in=(lo, hi, [ind.MEASURES[n] for n in names]) if by else None):
            group = tuple(row[1:1 + width])
            if group in data:
                data[group].setdefault(row[0], {}).update(zip(TREND_SERIES, map(int, row[1 + width:]), strict=True))
    first = first_day(client)
    fills = time_to_fill(client, lo, hi, by)
    out: list[dict] = []
    for group in sorted(data):
        by_day = data[group]

        def value(d: date, name: str, by_day=by_day) -> int | None:
            return None if first is None or d < first else by_day.get(d, {}).get(name, 0)

        def ma7(d: date, name: str) -> float | None:
            return ind.moving_average([value(d - timedelta(days=k), name) for k in range(6, -1, -1)])[-1]

        for d in sorted(day for day in by_day if lo <= day <= hi):
            row = {"day": d.isoformat(), **dict(zip(by, group, strict=True))}
            row.update({name: value(d, name) for name in names})
            for spec in ind.INDICATORS:
                row[spec.name] = spec.function(*(row[k] for k in spec.inputs))
            row["median_time_to_fill_days"] = fills.get((d, *group))
            for name in TREND_SERIES:
                now = ma7(d, name)
                row[f"{name}_ma7"] = now
                row[f"{name}_ma7_wow"] = ind.change_over([ma7(d - timedelta(days=7), name), now], 1)[1]
                row[f"{name}_ma7_yoy"] = ind.change_over([ma7(d - timedelta(days=364), name), now], 1)[1]
            out.append(row)
    return out


def _narrow(lo: date, hi: date, by: tuple[str, ...], max_rows: int | None, exc: BaseException | None) -> str:
    what = f"more than {max_rows:,} rows" if max_rows else "more than a query may read"
    if exc is not None and "MEMORY_LIMIT" in str(exc):
        what = "more memory than a query may use"
    return (f"{lo}..{hi} by day{''.join(',' + d for d in by)} holds {what}: ask for fewer days or fewer "
            f"breakdowns (e.g. by=day,region), or several requests of fewer days each")
