"""The Korean calendar that event time follows: Asia/Seoul days and public holidays."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from importlib import resources
from zoneinfo import ZoneInfo

SEOUL = ZoneInfo("Asia/Seoul")
UTC = ZoneInfo("UTC")
KST_OFFSET = timedelta(hours=9)  # Korea has no daylight saving time since 1988.


def seoul_day(ts: datetime) -> date:
    """The Asia/Seoul calendar day an instant belongs to."""
    return ts.astimezone(SEOUL).date()


def seoul_midnight(d: date) -> datetime:
    """The instant an Asia/Seoul calendar day begins."""
    return datetime.combine(d, datetime.min.time(), SEOUL)


@cache
def _holidays() -> tuple[tuple[int, int], dict[str, str], dict[date, str]]:
    raw = json.loads(resources.files("schemas").joinpath("codes", "holidays_kr.json").read_text("utf-8"))
    lo, hi = raw["covered_years"]
    dated: dict[date, str] = {}
    for entry in raw["lunar"].values():
        for d in entry["dates"]:
            dated[date.fromisoformat(d)] = entry["en"]
    for d in raw["substitute"]:
        dated[date.fromisoformat(d)] = "Substitute holiday"
    fixed = {k: v[1] for k, v in raw["fixed"].items()}
    return (lo, hi), fixed, dated


@lru_cache(maxsize=16_384)  # the detectors ask for every day of months of history, many times a day
def holiday_name(d: date) -> str | None:
    """English name of the public holiday on ``d``, or None."""
    _, fixed, dated = _holidays()
    return dated.get(d) or fixed.get(d.strftime("%m-%d"))


def is_holiday(d: date) -> bool:
    return holiday_name(d) is not None


def is_working_day(d: date) -> bool:
    return d.weekday() < 5 and not is_holiday(d)


def holidays_covered(d: date) -> bool:
    """Whether the lunar holidays are known for the year of ``d``."""
    (lo, hi), _, _ = _holidays()
    return lo <= d.year <= hi


def holidays_between(lo: date, hi: date) -> list[date]:
    """The public holidays in [lo, hi]."""
    return [lo + timedelta(days=i) for i in range((hi - lo).days + 1) if is_holiday(lo + timedelta(days=i))]


@cache
def _months() -> dict[str, tuple[float, ...]]:
    raw = json.loads(resources.files("schemas").joinpath("codes", "seasonal_months.json").read_text("utf-8"))
    return {feed: tuple(values) for feed, values in raw["feeds"].items()}


def month_factor(feed: str, d: date) -> float:
    """The relative volume of a feed (vacancy, seeker, ui, insurance) in the month of ``d``
    (``codes/seasonal_months.json``); 1.0 for a feed without a seasonal pattern."""
    months = _months().get(feed)
    return months[d.month - 1] if months else 1.0
