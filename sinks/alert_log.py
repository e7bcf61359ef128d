"""Alerts and their lifecycle in ClickHouse (migration 0013), and the outbox's memory of what was delivered.

Rows are plain dicts of the ``alerts`` columns; ``alerts.lifecycle`` makes them from judged alerts. Each
episode (fingerprint, starts_at) is rewritten at every judgement; readers see its newest version.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from schemas.calendar import seoul_midnight
from sinks.clickhouse import as_utc

COLUMNS = ("fingerprint", "starts_at", "state", "ends_at", "name", "class", "severity", "measure", "region",
           "industry", "source", "family", "employer_id", "size_band", "day", "observed", "expected", "lower",
           "upper", "direction", "summary_ko", "summary_en", "labels", "annotations", "inhibited_by", "job",
           "instant", "version", "first_instant")
FIRING, RESOLVED = "firing", "resolved"
NEWEST = f"SELECT {', '.join(COLUMNS)} FROM alerts ORDER BY version DESC LIMIT 1 BY fingerprint, starts_at"
MAX_ROWS = 5000


def _rows(client, sql: str, parameters: dict | None = None) -> list[dict]:
    result = client.query(sql, parameters=parameters or {})
    out = []
    for row in result.result_rows:
        d = dict(zip(result.column_names, row, strict=True))
        for k in ("starts_at", "ends_at", "instant", "first_instant", "firing_delivered_at"):
            if d.get(k) is not None:
                d[k] = as_utc(d[k])
        out.append(d)
    return out


def write(client, rows: list[dict]) -> None:
    if rows:
        client.insert("alerts", [[r[c] for c in COLUMNS] for r in rows], column_names=list(COLUMNS))


def open_episodes(client, job: str) -> list[dict]:
    """The episodes of ``job``'s alerts firing now (their newest version)."""
    return _rows(client, f"SELECT * FROM ({NEWEST}) WHERE state = '{FIRING}' AND job = {{job:String}}",
                 {"job": job})


def history(client, lo: date | None = None, hi: date | None = None, state: str | None = None,
            cls: str | None = None, limit: int = 500) -> list[dict]:
    """Episodes (newest version each), newest first: firing or resolved in [lo, hi] (their days), of a state
    and class if given; at most ``limit`` (≤ 5,000)."""
    where = ["1"]
    params: dict = {}
    if lo is not None:
        where.append("toDate(coalesce(ends_at, instant), 'Asia/Seoul') >= {lo:Date}")
        params["lo"] = lo
    if hi is not None:
        where.append("toDate(starts_at, 'Asia/Seoul') <= {hi:Date}")
        params["hi"] = hi
    if state is not None:
        where.append("state = {state:String}")
        params["state"] = state
    if cls is not None:
        where.append("class = {cls:String}")
        params["cls"] = cls
    n = max(1, min(int(limit), MAX_ROWS))
    return _rows(client, f"SELECT * FROM ({NEWEST}) WHERE {' AND '.join(where)} "
                         f"ORDER BY starts_at DESC, fingerprint LIMIT {n}", params)


def of_day(client, day: date, instant: datetime, limit: int = 200) -> list[dict]:
    """The alerts about ``day`` known at event time ``instant`` (episodes first judged by then, so a replay
    that judged further gives the same list): labour-market alerts firing after the day was judged (at its
    end), and data faults whose hours overlap the day. Delivered ones first, most severe first."""
    ms = int(instant.timestamp() * 1000)
    return _rows(client, f"""
        SELECT * FROM ({NEWEST})
        WHERE first_instant <= fromUnixTimestamp64Milli(toInt64({ms}), 'UTC')
          AND if(class = 'labour_market',
                 first_instant <= {{end:DateTime}} AND (ends_at IS NULL OR ends_at > {{end:DateTime}}),
                 starts_at < {{end:DateTime}} AND (ends_at IS NULL OR ends_at >= {{start:DateTime}}))
        ORDER BY inhibited_by != '', indexOf(['critical', 'warning', 'info'], severity), starts_at, fingerprint
        LIMIT {max(1, min(int(limit), MAX_ROWS))}""",
                 {"start": seoul_midnight(day), "end": seoul_midnight(day + timedelta(days=1))})


def as_json(row: dict) -> dict:
    """An episode for the API: times in ISO 8601, labels and annotations as objects, no internal columns."""
    out = {k: v for k, v in row.items() if k not in ("version", "labels", "annotations", "job")}
    for k in ("starts_at", "ends_at", "instant", "first_instant"):
        out[k] = None if row.get(k) is None else row[k].isoformat()
    out["day"] = row["day"].isoformat() if row.get("day") else None
    out["labels"] = json.loads(row["labels"]) if row.get("labels") else {}
    out["annotations"] = json.loads(row["annotations"]) if row.get("annotations") else {}
    return out


def undelivered(client, refresh_before: datetime, limit: int = 500) -> list[dict]:
    """Episodes whose newest state Alertmanager has not been given, and firing ones last given before
    ``refresh_before`` (re-sent so that they stay firing there); not those a data fault explains away.
    Each with ``firing_delivered_at`` (None: its firing state never delivered)."""
    return _rows(client, f"""
        SELECT {', '.join(f'a.{c} AS {c}' for c in COLUMNS)}, f.delivered_at AS firing_delivered_at
        FROM ({NEWEST}) AS a
        LEFT JOIN (SELECT fingerprint, starts_at, state, max(delivered_at) AS delivered_at FROM alert_deliveries
                   GROUP BY fingerprint, starts_at, state) AS d
            ON d.fingerprint = a.fingerprint AND d.starts_at = a.starts_at AND d.state = a.state
        LEFT JOIN (SELECT fingerprint, starts_at, max(delivered_at) AS delivered_at FROM alert_deliveries
                   WHERE state = '{FIRING}' GROUP BY fingerprint, starts_at) AS f
            ON f.fingerprint = a.fingerprint AND f.starts_at = a.starts_at
        WHERE a.inhibited_by = ''
          AND (d.delivered_at IS NULL OR (a.state = '{FIRING}' AND d.delivered_at < {{t:DateTime64(3)}}))
        ORDER BY a.starts_at, a.fingerprint
        LIMIT {max(1, min(limit, MAX_ROWS))}
        SETTINGS join_use_nulls = 1
    """, {"t": refresh_before})


def delivered(client, rows: list[tuple[str, datetime, str]], at: datetime) -> None:
    """Record (fingerprint, starts_at, state) as given to Alertmanager at ``at``."""
    if rows:
        client.insert("alert_deliveries", [[f, s, st, at] for f, s, st in rows],
                      column_names=["fingerprint", "starts_at", "state", "delivered_at"])
