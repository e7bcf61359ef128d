"""Small-cell suppression: what every published output does to a count of fewer than three persons.

A count of 1 or 2 persons in a cell (a day and region, an industry, an age band ...) can point at someone,
so every published output -- the boards, Grafana's panels, the API, ``lmis indicators``, the revisions, the
briefing -- shows it as suppressed (``null``, written "<3"), and every figure that would give it back too: a
ratio, a net change or a 7-day average computed from it. Counts of vacancies and openings are not persons
and are published exactly. Exact small counts go only to an authorised internal caller who asks for them
(the API token with ``raw=true``, or ``lmis indicators --raw`` on the store), marked unsuppressed.

>>> rows = [{"day": "2026-03-02", "ui_initial_claims": 2, "openings_posted": 1, "claims_per_opening": 2.0}]
>>> suppress_indicator_rows(rows)
[{'day': '2026-03-02', 'ui_initial_claims': None, 'openings_posted': 1, 'claims_per_opening': None}]
"""

from __future__ import annotations

from sinks.indicators import INDICATORS, MEASURES

SMALL_CELL = 3
# The measures that count persons (seekers, claimants, the insured, applicants), by their stored keys.
PERSON_MEASURES = frozenset({
    "application.submitted", "application.outcome:interview", "application.outcome:hired",
    "application.outcome:rejected", "application.outcome:withdrawn",
    "seeker.registered", "stock.active_seekers", "ui.initial_claim", "ui.continued_claim", "ui.claim_ended",
    "insurance.acquisition", "insurance.loss", "stock.insured",
})
PERSON_FIELDS = frozenset(name for name, key in MEASURES.items() if key in PERSON_MEASURES)
SUPPRESSED = (f"counts of 1 or 2 persons are null (suppressed, shown as <{SMALL_CELL}), and every figure computed "
              "from one")
UNSUPPRESSED = "UNSUPPRESSED: exact small counts of persons, for authorised internal use only"


def is_small(value: float | None) -> bool:
    """A count of persons that must not be published: 1 or 2 (0 is published: nobody to point at)."""
    return value is not None and 0 < value < SMALL_CELL


def suppress_indicator_rows(rows: list[dict]) -> list[dict]:
    """``sinks.readers.indicator_table`` rows as published: each small count of persons null, and the
    indicators computed from one (a ratio, a net change); a person series' 7-day average whose week holds
    1 or 2 persons null, and its changes with it, and a change whose base week held 1 or 2."""
    out = []
    for row in rows:
        small = {k for k in PERSON_FIELDS if is_small(row.get(k))}
        new = {k: (None if k in small else v) for k, v in row.items()}
        for spec in INDICATORS:
            if spec.name in new and small & set(spec.inputs):
                new[spec.name] = None
        for name in PERSON_FIELDS:
            ma7 = row.get(f"{name}_ma7")
            if ma7 is not None and is_small(round(ma7 * 7)):
                for k in (f"{name}_ma7", f"{name}_ma7_wow", f"{name}_ma7_yoy"):
                    new[k] = None
            for k in (f"{name}_ma7_wow", f"{name}_ma7_yoy"):  # a change gives its base week back
                change = row.get(k)
                if ma7 is not None and change is not None and change != -1 and is_small(round(ma7 * 7 / (1 + change))):
                    new[k] = None
        out.append(new)
    return out


def suppress_revisions(rows: list[dict]) -> list[dict]:
    """``sinks.published.revisions`` rows as published: a person measure's figure of 1 or 2 (at the day's
    end, final or now) null."""
    return [{**r, **{k: None for k in ("first", "final", "now") if r["measure"] in PERSON_MEASURES
                     and is_small(r[k])}} for r in rows]
