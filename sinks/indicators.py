"""Employment-trend indicators as pure functions over measured counts (no I/O, as river's models).

Each indicator's docstring gives its definition and its source. A ratio with a zero denominator is None,
never a division error or an invented number. ``INDICATORS`` lists them all; one contract suite checks
every entry (tests/test_indicators.py).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from schemas.calendar import SEOUL

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
    "insured_stock": "stock.insured",
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
STOCKS = {"open_vacancies", "open_openings", "active_job_seekers", "insured_stock"}
ACTIVE_SEEKER_DAYS = 90  # 구직 유효기간: a registration is valid for three months
# A seeker is placed (취업) by a hire through an application or by a UI claim ending in re-employment (a job
# found without Work-net, known to the job centre). No feed reports a seeker withdrawing their registration.
PLACEMENT_EVENTS = (("application.outcome", "hired"), ("ui.claim_ended", "reemployed"))


def _ratio(numerator: Number | None, denominator: Number | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def offers_to_seekers_ratio(openings_posted: Number | None, new_job_seekers: Number | None) -> float | None:
    """Flow job-offers-to-applicants ratio (구인배수).

    Definition: new openings posted (persons sought) ÷ new job seekers registered, same period.
    Source: Ministry of Employment and Labor, 「고용행정통계로 본 노동시장 동향」 (monthly), Work-net section:
    구인배수 = 신규구인인원 ÷ 신규구직건수 (``DEFINITIONS["ratio.offers_to_seekers"]``).
    """
    return _ratio(openings_posted, new_job_seekers)


def stock_offers_to_seekers_ratio(open_openings: Number | None, active_job_seekers: Number | None) -> float | None:
    """Stock job-offers-to-applicants ratio.

    Definition: openings open at the end of the day ÷ job seekers with a valid registration at its end
    (:func:`active_job_seekers`: registered in the last 90 days and not placed since). Source: the active
    opening-to-application ratio of Japan's MHLW 「一般職業紹介状況」 (有効求人数 ÷ 有効求職者数), applied
    to Work-net registrations (``DEFINITIONS["ratio.stock_offers_to_seekers"]``).
    """
    return _ratio(open_openings, active_job_seekers)


def active_job_seekers(registrations: Iterable[tuple[str, datetime, str]],
                       placements: Iterable[tuple[str, datetime]], day: date) -> dict[str, int]:
    """Job seekers with a valid registration (유효구직자) at the end of ``day``, per region.

    Definition: seekers whose newest registration up to ``day`` is at most 89 days old (구직 유효기간, 90
    days) and who have not been placed since it -- hired through an application, or re-employed as their
    UI claim's end reports (``PLACEMENT_EVENTS``); counted in the region of that registration. Days are
    Asia/Seoul days. ``registrations``: (seeker_id, registered_at, region); ``placements``: (seeker_id,
    placed_at). Source: the concept of 有効求職者 in Japan's MHLW 「一般職業紹介状況」 (a registration valid
    until placed or expired), with Work-net's 90-day validity (``DEFINITIONS["stock.active_seekers"]``).

    >>> from datetime import datetime, date, timezone
    >>> t = lambda d: datetime(2026, 3, d, 3, tzinfo=timezone.utc)
    >>> regs = [("S1", t(2), "11"), ("S2", t(2), "11"), ("S3", t(3), "26")]
    >>> active_job_seekers(regs, [("S2", t(4))], date(2026, 3, 3))
    {'11': 2, '26': 1}
    >>> active_job_seekers(regs, [("S2", t(4))], date(2026, 3, 4))
    {'11': 1, '26': 1}
    """
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), SEOUL)
    newest: dict[str, tuple[datetime, str]] = {}
    for seeker, at, region in registrations:
        if at < end and (seeker not in newest or at > newest[seeker][0]):
            newest[seeker] = (at, region)
    placed = {seeker for seeker, at in placements if seeker in newest and newest[seeker][0] <= at < end}
    oldest = day - timedelta(days=ACTIVE_SEEKER_DAYS - 1)
    return dict(Counter(region for seeker, (at, region) in newest.items()
                        if seeker not in placed and at.astimezone(SEOUL).date() >= oldest))


def fill_rate(vacancies_filled: Number | None, vacancies_closed: Number | None) -> float | None:
    """Fill rate (충족률).

    Definition: vacancies closed as filled ÷ all vacancies closed (filled, expired, withdrawn), same period.
    Source: LMIS's own definition, after the fill rate of Japan's MHLW 「一般職業紹介状況」 (充足率 = 充足数 ÷
    新規求人数), taken here on the vacancies that closed.
    """
    return _ratio(vacancies_filled, vacancies_closed)


def placement_rate(hires: Number | None, new_job_seekers: Number | None) -> float | None:
    """Placement rate (취업률).

    Definition: hires (applications with the outcome hired) ÷ new job seekers registered, same period.
    Source: LMIS's own definition (``DEFINITIONS["placement_rate"]``).
    """
    return _ratio(hires, new_job_seekers)


def claims_per_opening(ui_initial_claims: Number | None, openings_posted: Number | None) -> float | None:
    """UI initial claims per new opening.

    Definition: UI initial claims filed ÷ new openings posted, same period. Source: LMIS's own monitoring
    ratio (no official statistic defines it).
    """
    return _ratio(ui_initial_claims, openings_posted)


def insured_net_change(acquisitions: Number | None, losses: Number | None) -> int | None:
    """Net change of insured employment.

    Definition: employment-insurance acquisitions (피보험자격 취득) − losses (상실), same period.
    Source: Ministry of Employment and Labor, 「고용행정통계로 본 노동시장 동향」 (monthly), employment-insurance
    section (피보험자 취득 − 상실).
    """
    if acquisitions is None or losses is None:
        return None
    return int(acquisitions) - int(losses)


def median_time_to_fill(days: Sequence[float]) -> float | None:
    """Median time to fill, in days.

    Definition: median over vacancies closed as filled of (closing time − posting time), exact (the middle
    value, or the mean of the two middle ones). Source: LMIS's own definition.
    """
    return float(statistics.median(days)) if days else None


def moving_average(series: Series, window: int = 7) -> list[float | None]:
    """Trailing moving average.

    Definition: mean of the last ``window`` values (7 for daily series: removes the weekday pattern); None
    until ``window`` values exist or when one of them is missing. Source: LMIS's own definition
    (``DEFINITIONS["ma7"]``); the 4-week average of claims after the U.S. DOL's weekly claims release.
    """
    out: list[float | None] = []
    for i in range(len(series)):
        part = series[max(0, i - window + 1): i + 1]
        out.append(sum(part) / window if len(part) == window and all(v is not None for v in part) else None)
    return out


def change_over(series: Series, lag: int) -> list[float | None]:
    """Relative change over ``lag`` steps.

    Definition: x[t] ÷ x[t − lag] − 1; None without a base or with a zero base. Source: LMIS's own
    definition (``DEFINITIONS["change_1d"]`` and the others).
    """
    out: list[float | None] = []
    for i, value in enumerate(series):
        base = series[i - lag] if i >= lag else None
        out.append(None if value is None or not base else value / base - 1)
    return out


def week_on_week(series: Series) -> list[float | None]:
    """Week-on-week change of a daily series.

    Definition: x[t] ÷ x[t − 7 days] − 1 (same weekday). Source: LMIS (``DEFINITIONS["change_7d"]``).
    """
    return change_over(series, 7)


def year_on_year(series: Series) -> list[float | None]:
    """Year-on-year change of a daily series.

    Definition: x[t] ÷ x[t − 364 days] − 1 -- 52 weeks back, so that a weekday is compared with the same
    weekday. Source: LMIS (``DEFINITIONS["change_364d"]``).
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
    Indicator("placement_rate", placement_rate, ("hires", "new_job_seekers"), "취업률", "Placement rate"),
    Indicator("claims_per_opening", claims_per_opening, ("ui_initial_claims", "openings_posted"),
              "구인 1건당 실업급여 신청", "UI initial claims per opening"),
    Indicator("insured_net_change", insured_net_change, ("insured_acquisitions", "insured_losses"),
              "피보험자 순증", "Insured employment net change"),
)
SERIES_INDICATORS: tuple[tuple[str, Callable], ...] = (
    ("ma7", moving_average), ("wow", week_on_week), ("yoy", year_on_year),
)


# --- definitions an official can check: what each published figure is, its formula, and where it comes from
MOEL_TRENDS = ("고용노동부, 「고용행정통계로 본 노동시장 동향」 (매월 보도자료)",
               "Ministry of Employment and Labor, Labour Market Trends from Employment Administrative "
               "Statistics (monthly press release)")
MHLW_PLACEMENT = ("厚生労働省, 「一般職業紹介状況（職業安定業務統計）」 (매월): 有効求人倍率",
                  "Ministry of Health, Labour and Welfare (Japan), Report on Employment Service (Employment "
                  "Security Statistics), monthly: active opening-to-application ratio")
DOL_CLAIMS = ("미국 노동부, 「Unemployment Insurance Weekly Claims」 (매주 보도자료): 4주 이동평균",
              "U.S. Department of Labor, Unemployment Insurance Weekly Claims (weekly news release): "
              "4-week moving average")
LMIS_OWN = ("LMIS 정의 (이 저장소의 sinks/indicators.py)", "LMIS definition (sinks/indicators.py in this repository)")


@dataclass(frozen=True)
class Definition:
    """A published figure: its meaning and formula in Korean and English, and the source of the definition
    (a document, its issuer and its section; LMIS's own where no statistic defines it)."""

    ko: str
    en: str
    formula_ko: str
    formula_en: str
    source: tuple[str, str]

    def text(self, lang: str) -> dict[str, str]:
        i = 0 if lang == "ko" else 1
        return {"meaning": (self.ko, self.en)[i], "formula": (self.formula_ko, self.formula_en)[i],
                "source": self.source[i]}


DEFINITIONS: dict[str, Definition] = {
    "ui.initial_claim": Definition(
        "그날 접수된 구직급여(실업급여) 신규 신청 건수 (수급자격 신청인 수)",
        "UI (job-seeker's allowance) initial claims filed that day: claimants applying for eligibility",
        "Σ ui.initial_claim 이벤트 (occurred_at의 서울 날짜 기준, 중복 제외)",
        "Σ ui.initial_claim events (by the Asia/Seoul day of occurred_at, duplicates counted once)",
        (f"{MOEL_TRENDS[0]} — 구직급여 신규신청자", f"{MOEL_TRENDS[1]} — new applicants for job-seeker's allowance")),
    "openings.posted": Definition(
        "그날 게시된 구인공고의 모집 인원 합 (신규 구인인원)", "Persons sought by vacancies posted that day",
        "Σ 게시된 vacancy.submitted의 openings", "Σ openings of the vacancies posted (vacancy.submitted, accepted)",
        (f"{MOEL_TRENDS[0]} — 워크넷 신규구인인원", f"{MOEL_TRENDS[1]} — Work-net new openings")),
    "seeker.registered": Definition(
        "그날 워크넷·고용센터에 새로 등록한 구직자 수 (신규구직건수)", "Job seekers newly registered that day",
        "Σ seeker.registered 이벤트", "Σ seeker.registered events",
        (f"{MOEL_TRENDS[0]} — 워크넷 신규구직건수", f"{MOEL_TRENDS[1]} — Work-net new job seekers")),
    "application.outcome:hired": Definition(
        "지원 결과가 채용(취업)으로 확인된 건수", "Applications whose outcome was a hire",
        "Σ outcome = hired인 application.outcome", "Σ application.outcome events with outcome = hired",
        (f"{MOEL_TRENDS[0]} — 워크넷 취업건수", f"{MOEL_TRENDS[1]} — Work-net placements")),
    "insurance.acquisition": Definition(
        "그날 고용보험 피보험자격을 취득한 사람 수 (입직)", "Persons acquiring employment-insurance coverage that day",
        "Σ insurance.acquisition 이벤트", "Σ insurance.acquisition events",
        (f"{MOEL_TRENDS[0]} — 고용보험 피보험자 취득", f"{MOEL_TRENDS[1]} — insured acquisitions")),
    "insurance.loss": Definition(
        "그날 고용보험 피보험자격을 상실한 사람 수 (이직)", "Persons losing employment-insurance coverage that day",
        "Σ insurance.loss 이벤트", "Σ insurance.loss events",
        (f"{MOEL_TRENDS[0]} — 고용보험 피보험자 상실", f"{MOEL_TRENDS[1]} — insured losses")),
    "stock.open_openings": Definition(
        "그날 끝에 마감되지 않은 구인공고의 모집 인원 합 (유효 구인인원)",
        "Openings of the vacancies still open at the end of the day",
        "Σ openings, 게시 후 마감(충원·만료·철회) 전인 공고", "Σ openings of vacancies posted and not yet closed",
        (f"{MHLW_PLACEMENT[0]} — 有効求人数의 개념", f"{MHLW_PLACEMENT[1]} — the concept of active openings")),
    "stock.insured": Definition(
        "그날 끝의 고용보험 피보험자 수: 고용보험 DB의 최근 집계에 그 뒤의 취득과 상실을 더하고 뺀 값",
        "Persons insured by employment insurance at the end of the day: the EI database's latest count plus the "
        "acquisitions and less the losses since",
        "최근 피보험자 수 집계(기준일 끝) + Σ insurance.acquisition − Σ insurance.loss (기준일 다음 날부터 그날까지)",
        "latest insured count (at the end of its day) + Σ insurance.acquisition − Σ insurance.loss (from the day "
        "after it up to the day)",
        (f"{MOEL_TRENDS[0]} — 고용보험 피보험자 수", f"{MOEL_TRENDS[1]} — insured persons (employment insurance)")),
    "ratio.offers_to_seekers": Definition(
        "구인배수(유량): 구직자 1명당 신규 구인인원", "Offers-to-seekers ratio (flow): new openings per new seeker",
        "신규 구인인원 ÷ 신규 구직자 (같은 날)", "openings posted ÷ new job seekers (same day)",
        (f"{MOEL_TRENDS[0]} — 워크넷 구인배수 (신규구인인원 ÷ 신규구직건수)",
         f"{MOEL_TRENDS[1]} — Work-net offers-to-seekers ratio (new openings ÷ new job seekers)")),
    "stock.active_seekers": Definition(
        "그날 끝에 구직 등록이 유효한 구직자 수 (유효구직자): 등록 후 90일이 지나지 않았고 그 뒤 취업하지 않은 사람",
        "Job seekers whose registration is valid at the end of the day: registered in the last 90 days and not "
        "placed since",
        f"구직자별 가장 최근 등록이 {ACTIVE_SEEKER_DAYS - 1}일 이내이고 그 뒤 채용(application.outcome = hired) 또는 "
        "재취업(ui.claim_ended = reemployed)이 없는 사람의 수, 그 등록의 시도 기준",
        f"seekers whose newest registration is at most {ACTIVE_SEEKER_DAYS - 1} days old with no hire "
        "(application.outcome = hired) or re-employment (ui.claim_ended = reemployed) since, in that "
        "registration's region",
        (f"{MHLW_PLACEMENT[0]} — 有効求職者数의 개념 (워크넷 구직 유효기간 90일 적용)",
         f"{MHLW_PLACEMENT[1]} — the concept of active applications (with Work-net's 90-day validity)")),
    "ratio.stock_offers_to_seekers": Definition(
        "구인배수(저량): 유효구직자 1명당 유효 구인인원",
        "Offers-to-seekers ratio (stock): open openings per seeker with a valid registration",
        "유효 구인인원 ÷ 유효구직자 (같은 날 끝)", "open openings ÷ active job seekers (at the same day's end)",
        (f"{MHLW_PLACEMENT[0]} (有効求人数 ÷ 有効求職者数)", f"{MHLW_PLACEMENT[1]} (active openings ÷ active "
                                                            "applications)")),
    "placement_rate": Definition(
        "취업률: 신규 구직자 1명당 채용 건수", "Placement rate: hires per new job seeker",
        "채용 ÷ 신규 구직자 (같은 기간)", "hires ÷ new job seekers (same period)", LMIS_OWN),
    "ma7": Definition(
        "최근 7일(그날 포함)의 평균: 요일 효과를 없앤 수준", "Mean of the last 7 days (the day included): "
        "the level without the weekday pattern", "(x[t−6] + … + x[t]) ÷ 7", "(x[t−6] + … + x[t]) ÷ 7", LMIS_OWN),
    "change_1d": Definition("전일 대비 증감과 증감률", "Change and % against the day before",
                            "x[t] − x[t−1], (x[t] ÷ x[t−1] − 1) × 100", "x[t] − x[t−1], (x[t] ÷ x[t−1] − 1) × 100",
                            LMIS_OWN),
    "change_7d": Definition("전주 같은 요일 대비 증감과 증감률", "Change and % against the same weekday a week earlier",
                            "x[t] − x[t−7], (x[t] ÷ x[t−7] − 1) × 100", "x[t] − x[t−7], (x[t] ÷ x[t−7] − 1) × 100",
                            LMIS_OWN),
    "change_364d": Definition(
        "52주(364일) 전 같은 요일 대비: 요일이 맞는 전년 비교", "Against the same weekday 52 weeks (364 days) "
        "earlier: a year-ago comparison with the weekday aligned", "x[t] − x[t−364], (x[t] ÷ x[t−364] − 1) × 100",
        "x[t] − x[t−364], (x[t] ÷ x[t−364] − 1) × 100", LMIS_OWN),
    "ma28": Definition(
        "최근 4주(28일, 그날 포함)의 평균: 실업급여 신규신청의 추세를 보는 기준",
        "Mean of the last 4 weeks (28 days, the day included): the trend measure of UI initial claims",
        "(x[t−27] + … + x[t]) ÷ 28", "(x[t−27] + … + x[t]) ÷ 28", DOL_CLAIMS),
}


def definitions(lang: str = "ko") -> dict[str, dict[str, str]]:
    """Every definition in one language: {key: {meaning, formula, source}}."""
    return {k: d.text(lang) for k, d in DEFINITIONS.items()}
