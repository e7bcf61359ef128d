"""Every published definition (``sinks.indicators.DEFINITIONS``) computed again from the stored events of a
simulated month -- in plain Python, following the formula an official reads -- and compared with what LMIS
publishes: the daily figures of ``indicator_table`` (the API, ``lmis indicators`` and the board read it) and
the board's headline for the last day."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta

import pytest

from dashboards import panels
from dashboards.boards import NATIONAL, SMALL_CELL
from schemas.calendar import SEOUL
from sinks import indicators as ind
from sinks.readers import first_day, indicator_table
from tests.test_pipeline import registrations_and_placements

FROM, TO = date(2026, 3, 2), date(2026, 3, 29)
DAYS = [FROM + timedelta(days=k) for k in range((TO - FROM).days + 1)]


def _events(client, *types: str) -> list[dict]:
    """The stored events of ``types``, each once (a re-sent copy is the same message)."""
    kinds = ", ".join(f"'{t}'" for t in types)
    rows = client.query(f"SELECT message FROM events WHERE event_type IN ({kinds}) LIMIT 1 BY event_id").result_rows
    return [json.loads(m) for (m,) in rows]


def _at(event: dict) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def _day(event: dict) -> date:
    return _at(event).astimezone(SEOUL).date()


def _daily(events: list[dict], weight=lambda e: 1) -> dict[date, int]:
    out: Counter = Counter()
    for e in events:
        out[_day(e)] += weight(e)
    return out


@pytest.fixture(scope="module")
def recomputed(judged):
    """Each definition's daily national series, from the events by its formula."""
    client = judged[0]
    posted = {bytes(event_id).decode() if not isinstance(event_id, str) else event_id for (event_id,) in client.query(
        "SELECT event_id FROM vacancy_reviews FINAL WHERE decision = 'posted'").result_rows}
    # The review (rules, then duplicate detection) decides which submissions are posted; its decisions
    # are an input here, as they are to the formula ("Σ openings of the vacancies posted").
    submissions = [e for e in _events(client, "vacancy.submitted") if e["event_id"] in posted]
    series = {
        "ui.initial_claim": _daily(_events(client, "ui.initial_claim")),
        "openings.posted": _daily(submissions, lambda e: e["payload"]["openings"]),
        "seeker.registered": _daily(_events(client, "seeker.registered")),
        "application.outcome:hired": _daily([e for e in _events(client, "application.outcome")
                                             if e["payload"]["outcome"] == "hired"]),
        "insurance.acquisition": _daily(_events(client, "insurance.acquisition")),
        "insurance.loss": _daily(_events(client, "insurance.loss")),
    }
    # Open openings at the end of a day: vacancies posted by then and not closed (by an event, or at the
    # end of their deadline day), each with its newest number of openings.
    lifecycle: dict[str, list[dict]] = {}
    for e in _events(client, "vacancy.submitted", "vacancy.updated", "vacancy.closed"):
        lifecycle.setdefault(e["payload"]["vacancy_id"], []).append(e)
    first_submission = {}
    for vacancy, events in lifecycle.items():
        events.sort(key=_at)
        subs = [e for e in events if e["event_type"] == "vacancy.submitted"]
        if subs and subs[0]["event_id"] in posted:
            first_submission[vacancy] = subs[0]
    open_openings: Counter = Counter()
    for vacancy, sub in first_submission.items():
        events = lifecycle[vacancy]
        changes = [e for e in events if e["event_type"] != "vacancy.closed"]
        openings = [e["payload"]["openings"] for e in changes if e["payload"].get("openings")][-1]
        deadlines = [e["payload"]["deadline"] for e in changes if e["payload"].get("deadline")]
        closed = [_day(e) for e in events if e["event_type"] == "vacancy.closed"]
        ends = [d for d in (closed[:1] + [date.fromisoformat(x) for x in deadlines[-1:]])]
        for day in DAYS:
            if _day(sub) <= day and all(day < end for end in ends):
                open_openings[day] += openings
    series["stock.open_openings"] = open_openings
    registrations, placements = registrations_and_placements(client)
    # Insured persons: the EI database's count at the end of the day before the month, plus the month's
    # acquisitions, less its losses, up to the day.
    (base,), = client.query("SELECT sum(insured) FROM insured_stock_base FINAL").result_rows
    net = Counter(series["insurance.acquisition"])
    net.subtract(series["insurance.loss"])
    series["stock.insured"] = {day: base + sum(net[d] for d in DAYS if d <= day) for day in DAYS}
    series["stock.active_seekers"] = {day: sum(ind.active_job_seekers(registrations, placements, day).values())
                                      for day in DAYS}
    return client, series


# A definition -> the column of indicator_table that publishes it (national, per day).
PUBLISHED_AS = {
    "ui.initial_claim": "ui_initial_claims", "openings.posted": "openings_posted",
    "seeker.registered": "new_job_seekers", "application.outcome:hired": "hires",
    "insurance.acquisition": "insured_acquisitions", "insurance.loss": "insured_losses",
    "stock.open_openings": "open_openings", "stock.active_seekers": "active_job_seekers",
    "stock.insured": "insured_stock",
    "ratio.offers_to_seekers": "offers_to_seekers_ratio",
    "ratio.stock_offers_to_seekers": "stock_offers_to_seekers_ratio", "placement_rate": "placement_rate",
}
# The headline's columns: a definition of how a figure is compared -> the column.
HEADLINE_AS = {"ma7": "ma7", "ma28": "ma28", "change_1d": "change_1d", "change_7d": "change_7d",
               "change_364d": "change_364d"}


def test_every_definition_is_checked_here():
    assert set(PUBLISHED_AS) | set(HEADLINE_AS) == set(ind.DEFINITIONS)


def test_each_daily_figure_is_its_formula_over_the_events(recomputed, month_run):
    client, series = recomputed
    published = {date.fromisoformat(r["day"]): r for r in indicator_table(client, FROM, TO)}
    ratios = {"ratio.offers_to_seekers": ("openings.posted", "seeker.registered"),
              "ratio.stock_offers_to_seekers": ("stock.open_openings", "stock.active_seekers"),
              "placement_rate": ("application.outcome:hired", "seeker.registered")}
    for definition, column in PUBLISHED_AS.items():
        for day in DAYS:
            if definition in ratios:
                top, bottom = (series[k].get(day, 0) for k in ratios[definition])
                expected = top / bottom if bottom else None
                assert published[day][column] == pytest.approx(expected), (definition, day)
            else:
                assert published[day][column] == series[definition].get(day, 0), (definition, day)
    # Not vacuous: every count moved through the month, and placements left the seekers' stock.
    assert all(len({series[k].get(d, 0) for d in DAYS}) > 3 for k in PUBLISHED_AS if k not in ratios)
    naive = {day: sum(series["seeker.registered"].get(day - timedelta(days=k), 0) for k in range(90))
             for day in DAYS}
    assert all(series["stock.active_seekers"][d] < naive[d] for d in DAYS[7:])
    # The insured stock is the simulator's truth (its opening stock and flows), and it moves.
    truth = month_run[1]["stocks"]["insured_persons"]
    assert {d: series["stock.insured"][d] for d in DAYS} == {d: truth[d.isoformat()] for d in DAYS}
    assert len(set(series["stock.insured"].values())) > 20


def test_the_headline_compares_by_its_definitions(recomputed):
    client, series = recomputed
    day = date(2026, 3, 27)  # a Friday: every count of the headline above suppression
    data = panels.run(client, NATIONAL, NATIONAL.panels[0], FROM, day, {})
    names = [c["name"] for c in data["columns"]]
    rows = {r[0]: dict(zip(names, r, strict=True)) for r in data["rows"]}

    def shown(v: int | None) -> int | None:  # persons: a count of 1 or 2 is not published
        return None if v is None or 0 < v < SMALL_CELL else v

    for definition in ("ui.initial_claim", "seeker.registered", "insurance.loss"):
        x = {d: series[definition].get(d, 0) for d in DAYS}
        row = rows[definition]
        assert row["value"] == x[day] >= SMALL_CELL
        assert row["ma7"] == round(sum(x[day - timedelta(days=k)] for k in range(7)) / 7, 1)  # (x[t−6]+…+x[t]) ÷ 7
        # (x[t−27] + … + x[t]) ÷ 28, over the days the store holds (0 on a day with data but no such event)
        month = [None if d < first_day(client) else series[definition].get(d, 0)
                 for d in (day - timedelta(days=k) for k in range(27, -1, -1))]
        expected = ind.moving_average(month, 28)[-1]
        assert row["ma28"] == (None if expected is None else round(expected, 1))
        for lag, k in (("1d", 1), ("7d", 7)):  # x[t] − x[t−k], (x[t] ÷ x[t−k] − 1) × 100
            base = shown(x[day - timedelta(days=k)])
            assert row[f"change_{lag}"] == (None if base is None else x[day] - base), (definition, lag)
            assert row[f"pct_{lag}"] == (None if not base else round(100 * (x[day] / base - 1), 1)), (definition, lag)
        assert row["change_364d"] is None  # x[t−364] is before the simulated month: missing, not 0
