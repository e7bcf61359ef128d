"""A day's briefing read from ClickHouse (through ``sinks``): every number it states, as
:mod:`briefing.figures` values. The counts and indicators are ``sinks.readers.indicator_table``'s -- what
``lmis indicators`` and ``/api/indicators`` return for the same day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from briefing.figures import COMPARISON_LAGS, HEADLINE, MOVER_MEASURES, RATIO, Figure, Mover, fmt_number, movers
from schemas.calendar import holiday_name
from sinks import alert_log, briefing_log
from sinks.indicators import moving_average
from sinks.observatory import matching_exposure, matching_metrics
from sinks.quality import arrived_between, day_quality
from sinks.readers import indicator_table

CHART_DAYS = 56  # the charts' eight weeks
CHART_SERIES = ("ui_initial_claims", "openings_posted", "new_job_seekers")


@dataclass(frozen=True)
class Revision:
    day: date
    name: str
    old: float | None
    new: float | None
    late_events: int  # events of that day that arrived since the earlier briefing was taken

    @property
    def kind(self) -> str:
        return dict(HEADLINE).get(self.name, "count")


@dataclass
class Briefing:
    day: date
    as_of: datetime  # event time the numbers were read at (the 08:00 instant, or now for an ad-hoc one)
    figures: list[Figure]
    movers: list[Mover]
    alerts: list[dict]
    revisions: list[Revision]
    previous_day: date | None
    quality: dict
    silent_sources: list[dict]
    matching: dict | None
    series: dict[str, list[tuple[date, float | None]]] = field(default_factory=dict)

    @property
    def holiday(self) -> str | None:
        return holiday_name(self.day)

    def figure(self, name: str) -> Figure:
        return next(f for f in self.figures if f.name == name)

    def stated(self) -> dict[str, dict[str, float | None]]:
        """The figures this briefing states, by day (what the next one's revisions compare with)."""
        out: dict[str, dict[str, float | None]] = {}
        for f in self.figures:
            out.setdefault(self.day.isoformat(), {})[f.name] = f.value
            for c in f.comparisons.values():
                out.setdefault(c.day.isoformat(), {})[f.name] = c.value
        return out


def _national(client, lo: date, hi: date) -> dict[date, dict]:
    return {date.fromisoformat(r["day"]): r for r in indicator_table(client, lo, hi)}


def _by(client, dimension: str, day: date) -> dict[str, dict[date, dict]]:
    out: dict[str, dict[date, dict]] = {}
    for r in indicator_table(client, day - timedelta(days=7), day, by=(dimension,)):
        out.setdefault(r[dimension], {})[date.fromisoformat(r["day"])] = r
    return out


def _same(a: float | None, b: float | None, kind: str) -> bool:
    return fmt_number(a, kind) == fmt_number(b, kind) if kind == RATIO else a == b


def read(client, day: date, as_of: datetime, lateness: timedelta = timedelta(hours=72),
         previous: dict | None = None) -> Briefing:
    """Everything the briefing for ``day`` says, read now (``as_of``: the event time it stands for); its
    revisions against ``previous`` (a ``briefings`` row; by default the newest kept before ``day``)."""
    rows = _national(client, day - timedelta(days=CHART_DAYS - 1), day)
    year = day - timedelta(days=COMPARISON_LAGS["year_before"])
    rows.update(_national(client, year, year))

    def value(d: date, name: str) -> float | None:
        return rows.get(d, {}).get(name)

    figures = []
    for name, _ in HEADLINE:
        earlier = {k: (day - timedelta(days=lag), value(day - timedelta(days=lag), name),
                       holiday_name(day - timedelta(days=lag))) for k, lag in COMPARISON_LAGS.items()}
        ma7 = rows.get(day, {}).get(f"{name}_ma7")
        if ma7 is None:
            ma7 = moving_average([value(day - timedelta(days=k), name) for k in range(6, -1, -1)])[-1]
        ma28 = None
        if name == "ui_initial_claims":
            ma28 = moving_average([value(day - timedelta(days=k), name) for k in range(27, -1, -1)], 28)[-1]
        figures.append(Figure.of(name, value(day, name), earlier, ma7, ma28))

    moved: list[Mover] = []
    for dimension in ("region", "industry"):
        cells = _by(client, dimension, day)
        for measure in MOVER_MEASURES:
            now = {c: r[day][measure] for c, r in cells.items() if day in r and r[day].get(measure) is not None}
            week = day - timedelta(days=7)
            before = {c: r[week][measure] for c, r in cells.items() if week in r and r[week].get(measure) is not None}
            moved += movers(dimension, measure, now, before)

    previous = previous or briefing_log.previous(client, day)
    revisions: list[Revision] = []
    if previous is not None:
        stated = {date.fromisoformat(d): v for d, v in briefing_log.stated(previous).items()}
        missing = sorted(d for d in stated if d not in rows and d < day)
        for d in missing:
            rows.update(_national(client, d, d))
        late = arrived_between(client, sorted(stated), previous["as_of"], as_of)
        kinds = dict(HEADLINE)
        for d in sorted(stated):
            for name, old in stated[d].items():
                new = value(d, name)
                if d < day and name in kinds and not _same(old, new, kinds[name]):
                    revisions.append(Revision(d, name, old, new, late.get(d, 0)))

    alerts = alert_log.of_day(client, day, as_of)
    silent = [a for a in alerts if a["name"] == "SourceSilent"]
    metrics = {r["ranker"]: r for r in matching_metrics(client, day, day) if r["group"] == ""}
    exposure = matching_exposure(client, day, day)
    matching = None
    if metrics or exposure:
        matching = {"recommendations": exposure[0]["recommendations"] if exposure else None,
                    "rankers": {k: {"queries": v["queries"], "precision_at_10": v["precision_at_10"]}
                                for k, v in metrics.items()}}
    series = {name: [(d, value(d, name)) for d in (day - timedelta(days=k) for k in range(CHART_DAYS - 1, -1, -1))]
              for name in CHART_SERIES}
    return Briefing(day, as_of, figures, moved, alerts, revisions, None if previous is None else previous["day"],
                    day_quality(client, day, lateness), silent, matching, series)
