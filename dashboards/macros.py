"""The Grafana ClickHouse data source's macros and Grafana's variable formats, expanded in Python.

Mirrors grafana-clickhouse-datasource: ``$__timeFilter(c)`` → ``c >= toDateTime(from_s) AND c <= toDateTime(to_s)``,
``$__timeFilter_ms(c)`` with ``fromUnixTimestamp64Milli``, ``$__dateFilter(c)`` with ``toDate('YYYY-MM-DD')`` (UTC
dates, as the plugin's backend formats them), ``$__fromTime``/``$__toTime`` (``toDateTime(s)``), ``_ms`` variants,
``$__timeInterval(c)`` → ``toStartOfInterval(toDateTime(c), INTERVAL n second)``, ``$__interval_s`` (at least 1),
and the front end's ``$__conditionalAll(condition, $var)`` → ``1=1`` when All (or nothing) is selected.
Variables: ``${var:singlequote}`` → ``'a','b'`` (quotes escaped), ``$var``/``${var}`` → values joined by ``,``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

ALL = "$__all"


@dataclass(frozen=True)
class QueryContext:
    time_from: datetime
    time_to: datetime
    interval_s: int = 86_400
    variables: Mapping[str, Sequence[str] | str] = field(default_factory=dict)

    def values(self, name: str) -> list[str]:
        v = self.variables.get(name, ALL)
        return [v] if isinstance(v, str) else list(v)

    def is_all(self, name: str) -> bool:
        vals = self.values(name)
        return not vals or vals == [ALL] or ALL in vals


def _args(sql: str, open_paren: int) -> tuple[list[str], int]:
    """Arguments of a macro call starting at ``open_paren``; returns them and the index after ')'."""
    depth, args, current, i = 0, [], [], open_paren
    quote = None
    while i < len(sql):
        ch = sql[i]
        if quote:
            current.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == "(":
            depth += 1
            if depth > 1:
                current.append(ch)
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return args, i + 1
            current.append(ch)
        elif ch == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    raise ValueError(f"unbalanced parentheses in macro at {open_paren}")


def _conditional_all(sql: str, ctx: QueryContext) -> str:
    macro = "$__conditionalAll("
    idx = sql.rfind(macro)
    while idx != -1:
        args, end = _args(sql, idx + len(macro) - 1)
        if len(args) != 2:
            raise ValueError(f"$__conditionalAll takes 2 arguments, got {len(args)}")
        var = args[1].strip().lstrip("$").strip("{}")
        replacement = "1=1" if ctx.is_all(var) else args[0]
        sql = sql[:idx] + replacement + sql[end:]
        idx = sql.rfind(macro)
    return sql


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _variables(sql: str, ctx: QueryContext, all_values: Mapping[str, Sequence[str]]) -> str:
    def values(name: str) -> list[str]:
        return list(all_values.get(name, [])) if ctx.is_all(name) else ctx.values(name)

    def braced(m: re.Match) -> str:
        name, fmt = m.group(1), m.group(2)
        vals = values(name)
        if fmt == "singlequote":
            return ",".join(_quote(v) for v in vals) or "''"
        if fmt is None or fmt == "csv":
            return ",".join(vals)
        raise ValueError(f"unsupported variable format {fmt!r}")

    sql = re.sub(r"\$\{(\w+)(?::(\w+))?\}", braced, sql)
    return re.sub(r"\$(?!__)(\w+)", lambda m: ",".join(values(m.group(1))) if m.group(1) in ctx.variables
                  or m.group(1) in all_values else m.group(0), sql)


def _seconds(t: datetime) -> int:
    return int(t.timestamp())


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _date(t: datetime) -> str:
    return f"toDate('{t.astimezone(UTC).strftime('%Y-%m-%d')}')"


def expand(sql: str, ctx: QueryContext, all_values: Mapping[str, Sequence[str]] | None = None) -> str:
    """``sql`` as the plugin sends it to ClickHouse for this time range, interval and variables."""
    f, t = ctx.time_from, ctx.time_to
    sql = _conditional_all(sql, ctx)
    sql = _variables(sql, ctx, all_values or {})
    interval = max(int(ctx.interval_s), 1)

    def call(name: str, fn) -> None:
        nonlocal sql
        macro = f"$__{name}("
        idx = sql.find(macro)
        while idx != -1:
            args, end = _args(sql, idx + len(macro) - 1)
            sql = sql[:idx] + fn(args) + sql[end:]
            idx = sql.find(macro)

    def one(args: list[str], name: str) -> str:
        if len(args) != 1:
            raise ValueError(f"$__{name} takes 1 argument, got {len(args)}")
        return args[0]

    call("timeFilter_ms", lambda a: f"{one(a, 'timeFilter_ms')} >= fromUnixTimestamp64Milli({_ms(f)}) AND "
                                    f"{a[0]} <= fromUnixTimestamp64Milli({_ms(t)})")
    call("timeFilter", lambda a: f"{one(a, 'timeFilter')} >= toDateTime({_seconds(f)}) AND "
                                 f"{a[0]} <= toDateTime({_seconds(t)})")
    call("dateFilter", lambda a: f"{one(a, 'dateFilter')} >= {_date(f)} AND {a[0]} <= {_date(t)}")
    call("timeInterval_ms", lambda a: f"toStartOfInterval(toDateTime64({one(a, 'timeInterval_ms')}, 3), "
                                      f"INTERVAL {interval * 1000} millisecond)")
    call("timeInterval", lambda a: f"toStartOfInterval(toDateTime({one(a, 'timeInterval')}), "
                                   f"INTERVAL {interval} second)")
    for name, value in (("fromTime_ms", f"fromUnixTimestamp64Milli({_ms(f)})"),
                        ("toTime_ms", f"fromUnixTimestamp64Milli({_ms(t)})"),
                        ("fromTime", f"toDateTime({_seconds(f)})"), ("toTime", f"toDateTime({_seconds(t)})"),
                        ("interval_s", str(interval))):
        sql = re.sub(rf"\$__{name}(?!\w)(\(\))?", value, sql)
    if "$__" in sql:
        raise ValueError(f"unknown macro in: {sql[sql.index('$__'):][:40]}")
    return sql
