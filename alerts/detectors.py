"""Anomaly detectors for daily labour-market series: small, pure, calendar-aware (no I/O, as river's models).

Each detector takes one day's observation at a time: ``score(day, value)`` judges it against what the detector
has learned so far (a :class:`Verdict`, or None while it cannot judge), then ``update(day, value)`` learns it.
Event time only: the days are Asia/Seoul days of ``occurred_at``, so a replay judges exactly as live did.

The baseline knows the Korean calendar: a day is compared with the same weekday of recent weeks, never a
working day with a public holiday (Seollal and Chuseok move every year: ``schemas.calendar``); a holiday is
not judged at all, and holidays are left out of the baselines of working days; a month's first and last days
(when insured jobs start and end) are compared with the month edges before them. A deviation alerts only past
a robust score (median and MAD) *and* a minimum absolute size, so that 4 against 3 never does.

>>> from datetime import date, timedelta
>>> spikes = SpikeDetector(min_size=20)
>>> start = date(2026, 3, 2)  # a Monday
>>> for i in range(56):
...     day = start + timedelta(days=i)
...     spikes.update(day, 100 + (i % 7) * 3)
>>> spikes.score(start + timedelta(days=56), 104).firing
False
>>> verdict = spikes.score(start + timedelta(days=56), 190)
>>> verdict.firing, verdict.expected, verdict.direction
(True, 100.0, 'up')
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from schemas.calendar import is_holiday

MAD_TO_SIGMA = 1.4826  # a normal distribution's standard deviation is 1.4826 × its MAD


@dataclass(frozen=True)
class Verdict:
    """One observation judged: the expected value and its interval, how far off it is, and whether it alerts."""

    day: date
    observed: float
    expected: float
    lower: float
    upper: float
    score: float  # robust z: (observed − expected) ÷ the baseline's spread
    firing: bool
    direction: str  # "up", "down" or "" (within the interval)
    spread: float = 0.0  # the baseline's spread, as a standard deviation


def month_edge(day: date) -> str:
    """"first" for a month's first day, "last" for its last, "" otherwise: insured jobs start on the 1st and
    end on the last day of a month far more than on other days (the insurance feed's month pattern)."""
    if day.day == 1:
        return "first"
    if (day + timedelta(days=1)).day == 1:
        return "last"
    return ""


class SameWeekdayBaseline:
    """The expected value of a day: the median of the same weekday over the last ``weeks`` weeks, holidays and
    month edges left out, each day taken at its month's seasonal level (``season``: January's UI claims are
    not March's); its spread, as a standard deviation: 1.4826 × the MAD of those values, and at least the
    square root of the expected count (counts vary at least as a Poisson count does: eight weeks' MAD
    alone is often too small and alerted on noise) and ``min_sigma``. A month's first or last day is that
    times the median ratio of the last such days to their own baselines (learnt: insurance events crowd
    there, other feeds not). None for a public holiday (compared with no working day), with fewer than
    ``min_weeks`` comparable weeks, or for a month edge before two such days were seen.

    >>> from datetime import date
    >>> b = SameWeekdayBaseline()
    >>> for week in range(8):
    ...     b.update(date(2026, 3, 9) + timedelta(weeks=week), 10 + week % 2)
    >>> expected, sigma = b.expected(date(2026, 5, 4))
    >>> expected, round(sigma, 2)
    (10.5, 3.24)
    >>> b.expected(date(2026, 5, 5)) is None  # Children's Day
    True
    """

    def __init__(self, weeks: int = 8, min_weeks: int = 4, min_sigma: float = 1.0, edges: int = 4,
                 season: Callable[[date], float] | None = None):
        self.weeks, self.min_weeks, self.min_sigma = weeks, min_weeks, min_sigma
        self.season = season or (lambda _: 1.0)
        self._by_weekday: dict[int, deque[tuple[date, float]]] = {d: deque(maxlen=weeks) for d in range(7)}
        self._edge_ratios: dict[str, deque[tuple[date, float]]] = {e: deque(maxlen=edges) for e in ("first", "last")}

    def update(self, day: date, value: float | None) -> None:
        if value is None or is_holiday(day):
            return
        adjusted = float(value) / self.season(day)  # kept without the month's seasonal level
        edge = month_edge(day)
        if edge:
            ratios = self._edge_ratios[edge]
            values = None if ratios and ratios[-1][0] >= day else self._values(day)
            base = None if values is None else _median(values)  # the level alone: no spread needed here
            if base is not None and base > 0:
                ratios.append((day, adjusted / base))
            return
        past = self._by_weekday[day.weekday()]
        if past and past[-1][0] >= day:
            return  # each day once, in order (a replay gives the same days again)
        past.append((day, adjusted))

    def _values(self, day: date) -> list[float] | None:
        since = day - timedelta(weeks=self.weeks)
        values = [v for d, v in self._by_weekday[day.weekday()] if since <= d < day]
        return values if len(values) >= self.min_weeks else None

    def _plain(self, day: date) -> tuple[float, float] | None:
        values = self._values(day)
        if values is None:
            return None
        median = _median(values)
        return median, MAD_TO_SIGMA * _median([abs(v - median) for v in values])

    def expected(self, day: date) -> tuple[float, float] | None:
        if is_holiday(day):
            return None
        base = self._plain(day)
        if base is None:
            return None
        median, spread = base
        edge = month_edge(day)
        if edge:
            ratios = [r for d, r in self._edge_ratios[edge] if d < day]
            if len(ratios) < 2:
                return None
            ratio = statistics.median(ratios)
            median, spread = median * ratio, spread * ratio + median * (max(ratios) - min(ratios)) / 2
        level = self.season(day)
        median, spread = median * level, spread * level
        return median, max(spread, math.sqrt(max(median, 0.0)), self.min_sigma)


class SpikeDetector:
    """A day far from its same-weekday baseline: robust score beyond ``threshold`` *and* at least ``min_size``
    away (both ways unless ``direction`` is "up" or "down").

    Parameters: ``threshold`` robust z (default 4); ``min_size`` the smallest absolute deviation that alerts;
    ``weeks`` of history in the baseline.
    """

    def __init__(self, threshold: float = 4.0, min_size: float = 10.0, weeks: int = 8, direction: str = "both",
                 season: Callable[[date], float] | None = None):
        self.threshold, self.min_size, self.direction = threshold, min_size, direction
        self.baseline = SameWeekdayBaseline(weeks=weeks, season=season)

    def update(self, day: date, value: float | None) -> None:
        self.baseline.update(day, value)

    def score(self, day: date, value: float | None) -> Verdict | None:
        base = self.baseline.expected(day)
        if base is None or value is None:
            return None
        return _judge(day, float(value), *base, self.threshold, self.min_size, self.direction)


class ShiftDetector:
    """A sustained shift: the exponentially weighted mean of each day's robust score (weight ``alpha``; a score
    counts at most ``clip``, so that one extreme day is a spike, not a shift) beyond ``threshold``, while the
    weighted mean of the deviations is at least ``min_size``. It starts
    firing once and stays firing until the mean score falls back below ``release`` (a national shock lasting weeks
    is one alert, not one a day, and does not flap). The baseline learns only
    from days that are not firing, so a shift does not become the new normal while it lasts.

    >>> from datetime import date, timedelta
    >>> shift = ShiftDetector(min_size=5)
    >>> start, fired = date(2026, 3, 2), []
    >>> for i in range(70):
    ...     day = start + timedelta(days=i)
    ...     verdict = shift.score(day, 100 if i < 49 else 130)
    ...     fired.append(None if verdict is None else verdict.firing)  # None: a holiday, not judged
    ...     shift.update(day, 100 if i < 49 else 130)
    >>> first = fired.index(True)
    >>> first - 49, all(f for f in fired[first:] if f is not None)
    (3, True)
    """

    def __init__(self, threshold: float = 2.5, release: float = 1.0, alpha: float = 0.4, min_size: float = 10.0,
                 weeks: int = 8, direction: str = "both", clip: float = 4.0,
                 season: Callable[[date], float] | None = None):
        self.threshold, self.release, self.alpha, self.clip = threshold, release, alpha, clip
        self.min_size, self.direction = min_size, direction
        self.baseline = SameWeekdayBaseline(weeks=weeks, season=season)
        self.level = 0.0  # the weighted mean of the robust scores
        self.gap = 0.0  # ... and of the deviations themselves
        self.firing = False
        self._last: date | None = None

    def update(self, day: date, value: float | None) -> None:
        if not self.firing:
            self.baseline.update(day, value)

    def score(self, day: date, value: float | None) -> Verdict | None:
        base = self.baseline.expected(day)
        if base is None or value is None:
            return None
        expected, sigma = base
        z = (float(value) - expected) / sigma
        if self._last is None or day > self._last:  # each day moves the level once
            self._last = day
            clipped = max(-self.clip, min(self.clip, z))  # one huge day is a spike, not a shift
            self.level = (1 - self.alpha) * self.level + self.alpha * clipped
            self.gap = (1 - self.alpha) * self.gap + self.alpha * (float(value) - expected)
            big = abs(self.gap) >= self.min_size
            if not self.firing and abs(self.level) >= self.threshold and big and _towards(self.level, self.direction):
                self.firing = True
            elif self.firing and abs(self.level) < self.release:
                self.firing = False
        verdict = _judge(day, float(value), expected, sigma, self.threshold, self.min_size, self.direction)
        return Verdict(day, verdict.observed, expected, verdict.lower, verdict.upper, round(self.level, 3),
                       self.firing, ("up" if self.level > 0 else "down") if self.firing else "", sigma)


class EmployerBurst:
    """Layoff early warning: one employer's separations (insured losses or UI initial claims with a business
    reason) within ``window_days`` reach ``min_count`` and ``ratio`` times its usual count for such a window.
    ``update(employer_id, day, count)``; ``bursts(day)`` lists (employer_id, count in the window) that alert.

    >>> from datetime import date
    >>> burst = EmployerBurst(min_count=10)
    >>> burst.update("E0123456789abcdef", date(2026, 3, 18), 13)
    >>> burst.update("E0123456789abcdef", date(2026, 3, 19), 12)
    >>> burst.bursts(date(2026, 3, 19))
    [('E0123456789abcdef', 25)]
    """

    def __init__(self, min_count: int = 10, window_days: int = 3, ratio: float = 5.0, history_days: int = 90):
        self.min_count, self.window, self.ratio, self.history = min_count, window_days, ratio, history_days
        self._counts: dict[str, dict[date, int]] = {}

    def update(self, employer_id: str, day: date, count: int) -> None:
        days = self._counts.setdefault(employer_id, {})
        days[day] = days.get(day, 0) + int(count)
        for old in [d for d in days if (day - d).days > self.history]:
            del days[old]

    def usual(self, employer_id: str, day: date) -> float:
        """The employer's usual count for a window ending on ``day`` (from the days before the window)."""
        days = self._counts.get(employer_id, {})
        before = sum(n for d, n in days.items() if self.window <= (day - d).days < self.history)
        return before * self.window / max(1, self.history - self.window)

    def bursts(self, day: date) -> list[tuple[str, int]]:
        out = []
        for employer, days in self._counts.items():
            recent = sum(n for d, n in days.items() if 0 <= (day - d).days < self.window)
            if recent >= self.min_count and recent >= self.ratio * max(self.usual(employer, day), 1.0):
                out.append((employer, recent))
        return sorted(out)


def _median(values: list[float]) -> float:
    """statistics.median without its generality (the detectors take a median ~100,000 times a cycle)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _towards(z: float, direction: str) -> bool:
    return direction == "both" or (direction == "up") == (z > 0)


def _judge(day: date, observed: float, expected: float, sigma: float, threshold: float, min_size: float,
           direction: str) -> Verdict:
    z = (observed - expected) / sigma
    half = max(threshold * sigma, min_size)
    firing = abs(z) >= threshold and abs(observed - expected) >= min_size and _towards(z, direction)
    return Verdict(day, observed, expected, max(0.0, expected - half), expected + half, round(z, 3), firing,
                   ("up" if z > 0 else "down") if firing else "", sigma)
