"""Each day's figures as published: at the day's end, and final once late events can no longer change them.

Officials compare today's number for a past day with what they were told then; these snapshots (migration
0010) explain every revision: what the figure was at the day's end, what it became once the allowed
lateness had passed, and what it is now (late events and re-sent duplicates accounted for in between).
"""

from __future__ import annotations

from datetime import date, datetime

from sinks.clickhouse import as_utc
from sinks.rollups import latest_versions

FIRST = "first"  # when the day ended, in event time
FINAL = "final"  # once the allowed lateness after the day's end has passed
STAGES = (FIRST, FINAL)


def _ms(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli(toInt64({int(t.timestamp() * 1000)}), 'UTC')"


def publish_day(client, day: date, stage: str, instant: datetime, as_of: datetime, token: str) -> None:
    """Copy the day's region totals (national: their sum) of its newest recorded rollup as ``stage``, due at
    ``instant`` and taken with the data up to ``as_of`` (event time).
    ``token`` makes the insert idempotent: run again with it (after a crash before the run was recorded), it
    adds nothing."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; use {', '.join(STAGES)}")
    d = f"toDate('{day.isoformat()}')"
    client.command(f"""
        INSERT INTO published_measures (day, stage, measure, region, value, version, instant, as_of)
        SELECT day, '{stage}', measure, region, value, version, {_ms(instant)}, {_ms(as_of)}
        FROM daily_region_measures
        WHERE day = {d} AND (day, version) IN ({latest_versions(d, d)})
        ORDER BY measure, region
        SETTINGS insert_deduplication_token = '{token.replace("'", "")}'
    """)


def revisions(client, lo: date, hi: date) -> list[dict]:
    """Per day, measure and region ('' national) in [lo, hi]: the figure when the day ended, final, and now,
    with the event time each was taken at (``*_as_of``). A stage not published for the day (yet) is None;
    published, a measure it lacks was 0 then."""
    lo_s, hi_s = f"toDate('{lo.isoformat()}')", f"toDate('{hi.isoformat()}')"
    published = {(d, stage): as_utc(as_of) for d, stage, as_of in client.query(
        f"SELECT day, stage, min(as_of) FROM published_measures WHERE day BETWEEN {lo_s} AND {hi_s} "
        "GROUP BY day, stage").result_rows}
    rows = client.query(f"""
        SELECT day, measure, region, sumIf(value, src = '{FIRST}'), sumIf(value, src = '{FINAL}'),
               sumIf(value, src = 'now')
        FROM (
            SELECT day, measure, r AS region, value, toString(stage) AS src FROM published_measures
            ARRAY JOIN [region, ''] AS r
            WHERE day BETWEEN {lo_s} AND {hi_s}
            UNION ALL
            SELECT day, measure, r, value, 'now' FROM daily_region_measures
            ARRAY JOIN [region, ''] AS r
            WHERE day BETWEEN {lo_s} AND {hi_s} AND (day, version) IN ({latest_versions(lo_s, hi_s)})
        )
        GROUP BY day, measure, region
        ORDER BY day, measure, region
    """).result_rows

    def as_of(d: date, stage: str) -> str | None:
        t = published.get((d, stage))
        return None if t is None else t.isoformat()

    return [{"day": d.isoformat(), "measure": m, "region": r,
             "first": first if (d, FIRST) in published else None, "first_as_of": as_of(d, FIRST),
             "final": final if (d, FINAL) in published else None, "final_as_of": as_of(d, FINAL), "now": now}
            for d, m, r, first, final, now in rows]
