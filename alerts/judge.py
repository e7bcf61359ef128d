"""Judging a day or an hour: the detectors run over plain series and counts, and say which alerts hold.

Pure (no I/O): :mod:`alerts.jobs` reads the inputs through ``sinks`` and stores what these return. The
same inputs give the same alerts, so a replay judges each instant as live streaming did.

>>> from datetime import date, timedelta
>>> start = date(2026, 1, 5)  # a Monday
>>> quiet = {start + timedelta(days=i): 200 + 10 * (i % 3) for i in range(80)}
>>> day = start + timedelta(days=80)
>>> shocked = {**quiet, day: 600}
>>> [a.name for a in labour_market(day, {("ui.initial_claim", "", ""): shocked}, start)]
['LabourMarketSpike']
>>> labour_market(day, {("ui.initial_claim", "", ""): {**quiet, day: 205}}, start)
[]
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from alerts.detectors import EmployerBurst, ShiftDetector, SpikeDetector
from alerts.model import DATA_FAULT, FAMILY_NAMES, LABOUR_MARKET, SIGNAL_MEASURES, Alert
from schemas.calendar import SEOUL, holidays_between, is_holiday, month_factor, seoul_day, seoul_midnight


@dataclass(frozen=True)
class Rules:
    """The thresholds, in one place (docs/operations.md explains each)."""

    history_days: int = 120  # eight weeks of baseline, the month edges before them, and a shift's course
    spike_threshold: float = 4.0  # robust z
    shift_threshold: float = 2.5  # weighted mean of robust z
    min_size: float = 10.0  # the smallest deviation that alerts (4 against 3 never does)
    spike_min_share: float = 0.25  # ... and at least this share of the expected value
    spike_p: float = 1e-7  # ... and this unlikely for a Poisson count of mean ≥ 1 (~2,000 cells a day; a cell
    # whose median is 0 still has a rate above 0)
    shift_min_share: float = 0.15  # a month's seasonal swing (insurance: up to 13 %) is not a shock
    zero_min_expected: float = 20.0  # a measure at 0 where this many were expected is a data fault
    layoff_min_count: int = 10  # an employer's separations for business reasons in the window ...
    layoff_window_days: int = 3
    layoff_ratio: float = 5.0  # ... and this many times its usual count for such a window
    layoff_critical: int = 50
    silent_min_hours: int = 2  # a source silent this long ...
    silent_min_expected: float = 14.0  # ... where at least this many messages came in each comparable span
    silent_weeks: int = 4
    duplicate_min: int = 20  # re-sent copies in an hour ...
    duplicate_share: float = 0.10  # ... and this share of the source's messages then
    dead_letter_min: int = 20  # dead letters in an hour ...
    dead_letter_share: float = 0.02  # ... and this share of the messages
    lag_max: int = 100_000  # messages behind the feeds, not shrinking over the window ...
    freshness_max_s: float = 300.0  # ... or an event visible this long after its arrival (p99), all the window
    pipeline_window: timedelta = timedelta(minutes=10)


RULES = Rules()
# How much more a measure varies than a Poisson count (variance ÷ mean): openings come in postings of one to
# five or more, so their count varies ~E[o²]/E[o] ≈ 1.8 times as much (Work-net's mix, simulator/calibration.py).
DISPERSION = {"openings.posted": 2.0}
DAILY = "alerts.daily"
HOURLY = "alerts.hourly"
DAILY_NAMES = ("LabourMarketSpike", "LabourMarketShift", "LayoffWarning", "MeasureZero")
HOURLY_NAMES = ("SourceSilent", "DuplicateBurst", "DeadLetterRate")
PIPELINE = "alerts.pipeline"  # on the wall clock: the worker's own lag and freshness


def day_end(day: date) -> datetime:
    return seoul_midnight(day + timedelta(days=1)).astimezone(UTC)


def _values(series: dict[date, int], days: list[date]) -> list[tuple[date, float]]:
    """The series over ``days``, 0 where a cell had no events (cells are stored non-empty)."""
    return [(d, float(series.get(d, 0))) for d in days]


def poisson_tail(observed: float, expected: float) -> float:
    """The probability of a Poisson count with mean ``expected`` at least as far from it as ``observed``
    (the upper tail above it, the lower below)."""
    lam, k = max(expected, 1e-9), int(round(observed))
    if lam > 500:  # the normal approximation, with continuity correction
        z = (abs(k - lam) - 0.5) / math.sqrt(lam)
        return 0.5 * math.erfc(z / math.sqrt(2))
    log_pmf = [i * math.log(lam) - lam - math.lgamma(i + 1) for i in range(0, max(k, int(lam)) + 60)]
    if k >= lam:
        return min(1.0, sum(math.exp(v) for v in log_pmf[k:]))
    return min(1.0, sum(math.exp(v) for v in log_pmf[:k + 1]))


def feed_start(national: dict[date, int], days: list[date]) -> date:
    """The first day a measure's feed is whole: its national count at least half the median of its working
    days. Before it (a deployment's first days, the partial tail of a backfill) is no baseline."""
    working = [national.get(d, 0) for d in days if d.weekday() < 5 and not is_holiday(d)]
    level = statistics.median([v for v in working if v > 0] or [0])
    for d in days:
        if d.weekday() < 5 and not is_holiday(d) and national.get(d, 0) >= level / 2 > 0:
            return d
    return days[-1] if days else date.max


def _shift(values: list[tuple[date, float]], rules: Rules, season) -> list:
    """The shift detector run over the series: the verdicts of the days judged since it began firing, if it
    is still firing at the end (a holiday, not judged, does not end a shift); else empty."""
    levels = [v for d, v in values if not is_holiday(d)]
    typical = statistics.median(levels) if levels else 0.0
    detector = ShiftDetector(threshold=rules.shift_threshold, season=season,
                             min_size=max(rules.min_size, rules.shift_min_share * typical))
    episode: list = []
    for d, v in values:
        verdict = detector.score(d, v)
        detector.update(d, v)
        if verdict is not None:
            episode = [*episode, verdict] if verdict.firing else []
    return episode if detector.firing else []


def shift_totals(values: list[tuple[date, float]], episode: list, threshold: float
                 ) -> tuple[float, float, float, float]:
    """A shift's total over its days (those of ``values`` from the episode's first day on) against the
    expected total, and that total's interval (the days' spreads added as independent ones): what a
    sustained shift amounts to, not its last day alone. A day the detector could not judge (a public
    holiday) counts as expected. No episode: all zeros."""
    judged = {v.day: v for v in episode}
    span = [(d, v) for d, v in values if episode and d >= episode[0].day]
    observed = sum(v for _, v in span)
    expected = sum(judged[d].expected if d in judged else v for d, v in span)
    half = threshold * math.sqrt(sum(v.spread ** 2 for v in episode))
    return observed, expected, max(0.0, expected - half), expected + half


def labour_market(day: date, series: dict[tuple[str, str, str], dict[date, int]], first_day: date,
                  rules: Rules = RULES) -> list[Alert]:
    """Spikes (every cell) and sustained shifts (national and regional cells) of the signal measures on
    ``day``; a national or regional measure at 0 where it never is, as a data fault. A cell's spike is left
    out while its shift fires (one alert for a shock that lasts)."""
    lo = max(first_day, day - timedelta(days=rules.history_days))
    if lo > day:
        return []  # a day before the history begins (LMIS_ALERT_HISTORY_FROM) is not judged
    days = [lo + timedelta(days=i) for i in range((day - lo).days + 1)]
    starts = {m: feed_start(series.get((m, "", ""), {}), days) for m in SIGNAL_MEASURES}
    found: list[Alert] = []
    judged_at = day_end(day)
    for (measure, region, industry), cell in sorted(series.items()):
        if measure not in SIGNAL_MEASURES:
            continue
        values = _values(cell, [d for d in days if d >= starts[measure]])
        feed = SIGNAL_MEASURES[measure][2]

        def season(d: date, feed: str = feed) -> float:
            return month_factor(feed, d)

        observed = values[-1][1]
        shifting = False
        if not industry:
            episode = _shift(values, rules, season)
            total, expected, lower, upper = shift_totals(values, episode, rules.shift_threshold)
            # An alert's own numbers say why it fired: a shift whose total is still inside its interval (one
            # spike's echo in the weighted scores) is left to the spike.
            if episode and not lower <= total <= upper:
                shifting = True
                found.append(Alert(
                    "LabourMarketShift", LABOUR_MARKET, "critical" if not region else "warning", judged_at,
                    day, measure, region, observed=total, expected=expected, lower=lower, upper=upper,
                    direction=episode[-1].direction, since=episode[0].day,
                    detail_ko="지속적 변화", detail_en="a sustained shift"))
        spikes = SpikeDetector(threshold=rules.spike_threshold, min_size=rules.min_size, season=season)
        for d, v in values[:-1]:
            spikes.update(d, v)
        verdict = spikes.score(day, observed)
        if verdict is None:
            continue
        if not industry and observed == 0 and verdict.expected >= rules.zero_min_expected:
            found.append(Alert(
                "MeasureZero", DATA_FAULT, "critical", judged_at, day, measure, region, expected=verdict.expected,
                observed=0.0, lower=verdict.lower, upper=verdict.upper, direction="down",
                detail_ko="평소 0이 아닌 지표가 0: 수집 장애 가능성",
                detail_en="never 0 before: a feed is probably broken"))
            continue
        big = abs(observed - verdict.expected) >= rules.spike_min_share * verdict.expected
        spread = DISPERSION.get(measure, 1.0)
        if (verdict.firing and big and not shifting
                and poisson_tail(observed / spread, max(verdict.expected, 1.0) / spread) < rules.spike_p):
            found.append(Alert(
                "LabourMarketSpike", LABOUR_MARKET, "warning", judged_at, day, measure, region, industry,
                observed=observed, expected=verdict.expected, lower=verdict.lower, upper=verdict.upper,
                direction=verdict.direction))
    return found


def layoffs(day: date, separations: Iterable[tuple[str, date, int]], employers: dict[str, tuple[str, str, str]],
            rules: Rules = RULES) -> list[Alert]:
    """Layoff early warnings on ``day``: employers whose separations for business reasons burst (counts per
    employer and day up to ``day``; ``employers``: each one's region, industry and size band)."""
    burst = EmployerBurst(min_count=rules.layoff_min_count, window_days=rules.layoff_window_days,
                          ratio=rules.layoff_ratio)
    for employer, d, n in sorted(separations, key=lambda r: r[1]):
        if d <= day:
            burst.update(employer, d, n)
    found = []
    for employer, count in burst.bursts(day):
        region, industry, size = employers.get(employer, ("", "", ""))
        found.append(Alert(
            "LayoffWarning", LABOUR_MARKET, "critical" if count >= rules.layoff_critical else "warning",
            day_end(day), day, region=region, industry=industry, family="insurance", employer_id=employer,
            size_band=size, observed=float(count), expected=round(burst.usual(employer, day), 1), lower=0.0,
            upper=max(float(rules.layoff_min_count), rules.layoff_ratio * max(burst.usual(employer, day), 1.0)),
            detail_ko=f"최근 {rules.layoff_window_days}일 사업주 사유 이직(상실·실업급여 신청) {count}건",
            detail_en=f"{count} separations for business reasons (insured losses and UI claims) in "
                      f"{rules.layoff_window_days} days"))
    return found


def inhibited(alert: Alert, faults: Iterable[tuple[str, str, datetime, datetime | None]]) -> str:
    """The fingerprint of a data fault (fingerprint, family, from, until or None) in the alert's family
    during its day, which explains a labour-market spike or shift away; '' if none."""
    if alert.cls != LABOUR_MARKET or alert.name == "LayoffWarning" or alert.day is None:
        return ""
    lo, hi = seoul_midnight(alert.day), seoul_midnight(alert.day + timedelta(days=1))
    for fingerprint, family, start, end in faults:
        if family == alert.family and start < hi and (end is None or end > lo):
            return fingerprint
    return ""


def _spans_holiday(lo: datetime, hi: datetime) -> bool:
    return bool(holidays_between(seoul_day(lo), seoul_day(hi)))


def silence_spans(instant: datetime, last: dict[tuple[str, str], datetime], first: dict[tuple[str, str], datetime],
                  rules: Rules = RULES) -> list[tuple[str, str, datetime, datetime]]:
    """For each (source, family) silent at least ``silent_min_hours`` by ``instant``: the same span of each
    of the weeks before, since its ``first`` message (to count what came in then)."""
    spans = []
    for (source, family), t in sorted(last.items()):
        # From the hour after the last message: a feed sending at fixed times (a nightly batch at 23:59)
        # would otherwise find its own batch in each week's span.
        after = t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        # A public holiday is compared with no working day: the hours judged begin after the last one.
        for d in holidays_between(seoul_day(after), seoul_day(instant)):
            after = max(after, seoul_midnight(d + timedelta(days=1)).astimezone(UTC))
        if instant - after >= timedelta(hours=rules.silent_min_hours):
            for k in range(1, rules.silent_weeks + 1):
                lo = after - timedelta(weeks=k)
                if (source, family) in first and lo >= first[source, family]:
                    spans.append((source, family, lo, instant - timedelta(weeks=k)))
    return spans


def silent_sources(instant: datetime, last: dict[tuple[str, str], datetime],
                   spans: list[tuple[str, str, datetime, datetime]], counts: list[int],
                   rules: Rules = RULES) -> list[Alert]:
    """Sources silent longer than their own norm: in every comparable span of the weeks before (holidays
    left out) at least ``silent_min_expected`` messages came in (a Poisson count that size is 0 once in a
    million). The spans judged begin after any public holiday (:func:`silence_spans`)."""
    past: dict[tuple[str, str], list[int]] = {}
    for (source, family, lo, hi), n in zip(spans, counts, strict=True):
        if not _spans_holiday(lo, hi):
            past.setdefault((source, family), []).append(n)
    found = []
    for (source, family), ns in sorted(past.items()):
        since = last[source, family]
        expected = float(min(ns))
        if expected < rules.silent_min_expected:
            continue
        hours = (instant - since).total_seconds() / 3600
        ko, en = FAMILY_NAMES.get(family, (family, family))
        local = since.astimezone(SEOUL).strftime("%Y-%m-%d %H:%M")
        found.append(Alert(
            "SourceSilent", DATA_FAULT, "critical", instant, seoul_day(since), source=source, family=family,
            observed=0.0, expected=expected, lower=0.0, upper=None,
            detail_ko=f"수집원 {source}의 {ko} 이벤트가 {local}(KST)부터 {hours:.0f}시간째 없음 "
                      f"(지난 주들 같은 시간대 최소 {expected:,.0f}건)",
            detail_en=f"no {en} events from {source} since {local} KST ({hours:.0f} h; at least "
                      f"{expected:,.0f} in the same hours of the weeks before)"))
    return found


def duplicate_bursts(instant: datetime, copies: dict[tuple[str, str], tuple[int, int]],
                     rules: Rules = RULES) -> list[Alert]:
    """Sources that re-sent many events already sent, in the hour before ``instant``."""
    found = []
    for (source, family), (messages, duplicates) in sorted(copies.items()):
        if duplicates >= rules.duplicate_min and duplicates >= rules.duplicate_share * messages:
            found.append(Alert(
                "DuplicateBurst", DATA_FAULT, "warning", instant, seoul_day(instant - timedelta(hours=1)),
                source=source, family=family, observed=float(duplicates), expected=0.0,
                detail_ko=f"수집원 {source}가 한 시간에 이미 받은 이벤트 {duplicates:,}건을 다시 보냄 "
                          f"(전체 {messages:,}건; 집계에는 한 번만 반영)",
                detail_en=f"{source} re-sent {duplicates:,} events already received in one hour (of {messages:,}; "
                          "counted once)"))
    return found


def dead_letter_rate(instant: datetime, dead: dict[str, int], stored: int, rules: Rules = RULES) -> list[Alert]:
    """Many messages refused in the hour before ``instant``."""
    total = sum(dead.values())
    if total < rules.dead_letter_min or total < rules.dead_letter_share * (total + stored):
        return []
    share = total / max(1, total + stored)
    reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(dead.items(), key=lambda kv: -kv[1])[:4])
    return [Alert("DeadLetterRate", DATA_FAULT, "warning", instant, seoul_day(instant - timedelta(hours=1)),
                  family="dead_letters", observed=float(total),
                  detail_ko=f"한 시간 동안 메시지 {total:,}건({share:.1%})이 오류로 격리됨: {reasons}",
                  detail_en=f"{total:,} messages ({share:.1%}) dead-lettered in one hour: {reasons}")]



def pipeline_behind(now: datetime, ticks: list[tuple[datetime, int, float]], rules: Rules = RULES) -> list[Alert]:
    """The worker behind its feeds over the last ``pipeline_window`` of health ticks (wall clock): a lag
    above ``lag_max`` that is not shrinking (catching up on a backlog is not a fault), or freshness p99
    above ``freshness_max_s`` at every tick."""
    recent = [t for t in ticks if t[0] >= now - rules.pipeline_window]
    if len(recent) < 3 or recent[0][0] > now - rules.pipeline_window * 0.8:
        return []  # too few ticks to say (a worker just started)
    found = []
    lags = [lag for _, lag, _ in recent]
    if min(lags) > rules.lag_max and lags[-1] >= lags[0]:
        found.append(Alert(
            "PipelineBehind", DATA_FAULT, "critical", now, seoul_day(now), family="pipeline", observed=float(lags[-1]),
            expected=float(rules.lag_max),
            detail_ko=f"처리가 수집을 따라가지 못함: {lags[-1]:,}건 지연, "
                      f"{rules.pipeline_window.seconds // 60}분째 줄지 않음",
            detail_en=f"the worker is {lags[-1]:,} messages behind its feeds and not catching up "
                      f"({rules.pipeline_window.seconds // 60} min)"))
    p99 = [f for _, _, f in recent]
    if min(p99) > rules.freshness_max_s:
        found.append(Alert(
            "PipelineSlow", DATA_FAULT, "warning", now, seoul_day(now), family="pipeline", observed=p99[-1],
            expected=rules.freshness_max_s,
            detail_ko=f"이벤트가 도착 후 {p99[-1]:,.0f}초(p99) 지나서야 집계에 반영됨",
            detail_en=f"events reach the figures {p99[-1]:,.0f} s (p99) after they arrive"))
    return found
