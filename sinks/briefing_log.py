"""Daily briefings as rendered and sent (migration 0014): the archive, the figures each stated, and each
delivery attempt (the outbox's memory, so that no day is sent twice)."""

from __future__ import annotations

import json
from datetime import date, datetime

from sinks.clickhouse import as_utc

COLUMNS = ("day", "lang", "subject", "recipients", "message", "page", "text", "figures", "instant", "as_of")
SENDING, SENT, FAILED = "sending", "sent", "failed"
MAX_ROWS = 1000


def _newest(where: str) -> str:
    return (f"SELECT {', '.join(COLUMNS)}, recorded_at FROM briefings WHERE {where} "
            "ORDER BY day, recorded_at DESC LIMIT 1 BY day")


def _dicts(result) -> list[dict]:
    out = []
    for row in result.result_rows:
        d = dict(zip(result.column_names, row, strict=True))
        for k in ("instant", "as_of", "recorded_at", "at", "sent_at"):
            if d.get(k) is not None:
                d[k] = as_utc(d[k])
        out.append(d)
    return out


def exists(client, day: date) -> bool:
    return bool(client.query("SELECT count() FROM briefings WHERE day = {d:Date}",
                             parameters={"d": day}).result_rows[0][0])


def write(client, row: dict) -> None:
    """Keep a day's briefing (a day already kept is kept as it was: the one sent is the one archived)."""
    if not exists(client, row["day"]):
        client.insert("briefings", [[row[c] for c in COLUMNS]], column_names=list(COLUMNS))


def get(client, day: date) -> dict | None:
    rows = _dicts(client.query(_newest("day = {d:Date}"), parameters={"d": day}))
    return rows[0] if rows else None


def previous(client, day: date) -> dict | None:
    """The newest briefing of a day before ``day`` (what the ministry was told last)."""
    rows = _dicts(client.query(f"SELECT * FROM ({_newest('day < {d:Date}')}) ORDER BY day DESC LIMIT 1",
                               parameters={"d": day}))
    return rows[0] if rows else None


def stated(row: dict) -> dict[str, dict[str, float | None]]:
    """The figures a briefing stated: {day (ISO): {indicator: value}}."""
    return json.loads(row["figures"]) if row.get("figures") else {}


def listing(client, lo: date | None = None, hi: date | None = None, limit: int = 100) -> list[dict]:
    """Briefings in [lo, hi], newest first, without their bodies; with when each was sent (None: not yet)."""
    n = max(1, min(int(limit), MAX_ROWS))
    rows = client.query(f"""
        SELECT b.day AS day, b.lang AS lang, b.subject AS subject, b.recipients AS recipients, b.instant AS instant,
               b.as_of AS as_of, d.sent_at AS sent_at, d.attempts AS attempts, d.last_error AS last_error
        FROM ({_newest("day BETWEEN {lo:Date} AND {hi:Date}")}) AS b
        LEFT JOIN (SELECT day, minIfOrNull(at, state = '{SENT}') AS sent_at, countIf(state = '{SENDING}') AS attempts,
                          argMaxIf(error, at, state = '{FAILED}') AS last_error
                   FROM briefing_deliveries GROUP BY day) AS d ON d.day = b.day
        ORDER BY day DESC LIMIT {n}
        SETTINGS join_use_nulls = 1
    """, parameters={"lo": lo or date(1970, 1, 1), "hi": hi or date(2199, 12, 31)})
    return _dicts(rows)


def unsent(client, limit: int = 10) -> list[dict]:
    """Briefings with recipients not sent yet, oldest day first (with the attempts made so far)."""
    rows = client.query(f"""
        SELECT b.day AS day, b.recipients AS recipients, b.message AS message, b.subject AS subject,
               ifNull(d.attempts, 0) AS attempts
        FROM ({_newest("recipients != ''")}) AS b
        LEFT JOIN (SELECT day, countIf(state = '{SENDING}') AS attempts, countIf(state = '{SENT}') AS sent
                   FROM briefing_deliveries GROUP BY day) AS d ON d.day = b.day
        WHERE ifNull(d.sent, 0) = 0
        ORDER BY day LIMIT {int(limit)}
        SETTINGS join_use_nulls = 1
    """)
    return _dicts(rows)


def record(client, day: date, state: str, attempt: int, at: datetime, error: str = "") -> None:
    client.insert("briefing_deliveries", [[day, state, attempt, at, error]],
                  column_names=["day", "state", "attempt", "at", "error"])


def deliveries(client, day: date) -> list[dict]:
    return _dicts(client.query("SELECT day, state, attempt, at, error FROM briefing_deliveries WHERE day = {d:Date} "
                               "ORDER BY at, state", parameters={"d": day}))
