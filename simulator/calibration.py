"""National calibration targets and mixes (scale 1 = Korea, Work-net 2025 and the EIS seed figures).

Every annual target is met in expectation for any calendar year: the daily shape (season, weekday, public
holidays, day of month) is normalised over the year, so shapes move events between days, never in or out.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

from schemas.calendar import is_holiday, month_factor

# ---- annual flows at scale 1 ------------------------------------------------------------------------------
OPENINGS_POSTED_PER_YEAR = 1_300_000  # 신규구인인원, Work-net 2025
SEEKERS_PER_YEAR = 3_600_000  # 신규구직자 (flow 구인배수 ≈ 0.36)
PLACEMENTS_PER_YEAR = 880_000  # 취업건수
UI_INITIAL_CLAIMS_PER_MONTH = 86_000  # new UI applicants in a normal month
INSURED_ACQUISITIONS_PER_YEAR = 8_400_000
INSURED_LOSSES_PER_YEAR = 8_160_000
INSURED_STOCK = 15_400_000  # 피보험자 stock at the start of the run
OPEN_OPENINGS_STOCK = 130_000  # valid open openings at any time (target of the lifetimes below)

# ---- vacancy review (the seed: only 60 % of submitted vacancies are posted) ---------------------------------
POSTED_SHARE = 0.60
# Shares of all submissions; cross-portal duplicates are spawned by clean submissions (see engine).
REJECT_SHARES = {"below_min_wage": 0.12, "missing_fields": 0.10, "prohibited_job": 0.05}
DUPLICATE_SHARE = 0.13  # the same vacancy posted again on another portal, merged by the review
OPENINGS_DIST = ((1, 0.80), (2, 0.12), (3, 0.04), (4, 0.02), (5, 0.02))

# ---- vacancy lifetime ---------------------------------------------------------------------------------------
DEADLINE_DAYS = ((30, 0.30), (60, 0.30), (90, 0.25), (120, 0.15))
CLOSE_REASON_SHARES = {"filled": PLACEMENTS_PER_YEAR / OPENINGS_POSTED_PER_YEAR, "withdrawn": 0.06}
CLOSE_REASON_SHARES["expired"] = 1.0 - sum(CLOSE_REASON_SHARES.values())
FILL_DAYS_GAMMA = (2.0, 12.0)  # shape, scale; capped one day before the deadline
UPDATE_SHARE = 0.30  # posted vacancies that get one update (wage or deadline)

# ---- applications -------------------------------------------------------------------------------------------
EXTRA_APPLICANTS_FILLED = 4.0  # Poisson mean of applicants beyond the openings, filled vacancies
APPLICANTS_UNFILLED = 3.0
INTERVIEW_SHARE_FILLED = 0.30
INTERVIEW_SHARE_UNFILLED = 0.15
APPLICATION_WITHDRAW_SHARE = 0.10
SEEKER_ACTIVE_DAYS = 90  # 구직 유효기간
UI_CLAIMANT_SHARE_OF_SEEKERS = 0.29

# ---- UI claims ----------------------------------------------------------------------------------------------
BENEFIT_DAYS = ((120, 0.30), (150, 0.20), (180, 0.20), (210, 0.12), (240, 0.10), (270, 0.08))
REEMPLOYED_SHARE = 0.30
OTHER_END_SHARE = 0.05
FIRST_CERTIFICATION_DAYS = 7
CERTIFICATION_INTERVAL_DAYS = 28

# ---- mixes --------------------------------------------------------------------------------------------------
REGION_SHARES = {
    "11": 0.19, "41": 0.27, "28": 0.06, "26": 0.06, "27": 0.045, "29": 0.028, "30": 0.028, "31": 0.022,
    "36": 0.008, "51": 0.028, "43": 0.033, "44": 0.043, "52": 0.033, "46": 0.035, "47": 0.05, "48": 0.06,
    "50": 0.013,
}
INDUSTRY_SHARES = {
    "A": 0.010, "B": 0.002, "C": 0.240, "D": 0.004, "E": 0.008, "F": 0.070, "G": 0.090, "H": 0.050,
    "I": 0.080, "J": 0.040, "K": 0.020, "L": 0.015, "M": 0.050, "N": 0.100, "O": 0.020, "P": 0.030,
    "Q": 0.130, "R": 0.012, "S": 0.027, "T": 0.001, "U": 0.001,
}
# Regional industry structure: multipliers on the national industry mix.
REGION_INDUSTRY_TILT = {
    "11": {"C": 0.45, "J": 2.2, "K": 2.0, "M": 1.7},
    "41": {"C": 1.25, "J": 1.2},
    "31": {"C": 1.9, "I": 0.8},
    "48": {"C": 1.7},
    "47": {"C": 1.5, "A": 2.5},
    "44": {"C": 1.5, "A": 2.0},
    "43": {"C": 1.4},
    "50": {"I": 2.6, "A": 3.0, "C": 0.3},
    "51": {"I": 1.8, "A": 2.0, "C": 0.5},
    "46": {"A": 3.0, "C": 1.1},
    "52": {"A": 2.5},
    "36": {"O": 4.0, "C": 0.6},
}
# Occupation (KSCO sub-major) mix inside each industry; the rest spread over clerical and elementary work.
INDUSTRY_OCCUPATIONS = {
    "A": {"61": 0.5, "99": 0.3, "63": 0.1, "62": 0.1},
    "B": {"78": 0.4, "91": 0.3, "84": 0.3},
    "C": {"85": 0.14, "86": 0.10, "84": 0.10, "93": 0.16, "74": 0.07, "75": 0.06, "76": 0.04, "23": 0.07,
          "31": 0.08, "83": 0.06, "81": 0.05, "82": 0.03, "89": 0.04},
    "D": {"23": 0.4, "76": 0.3, "31": 0.3},
    "E": {"88": 0.5, "94": 0.3, "87": 0.2},
    "F": {"78": 0.45, "91": 0.25, "23": 0.15, "14": 0.05, "31": 0.10},
    "G": {"52": 0.40, "51": 0.25, "31": 0.15, "92": 0.10, "95": 0.10},
    "H": {"87": 0.55, "92": 0.25, "31": 0.10, "43": 0.10},
    "I": {"44": 0.65, "95": 0.25, "43": 0.10},
    "J": {"22": 0.60, "28": 0.10, "31": 0.15, "51": 0.15},
    "K": {"32": 0.50, "27": 0.25, "51": 0.25},
    "L": {"39": 0.40, "94": 0.40, "31": 0.20},
    "M": {"23": 0.35, "21": 0.15, "27": 0.20, "26": 0.10, "31": 0.20},
    "N": {"94": 0.40, "39": 0.20, "93": 0.20, "41": 0.10, "31": 0.10},
    "O": {"26": 0.30, "31": 0.40, "41": 0.30},
    "P": {"25": 0.70, "31": 0.20, "94": 0.10},
    "Q": {"24": 0.40, "42": 0.45, "31": 0.15},
    "R": {"28": 0.40, "43": 0.40, "94": 0.20},
    "S": {"42": 0.40, "75": 0.25, "39": 0.20, "94": 0.15},
    "T": {"95": 1.0},
    "U": {"31": 0.5, "39": 0.5},
}
BACKGROUND_OCCUPATIONS = {"31": 0.4, "39": 0.2, "93": 0.2, "94": 0.2}
BACKGROUND_SHARE = 0.08
SIZE_BAND_SHARES = {"1-4": 0.25, "5-9": 0.20, "10-29": 0.22, "30-99": 0.17, "100-299": 0.09, "300+": 0.07}
AGE_BAND_SHARES = {"15-29": 0.27, "30-39": 0.20, "40-49": 0.19, "50-59": 0.19, "60+": 0.15}
SEX_SHARES = {"M": 0.52, "F": 0.48}
EDUCATION_SHARES = {"middle": 0.06, "high": 0.38, "college": 0.18, "university": 0.33, "graduate": 0.05}
# Portals on which employers submit vacancies (and on which applications follow them).
VACANCY_SOURCE_SHARES = {"worknet": 0.45, "job-centre": 0.10, "saramin": 0.20, "jobkorea": 0.17, "albamon": 0.08}
SEEKER_SOURCE_SHARES = {"worknet": 0.75, "job-centre": 0.25}

# ---- shapes ------------------------------------------------------------------------------------------------
# By calendar month: schemas/codes/seasonal_months.json (the alerts' baselines expect the same pattern).
MONTH = {feed: tuple(month_factor(feed, date(2026, m, 1)) for m in range(1, 13))
         for feed in ("vacancy", "seeker", "ui", "insurance")}
# Mon..Sun; portals see some weekend traffic, job centres and the insurance DB almost none.
WEEKDAY = {
    "vacancy": (1.25, 1.15, 1.10, 1.05, 0.95, 0.30, 0.20),
    "seeker": (1.25, 1.15, 1.10, 1.05, 0.95, 0.30, 0.20),
    "ui": (1.30, 1.15, 1.10, 1.05, 1.00, 0.02, 0.02),
    "insurance": (1.10, 1.05, 1.05, 1.05, 1.10, 0.15, 0.08),
}
HOLIDAY = {"vacancy": 0.25, "seeker": 0.20, "ui": 0.02, "insurance": 0.10}
# Events per hour of the Asia/Seoul day (office hours, a lunch dip, evening portal use).
HOURLY = {
    "office": (0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.5, 5.0, 10.0, 11.0, 9.0, 5.0, 9.0, 10.0, 10.0, 9.0, 6.0,
               3.0, 1.5, 1.0, 0.8, 0.5, 0.3),
    "portal": (1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4.5, 6.5, 7.0, 6.5, 5.0, 6.0, 6.5, 6.5, 6.0, 5.0,
               4.5, 4.5, 5.0, 5.0, 4.0, 2.5),
}


def daily_shape(flow: str, d: date) -> float:
    """Unnormalised relative volume of ``flow`` on day ``d``.

    ``flow`` is vacancy, seeker, ui, acquisition or loss (the last two share the insurance shape).
    """
    base = "insurance" if flow in ("acquisition", "loss") else flow
    month = MONTH[base][d.month - 1]
    if is_holiday(d) and d.weekday() < 5:
        value = month * HOLIDAY[base]
    else:
        value = month * WEEKDAY[base][d.weekday()]
    # Insured jobs start on the 1st and end on the last day of a month more than on other days.
    if flow == "acquisition" and d.day == 1:
        value *= 2.2
    if flow == "loss" and _is_month_end(d):
        value *= 2.2
    return value


def _is_month_end(d: date) -> bool:
    return date.fromordinal(d.toordinal() + 1).day == 1


@cache
def year_shape_total(flow: str, year: int) -> float:
    start = date(year, 1, 1).toordinal()
    end = date(year + 1, 1, 1).toordinal()
    return sum(daily_shape(flow, date.fromordinal(o)) for o in range(start, end))


def daily_rate(flow: str, annual: float, d: date) -> float:
    """Expected count on ``d`` for an annual total of ``annual`` (scale 1)."""
    return annual * daily_shape(flow, d) / year_shape_total(flow, d.year)


def insured_snapshot(start: date, scale: float) -> list[tuple[date, str, str, int]]:
    """The EI database's count of insured persons at the end of the day before ``start``, by region and
    industry (the regions' shares, each with its industry structure), in whole persons that add up to the
    national stock exactly (largest remainders): what the simulated run starts from.

    >>> rows = insured_snapshot(date(2026, 3, 2), 0.01)
    >>> sum(n for *_, n in rows) == round(INSURED_STOCK * 0.01), rows[0][0].isoformat()
    (True, '2026-03-01')
    """
    total = round(INSURED_STOCK * scale)
    weights = {}
    for region, share in REGION_SHARES.items():
        tilt = REGION_INDUSTRY_TILT.get(region, {})
        mix = {k: v * tilt.get(k, 1.0) for k, v in INDUSTRY_SHARES.items()}
        norm = sum(mix.values())
        weights.update({(region, k): share * v / norm for k, v in mix.items()})
    norm = sum(weights.values())
    exact = {cell: total * w / norm for cell, w in weights.items()}
    whole = {cell: int(x) for cell, x in exact.items()}
    for cell in sorted(exact, key=lambda c: whole[c] - exact[c])[:total - sum(whole.values())]:
        whole[cell] += 1
    as_of = start - timedelta(days=1)
    return [(as_of, region, industry, n) for (region, industry), n in sorted(whole.items())]
