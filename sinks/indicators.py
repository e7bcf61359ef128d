"""Employment-trend indicators as pure functions over measured counts (no I/O, as river's models).

Each indicator's docstring gives its definition and its source. A ratio with a zero denominator is None,
never a division error or an invented number. ``INDICATORS`` lists them all; one contract suite checks
every entry (tests/test_indicators.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Number = float | int
Series = Sequence[Number | None]

# Measured counts, by their names in the domain -> the measure key the rollup stores.
MEASURES: dict[str, str] = {
    "vacancies_submitted": "vacancy.submitted",
    "vacancies_posted": "vacancy.posted",
    "openings_posted": "openings.posted",
    "vacancies_rejected_below_min_wage": "vacancy.rejected:below_min_wage",
    "vacancies_rejected_missing_fields": "vacancy.rejected:missing_fields",
    "vacancies_rejected_prohibited_job": "vacancy.rejected:prohibited_job",
    "vacancies_merged_duplicate_posting": "vacancy.rejected:duplicate_posting",
    "vacancies_updated": "vacancy.updated",
    "vacancies_closed": "vacancy.closed",
    "vacancies_filled": "vacancy.closed:filled",
    "vacancies_expired": "vacancy.closed:expired",
    "vacancies_withdrawn": "vacancy.closed:withdrawn",
    "openings_filled": "openings.filled",
    "open_vacancies": "stock.open_vacancies",
    "open_openings": "stock.open_openings",
    "active_job_seekers": "stock.active_seekers",
    "applications": "application.submitted",
    "interviews": "application.outcome:interview",
    "hires": "application.outcome:hired",
    "applications_rejected": "application.outcome:rejected",
    "applications_withdrawn": "application.outcome:withdrawn",
    "new_job_seekers": "seeker.registered",
    "ui_initial_claims": "ui.initial_claim",
    "ui_continued_claims": "ui.continued_claim",
    "ui_claims_ended": "ui.claim_ended",
    "insured_acquisitions": "insurance.acquisition",
    "insured_losses": "insurance.loss",
}
STOCKS = {"open_vacancies", "open_openings", "active_job_seekers"}
ACTIVE_SEEKER_DAYS = 90  # 구직 유효기간: a registration is valid for three months


def _ratio(numerator: Number | None, denominator: Number | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def offers_to_seekers_ratio(openings_posted: Number | None, new_job_seekers: Number | None) -> float | None:
    """Flow job-offers-to-applicants ratio (구인배수).

    Definition: new openings posted (persons sought) ÷ new job seekers registered, same period.
    Source: Korea Employment Information Service, Work-net monthly labour-market trend (구인배수 = 신규구인인원 ÷
    신규구직건수).
    """
    return _ratio(openings_posted, new_job_seekers)


def stock_offers_to_seekers_ratio(open_openings: Number | None, active_job_seekers: Number | None) -> float | None:
    """Stock job-offers-to-applicants ratio.

    Definition: openings open at the end of the day ÷ job seekers with a valid registration (registered in the
    last 90 days). Source: KEIS Work-net stock-based 구인배수 (유효구인인원 ÷ 유효구직자수).
    """
    return _ratio(open_openings, active_job_seekers)


def fill_rate(vacancies_filled: Number | None, vacancies_closed: Number | None) -> float | None:
    """Fill rate (충족률).

    Definition: vacancies closed as filled ÷ all vacancies closed (filled, expired, withdrawn), same period.
    Source: KEIS vacancy fill statistics (구인충족률), on closures.
    """
    return _ratio(vacancies_filled, vacancies_closed)


def claims_per_opening(ui_initial_claims: Number | None, openings_posted: Number | None) -> float | None:
    """UI initial claims per new opening.

    Definition: UI initial claims filed ÷ new openings posted, same period. Source: LMIS monitoring ratio,
    after the US DOL practice of relating initial claims to job openings (JOLTS).
    """
    return _ratio(ui_initial_claims, openings_posted)


def insured_net_change(acquisitions: Number | None, losses: Number | None) -> int | None:
    """Net change of insured employment.

    Definition: employment-insurance acquisitions (피보험자격 취득) − losses (상실), same period.
    Source: Ministry of Employment and Labor, Employment Insurance Statistics (고용행정통계).
    """
    if acquisitions is None or losses is None:
        return None
    return int(acquisitions) - int(losses)


def median_time_to_fill(days: Sequence[float]) -> float | None:
    """Median time to fill, in days.

    Definition: median over vacancies closed as filled of (closing time − posting time). Source: KEIS
    vacancy duration statistics (구인 소요기간).
    """
    return float(statistics.median(days)) if days else None


def moving_average(series: Series, window: int = 7) -> list[float | None]:
    """Trailing moving average.

    Definition: mean of the last ``window`` values (7 for daily series: removes the weekday pattern); None
    until ``window`` values exist or when one of them is missing. Source: standard smoothing used by the
    ministry's daily monitoring board.
    """
    out: list[float | None] = []
    for i in range(len(series)):
        part = series[max(0, i - window + 1): i + 1]
        out.append(sum(part) / window if len(part) == window and all(v is not None for v in part) else None)
    return out


def change_over(series: Series, lag: int) -> list[float | None]:
    """Relative change over ``lag`` steps.

    Definition: x[t] ÷ x[t − lag] − 1; None without a base or with a zero base. Source: standard
    period-on-period change.
    """
    out: list[float | None] = []
    for i, value in enumerate(series):
        base = series[i - lag] if i >= lag else None
        out.append(None if value is None or not base else value / base - 1)
    return out


def week_on_week(series: Series) -> list[float | None]:
    """Week-on-week change of a daily series.

    Definition: x[t] ÷ x[t − 7 days] − 1 (same weekday). Source: standard period-on-period change.
    """
    return change_over(series, 7)


def year_on_year(series: Series) -> list[float | None]:
    """Year-on-year change of a daily series.

    Definition: x[t] ÷ x[t − 364 days] − 1 -- 52 weeks back, so that a weekday is compared with the same
    weekday (the monitoring board's "same day last year"). Source: KEIS/MOEL daily monitoring practice.
    """
    return change_over(series, 364)


@dataclass(frozen=True)
class Indicator:
    name: str
    function: Callable
    inputs: tuple[str, ...]
    ko: str
    en: str


INDICATORS: tuple[Indicator, ...] = (
    Indicator("offers_to_seekers_ratio", offers_to_seekers_ratio, ("openings_posted", "new_job_seekers"),
              "구인배수(유량)", "Job-offers-to-applicants ratio (flow)"),
    Indicator("stock_offers_to_seekers_ratio", stock_offers_to_seekers_ratio, ("open_openings", "active_job_seekers"),
              "구인배수(저량)", "Job-offers-to-applicants ratio (stock)"),
    Indicator("fill_rate", fill_rate, ("vacancies_filled", "vacancies_closed"), "충족률", "Fill rate"),
    Indicator("claims_per_opening", claims_per_opening, ("ui_initial_claims", "openings_posted"),
              "구인 1건당 실업급여 신청", "UI initial claims per opening"),
    Indicator("insured_net_change", insured_net_change, ("insured_acquisitions", "insured_losses"),
              "피보험자 순증", "Insured employment net change"),
)
SERIES_INDICATORS: tuple[tuple[str, Callable], ...] = (
    ("ma7", moving_average), ("wow", week_on_week), ("yoy", year_on_year),
)
