"""A day's data quality, by when messages were sent (``emitted_at`` in the Asia/Seoul day): how many came,
how many repeated an event already received, how many were late (for an earlier day), which were dead-
lettered and why. The briefing's "data quality" section."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from schemas.calendar import seoul_midnight
from sinks.signals import dead_letters_sent


def _ts(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli(toInt64({int(t.timestamp() * 1000)}), 'UTC')"


def day_quality(client, day: date, lateness: timedelta) -> dict:
    """Messages sent during ``day``, per source: ``messages`` (stored), ``duplicates`` (an event received
    before), ``late`` (a first copy of an event of an earlier day); and dead letters by reason."""
    lo, hi = seoul_midnight(day), seoul_midnight(day + timedelta(days=1))
    days = (f"day BETWEEN toDate('{(day - timedelta(days=lateness.days + 1)).isoformat()}') "
            f"AND toDate('{(day + timedelta(days=1)).isoformat()}')")
    sent = f"emitted_at >= {_ts(lo)} AND emitted_at < {_ts(hi)}"
    rows = client.query(f"""
        SELECT source, count(), countIf(n > 1), countIf(n = 1 AND event_day < toDate('{day.isoformat()}'))
        FROM (
            SELECT source, event_day, emitted_at,
                   row_number() OVER (PARTITION BY event_id ORDER BY emitted_at, topic, partition, offset) AS n
            FROM (SELECT event_id, any(source) AS source, any(day) AS event_day, min(emitted_at) AS emitted_at,
                         topic, partition, offset
                  FROM events WHERE {days} AND event_id IN (SELECT event_id FROM events WHERE {days} AND {sent})
                  GROUP BY event_id, topic, partition, offset))
        WHERE {sent}
        GROUP BY source ORDER BY source
    """).result_rows
    by_source = {str(s): {"messages": int(m), "duplicates": int(d), "late": int(late)} for s, m, d, late in rows}
    dead, _ = dead_letters_sent(client, lo, hi)
    totals = {k: sum(v[k] for v in by_source.values()) for k in ("messages", "duplicates", "late")}
    return {**totals, "dead_letters": sum(dead.values()), "dead_by_reason": dict(sorted(dead.items())),
            "by_source": by_source}


def arrived_between(client, days: list[date], lo: datetime, hi: datetime) -> dict[date, int]:
    """Per day of ``days``: how many of its events first arrived (``emitted_at``) in [lo, hi) -- what a
    figure of that day gained since an earlier reading."""
    if not days:
        return {}
    listed = ", ".join(f"toDate('{d.isoformat()}')" for d in days)
    rows = client.query(f"""
        SELECT day, count() FROM (SELECT day, event_id, min(emitted_at) AS first FROM events
                                  WHERE day IN ({listed}) GROUP BY day, event_id)
        WHERE first >= {_ts(lo)} AND first < {_ts(hi)} GROUP BY day""").result_rows
    return {d: int(n) for d, n in rows}
