"""Reading the measures back: only the newest complete rollup of each day counts."""

from __future__ import annotations

from datetime import date

from sinks.rollups import latest_versions

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
    return client.query(f"""
        SELECT day{dims}, measure, sum(value)
        FROM daily_measures
        WHERE measure IN ({ms}) AND day BETWEEN {_d(lo)} AND {_d(hi)}
          AND (day, version) IN ({latest_versions(_d(lo), _d(hi))})
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
    """Messages that repeated an already stored event_id (a replayed offset is not a duplicate)."""
    return int(client.query(
        "SELECT uniqExact(topic, partition, offset) - uniqExact(event_id) FROM events").result_rows[0][0])
