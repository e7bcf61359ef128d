"""One contract suite for every series detector (alerts.detectors), as river runs one suite on every estimator:
pure and deterministic, quiet on a normal calendar (weekdays, weekends, Seollal and Chuseok), alerting on a
shock, never judging a holiday against working days, total on missing values."""

from __future__ import annotations

import ast
import doctest
import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from alerts import detectors
from alerts.detectors import EmployerBurst, ShiftDetector, SpikeDetector, month_edge
from schemas.calendar import is_holiday, month_factor

DETECTORS = {"spike": lambda: SpikeDetector(min_size=10), "shift": lambda: ShiftDetector(min_size=10)}
START = date(2025, 9, 1)  # Chuseok (2025-10-05..08) and Seollal (2026-02-16..18) inside the series


def normal_day(rng: random.Random, day: date, level: float) -> int:
    """A count with the shape of the real feeds: weekends and holidays low, Poisson noise."""
    mean = level * (0.15 if is_holiday(day) else 0.3 if day.weekday() >= 5 else 1.0)
    # Poisson by inversion of exponential gaps (no numpy needed, deterministic with the seed)
    n, t = 0, rng.expovariate(1.0)
    while t < mean:
        n += 1
        t += rng.expovariate(1.0)
    return n


def run(detector, values: list[tuple[date, float | None]]):
    out = []
    for day, value in values:
        out.append(detector.score(day, value))
        detector.update(day, value)
    return out


def series(seed: int, level: float, days: int = 200, shock: tuple[int, float] | None = None):
    rng = random.Random(seed)
    out = []
    for i in range(days):
        day = START + timedelta(days=i)
        value = normal_day(rng, day, level)
        if shock and i >= shock[0] and not is_holiday(day):
            value = round(value * shock[1])
        out.append((day, value))
    return out


@pytest.mark.parametrize("name", DETECTORS)
@pytest.mark.parametrize("level", [3, 40, 2000])
def test_a_normal_calendar_never_alerts(name, level):
    for seed in range(4):
        verdicts = run(DETECTORS[name](), series(seed, level))
        fired = [v for v in verdicts if v is not None and v.firing]
        assert fired == [], (seed, fired[:3])


@pytest.mark.parametrize("name", DETECTORS)
def test_a_shock_alerts_with_the_expected_value_and_its_interval(name):
    values = series(1, 2000, shock=(150, 1.5))
    verdicts = run(DETECTORS[name](), values)
    first = next(v for v in verdicts if v is not None and v.firing)
    assert 150 <= (first.day - START).days <= 152
    assert first.direction == "up" and first.observed > first.upper >= first.expected >= first.lower
    # Sustained: a shift stays firing on every judged day of the shock (one alert, no flapping).
    if name == "shift":
        judged = [v for v in verdicts[(first.day - START).days:] if v is not None]
        assert judged and all(v.firing for v in judged)


@pytest.mark.parametrize("name", DETECTORS)
def test_a_holiday_is_not_judged_and_does_not_lower_the_working_days_baseline(name):
    detector = DETECTORS[name]()
    after = date(2026, 2, 19)  # the working day after Seollal
    values = series(2, 500, days=(after - START).days)
    verdicts = run(detector, values)
    holidays = [day for (day, _), verdict in zip(values, verdicts, strict=True) if is_holiday(day)]
    assert len(holidays) >= 8 and all(verdicts[(d - START).days] is None for d in holidays)
    # It is judged against working days, not the holiday's low counts.
    assert after.weekday() == 3 and not is_holiday(after)
    assert detector.score(after, 500) is not None and not detector.score(after, 500).firing


@pytest.mark.parametrize("name", DETECTORS)
def test_missing_values_are_skipped_and_the_same_input_gives_the_same_verdicts(name):
    values = [(d, None if i % 11 == 0 else v) for i, (d, v) in enumerate(series(3, 100))]
    first, second = run(DETECTORS[name](), values), run(DETECTORS[name](), values)
    assert first == second
    assert all(v is None for (_, value), v in zip(values, first, strict=True) if value is None)


@pytest.mark.parametrize("name", DETECTORS)
@pytest.mark.parametrize("edge", ["first", "last"])
def test_the_month_edge_pattern_of_insurance_events_never_alerts_but_a_layoff_on_a_month_end_does(name, edge):
    # Insured jobs start on the 1st and end on the last day: 2.2 times a plain day's events (as the feed).
    values = []
    for day, value in series(5, 300, days=230):
        if month_edge(day) == edge:
            value = round(value * 2.2)
        values.append((day, value))
    verdicts = run(DETECTORS[name](), values)
    assert not any(v is not None and v.firing for v in verdicts), [v for v in verdicts if v and v.firing][:2]
    edges = [v for (day, _), v in zip(values, verdicts, strict=True) if month_edge(day) == edge and v]
    assert len(edges) >= 3 and all(v.expected > 400 for v in edges if v.day.weekday() < 5)
    if name == "spike":
        detector = DETECTORS[name]()
        run(detector, values)
        month_end = date(2026, 4, 30) if edge == "last" else date(2026, 4, 1)
        verdict = detector.score(month_end, 2.2 * 300 + 400)
        assert verdict is not None and verdict.firing and verdict.direction == "up"


def test_the_seasonal_months_never_alert_when_the_baseline_knows_them():
    # UI claims: January 1.35, February 1.05 of a plain month (schemas/codes/seasonal_months.json).
    values = [(day, round(v * month_factor("ui", day))) for day, v in series(6, 400, days=230)]

    def fired(season):
        detectors = [SpikeDetector(min_size=10, season=season), ShiftDetector(min_size=60, season=season)]
        return [v for d in detectors for v in run(d, values) if v is not None and v.firing]

    assert fired(lambda d: month_factor("ui", d)) == []
    assert fired(None), "without the seasonal months, January's end reads as a collapse"


@pytest.mark.parametrize("name", DETECTORS)
def test_four_against_three_never_alerts(name):
    values = [(START + timedelta(days=i), 3) for i in range(70)] + [(START + timedelta(days=70), 4)]
    verdicts = run(DETECTORS[name](), values)
    assert not any(v is not None and v.firing for v in verdicts)


def test_the_layoff_burst_names_the_employer_and_ignores_a_steady_large_one():
    burst = EmployerBurst(min_count=10)
    shipyard, retailer = "E00000000000000a1", "E00000000000000b2"
    day0 = date(2026, 1, 1)
    for i in range(75):
        day = day0 + timedelta(days=i)
        burst.update(retailer, day, 20)  # a large employer's normal turnover
        burst.update(shipyard, day, 1 if i % 9 == 0 else 0)
    burst.update(shipyard, day0 + timedelta(days=75), 13)
    burst.update(shipyard, day0 + timedelta(days=76), 12)
    burst.update(retailer, day0 + timedelta(days=76), 20)
    assert burst.bursts(day0 + timedelta(days=76)) == [(shipyard, 25)]
    assert burst.bursts(day0 + timedelta(days=90)) == []  # past the window


def test_detectors_do_no_io_and_their_examples_run():
    tree = ast.parse(Path(detectors.__file__).read_text("utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "math", "statistics", "collections", "dataclasses", "datetime", "schemas"}, \
        imported
    result = doctest.testmod(detectors)
    assert result.attempted >= 15 and result.failed == 0


def test_a_sustained_shift_is_one_alert_stating_its_totals_since_it_began():
    """A national shift reads as what it amounts to (the days' totals against their expected totals), not
    as its last day alone, and a public holiday inside it does not end it."""
    from alerts.judge import labour_market

    start, shock = date(2026, 2, 23), date(2026, 4, 27)  # the shock from a Monday, Children's Day (5/5) in it
    series: dict[date, int] = {}
    for i in range(((shock - start).days) + 14):
        day = start + timedelta(days=i)
        usual = 400 if day.weekday() < 5 else 60
        series[day] = round(usual * (1.4 if day >= shock else 1.0)) + (i * 7) % 11
    found = {}
    for last in (shock + timedelta(days=k) for k in range(14)):
        alerts = labour_market(last, {("ui.initial_claim", "", ""): {d: v for d, v in series.items() if d <= last}},
                               start)
        found[last] = [a for a in alerts if a.name == "LabourMarketShift"]
    firing = [d for d, alerts in found.items() if alerts]
    assert firing and firing[0] <= shock + timedelta(days=3)
    assert firing == [d for d in found if d >= firing[0]], "one episode, holiday included"
    alert = found[max(found)][0]
    assert alert.observed == sum(v for d, v in series.items() if alert.since <= d <= max(found))
    assert alert.lower < alert.expected < alert.upper < alert.observed
    assert f"from {alert.since} to {max(found)}" in alert.summary_en and alert.direction == "up"
