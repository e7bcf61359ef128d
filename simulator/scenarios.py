"""Scenarios injected into a simulated run by name, with their knobs.

On the command line a scenario's knobs follow its name: ``regional_layoff:region=11,day=18,workers=800``
(:func:`parse`); the knobs of each scenario are in :data:`KNOBS`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta

from schemas.calendar import seoul_midnight

SCENARIOS: dict[str, str] = {
    "regional_layoff": "one shipbuilding employer in Gyeongnam lays off workers over a week; UI claims follow",
    "national_shock": "a March-2020-like month: new UI applicants +31k (scale 1) vs normal, fewer vacancies",
    "source_outage": "one portal (saramin) goes silent for 36 h; its in-flight events are back-filled after",
    "duplicate_burst": "one portal (jobkorea) re-sends a whole day of events the next morning",
    "malformed": "broken messages of every kind mixed into the stream (for the dead-letter topic)",
    "late": "1% of leaf events arrive late: most within the allowed lateness, some far beyond it",
}


@dataclass(frozen=True)
class ScenarioPlan:
    """Where each scenario falls, as day offsets from the run's start (clamped to the run)."""

    layoff_day: int = 10
    layoff_region: str = "48"
    layoff_industry: str = "C"
    layoff_employer: str = "E5b1f0c0a5e5e1d00"
    layoff_workers: int = 1500  # at scale 1; at least 60 at any scale so that it shows
    layoff_spread_days: int = 5
    shock_day: int = 7
    shock_days: int = 30
    shock_multipliers: tuple[tuple[str, float], ...] = (
        ("ui", 1 + 31_000 / 86_000), ("loss", 1.10), ("acquisition", 0.93), ("vacancy", 0.85), ("seeker", 1.20),
    )
    outage_source: str = "saramin"
    outage_day: int = 14
    outage_start_hour: int = 9
    outage_hours: int = 36
    duplicate_source: str = "jobkorea"
    duplicate_day: int = 20
    duplicate_resend_hour: int = 10
    malformed_share: float = 0.002
    late_share: float = 0.01
    late_within_hours: tuple[float, float] = (1.0, 36.0)
    late_beyond_hours: tuple[float, float] = (96.0, 144.0)
    late_beyond_share: float = 0.2

    def clamp(self, days: int) -> ScenarioPlan:
        last = max(days - 2, 0)
        return ScenarioPlan(
            **{**self.__dict__,
               "layoff_day": min(self.layoff_day, last), "shock_day": min(self.shock_day, last),
               "outage_day": min(self.outage_day, last), "duplicate_day": min(self.duplicate_day, last)}
        )


# Each scenario's knobs on the command line: knob → ScenarioPlan field.
KNOBS: dict[str, dict[str, str]] = {
    "regional_layoff": {"region": "layoff_region", "industry": "layoff_industry", "employer": "layoff_employer",
                        "day": "layoff_day", "workers": "layoff_workers", "days": "layoff_spread_days"},
    "national_shock": {"day": "shock_day", "days": "shock_days"},
    "source_outage": {"source": "outage_source", "day": "outage_day", "hour": "outage_start_hour",
                      "hours": "outage_hours"},
    "duplicate_burst": {"source": "duplicate_source", "day": "duplicate_day", "hour": "duplicate_resend_hour"},
    "malformed": {"share": "malformed_share"},
    "late": {"share": "late_share"},
}


def parse(specs: list[str] | tuple[str, ...], plan: ScenarioPlan | None = None) -> tuple[tuple[str, ...], ScenarioPlan]:
    """Scenario names and the plan their knobs make: ``["regional_layoff:region=11,day=18", "late"]``."""
    plan = plan or ScenarioPlan()
    names, changes = [], {}
    types = {f.name: f.type for f in fields(ScenarioPlan)}
    for spec in specs:
        name, _, knobs = spec.partition(":")
        names.append(name)
        for knob in filter(None, knobs.split(",")):
            key, eq, value = knob.partition("=")
            allowed = KNOBS.get(name, {})
            if not eq or key not in allowed:
                raise ValueError(f"scenario {name!r} has no knob {key!r}; its knobs: "
                                 f"{', '.join(allowed) or 'none'} (as {name}:knob=value,...)")
            field_name = allowed[key]
            kind = types[field_name]
            try:
                changes[field_name] = int(value) if kind == "int" else float(value) if kind == "float" else value
            except ValueError:
                raise ValueError(f"{name}:{key} must be a number, not {value!r}") from None
    plan = replace(plan, **changes)
    _check(plan)
    return check_names(names), plan


def _check(plan: ScenarioPlan) -> None:
    from schemas.codes import code_list
    from simulator.calibration import SEEKER_SOURCE_SHARES, VACANCY_SOURCE_SHARES

    sources = {*VACANCY_SOURCE_SHARES, *SEEKER_SOURCE_SHARES, "ei-db"}
    if plan.layoff_region not in code_list("regions"):
        raise ValueError(f"regional_layoff:region must be a 시도 code ({', '.join(code_list('regions').values())}), "
                         f"not {plan.layoff_region!r}")
    if plan.layoff_industry not in code_list("industries"):
        raise ValueError(f"regional_layoff:industry must be a KSIC section (A-U), not {plan.layoff_industry!r}")
    if not (len(plan.layoff_employer) == 17 and plan.layoff_employer[0] == "E"
            and all(c in "0123456789abcdef" for c in plan.layoff_employer[1:])):
        raise ValueError(f"regional_layoff:employer must be 'E' and 16 hex digits, not {plan.layoff_employer!r}")
    for knob, source in (("source_outage:source", plan.outage_source), ("duplicate_burst:source",
                                                                         plan.duplicate_source)):
        if source not in sources:
            raise ValueError(f"{knob} must be one of {', '.join(sorted(sources))}, not {source!r}")


def injected(names: tuple[str, ...], plan: ScenarioPlan, start: date) -> list[dict]:
    """Every anomaly a run injects, with its class, cells and event-time window (ISO, UTC): what alerts
    must find (``lmis bench alerts``)."""

    def at(day: int, hour: float = 0) -> datetime:
        return seoul_midnight(start + timedelta(days=day)) + timedelta(hours=hour)

    out = []
    if "regional_layoff" in names:
        out.append({"scenario": "regional_layoff", "class": "labour_market", "region": plan.layoff_region,
                    "industry": plan.layoff_industry, "employer_id": plan.layoff_employer,
                    "from": at(plan.layoff_day), "until": at(plan.layoff_day + plan.layoff_spread_days)})
    if "national_shock" in names:
        out.append({"scenario": "national_shock", "class": "labour_market", "region": "",
                    "from": at(plan.shock_day), "until": at(plan.shock_day + plan.shock_days)})
    if "source_outage" in names:
        lo = at(plan.outage_day, plan.outage_start_hour)
        out.append({"scenario": "source_outage", "class": "data_fault", "source": plan.outage_source,
                    "from": lo, "until": lo + timedelta(hours=plan.outage_hours)})
    if "duplicate_burst" in names:
        lo = at(plan.duplicate_day + 1, plan.duplicate_resend_hour)
        out.append({"scenario": "duplicate_burst", "class": "data_fault", "source": plan.duplicate_source,
                    "from": lo, "until": lo + timedelta(hours=1)})
    return [{**a, "from": a["from"].isoformat(), "until": a["until"].isoformat()} for a in out]


def check_names(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in SCENARIOS and n != "all"]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)} or 'all'")
    if "all" in names:
        return tuple(SCENARIOS)
    return tuple(dict.fromkeys(names))
