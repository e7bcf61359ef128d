"""Scenarios injected into a simulated run by name, with their knobs."""

from __future__ import annotations

from dataclasses import dataclass

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


def check_names(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in SCENARIOS and n != "all"]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)} or 'all'")
    if "all" in names:
        return tuple(SCENARIOS)
    return tuple(dict.fromkeys(names))
