"""Running a panel's SQL for the embedded board and the API: macros expanded as the Grafana plugin does."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from dashboards.boards import BOARD_BY_UID, Board, Panel
from dashboards.macros import ALL, QueryContext, expand
from schemas.calendar import SEOUL
from schemas.codes import code_list, occupation_sub_majors
from sinks.schedule_log import last_visible

VARIABLE_CODES = {"region": code_list("regions").values(), "industry": code_list("industries").values(),
                  "occupation": occupation_sub_majors()}


# Board queries are short and their constants change with every range: JIT-compiling their expressions
# costs more than it saves (measured: it made the 95th percentile twice the median). The read-only
# ClickHouse user of Grafana should carry the same two settings in its profile.
QUERY_SETTINGS = {"compile_expressions": 0, "compile_aggregate_expressions": 0}


class PanelError(ValueError):
    """A bad request for a panel (unknown board, panel, variable value or range)."""


def find(board_uid: str, panel_id: str) -> tuple[Board, Panel]:
    board = BOARD_BY_UID.get(board_uid)
    if board is None:
        raise PanelError(f"unknown board {board_uid!r}")
    for p in board.panels:
        if p.id == panel_id:
            return board, p
    raise PanelError(f"board {board_uid!r} has no panel {panel_id!r}")


def context(lo: date, hi: date, variables: dict[str, list[str]]) -> QueryContext:
    if lo > hi:
        raise PanelError(f"`from` ({lo}) is after `to` ({hi})")
    for name, values in variables.items():
        known = VARIABLE_CODES.get(name)
        if known is None:
            raise PanelError(f"unknown variable {name!r}")
        bad = [v for v in values if v not in known]
        if bad:
            raise PanelError(f"{name}={bad[0]!r} is not a code of {name}")
    start = datetime.combine(lo, time(0), SEOUL)
    end = datetime.combine(hi, time(23, 59, 59), SEOUL)
    interval = max(60, int((end - start).total_seconds() / 200))
    return QueryContext(start, end, interval, {k: (v or [ALL]) for k, v in variables.items()})


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        # clickhouse-connect returns a naive datetime in the server's time zone (UTC here and in the compose
        # stack) when it does not carry the column's zone -- the chdb client never does.
        return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp() * 1000)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def run(client, board: Board, panel: Panel, lo: date, hi: date, variables: dict[str, list[str]]) -> dict:
    sql = expand(panel.sql, context(lo, hi, variables), VARIABLE_CODES)
    result = client.query(sql, settings=QUERY_SETTINGS)
    if result.column_names:
        columns = [{"name": n, "type": t.name} for n, t in zip(result.column_names, result.column_types, strict=True)]
    else:  # an empty result from the embedded engine carries no header: ask ClickHouse for it
        columns = [{"name": r[0], "type": r[1]} for r in client.query(f"DESCRIBE TABLE ({sql})").result_rows]
    rows = [[_json(v) for v in row] for row in result.result_rows]
    return {"board": board.uid, "panel": panel.id, "columns": columns, "rows": rows}


def latest_day(client) -> date:
    """The last complete day: the last whose end the aggregates hold (the day before the visible clock's),
    not a partial today; without a recorded clock, the newest day rolled up."""
    rows = client.query("SELECT max(day), count() FROM rollup_log").result_rows
    # An empty store: yesterday in Seoul (the machine's own date is UTC's, a day behind until 09:00 KST).
    newest = rows[0][0] if rows and rows[0][1] else datetime.now(SEOUL).date() - timedelta(days=1)
    visible = last_visible(client)
    return newest if visible is None else min(newest, visible.astimezone(SEOUL).date() - timedelta(days=1))
