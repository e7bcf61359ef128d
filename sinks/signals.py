"""What the alert detectors read: daily series per cell, employers' separations, each source's arrivals.

Event time throughout. The series are the rolled-up measures (:mod:`sinks.readers`); a source's arrivals
are its messages by the time they were sent (``emitted_at``), up to the judging instant only, so a replay
that has read further than the instant sees what live streaming saw then.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from sinks.clickhouse import as_utc
from sinks.readers import measure_rows

Cell = tuple[str, str, str]  # (measure, region, industry); '' for national / all industries
# Separations for business reasons: the employer's decision, not the worker's (a layoff's signature).
BUSINESS_REASONS = ("dismissal", "business_closure", "recommended_resignation")


def _ts(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli(toInt64({int(t.timestamp() * 1000)}), 'UTC')"


def _day(d: date) -> str:
    return f"toDate('{d.isoformat()}')"


def daily_series(client, measures: list[str], lo: date, hi: date) -> dict[Cell, dict[date, int]]:
    """Each measure's daily values in [lo, hi], national, per region and per region × industry."""
    out: dict[Cell, dict[date, int]] = defaultdict(dict)
    for day, region, measure, value in measure_rows(client, measures, lo, hi, ("region",)):
        out[measure, region, ""][day] = int(value)
        national = out[measure, "", ""]
        national[day] = national.get(day, 0) + int(value)
    for day, region, industry, measure, value in measure_rows(client, measures, lo, hi, ("region", "industry")):
        if industry:
            out[measure, region, industry][day] = int(value)
    return dict(out)


def employer_separations(client, lo: date, hi: date, recent_from: date, min_count: int, sent_by: datetime,
                         limit: int = 1000) -> tuple[list[tuple[str, date, int]], dict[str, tuple[str, str, str]]]:
    """Insured losses and UI initial claims for business reasons per employer and day in [lo, hi], sent by
    ``sent_by``, of the employers with at least ``min_count`` of them since ``recent_from`` (at most
    ``limit`` employers, the largest first); each event once. And each such employer's (region, industry,
    size band)."""
    reasons = ", ".join(f"'{r}'" for r in BUSINESS_REASONS)
    where = (f"event_type IN ('insurance.loss', 'ui.initial_claim') AND subtype IN ({reasons}) "
             f"AND day BETWEEN {_day(lo)} AND {_day(hi)} AND employer_id != '' AND emitted_at <= {_ts(sent_by)}")
    rows = client.query(f"""
        SELECT employer_id, day, uniqExact(event_id), any(region), any(industry), any(size_band)
        FROM events
        WHERE {where} AND employer_id IN (
            SELECT employer_id FROM events WHERE {where} AND day >= {_day(recent_from)}
            GROUP BY employer_id HAVING uniqExact(event_id) >= {int(min_count)}
            ORDER BY uniqExact(event_id) DESC LIMIT {int(limit)})
        GROUP BY employer_id, day
        ORDER BY employer_id, day
    """).result_rows
    counts = [(e, d, int(n)) for e, d, n, *_ in rows]
    attrs = {e: (r, i, s) for e, _, _, r, i, s in rows}
    return counts, attrs


def first_arrivals(client) -> dict[tuple[str, str], datetime]:
    """The first message time of each (source, event family): spans before it are no norm. (One scan of two
    columns of every event: the caller keeps it.)"""
    rows = client.query("SELECT source, splitByChar('.', toString(event_type))[1] AS family, min(emitted_at) "
                        "FROM events GROUP BY source, family").result_rows
    return {(s, f): as_utc(t) for s, f, t in rows}


def last_arrivals(client, until: datetime, days: int = 7) -> dict[tuple[str, str], datetime]:
    """The newest message time (``emitted_at`` ≤ ``until``) of each (source, event family) in the last
    ``days`` days."""
    rows = client.query(f"""
        SELECT source, splitByChar('.', toString(event_type))[1] AS family, max(emitted_at)
        FROM events
        WHERE day BETWEEN {_day((until - timedelta(days=days + 3)).date())} AND {_day(until.date() + timedelta(days=1))}
          AND emitted_at <= {_ts(until)} AND emitted_at > {_ts(until - timedelta(days=days))}
        GROUP BY source, family
    """).result_rows
    return {(s, f): as_utc(t) for s, f, t in rows}


def arrivals_between(client, spans: list[tuple[str, str, datetime, datetime]],
                     lateness: timedelta) -> list[int]:
    """Messages of (source, family) sent in [lo, hi), for each span given; ``lateness`` bounds how long
    before it was sent an event can have occurred (the days to scan)."""
    if not spans:
        return []
    parts = []
    for k, (_, _, lo, hi) in enumerate(spans):
        first, last = (lo - lateness - timedelta(days=1)).date(), hi.date() + timedelta(days=1)
        parts.append(f"""
            SELECT {k} AS k, count() FROM events
            WHERE day BETWEEN {_day(first)} AND {_day(last)}
              AND source = {{s{k}:String}} AND startsWith(toString(event_type), {{f{k}:String}})
              AND emitted_at >= {_ts(lo)} AND emitted_at < {_ts(hi)}""")
    params = {}
    for k, (source, family, _, _) in enumerate(spans):
        params[f"s{k}"], params[f"f{k}"] = source, family + "."
    found = dict(client.query(" UNION ALL ".join(parts), parameters=params).result_rows)
    return [int(found.get(k, 0)) for k in range(len(spans))]


def copies_sent(client, lo: datetime, hi: datetime, lateness: timedelta) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (source, family): the messages sent in [lo, hi) and how many of them repeat an event already
    sent (same event_id, an earlier message)."""
    days = f"day BETWEEN {_day((lo - lateness - timedelta(days=1)).date())} AND {_day(hi.date() + timedelta(days=1))}"
    rows = client.query(f"""
        SELECT source, family, count(), countIf(n > 1)
        FROM (
            SELECT source, splitByChar('.', toString(event_type))[1] AS family, emitted_at,
                   row_number() OVER (PARTITION BY event_id ORDER BY emitted_at, topic, partition, offset) AS n
            FROM (SELECT event_id, any(source) AS source, any(event_type) AS event_type, min(emitted_at) AS emitted_at,
                         topic, partition, offset
                  FROM events WHERE {days} AND event_id IN (
                      SELECT event_id FROM events WHERE {days} AND emitted_at >= {_ts(lo)} AND emitted_at < {_ts(hi)})
                  GROUP BY event_id, topic, partition, offset))
        WHERE emitted_at >= {_ts(lo)} AND emitted_at < {_ts(hi)}
        GROUP BY source, family
    """).result_rows
    return {(s, f): (int(n), int(d)) for s, f, n, d in rows}


def dead_letters_sent(client, lo: datetime, hi: datetime) -> tuple[dict[str, int], int]:
    """Dead letters of messages sent in [lo, hi), by reason; and the messages stored from then."""
    dead = dict(client.query(
        f"SELECT reason, uniqExact(topic, partition, offset) FROM dead_letters "
        f"WHERE emitted_at >= {_ts(lo)} AND emitted_at < {_ts(hi)} GROUP BY reason").result_rows)
    stored = client.query(
        f"SELECT uniqExact(topic, partition, offset) FROM events "
        f"WHERE day BETWEEN {_day((lo - timedelta(days=4)).date())} AND {_day(hi.date() + timedelta(days=1))} "
        f"AND emitted_at >= {_ts(lo)} AND emitted_at < {_ts(hi)}").result_rows[0][0]
    return {str(r): int(n) for r, n in dead.items()}, int(stored)


def pipeline_ticks(client, since: datetime) -> list[tuple[datetime, int, float]]:
    """The worker's health ticks since ``since`` (wall clock): (tick, lag over every topic, freshness p99 s)."""
    rows = client.query(f"""
        SELECT ts, sum(lag), max(freshness_p99_s) FROM pipeline_health
        WHERE ts >= {_ts(since)} GROUP BY ts ORDER BY ts LIMIT 10000
    """).result_rows
    return [(as_utc(t), int(lag), float(p99)) for t, lag, p99 in rows]
