"""The status boards, defined once as data: boards, variables, panels and their ClickHouse SQL.

The SQL is written for the Grafana ClickHouse data source plugin (grafana-clickhouse-datasource): its
macros (``$__timeFilter``, ``$__fromTime``, ``$__toTime``, ``$__timeInterval``, ``$__interval_s``,
``$__conditionalAll``) and Grafana's ``${var:singlequote}`` variable format. ``dashboards.macros`` expands
them exactly as the plugin does, so the embedded board and the contract tests run the very same SQL.
Adding a panel is adding one ``Panel`` to a board's tuple.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from schemas.codes import code_list
from sinks.disclosure import PERSON_FIELDS, PERSON_MEASURES, SMALL_CELL
from sinks.indicators import MEASURES
from sinks.rollups import HEADLINE

SEOUL_DAY_FROM = "toDate($__fromTime, 'Asia/Seoul')"
SEOUL_DAY_TO = "toDate($__toTime, 'Asia/Seoul')"
DAY_RANGE = f"day BETWEEN {SEOUL_DAY_FROM} AND {SEOUL_DAY_TO}"


def latest(table: str, days: str) -> str:
    """SQL after FROM: ``table`` restricted to ``days`` (a condition on ``day``) and to the newest complete
    rollup of each of those days. The views (``measures_daily``, ``measures_by_region``) do the same for
    any query; restricting the version lookup to the panel's days is what keeps a panel fast."""
    return (f"{table} WHERE (day, version) IN (SELECT day, max(version) FROM rollup_log WHERE {days} "
            f"GROUP BY day) AND {days}")


def suppress(expr: str) -> str:
    """SQL: a count of persons, NULL (shown as suppressed) when it is 1 or 2."""
    return f"if(({expr}) > 0 AND ({expr}) < {SMALL_CELL}, NULL, ({expr}))"


@dataclass(frozen=True)
class Variable:
    name: str
    ko: str
    en: str
    options_sql: str  # returns (value, label_ko, label_en)
    multi: bool = True
    include_all: bool = True


@dataclass(frozen=True)
class Panel:
    id: str
    ko: str
    en: str
    kind: Literal["headline", "stat", "timeseries", "table", "bar", "grid"]
    sql: str
    format: Literal["time_series", "table"]
    columns: tuple[tuple[str, str], ...]  # (name, kind): kind is time, string, number
    unit: str = "none"
    width: int = 12
    height: int = 8
    description: str = ""
    label_column: str | None = None  # a column of codes to show with their labels
    y_unit: str = ""  # what the value axis counts: a key of COLUMN_LABELS (persons, messages, seconds, ...)
    # board: the x-axis spans the board's range; data: the data's own span (the sources' time on a board whose
    # range is the wall clock's, as in a replay)
    time_axis: Literal["board", "data"] = "board"

    @property
    def person_columns(self) -> tuple[str, ...]:
        """The columns that count persons: their nulls are suppressed counts ("<3"), others' are missing."""
        return tuple(n for n, _ in self.columns if n.removesuffix("_7d") in PERSON_FIELDS)


@dataclass(frozen=True)
class Board:
    uid: str
    ko: str
    en: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    default_days: int = 30
    refresh_seconds: int = 5
    tags: tuple[str, ...] = field(default=("lmis",))
    time_basis: Literal["event", "processing"] = "event"  # processing: the range ends today, not at the data


def _codes(name: str, filt=lambda c: True) -> str:
    rows = ", ".join(f"('{c.code}', '{c.ko}', '{c.en}')" for c in code_list(name) if filt(c))
    return f"SELECT c.1 AS value, c.2 AS label_ko, c.3 AS label_en FROM (SELECT arrayJoin([{rows}]) AS c)"


REGION_VAR = Variable("region", "시도", "Region", _codes("regions"))
INDUSTRY_VAR = Variable("industry", "산업", "Industry", _codes("industries"))
OCCUPATION_VAR = Variable("occupation", "직업", "Occupation",
                          _codes("occupations", lambda c: c.extra.get("level") == "sub_major"))
FILTERS = ("$__conditionalAll(region IN (${region:singlequote}), $region) "
           "AND $__conditionalAll(industry IN (${industry:singlequote}), $industry) "
           "AND $__conditionalAll(occupation IN (${occupation:singlequote}), $occupation)")

HEADLINE_PERSONS = tuple(k for k, _, d in HEADLINE if not d and k in PERSON_MEASURES)


HEADLINE_COLUMNS = (("indicator", "string"), ("unit", "string"), ("value", "number"), ("ma7", "number"),
                    ("ma28", "number"),
                    ("change_1d", "number"), ("pct_1d", "number"), ("change_7d", "number"), ("pct_7d", "number"),
                    ("change_364d", "number"), ("pct_364d", "number"))
HEADLINE_UNITS = {"ratio.offers_to_seekers": "ratio", "ratio.stock_offers_to_seekers": "ratio",
                  "openings.posted": "openings", "stock.open_openings": "openings"}


HEADLINE_DAYS = "(day BETWEEN d - 27 AND d OR day = d - 364)"


def _region_headline_rows() -> str:
    # The headline's (day, indicator, value) rows for the chosen regions (all: national), from the region
    # totals: counts summed, the two 구인배수 as ratios of the summed numerator and denominator.
    items = ", ".join(f"('{k}', '{n}', '{dd}')" for k, n, dd in HEADLINE)
    measures = ", ".join(sorted({f"'{m}'" for _, n, dd in HEADLINE for m in (n, dd) if m}))
    return f"""(
    SELECT day, h.1 AS indicator,
           if(h.3 = '', toFloat64(sumIf(value, measure = h.2)),
              if(sumIf(value, measure = h.3) = 0, NULL,
                 round(sumIf(value, measure = h.2) / sumIf(value, measure = h.3), 3))) AS value
    FROM (SELECT day, measure, value FROM {latest("daily_region_measures", HEADLINE_DAYS)}
            AND measure IN ({measures}) AND $__conditionalAll(region IN (${{region:singlequote}}), $region))
    ARRAY JOIN [{items}] AS h
    GROUP BY day, h)"""


def _headline_sql(rows: str | None = None) -> str:
    # The last complete day of the rollup's precomputed headline (counts and both 구인배수) against the day
    # before, the same weekday a week and 52 weeks earlier, and its 7-day average: a pivot of at most 14
    # days × 9 small rows. NULL: missing (no data that day, or a ratio's zero denominator), or a count of 1
    # or 2 persons (suppressed; ``unit`` says which rows count persons) and every change computed from one.
    order = ", ".join(f"'{k}'" for k, _, _ in HEADLINE)
    persons = ", ".join(f"'{k}'" for k in HEADLINE_PERSONS)
    units = ", ".join(f"indicator = '{k}', '{u}'" for k, u in HEADLINE_UNITS.items())

    def on(day: str) -> str:
        return f"if(countIf(day = {day}) = 0, NULL, anyIf(value, day = {day}))"

    def shown(v: str) -> str:  # a person count of 1 or 2 is not published
        return f"if(persons AND {v} BETWEEN 1 AND {SMALL_CELL - 1}, NULL, {v})"

    def mean(days: int) -> str:  # over every one of the last ``days`` days, or NULL
        return (f"if(uniqExactIf(day, day BETWEEN d - {days - 1} AND d) < {days}, NULL, "
                f"sumIf(value, day BETWEEN d - {days - 1} AND d))")

    changes = ",\n       ".join(
        f"{shown('v0')} - {shown(b)} AS change_{lag},\n       "
        f"if({shown(b)} = 0, NULL, round(100 * ({shown('v0')} - {shown(b)}) / {shown(b)}, 1)) AS pct_{lag}"
        for lag, b in (("1d", "v1"), ("7d", "v7"), ("364d", "v364")))
    return f"""
WITH {SEOUL_DAY_TO} AS d
SELECT indicator,
       multiIf(persons, 'persons', {units}, 'count') AS unit,
       {shown('v0')} AS value,
       if(unit = 'ratio' OR (persons AND week BETWEEN 1 AND {SMALL_CELL - 1}), NULL, round(week / 7, 1)) AS ma7,
       if(unit = 'ratio' OR (persons AND month BETWEEN 1 AND {SMALL_CELL - 1}), NULL, round(month / 28, 1)) AS ma28,
       {changes}
FROM (
  SELECT indicator, indicator IN ({persons}) AS persons,
         {on('d')} AS v0, {on('d - 1')} AS v1, {on('d - 7')} AS v7, {on('d - 364')} AS v364,
         {mean(7)} AS week, {mean(28)} AS month
  FROM {rows or f"(SELECT DISTINCT day, indicator, value FROM {latest('daily_headline', HEADLINE_DAYS)})"}
  GROUP BY indicator
)
ORDER BY indexOf([{order}], indicator)"""


def _trend_sql(measure: str) -> str:
    # 7-day moving average, this year and the same weekday a year earlier (364 days), as two series.
    return f"""
SELECT time, series, ma7 FROM (
  SELECT toDateTime(day, 'Asia/Seoul') AS time, 'this_year' AS series,
         avg(v) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS ma7, day
  FROM (SELECT day, sum(value) AS v
        FROM {latest("daily_region_measures", f"day BETWEEN {SEOUL_DAY_FROM} - 6 AND {SEOUL_DAY_TO}")}
          AND measure = '{measure}' GROUP BY day)
  UNION ALL
  SELECT toDateTime(day + 364, 'Asia/Seoul') AS time, 'last_year' AS series,
         avg(v) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS ma7, day + 364 AS day
  FROM (SELECT day, sum(value) AS v
        FROM {latest("daily_region_measures", f"day BETWEEN {SEOUL_DAY_FROM} - 370 AND {SEOUL_DAY_TO} - 364")}
          AND measure = '{measure}' GROUP BY day)
) WHERE day BETWEEN {SEOUL_DAY_FROM} AND {SEOUL_DAY_TO}
ORDER BY time, series"""


REGIONS_SQL = f"""
WITH {SEOUL_DAY_TO} AS d
SELECT region,
       {suppress("sumIf(value, measure = 'ui.initial_claim' AND day = d)")} AS ui_initial_claims,
       {suppress("sumIf(value, measure = 'ui.initial_claim' AND day BETWEEN d - 6 AND d)")} AS ui_initial_claims_7d,
       if(sumIf(value, measure = 'ui.initial_claim' AND day BETWEEN d - 13 AND d - 7) = 0, NULL,
          round(100 * (sumIf(value, measure = 'ui.initial_claim' AND day BETWEEN d - 6 AND d)
                       / sumIf(value, measure = 'ui.initial_claim' AND day BETWEEN d - 13 AND d - 7) - 1), 1))
          AS ui_change_wow_pct,
       sumIf(value, measure = 'openings.posted' AND day BETWEEN d - 6 AND d) AS openings_posted_7d,
       {suppress("sumIf(value, measure = 'seeker.registered' AND day BETWEEN d - 6 AND d)")} AS new_job_seekers_7d,
       if(sumIf(value, measure = 'seeker.registered' AND day BETWEEN d - 6 AND d) = 0, NULL,
          round(sumIf(value, measure = 'openings.posted' AND day BETWEEN d - 6 AND d)
                / sumIf(value, measure = 'seeker.registered' AND day BETWEEN d - 6 AND d), 3)) AS offers_to_seekers_7d,
       sumIf(value, measure = 'stock.open_openings' AND day = d) AS open_openings
FROM {latest("daily_region_measures", "day BETWEEN d - 13 AND d")}
  AND measure IN ('ui.initial_claim', 'openings.posted', 'seeker.registered', 'stock.open_openings')
GROUP BY region ORDER BY region"""


def _unless_all(*variables: str) -> str:
    """SQL: true when every one of ``variables`` is All (the plugin expands a specific choice to ``0``)."""
    return " AND ".join(f"$__conditionalAll(0, ${v})" for v in variables)


def _chosen(variable: str, column: str) -> str:
    return f"$__conditionalAll({column} IN (${{{variable}:singlequote}}), ${variable})"


# The national rows when every region is chosen, else the chosen regions' rows.
REGION_ROWS = f"region = if({_unless_all('region')}, '', region) AND {_chosen('region', 'region')}"


def _dimension_rows(dimension: str, other: str) -> str:
    """SQL after FROM: the rows of ``daily_dimension_measures`` by ``dimension`` for the board's choice of
    region, industry and occupation (all of one, or the chosen ones). One range of the table's order."""
    return (f"{latest('daily_dimension_measures', DAY_RANGE)} AND dimension = '{dimension}|{other}' "
            f"AND {REGION_ROWS} AND filter = if({_unless_all(other)}, '', filter) AND {_chosen(other, 'filter')} "
            f"AND {_chosen(dimension, 'code')}")


def _breakdown_sql(dimension: str, measures: tuple[str, ...], filtered: bool = False) -> str:
    cols = ",\n       ".join(
        (suppress(f"sumIf(value, measure = '{m}')") if m in PERSON_MEASURES else f"sumIf(value, measure = '{m}')")
        + f" AS {name}" for name, m in ((n, MEASURES[n]) for n in measures))
    keys = ", ".join(f"'{MEASURES[n]}'" for n in measures)
    other = "occupation" if dimension == "industry" else "industry"
    rows = (_dimension_rows(dimension, other) if filtered else
            f"{latest('daily_dimension_measures', DAY_RANGE)} AND dimension = '{dimension}|{other}' "
            f"AND region = '' AND filter = ''")  # the national rows
    return f"""
SELECT code AS {dimension},
       {cols}
FROM {rows}
  AND measure IN ({keys}) AND code != ''
GROUP BY code ORDER BY code"""


INSURANCE_BY_REGION_SQL = f"""
SELECT region, {suppress("l")} AS insured_losses, {suppress("a")} AS insured_acquisitions,
       if(a BETWEEN 1 AND {SMALL_CELL - 1} OR l BETWEEN 1 AND {SMALL_CELL - 1}, NULL, a - l) AS insured_net_change
FROM (SELECT region, sumIf(value, measure = 'insurance.loss') AS l, sumIf(value, measure = 'insurance.acquisition') AS a
      FROM {latest("daily_region_measures", DAY_RANGE)}
        AND measure IN ('insurance.loss', 'insurance.acquisition') AND region != ''
      GROUP BY region)
ORDER BY region"""


REVIEW_SQL = f"""
SELECT replaceOne(measure, 'vacancy.rejected:', '') AS reason, sum(value) AS vacancies
FROM {latest("daily_region_measures", DAY_RANGE)}
  AND (measure = 'vacancy.posted' OR startsWith(measure, 'vacancy.rejected:'))
GROUP BY measure ORDER BY vacancies DESC"""


def _region_series_sql() -> str:
    keys = "'ui.initial_claim', 'openings.posted', 'seeker.registered', 'application.outcome:hired'"
    return f"""
SELECT toDateTime(day, 'Asia/Seoul') AS time, measure AS series, {suppress("sum(value)")} AS value
FROM {_dimension_rows("occupation", "industry")} AND measure IN ({keys})
GROUP BY day, measure ORDER BY time, series"""


REVISED_MEASURES = ("ui.initial_claim", "openings.posted", "seeker.registered", "application.outcome:hired",
                    "insurance.acquisition", "insurance.loss")


def _revisions_sql() -> str:
    # Each day's national figure as published when the day ended and as final (sinks.published), beside
    # today's: the days of the range that have a published figure, newest first.
    measures = ", ".join(f"'{m}'" for m in REVISED_MEASURES)
    persons = ", ".join(f"'{m}'" for m in REVISED_MEASURES if m in PERSON_MEASURES)

    def shown(src: str) -> str:
        value = f"sumIf(value, src = '{src}')"
        return (f"if(countIf(src = '{src}') = 0 OR (measure IN ({persons}) AND {value} BETWEEN 1 AND "
                f"{SMALL_CELL - 1}), NULL, {value})")

    return f"""
SELECT toString(day) AS day, measure, {shown('first')} AS first, {shown('final')} AS final, {shown('now')} AS now,
       if(countIf(src = 'first') = 0, NULL, sumIf(value, src = 'now') - sumIf(value, src = 'first')) AS revised
FROM (
  SELECT day, measure, value, toString(stage) AS src FROM published_measures
  WHERE {DAY_RANGE} AND measure IN ({measures})
  UNION ALL
  SELECT day, measure, value, 'now' FROM {latest("daily_region_measures", DAY_RANGE)} AND measure IN ({measures})
)
GROUP BY day, measure
HAVING countIf(src = 'first') > 0
ORDER BY day DESC, indexOf([{measures}], measure)
LIMIT {7 * len(REVISED_MEASURES)}"""


NATIONAL = Board(
    uid="lmis-national", ko="고용동향 모니터링 현황판", en="Employment trend monitoring board",
    panels=(
        Panel("headline", "최근 완결일: 전일·전주 같은 요일·52주 전 대비", "Last complete day: vs the day before, "
              "the same weekday a week and 52 weeks earlier", "headline", _headline_sql(), "table", HEADLINE_COLUMNS,
              width=24, height=9, label_column="indicator",
              description="The last day of the range (the last complete day by default): its value, 7-day "
                          "average, and change and % against the day before, the same weekday a week earlier "
                          "and 52 weeks earlier. 구인배수 flow = openings ÷ new seekers, stock = open openings "
                          "÷ job seekers with a valid registration (registered in the last 90 days, not placed "
                          "since). — missing; <3 a count of 1 or 2 persons."),
        Panel("trend_ui", "실업급여 신규신청 (7일 평균, 전년 대비)", "UI initial claims (7-day average, vs last year)",
              "timeseries", _trend_sql("ui.initial_claim"), "time_series",
              (("time", "time"), ("series", "string"), ("ma7", "number")), label_column="series", y_unit="persons"),
        Panel("trend_openings", "신규 구인인원 (7일 평균, 전년 대비)",
              "New openings posted (7-day average, vs last year)",
              "timeseries", _trend_sql("openings.posted"), "time_series",
              (("time", "time"), ("series", "string"), ("ma7", "number")), label_column="series", y_unit="openings"),
        Panel("trend_seekers", "신규 구직자 (7일 평균, 전년 대비)", "New job seekers (7-day average, vs last year)",
              "timeseries", _trend_sql("seeker.registered"), "time_series",
              (("time", "time"), ("series", "string"), ("ma7", "number")), label_column="series", y_unit="persons"),
        Panel("trend_hires", "채용 (7일 평균, 전년 대비)", "Hires (7-day average, vs last year)",
              "timeseries", _trend_sql("application.outcome:hired"), "time_series",
              (("time", "time"), ("series", "string"), ("ma7", "number")), label_column="series", y_unit="persons"),
        Panel("regions", "17개 시도", "The 17 regions", "grid", REGIONS_SQL, "table",
              (("region", "string"), ("ui_initial_claims", "number"), ("ui_initial_claims_7d", "number"),
               ("ui_change_wow_pct", "number"), ("openings_posted_7d", "number"), ("new_job_seekers_7d", "number"),
               ("offers_to_seekers_7d", "number"), ("open_openings", "number")),
              width=24, height=12, label_column="region",
              description="Colour: UI initial claims, last 7 days vs the 7 days before."),
        Panel("industries", "산업별", "By industry", "bar",
              _breakdown_sql("industry", ("ui_initial_claims", "openings_posted", "hires")), "table",
              (("industry", "string"), ("ui_initial_claims", "number"), ("openings_posted", "number"),
               ("hires", "number")), label_column="industry"),
        Panel("occupations", "직업별", "By occupation", "bar",
              _breakdown_sql("occupation", ("ui_initial_claims", "openings_posted", "hires")), "table",
              (("occupation", "string"), ("ui_initial_claims", "number"), ("openings_posted", "number"),
               ("hires", "number")), label_column="occupation"),
        Panel("insurance_by_region", "지역별 고용보험 피보험자격 상실·취득 (기간 합계)",
              "Insured losses and acquisitions by region (over the range)", "table", INSURANCE_BY_REGION_SQL,
              "table", (("region", "string"), ("insured_losses", "number"), ("insured_acquisitions", "number"),
                        ("insured_net_change", "number")), label_column="region",
              description="Employment-insurance coverage lost (이직) and acquired (입직) in each region over the "
                          "range, and the net change (acquisitions − losses); a layoff shows here first."),
        Panel("review", "구인 심사 결과", "Vacancy review outcomes", "bar", REVIEW_SQL, "table",
              (("reason", "string"), ("vacancies", "number")), label_column="reason"),
        Panel("revisions", "발표 수치와 수정 (최근 7일)", "Published figures and their revisions (last 7 days)",
              "table", _revisions_sql(), "table",
              (("day", "string"), ("measure", "string"), ("first", "number"), ("final", "number"),
               ("now", "number"), ("revised", "number")), width=24, height=10, label_column="measure",
              description="Each day's national figure when the day ended (event time), final once the 72 "
                          "hours of allowed lateness had passed, and now; revised = now - at the day's end: "
                          "late events and re-sent duplicates. Empty final: the lateness has not passed yet."),
    ),
)

REGION = Board(
    uid="lmis-region", ko="지역 상세", en="Region drill-down",
    variables=(REGION_VAR, INDUSTRY_VAR, OCCUPATION_VAR),
    panels=(
        Panel("region_headline", "선택 지역: 최근 완결일과 비교", "Chosen regions: the last complete day compared",
              "headline", _headline_sql(_region_headline_rows()), "table", HEADLINE_COLUMNS, width=24, height=9,
              label_column="indicator",
              description="The national headline for the regions chosen (all: Korea), from the region totals."),
        Panel("region_series", "일별 추이", "Daily counts", "timeseries", _region_series_sql(), "time_series",
              (("time", "time"), ("series", "string"), ("value", "number")), width=24, label_column="series",
              y_unit="persons"),
        Panel("region_industries", "산업별", "By industry", "bar",
              _breakdown_sql("industry", ("ui_initial_claims", "openings_posted", "new_job_seekers", "hires"),
                             filtered=True), "table",
              (("industry", "string"), ("ui_initial_claims", "number"), ("openings_posted", "number"),
               ("new_job_seekers", "number"), ("hires", "number")), label_column="industry"),
        Panel("region_insurance", "산업별 고용보험 피보험자격 상실·취득", "Insured losses and acquisitions by industry",
              "bar", _breakdown_sql("industry", ("insured_losses", "insured_acquisitions"), filtered=True), "table",
              (("industry", "string"), ("insured_losses", "number"), ("insured_acquisitions", "number")),
              label_column="industry"),
        Panel("region_occupations", "직업별", "By occupation", "bar",
              _breakdown_sql("occupation", ("ui_initial_claims", "openings_posted", "new_job_seekers", "hires"),
                             filtered=True), "table",
              (("occupation", "string"), ("ui_initial_claims", "number"), ("openings_posted", "number"),
               ("new_job_seekers", "number"), ("hires", "number")), label_column="occupation"),
    ),
)

PIPELINE = Board(
    uid="lmis-pipeline", ko="파이프라인 상태", en="Pipeline health", default_days=2, time_basis="processing",
    panels=(
        Panel("data_through", "집계 반영 시각 (이벤트 시각)", "Data through (event time)", "stat", """
SELECT formatDateTime(argMax(event_time, ts), '%Y-%m-%d %H:%i:%S', 'Asia/Seoul') AS data_through,
       dateDiff('second', argMax(event_time, ts), max(ts)) AS behind_s
FROM pipeline_health WHERE $__timeFilter(ts) AND event_time IS NOT NULL""", "table",
              (("data_through", "string"), ("behind_s", "number")), unit="s", width=24, height=4,
              description="The sources' time (Asia/Seoul) up to which every partition is in the aggregates, and "
                          "how far it is behind the wall clock: seconds live, much more during a replay or "
                          "when a feed stopped. Day-end and final figures are published by this clock."),
        Panel("lag", "토픽별 지연 (메시지)", "Lag by topic (messages)", "timeseries", """
SELECT $__timeInterval(ts) AS time, topic AS series, max(lag) AS lag
FROM pipeline_health WHERE $__timeFilter(ts)
GROUP BY time, series ORDER BY time, series""", "time_series",
              (("time", "time"), ("series", "string"), ("lag", "number")), y_unit="messages"),
        Panel("rate", "처리량 (건/초)", "Events per second", "timeseries", """
SELECT $__timeInterval(ts) AS time, topic AS series, sum(events) / $__interval_s AS events_per_s
FROM pipeline_health WHERE $__timeFilter(ts)
GROUP BY time, series ORDER BY time, series""", "time_series",
              (("time", "time"), ("series", "string"), ("events_per_s", "number")), y_unit="events_per_s"),
        Panel("freshness", "반영 지연 p50/p99 (초)", "Freshness p50/p99 (s)", "timeseries", """
SELECT $__timeInterval(ts) AS time, quantileExactWeighted(0.5)(freshness_p50_s, fresh_events) AS p50,
       max(freshness_p99_s) AS p99
FROM pipeline_health WHERE $__timeFilter(ts) AND fresh_events > 0
GROUP BY time ORDER BY time""", "time_series",
              (("time", "time"), ("p50", "number"), ("p99", "number")), y_unit="seconds",
              description="How long an event took from its arrival to the board, over the events that became "
                          "visible in each interval (the median of the worker's ticks weighted by their events, "
                          "and the worst tick's p99); an interval in which no rollup finished has no point."),
        Panel("source_volumes", "소스별 수신 메시지 (시간별, 자료 시각 최근 7일)",
              "Messages by source (hourly, the last 7 days of the sources' time)", "timeseries", """
WITH (SELECT max(event_time) FROM pipeline_health) AS upto
SELECT toStartOfHour(emitted_at) AS time, source AS series, count() AS received
FROM events
WHERE day BETWEEN toDate(upto - INTERVAL 10 DAY, 'Asia/Seoul') AND toDate(upto + INTERVAL 1 DAY, 'Asia/Seoul')
  AND emitted_at > upto - INTERVAL 7 DAY AND emitted_at <= upto
GROUP BY time, series ORDER BY time, series""", "time_series",
              (("time", "time"), ("series", "string"), ("received", "number")), width=24,
              y_unit="messages", time_axis="data", label_column="series",
              description="Messages each portal or agency sent per hour (by their emission time), over the "
                          "last 7 days up to the time the aggregates hold: a source that falls silent shows as "
                          "a gap in its line while the others go on."),
        Panel("dead_letters", "오류 메시지 사유별", "Dead letters by reason", "bar", """
SELECT reason, uniqExact(topic, partition, offset) AS messages
FROM dead_letters WHERE $__timeFilter(received_at)
GROUP BY reason ORDER BY messages DESC""", "table",
              (("reason", "string"), ("messages", "number")), label_column="reason"),
        Panel("late_duplicates", "지연·중복 (처리일별)", "Late and duplicate events by processing day", "table", """
SELECT day, sum(late) AS too_late, sum(dup) AS duplicates FROM (
  SELECT toDate(received_at, 'Asia/Seoul') AS day, uniqExact(topic, partition, offset) AS late, 0 AS dup
  FROM dead_letters WHERE reason = 'too_late' AND $__timeFilter(received_at) GROUP BY day
  UNION ALL
  SELECT toDate(stored_at, 'Asia/Seoul') AS day, 0 AS late,
         uniqExact(topic, partition, offset) - uniqExact(event_id) AS dup
  FROM events WHERE $__timeFilter(stored_at) GROUP BY day
) GROUP BY day ORDER BY day""", "table",
              (("day", "string"), ("too_late", "number"), ("duplicates", "number"))),
    ),
)

# The matching observatory (issue: online AI job matching). Rows are whole days rewritten by the worker's
# matcher under a newer version: FINAL keeps the newest.
MATCHING = Board(
    uid="lmis-matching", ko="AI 일자리 매칭 관측", en="AI job matching observatory",
    panels=(
        Panel("precision", "Precision@10 (일별, 점진적 검증)", "Precision@10 by day (progressive validation)",
              "timeseries", f"""
SELECT toDateTime(day, 'Asia/Seoul') AS time, ranker AS series, precision_at_10
FROM matching_daily FINAL
WHERE {DAY_RANGE} AND group_kind = 'all' AND queries > 0
ORDER BY time, series""", "time_series",
              (("time", "time"), ("series", "string"), ("precision_at_10", "number")), width=24,
              label_column="series",
              description="Each interview or hire, before the model learns from it: is its vacancy in the top 10 "
                          "of the seeker's candidates? The learned model against the rule-based matcher (same "
                          "occupation and region, newest first) and a random ranking."),
        Panel("quality", "모델과 기준선 (기간)", "Model and baselines over the range", "table", f"""
SELECT ranker, sum(q) AS queries,
       if(sum(q) = 0, NULL, round(sum(h) / (10 * sum(q)), 4)) AS precision_at_10,
       if(sum(q) = 0, NULL, round(sum(g * q) / sum(q), 4)) AS ndcg_at_10,
       if(sum(pairs) = 0, NULL, round(sum(a * pairs) / sum(pairs), 4)) AS auc
FROM (SELECT ranker, queries AS q, hits_at_10 AS h, ndcg_at_10 AS g, auc AS a,
             toInt64(queries) * (toInt64(outcomes) - toInt64(queries)) AS pairs
      FROM matching_daily FINAL WHERE {DAY_RANGE} AND group_kind = 'all')
GROUP BY ranker ORDER BY ranker""", "table",
              (("ranker", "string"), ("queries", "number"), ("precision_at_10", "number"),
               ("ndcg_at_10", "number"), ("auc", "number")), label_column="ranker",
              description="AUC over the range: each day's AUC weighted by its pairs of a good outcome (an "
                          "interview or a hire: the day's queries) and a rejection; a day with only one kind has "
                          "no AUC (it counted as 0 before, and pulled the random baseline to 0.42)."),
        Panel("exposure", "추천 노출과 추천 후 채용", "Exposure and hires after a recommendation", "table", f"""
SELECT toString(d) AS day, r AS recommendations, v AS vacancies_shown, round(g, 3) AS gini,
       round(m, 4) AS max_share, {suppress("h")} AS hires, {suppress("ha")} AS hires_attributed
FROM (SELECT day AS d, recommendations AS r, vacancies_shown AS v, gini AS g, max_share AS m, hires AS h,
             hires_attributed AS ha
      FROM matching_exposure FINAL WHERE {DAY_RANGE})
ORDER BY day""", "table",
              (("day", "string"), ("recommendations", "number"), ("vacancies_shown", "number"),
               ("gini", "number"), ("max_share", "number"), ("hires", "number"), ("hires_attributed", "number")),
              description="Gini over the vacancies shown that day (0: evenly); the largest share one vacancy took "
                          "(capped by exposure control); hires at a vacancy recommended to the seeker on the "
                          "hire's day or in the 30 days before it."),
        Panel("groups", "구직자 집단별 Precision@10", "Precision@10 by seeker group", "table", f"""
SELECT kind, value, sumIf(q, ranker = 'model') AS queries,
       if(queries < {SMALL_CELL}, NULL, round(sumIf(h, ranker = 'model') / (10 * queries), 4)) AS model,
       if(queries < {SMALL_CELL}, NULL,
          round(sumIf(h, ranker = 'rule') / (10 * sumIf(q, ranker = 'rule')), 4)) AS rule
FROM (SELECT group_kind AS kind, group_value AS value, ranker, queries AS q, hits_at_10 AS h
      FROM matching_daily FINAL WHERE {DAY_RANGE} AND group_kind != 'all')
GROUP BY kind, value ORDER BY kind, value""", "table",
              (("kind", "string"), ("value", "string"), ("queries", "number"), ("model", "number"),
               ("rule", "number")), width=24,
              description="By the seeker's age band, sex and region: does the model serve every group as well? "
                          "Groups with fewer than 3 queries are suppressed."),
    ),
)

BOARDS: tuple[Board, ...] = (NATIONAL, REGION, PIPELINE, MATCHING)
BOARD_BY_UID = {b.uid: b for b in BOARDS}


COLUMN_LABELS = {
    "today": ("오늘", "Today"), "yesterday": ("어제", "Yesterday"),
    "unit": ("단위", "Unit"), "ma7": ("7일 평균", "7-day average"), "ma28": ("4주 평균", "4-week average"),
    "change_1d": ("전일 대비", "vs the day before"), "change_7d": ("전주 같은 요일 대비", "vs a week earlier"),
    "change_364d": ("52주 전 대비", "vs 52 weeks earlier"),
    "persons": ("명", "persons"), "openings": ("명(구인)", "openings"), "ratio": ("배", "ratio"),
    "count": ("건", "count"), "seconds": ("초", "seconds"), "received": ("수신", "Received"),
    "same_day_last_week": ("지난주 같은 요일", "Same day last week"),
    "same_day_last_year": ("작년 같은 요일", "Same day last year"),
    "ui_initial_claims": ("실업급여 신규신청", "UI initial claims"),
    "ui_initial_claims_7d": ("실업급여 신청(7일)", "UI claims (7 days)"),
    "ui_change_wow_pct": ("전주 대비(%)", "vs last week (%)"),
    "openings_posted": ("신규 구인인원", "Openings posted"),
    "openings_posted_7d": ("구인인원(7일)", "Openings (7 days)"),
    "new_job_seekers": ("신규 구직자", "New job seekers"), "new_job_seekers_7d": ("구직자(7일)", "Seekers (7 days)"),
    "offers_to_seekers_7d": ("구인배수(7일)", "Offers-to-seekers (7 days)"),
    "open_openings": ("유효 구인인원", "Open openings"),
    "insured_losses": ("피보험자격 상실", "Insured losses"),
    "insured_acquisitions": ("피보험자격 취득", "Insured acquisitions"),
    "insured_net_change": ("순증", "Net change"), "insured_stock": ("피보험자 수", "Insured persons"),
    "hires": ("채용", "Hires"), "vacancies": ("구인 건수", "Vacancies"), "messages": ("메시지", "Messages"),
    "too_late": ("허용 지연 초과", "Too late"), "duplicates": ("중복", "Duplicates"),
    "first": ("마감 시 발표", "At the day's end"), "final": ("확정", "Final"), "now": ("현재", "Now"),
    "revised": ("수정 폭", "Revised by"), "measure": ("지표", "Measure"),
    "data_through": ("집계 반영 시각", "Data through"), "behind_s": ("실시각 대비", "Behind the wall clock"),
    "lag": ("지연", "Lag"), "events_per_s": ("건/초", "Events/s"), "p50": ("p50", "p50"), "p99": ("p99", "p99"),
    "queries": ("평가 건수", "Queries"), "precision_at_10": ("Precision@10", "Precision@10"),
    "ndcg_at_10": ("NDCG@10", "NDCG@10"), "auc": ("AUC", "AUC"), "recommendations": ("추천 수", "Recommendations"),
    "vacancies_shown": ("노출 구인", "Vacancies shown"), "gini": ("지니계수", "Gini"),
    "max_share": ("최대 점유율", "Largest share"), "hires_attributed": ("추천 후 채용", "Hires after recommendation"),
    "kind": ("구분", "Group"), "value": ("값", "Value"), "model": ("학습 모델", "Learned model"),
    "rule": ("규칙 기반", "Rule-based"), "day": ("날짜", "Day"),
}
MEASURE_LABELS = {
    "ui.initial_claim": ("실업급여 신규신청", "UI initial claims"),
    "openings.posted": ("신규 구인인원", "New openings posted"),
    "seeker.registered": ("신규 구직자", "New job seekers"),
    "application.outcome:hired": ("채용", "Hires"),
    "insurance.acquisition": ("피보험자격 취득", "Insured acquisitions"),
    "insurance.loss": ("피보험자격 상실", "Insured losses"),
    "stock.open_openings": ("유효 구인인원", "Open openings"),
    "stock.insured": ("피보험자 수", "Insured persons"),
    "ratio.offers_to_seekers": ("구인배수(유량)", "Offers-to-seekers ratio (flow)"),
    "ratio.stock_offers_to_seekers": ("구인배수(저량)", "Offers-to-seekers ratio (stock)"),
    "this_year": ("올해", "This year"), "last_year": ("작년 같은 요일", "A year earlier"),
    "vacancy.posted": ("게시", "Posted"), "below_min_wage": ("최저임금 미달", "Below minimum wage"),
    "missing_fields": ("필수항목 누락", "Missing fields"), "prohibited_job": ("금지 직종", "Prohibited job"),
    "duplicate_posting": ("중복 게시", "Duplicate posting"),
    "model": ("학습 모델", "Learned model"), "rule": ("규칙 기반 (직종·지역·최신순)", "Rule-based"),
    "random": ("무작위", "Random"),
    # Dead-letter reasons (streams.processing).
    "missing_field": ("필수 항목 누락", "Missing field"), "invalid_field": ("잘못된 값", "Invalid value"),
    "future_occurred_at": ("미래 발생 시각", "Occurred in the future"), "too_late": ("허용 지연 초과", "Too late"),
    "unknown_event_type": ("알 수 없는 이벤트 유형", "Unknown event type"),
    "unsupported_schema_version": ("지원하지 않는 스키마 버전", "Unsupported schema version"),
    "pii_detected": ("개인정보 포함", "Personal data found"), "not_an_object": ("JSON 객체 아님", "Not a JSON object"),
    "malformed_json": ("JSON 형식 오류", "Malformed JSON"),
}
LABEL_NAMESPACES = {"region": "regions", "industry": "industries", "occupation": "occupations"}


def labels(lang: str = "ko") -> dict[str, dict[str, str]]:
    """Labels by namespace: ``region``, ``industry``, ``occupation`` (codes overlap between these lists),
    ``measure`` (measures, series, reasons) and ``column`` (column headers)."""
    i = 0 if lang == "ko" else 1
    out: dict[str, dict[str, str]] = {
        ns: {c.code: (c.ko, c.en)[i] for c in code_list(name)} for ns, name in LABEL_NAMESPACES.items()}
    out["measure"] = {k: v[i] for k, v in MEASURE_LABELS.items()}
    out["measure"].update({c.code: (c.ko, c.en)[i] for c in code_list("sources")})  # the per-source series
    out["column"] = {k: v[i] for k, v in COLUMN_LABELS.items()}
    return out


def label_namespace(column: str | None) -> str:
    return column if column in LABEL_NAMESPACES else "measure"
