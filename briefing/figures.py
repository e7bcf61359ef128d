"""What a briefing states, as plain values (no I/O): each headline figure with its comparisons, the movers,
and how a number is written (small counts of persons suppressed exactly as on the board).

>>> f = Figure.of("ui_initial_claims", 2914, {"day_before": (date(2026, 3, 17), 3010, None),
...                                          "week_before": (date(2026, 3, 11), 2696, None)})
>>> f.comparisons["week_before"].change, round(f.comparisons["week_before"].pct, 1)
(218, 8.1)
>>> fmt_value(f, 2914, "ko"), fmt_change(f.comparisons["week_before"], f, "en")
('2,914', '+218 (+8.1%)')
>>> fmt_value(f, 2, "ko"), fmt_value(f, None, "en")
('<3', '—')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from dashboards.boards import MEASURE_LABELS
from sinks.disclosure import PERSON_MEASURES, SMALL_CELL
from sinks.indicators import INDICATORS, MEASURES

COUNT, PERSONS, NET, RATIO = "count", "persons", "net", "ratio"
# The headline, in the order of the release: (indicator, kind).
HEADLINE: tuple[tuple[str, str], ...] = tuple(
    (name, RATIO if name.endswith("ratio") else NET if name == "insured_net_change"
     else PERSONS if MEASURES.get(name) in PERSON_MEASURES else COUNT)
    for name in ("ui_initial_claims", "openings_posted", "new_job_seekers", "hires", "insured_acquisitions",
                 "insured_losses", "insured_net_change", "open_openings", "offers_to_seekers_ratio",
                 "stock_offers_to_seekers_ratio"))
COMPARISONS = {"day_before": ("전일", "Day before"), "week_before": ("전주 같은 요일", "Same day last week"),
               "year_before": ("작년 같은 요일", "Same day last year")}
# The day each comparison is with: the same weekday a week and 52 weeks earlier (a year earlier, weekday-aligned).
COMPARISON_LAGS = {"day_before": 1, "week_before": 7, "year_before": 364}
MOVER_MEASURES = ("ui_initial_claims", "openings_posted")
MOVER_MIN = 20  # a cell moves only if it counted at least this many on one of the two days (not 4 against 3)


def label(name: str, lang: str) -> str:
    i = 0 if lang == "ko" else 1
    for spec in INDICATORS:
        if spec.name == name:
            return (spec.ko, spec.en)[i]
    return MEASURE_LABELS[MEASURES[name]][i]


@dataclass(frozen=True)
class Comparison:
    day: date
    value: float | None
    holiday: str | None  # the comparison day's holiday, if it was one
    change: float | None
    pct: float | None


def compare(now: float | None, day: date, earlier: float | None, holiday: str | None = None) -> Comparison:
    """``now`` against ``earlier``: the change and percent change (None where either is missing, and the
    percentage where ``earlier`` is 0)."""
    if now is None or earlier is None:
        return Comparison(day, earlier, holiday, None, None)
    return Comparison(day, earlier, holiday, now - earlier, None if earlier == 0 else (now - earlier) / earlier * 100)


@dataclass(frozen=True)
class Figure:
    name: str
    kind: str
    value: float | None
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    ma7: float | None = None
    ma28: float | None = None  # UI claims: their 4-week average

    @classmethod
    def of(cls, name: str, value: float | None, earlier: dict[str, tuple[date, float | None, str | None]],
           ma7: float | None = None, ma28: float | None = None) -> Figure:
        kind = dict(HEADLINE).get(name, COUNT)
        return cls(name, kind, value, {k: compare(value, d, v, h) for k, (d, v, h) in earlier.items()}, ma7, ma28)


@dataclass(frozen=True)
class Mover:
    dimension: str  # region or industry
    code: str
    measure: str
    now: int
    before: int

    @property
    def change(self) -> int:
        return self.now - self.before

    @property
    def pct(self) -> float | None:
        return None if self.before == 0 else self.change / self.before * 100


def movers(dimension: str, measure: str, now: dict[str, int], before: dict[str, int], top: int = 3,
           min_size: int = MOVER_MIN) -> list[Mover]:
    """The ``top`` cells that rose most and the ``top`` that fell most (by count), among those with at least
    ``min_size`` on one of the two days.

    >>> [(m.code, m.change) for m in movers("region", "ui_initial_claims", {"11": 40, "26": 4, "41": 9},
    ...                                     {"11": 25, "26": 3, "41": 30}, top=1)]
    [('11', 15), ('41', -21)]
    """
    cells = [Mover(dimension, c, measure, now.get(c, 0), before.get(c, 0)) for c in sorted(set(now) | set(before))]
    cells = [m for m in cells if max(m.now, m.before) >= min_size and m.change]
    up = sorted((m for m in cells if m.change > 0), key=lambda m: (-m.change, m.code))[:top]
    down = sorted((m for m in cells if m.change < 0), key=lambda m: (m.change, m.code))[:top]
    return up + down


def suppressed(kind: str, value: float | None) -> bool:
    return kind == PERSONS and value is not None and 0 < value < SMALL_CELL


def fmt_number(value: float | None, kind: str = COUNT) -> str:
    """A value as the board writes it: counts with thousands separators, ratios to two decimals, small
    counts of persons as "<3", missing as "—"."""
    if value is None:
        return "—"
    if suppressed(kind, value):
        return f"<{SMALL_CELL}"
    if kind == RATIO:
        return f"{value:.2f}"
    return f"{value:,.0f}" if kind != NET else f"{value:+,.0f}"


def fmt_value(figure: Figure, value: float | None, lang: str = "ko") -> str:
    return fmt_number(value, figure.kind)


def fmt_pct(pct: float | None) -> str:
    return "—" if pct is None else f"{pct:+.1f}%"


def fmt_change(c: Comparison, figure: Figure, lang: str = "ko") -> str:
    """The change against a comparison day: "+218 (+8.1%)"; ratios by points; "—" when a side is missing
    or suppressed (a change would reveal the small count)."""
    if c.change is None or suppressed(figure.kind, figure.value) or suppressed(figure.kind, c.value):
        return "—"
    if figure.kind == RATIO:
        return "0.00" if abs(c.change) < 0.005 else f"{c.change:+.2f}"
    if figure.kind == NET:  # a percentage of a difference that may change sign says nothing
        return f"{c.change:+,.0f}"
    return f"{c.change:+,.0f} ({fmt_pct(c.pct)})"
