"""The calibrated labour-market simulator.

Each entity's whole future is drawn at its birth (a vacancy's review outcome, lifetime, applicants and
their outcome days; a UI claim's certifications and end), from a random stream seeded by
(seed, day, flow). Everything that decides *how many* events fall on a day is drawn first from that
stream; cells, people and times are drawn after it, or from a separate detail stream. So the count-only
mode (used to check the calibration over a national year) produces exactly the daily totals of the full
mode, without building a single event.

Entities born during a warm-up before ``start`` exist so that the run starts with realistic stocks; those
still alive at ``start`` are emitted in full (their earlier events keep their real, earlier times).
"""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import orjson

from schemas.calendar import SEOUL, is_working_day
from schemas.codes import code_list, minimum_wage, occupation_sub_majors, region_coordinates
from schemas.events import topic_of
from simulator import calibration as cal
from simulator._hidden import haversine_km, suitability
from simulator.scenarios import ScenarioPlan, check_names
from simulator.truth import Truth

FLOWS = {"vacancy": 1, "seeker": 2, "ui": 3, "acquisition": 4, "loss": 5, "layoff": 6, "detail": 7, "inject": 8}
DAY_MS = 86_400_000
REGIONS = code_list("regions").values()
INDUSTRIES = code_list("industries").values()
OCCUPATIONS = occupation_sub_majors()
EDU = list(cal.EDUCATION_SHARES)
EDU_RANK = {c.code: int(c.extra["rank"]) for c in code_list("education_levels")}
WAGE_HOURS = {c.code: int(c.extra["hours"]) for c in code_list("wage_types")}
SKILLS = code_list("skills").values()
QUALS = code_list("qualifications").values()
PROHIBITED = [c.code for c in code_list("prohibited_job_terms")]
OCC_LABEL = {c.code: c.ko for c in code_list("occupations")}
COORDS = region_coordinates()
REVIEW_CLASSES = ("posted", "below_min_wage", "missing_fields", "prohibited_job")
CLOSE_REASONS = ("filled", "withdrawn", "expired")
HOURLY_BASE = {"1": 28_000, "2": 21_000, "3": 14_500, "4": 11_800, "5": 13_000, "6": 11_500, "7": 15_000,
               "8": 13_800, "9": 11_000, "A": 15_000}
UI_SEPARATION = {"contract_expiry": 0.35, "recommended_resignation": 0.25, "dismissal": 0.12,
                 "business_closure": 0.13, "voluntary_justified": 0.10, "retirement": 0.05}
LOSS_SEPARATION = {"voluntary": 0.45, "contract_expiry": 0.25, "dismissal": 0.08, "recommended_resignation": 0.07,
                   "business_closure": 0.05, "retirement": 0.05, "voluntary_justified": 0.05}
EMPLOYMENT_TYPES = {"permanent": 0.55, "fixed_term": 0.25, "part_time": 0.15, "daily": 0.05}
WAGE_TYPES = {"monthly": 0.60, "hourly": 0.25, "annual": 0.10, "daily": 0.05}
TITLE_WORDS = ("신입", "경력", "정규직", "주 5일", "급구", "장기근무", "우대", "교대", "주간", "오전", "오후",
               "4대보험", "상여금", "기숙사", "통근버스", "인근 거주자")


def _probs(d: dict[str, float], keys: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
    keys = keys or list(d)
    p = np.array([d.get(k, 0.0) for k in keys], dtype=float)
    return p / p.sum()


def _mean_openings() -> float:
    return sum(o * p for o, p in cal.OPENINGS_DIST)


# Submissions that are not cross-portal duplicates, per year at scale 1, and the review mix among them.
_BASE_SHARE = 1.0 - cal.DUPLICATE_SHARE
SUBMISSIONS_BASE_PER_YEAR = cal.OPENINGS_POSTED_PER_YEAR / (cal.POSTED_SHARE / _BASE_SHARE) / _mean_openings()
REVIEW_P = np.array([cal.POSTED_SHARE, *cal.REJECT_SHARES.values()]) / _BASE_SHARE
DUPLICATE_P = cal.DUPLICATE_SHARE / cal.POSTED_SHARE  # a posted vacancy is cross-posted with this chance


def _cells_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    region_p = _probs(cal.REGION_SHARES, list(REGIONS))
    ind_base = _probs(cal.INDUSTRY_SHARES, list(INDUSTRIES))
    ind_cum = np.zeros((len(REGIONS), len(INDUSTRIES)))
    for r, code in enumerate(REGIONS):
        tilt = np.array([cal.REGION_INDUSTRY_TILT.get(code, {}).get(i, 1.0) for i in INDUSTRIES])
        p = ind_base * tilt
        ind_cum[r] = np.cumsum(p / p.sum())
    occ_cum = np.zeros((len(INDUSTRIES), len(OCCUPATIONS)))
    background = _probs(cal.BACKGROUND_OCCUPATIONS, list(OCCUPATIONS))
    for i, ind in enumerate(INDUSTRIES):
        p = _probs(cal.INDUSTRY_OCCUPATIONS[ind], list(OCCUPATIONS))
        p = (1 - cal.BACKGROUND_SHARE) * p + cal.BACKGROUND_SHARE * background
        occ_cum[i] = np.cumsum(p / p.sum())
    return region_p, ind_cum, occ_cum


REGION_P, IND_CUM, OCC_CUM = _cells_tables()


def _pick_rows(rng: np.random.Generator, cum: np.ndarray, rows: np.ndarray) -> np.ndarray:
    u = rng.random(len(rows))
    return np.minimum((u[:, None] > cum[rows]).sum(axis=1), cum.shape[1] - 1)


REGION_KM = {(a, b): haversine_km(COORDS[a], COORDS[b]) for a in COORDS for b in COORDS}
ALTERNATIVES_KEPT = 200  # recent vacancies per occupation a seeker may weigh
APPLICANTS_DRAWN = 8  # seekers who look at a vacancy, per application it gets
ALTERNATIVES_WEIGHED = 8
CHOICE_NOISE = 0.25

class Detail(random.Random):
    """Per-event randomness (ids, times, wording): Python's generator is far cheaper per call than numpy's."""

    def integers(self, lo: int, hi: int) -> int:
        return self.randrange(lo, hi)

    def pick(self, seq):
        return seq[self.randrange(len(seq))]

    def some(self, seq, k: int) -> list:
        return self.sample(seq, k)

    def lognormal(self, mu: float, sigma: float) -> float:
        return self.lognormvariate(mu, sigma)

    def gamma(self, shape: float, scale: float) -> float:
        return self.gammavariate(shape, scale)

    def normal(self, mu: float, sigma: float) -> float:
        return self.gauss(mu, sigma)

    def exponential(self, scale: float) -> float:
        return self.expovariate(1.0 / scale)

    def bytes(self, n: int) -> bytes:
        return self.randbytes(n)


_HOUR_CUM = {k: list(itertools.accumulate(v)) for k, v in cal.HOURLY.items()}


def _draw_cells(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Region, industry (given the region) and occupation (given the industry) indexes of ``n`` entities."""
    region = rng.choice(len(REGIONS), size=n, p=REGION_P)
    ind = _pick_rows(rng, IND_CUM, region)
    return region, ind, _pick_rows(rng, OCC_CUM, ind)


def _choice(rng: np.random.Generator, d: dict, n: int) -> np.ndarray:
    return rng.choice(len(d), size=n, p=_probs(d))


@dataclass
class SimConfig:
    seed: int
    start: date
    days: int
    scale: float
    scenarios: tuple[str, ...] = ()
    warmup_days: int = 150
    plan: ScenarioPlan | None = None  # the scenarios' knobs (None: the defaults)

    def __post_init__(self) -> None:
        self.scenarios = check_names(self.scenarios)
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if not 0 < self.scale <= 10:
            raise ValueError("scale must be in (0, 10]")


@dataclass(order=True)
class Message:
    """One message as it goes on the wire, in emission order."""

    emit_ms: int
    seq: int
    topic: str = field(compare=False)
    key: str = field(compare=False)
    value: bytes = field(compare=False)


@dataclass
class _Pending:
    occurred_ms: int
    seq: int
    doc: dict
    entity: str  # entity id whose life this event belongs to (for outage drops)
    birth: bool = False


class Simulator:
    """Deterministic event source: ``messages()`` yields the stream, ``count_only()`` the daily totals."""

    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        self.plan = (cfg.plan or ScenarioPlan()).clamp(cfg.days)
        self.W = cfg.warmup_days
        self.n_days = self.W + cfg.days
        self.day0 = cfg.start - timedelta(days=self.W)
        self.dates = [self.day0 + timedelta(days=i) for i in range(self.n_days + 400)]
        midnight = datetime(self.day0.year, self.day0.month, self.day0.day, tzinfo=SEOUL)
        self.t0_ms = int(midnight.timestamp() * 1000)
        # Next working day index for each day (UI certifications happen at job centres).
        work = np.array([is_working_day(d) for d in self.dates])
        nxt = np.empty(len(work), dtype=np.int64)
        following = len(work) + 10
        for i in range(len(work) - 1, -1, -1):
            if work[i]:
                following = i
            nxt[i] = following
        self.next_working = nxt
        self.truth = Truth(cfg, self.dates, self.W)
        self._seq = 0
        self._buckets: dict[int, list[_Pending]] = defaultdict(list)
        self._emit: dict[int, list[Message]] = defaultdict(list)
        self._seekers: list[dict] = []
        self._by_occ: dict[str, list[int]] = defaultdict(list)
        self._by_major: dict[str, list[int]] = defaultdict(list)
        # Recently posted vacancies per occupation: the alternatives a seeker weighs a vacancy against.
        self._recent_vacancies: dict[str, deque] = defaultdict(lambda: deque(maxlen=ALTERNATIVES_KEPT))
        self._recent_claimants: dict[str, list[str]] = defaultdict(list)
        self._dropped_entities: set[str] = set()

    # ------------------------------------------------------------------ randomness
    def _rng(self, day: int, flow: str, sub: int = 0) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.cfg.seed, day, FLOWS[flow], sub])))

    def _detail_rng(self, day: int, flow: str) -> Detail:
        state = np.random.SeedSequence([self.cfg.seed, day, FLOWS[flow]]).generate_state(4)
        return Detail(int.from_bytes(state.tobytes(), "little"))

    def _rate(self, flow: str, annual: float, day: int) -> float:
        lam = cal.daily_rate(flow, annual, self.dates[day]) * self.cfg.scale
        if "national_shock" in self.cfg.scenarios:
            rel = day - self.W - self.plan.shock_day
            if 0 <= rel < self.plan.shock_days:
                lam *= dict(self.plan.shock_multipliers).get(flow, 1.0)
        return lam

    # ------------------------------------------------------------------ plans (count-relevant draws first)
    def _plan_vacancies(self, day: int) -> dict:
        rng = self._rng(day, "vacancy")
        n = int(rng.poisson(self._rate("vacancy", SUBMISSIONS_BASE_PER_YEAR, day)))
        review = rng.choice(len(REVIEW_CLASSES), size=n, p=REVIEW_P)
        openings = np.array([o for o, _ in cal.OPENINGS_DIST])[
            rng.choice(len(cal.OPENINGS_DIST), size=n, p=[p for _, p in cal.OPENINGS_DIST])]
        deadline = np.array([d for d, _ in cal.DEADLINE_DAYS])[
            rng.choice(len(cal.DEADLINE_DAYS), size=n, p=[p for _, p in cal.DEADLINE_DAYS])]
        close = rng.choice(3, size=n, p=_probs(cal.CLOSE_REASON_SHARES, list(CLOSE_REASONS)))
        fill = np.minimum(1 + np.floor(rng.gamma(*cal.FILL_DAYS_GAMMA, size=n)).astype(np.int64), deadline - 1)
        withdraw = rng.integers(1, deadline)
        life = np.where(close == 0, fill, np.where(close == 1, withdraw, deadline))
        posted = review == 0
        dup = posted & (rng.random(n) < DUPLICATE_P)
        dup_offset = rng.integers(0, 3, size=n)
        update = posted & (rng.random(n) < cal.UPDATE_SHARE)
        update_offset = np.floor(rng.random(n) * life).astype(np.int64)
        filled = posted & (close == 0)
        applicants = np.where(filled, openings + rng.poisson(cal.EXTRA_APPLICANTS_FILLED, size=n),
                              rng.poisson(cal.APPLICANTS_UNFILLED, size=n))
        applicants = np.where(posted, applicants, 0)
        app_offsets = np.floor(rng.random(int(applicants.sum())) *
                               np.repeat(np.floor(0.6 * life) + 1, applicants)).astype(np.int64)
        interviews = np.where(filled, openings + rng.binomial(np.maximum(applicants - openings, 0),
                                                                   cal.INTERVIEW_SHARE_FILLED),
                              rng.binomial(applicants, cal.INTERVIEW_SHARE_UNFILLED))
        app_withdrawn = rng.binomial(applicants - interviews, cal.APPLICATION_WITHDRAW_SHARE)
        hires = np.where(filled, openings, 0)
        return dict(rng=rng, n=n, review=review, openings=openings, deadline=deadline, close=close, life=life,
                    posted=posted, dup=dup, dup_offset=dup_offset, update=update, update_offset=update_offset,
                    applicants=applicants, app_offsets=app_offsets, interviews=interviews,
                    app_withdrawn=app_withdrawn, hires=hires)

    def _plan_claims(self, rng: np.random.Generator, n: int) -> dict:
        benefit = np.array([d for d, _ in cal.BENEFIT_DAYS])[
            rng.choice(len(cal.BENEFIT_DAYS), size=n, p=[p for _, p in cal.BENEFIT_DAYS])]
        u = rng.random(n)
        end_reason = np.where(u < cal.REEMPLOYED_SHARE, 0, np.where(u < cal.REEMPLOYED_SHARE + cal.OTHER_END_SHARE,
                                                                     2, 1))  # reemployed, exhausted, other
        early = np.floor(14 + rng.random(n) * (benefit - 14)).astype(np.int64)
        duration = np.where(end_reason == 1, benefit, early)
        return dict(n=n, benefit=benefit, end_reason=end_reason, duration=duration)

    def _certifications(self, day0: np.ndarray, duration: np.ndarray) -> list[np.ndarray]:
        """Certification day indexes per claim (first after a week, then every four weeks, working days)."""
        out = []
        end = day0 + duration
        k = 0
        while True:
            raw = day0 + cal.FIRST_CERTIFICATION_DAYS + cal.CERTIFICATION_INTERVAL_DAYS * k
            if not (raw < end).any():
                break
            shifted = self.next_working[np.minimum(raw, len(self.next_working) - 1)]
            out.append(np.where((raw < end) & (shifted < end), shifted, -1))
            k += 1
        return out

    # ------------------------------------------------------------------ count-only mode
    def count_only(self) -> dict[str, np.ndarray]:
        """Daily totals per measure for the run's days (no events built); used for calibration."""
        N = self.n_days + 400
        c: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(N, dtype=np.int64))
        open_delta = np.zeros(N, dtype=np.int64)

        def add(name: str, days: np.ndarray, weights: np.ndarray | None = None) -> None:
            c[name] += np.bincount(days, weights=weights, minlength=N)[:N].astype(np.int64)

        for day in range(self.n_days):
            v = self._plan_vacancies(day)
            c["vacancy.submitted"][day] += v["n"] + 0
            dup_days = day + v["dup_offset"][v["dup"]]
            add("vacancy.submitted", dup_days)
            add("vacancy.rejected:duplicate_posting", dup_days)
            for k, name in enumerate(REVIEW_CLASSES):
                c["vacancy.posted" if k == 0 else f"vacancy.rejected:{name}"][day] += int((v["review"] == k).sum())
            posted = v["posted"]
            c["openings.posted"][day] += int(v["openings"][posted].sum())
            close_days = day + v["life"][posted]
            open_delta[day] += int(v["openings"][posted].sum())
            open_delta[:] -= np.bincount(close_days, weights=v["openings"][posted], minlength=N)[:N].astype(np.int64)
            add("vacancy.closed", close_days)
            add("application.outcome:hired", close_days, v["hires"][posted])
            add("vacancy.updated", day + v["update_offset"][v["update"]])
            add("application.submitted", day + v["app_offsets"])
            seekers = self._plan_seekers(day)
            c["seeker.registered"][day] += seekers["n"]
            for flow, annual in (("acquisition", cal.INSURED_ACQUISITIONS_PER_YEAR),
                                 ("loss", cal.INSURED_LOSSES_PER_YEAR)):
                rng = self._rng(day, flow)
                c[f"insurance.{flow}"][day] += int(rng.poisson(self._rate(flow, annual, day)))
            rng = self._rng(day, "ui")
            n = int(rng.poisson(self._rate("ui", cal.UI_INITIAL_CLAIMS_PER_MONTH * 12, day)))
            cl = self._plan_claims(rng, n)
            c["ui.initial_claim"][day] += n
            starts = np.full(n, day, dtype=np.int64)
            add("ui.claim_ended", starts + cl["duration"])
            for certs in self._certifications(starts, cl["duration"]):
                add("ui.continued_claim", certs[certs >= 0])
        c["stock.open_openings"] = np.cumsum(open_delta)
        lo, hi = self.W, self.n_days
        return {k: v[lo:hi] for k, v in c.items()}

    def _plan_seekers(self, day: int) -> dict:
        rng = self._rng(day, "seeker")
        n = int(rng.poisson(self._rate("seeker", cal.SEEKERS_PER_YEAR, day)))
        return dict(rng=rng, n=n)

    # ------------------------------------------------------------------ full mode
    def messages(self) -> Iterator[Message]:
        """The whole stream in emission order (deterministic for the seed)."""
        for day in range(self.n_days):
            self._detail = self._detail_rng(day, "detail")
            self._day_seekers(day)
            self._day_vacancies(day)
            self._day_claims(day)
            self._day_insurance(day)
            if "regional_layoff" in self.cfg.scenarios:
                self._day_layoff(day)
            self._release(day)
            yield from sorted(self._emit.pop(day, []))
        for day in sorted(k for k in self._emit if k >= self.n_days):
            yield from sorted(self._emit.pop(day))
        self.truth.finish()

    # --- helpers
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _hex(self, n: int = 16) -> str:
        return self._detail.bytes(n // 2).hex()

    def _time_in(self, day: int, profile: str = "portal", after: int | None = None) -> int:
        start = self.t0_ms + day * DAY_MS
        end = start + DAY_MS - 1
        if after is not None and after >= start:
            return after + 1 + int(self._detail.random() * max(0, end - after - 1) * 0.5)
        hour = self._detail.choices(range(24), cum_weights=_HOUR_CUM[profile])[0]
        return start + int(hour) * 3_600_000 + int(self._detail.random() * 3_600_000)

    def _iso(self, ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, SEOUL).isoformat(timespec="milliseconds")

    def _event(self, etype: str, ms: int, source: str, payload: dict, entity: str, *, birth: bool = False,
               emitted: bool = True) -> None:
        if not emitted:
            return
        doc = {"event_id": self._hex(32), "event_type": etype, "schema_version": 1,
               "occurred_at": self._iso(ms), "source": source, "payload": payload}
        day = (ms - self.t0_ms) // DAY_MS
        if day >= self.n_days:
            return  # after the run's end
        self._buckets[day].append(_Pending(ms, self._next_seq(), doc, entity, birth))

    # --- seekers
    def _day_seekers(self, day: int) -> None:
        plan = self._plan_seekers(day)
        rng, n = plan["rng"], plan["n"]
        region, ind, occ = _draw_cells(rng, n)
        age = _choice(rng, cal.AGE_BAND_SHARES, n)
        sex = _choice(rng, cal.SEX_SHARES, n)
        edu = _choice(rng, cal.EDUCATION_SHARES, n)
        claimant = rng.random(n) < cal.UI_CLAIMANT_SHARE_OF_SEEKERS
        has_industry = rng.random(n) < 0.7
        emitted = day >= self.W - cal.SEEKER_ACTIVE_DAYS
        d = self._detail
        ages = list(cal.AGE_BAND_SHARES)
        for k in range(n):
            sid = "S" + self._hex()
            occ_code = OCCUPATIONS[occ[k]]
            experience = int(min(40, d.gamma(1.5, 2.0 + 3 * int(age[k]))))
            base = HOURLY_BASE[occ_code[0]] * 209 * (1 + 0.02 * min(experience, 20))
            expected = int(round(base * d.lognormal(0, 0.15), -4))
            skills = sorted(d.some(SKILLS, d.integers(0, 4)))
            quals = sorted(d.some(QUALS, d.integers(0, 3)))
            rec = dict(id=sid, region=REGIONS[region[k]], occupation=occ_code, edu_rank=EDU_RANK[EDU[edu[k]]],
                       experience=experience, expected_wage=expected, skills=set(skills), qualifications=set(quals),
                       training=bool(d.random() < 0.2), age=ages[age[k]], sex=list(cal.SEX_SHARES)[sex[k]],
                       day=day, hired=False)
            payload = {"seeker_id": sid, "region": rec["region"], "occupation": occ_code, "age_band": rec["age"],
                       "sex": rec["sex"], "education": EDU[edu[k]], "experience_years": experience,
                       "expected_wage_monthly": expected, "skills": skills, "qualifications": quals,
                       "vocational_training": rec["training"], "ui_claimant": bool(claimant[k])}
            if has_industry[k]:
                payload["industry"] = INDUSTRIES[ind[k]]
            source = "worknet" if d.random() < cal.SEEKER_SOURCE_SHARES["worknet"] else "job-centre"
            self._event("seeker.registered", self._time_in(day), source, payload, sid, birth=True,
                        emitted=emitted)
            idx = len(self._seekers)
            self._seekers.append(rec)
            self._by_occ[occ_code].append(idx)
            self._by_major[occ_code[0]].append(idx)
            if claimant[k]:
                self._recent_claimants[rec["region"]].append(sid)

    def _active(self, idx: int, day: int) -> bool:
        s = self._seekers[idx]
        return not s["hired"] and day - s["day"] <= cal.SEEKER_ACTIVE_DAYS

    def _sample_applicants(self, vac: dict, count: int, day: int) -> list[int]:
        """Seekers who apply: drawn from those looking in the vacancy's occupation (mostly near home),
        then the ones it suits best (hidden suitability plus noise) -- people apply where they fit."""
        d = self._detail
        drawn: list[int] = []
        seen: set[int] = set()
        pools = (self._by_occ[vac["occupation"]], self._by_major[vac["occupation"][0]])
        wanted = count * APPLICANTS_DRAWN
        for _ in range(wanted * 6):
            if len(drawn) == wanted:
                break
            u = d.random()
            pool = pools[0] if u < 0.6 else pools[1] if u < 0.85 else None
            if pool is None or not pool:
                if not self._seekers:
                    break
                idx = int(d.integers(0, len(self._seekers)))
            else:
                # Recent registrations are likelier to be searching (and lists are in registration order).
                lo = max(0, len(pool) - 1 - int(d.exponential(len(pool) / 3 + 1)))
                idx = pool[lo]
            if idx in seen or not self._active(idx, day):
                continue
            s = self._seekers[idx]
            if s["region"] != vac["region"] and d.random() > math.exp(-REGION_KM[s["region"], vac["region"]] / 60):
                continue  # seekers look near home: commuting to a neighbouring region is common, far rare
            seen.add(idx)
            drawn.append(idx)
        # Seekers choose where to apply: a vacancy that suits them better than the other openings of their
        # occupation they could apply to (a few recent ones) is where they apply. Which seekers fill the
        # planned applications is detail; their number is the count stream's.
        fit = {}
        for idx in drawn:
            s = self._seekers[idx]
            here = suitability(s, vac, REGION_KM[s["region"], vac["region"]])
            recent = self._recent_vacancies[s["occupation"]]
            if recent:
                alts = [recent[int(d.integers(0, len(recent)))] for _ in range(ALTERNATIVES_WEIGHED)]
                here -= sum(suitability(s, a, REGION_KM[s["region"], a["region"]])
                            for a in alts) / len(alts)
            fit[idx] = here + d.normal(0, CHOICE_NOISE)
        return sorted(drawn, key=lambda i: -fit[i])[:count]

    # --- vacancies
    def _day_vacancies(self, day: int) -> None:
        v = self._plan_vacancies(day)
        rng, n = v["rng"], v["n"]
        region, ind, occ = _draw_cells(rng, n)
        size = _choice(rng, cal.SIZE_BAND_SHARES, n)
        etype = _choice(rng, EMPLOYMENT_TYPES, n)
        wtype = _choice(rng, WAGE_TYPES, n)
        source = _choice(rng, cal.VACANCY_SOURCE_SHARES, n)
        d = self._detail
        sizes, etypes, wtypes = list(cal.SIZE_BAND_SHARES), list(EMPLOYMENT_TYPES), list(WAGE_TYPES)
        sources = list(cal.VACANCY_SOURCE_SHARES)
        app_pos = np.concatenate([[0], np.cumsum(v["applicants"])])
        for k in range(n):
            posted = bool(v["posted"][k])
            life = int(v["life"][k])
            emitted = day >= self.W or (posted and day + life >= self.W)
            vid, eid = "V" + self._hex(), "E" + self._hex()
            occ_code = OCCUPATIONS[occ[k]]
            review = REVIEW_CLASSES[v["review"][k]]
            hourly = HOURLY_BASE[occ_code[0]] * d.lognormal(0, 0.2)
            floor_wage = minimum_wage(self.dates[day].year)
            if review == "below_min_wage":
                hourly = floor_wage * d.uniform(0.75, 0.99)
            else:
                hourly = max(hourly, floor_wage * 1.001)
            wt = wtypes[wtype[k]]
            unit = 10_000 if wt in ("monthly", "annual") else 100
            raw = hourly * WAGE_HOURS[wt]
            amount = int((math.floor if review == "below_min_wage" else math.ceil)(raw / unit) * unit)
            skills = sorted(d.some(SKILLS, d.integers(0, 4)))
            quals = sorted(d.some(QUALS, d.integers(0, 2)))
            label = OCC_LABEL[occ_code]
            words = d.some(TITLE_WORDS, 2)
            title = f"{label} {words[0]} {words[1]} 채용"
            if review == "prohibited_job":
                title = f"{PROHIBITED[int(d.integers(0, len(PROHIBITED)))]} {words[0]} 모집"
            deadline_day = day + int(v["deadline"][k])
            payload = {"vacancy_id": vid, "employer_id": eid, "region": REGIONS[region[k]],
                       "industry": INDUSTRIES[ind[k]], "occupation": occ_code, "size_band": sizes[size[k]],
                       "title": title, "openings": int(v["openings"][k]), "employment_type": etypes[etype[k]],
                       "wage_type": wt, "wage_amount": amount,
                       "work_hours_per_week": int(d.pick([40, 40, 40, 35, 44, 20])),
                       "deadline": self.dates[deadline_day].isoformat(),
                       "education_required": d.pick(["none", "none", "high", "college", "university"]),
                       "experience_years_required": int(d.choice([0, 0, 0, 1, 2, 3, 5])),
                       "skills": skills, "qualifications": quals}
            if review == "missing_fields":
                del payload[d.pick(["wage_amount", "work_hours_per_week", "deadline", "wage_type"])]
            src = sources[source[k]]
            t_sub = self._time_in(day)
            self._event("vacancy.submitted", t_sub, src, payload, vid, birth=True, emitted=emitted)
            dims = {key: payload[key] for key in ("vacancy_id", "employer_id", "region", "industry", "occupation",
                                                   "size_band")}
            self.truth.review(day, review, payload, emitted and not self._outage_drops(src, t_sub))
            if not posted:
                continue
            copy = None
            if v["dup"][k]:
                other = [s for s in sources if s != src]
                dsrc = other[int(d.integers(0, len(other)))]
                dday = day + int(v["dup_offset"][k])
                dup_id = "V" + self._hex()
                dpayload = {**payload, "vacancy_id": dup_id}
                t_dup = self._time_in(dday, after=t_sub)
                self._event("vacancy.submitted", t_dup, dsrc, dpayload, dup_id, birth=True, emitted=emitted)
                dup_arrives = emitted and dday < self.n_days and not self._outage_drops(dsrc, t_dup)
                # Judged once the original's close is known (below).
                copy = (dday, dpayload, dup_arrives, t_dup)
            if v["update"][k]:
                uday = day + int(v["update_offset"][k])
                change = {"wage_amount": int(amount * 1.05 // unit * unit)}
                if v["close"][k] != 2 and d.random() < 0.5:
                    change = {"deadline": self.dates[deadline_day + 14].isoformat()}
                self._event("vacancy.updated", self._time_in(uday, after=t_sub), src, {**dims, **change}, vid,
                            emitted=emitted)
            # Applications and their outcomes, then the close.
            vac = dict(occupation=occ_code, region=payload["region"], edu_rank=EDU_RANK[payload["education_required"]],
                       experience=payload["experience_years_required"], monthly_wage=hourly * 209,
                       skills=set(skills), qualifications=set(quals))
            count = int(v["applicants"][k])
            offsets = v["app_offsets"][app_pos[k]:app_pos[k] + count]
            applicants = self._sample_applicants(vac, count, day)
            self._recent_vacancies[occ_code].append(vac)
            scores = []
            for idx in applicants:
                s = self._seekers[idx]
                dist = REGION_KM[s["region"], vac["region"]]
                scores.append(suitability(s, vac, dist) + d.normal(0, 0.8))
            order = sorted(range(len(applicants)), key=lambda j: -scores[j])
            n_int, n_hire, n_wd = int(v["interviews"][k]), int(v["hires"][k]), int(v["app_withdrawn"][k])
            t_close_day = day + life
            last_ms = t_sub
            app_events = []
            for slot in range(count):
                if slot < len(applicants):
                    s = self._seekers[applicants[order[slot]]] if slot < len(order) else None
                    sid, age, sex = s["id"], s["age"], s["sex"]
                else:  # not enough registered seekers yet (first days of the warm-up)
                    sid, age, sex = "S" + self._hex(), ages_default(d), "M" if d.random() < 0.5 else "F"
                    s = None
                aid = "A" + self._hex()
                ap = {"application_id": aid, "seeker_id": sid, "vacancy_id": vid, "region": payload["region"],
                      "industry": payload["industry"], "occupation": occ_code, "age_band": age, "sex": sex}
                aday = day + int(offsets[slot])
                t_app = self._time_in(aday, after=t_sub)
                channel = d.pick(["self", "self", "self", "recommended", "referral"])
                self._event("application.submitted", t_app, src, {**ap, "channel": channel}, vid, emitted=emitted)
                # Ranked by hidden suitability: the best get interviews and the openings; of the rest some
                # withdraw and the others are rejected when the vacancy closes.
                t = t_app
                if slot < n_int:
                    t = self._time_in(day + round(0.75 * life), after=t)
                    self._event("application.outcome", t, src, {**ap, "outcome": "interview"}, vid, emitted=emitted)
                if slot < n_hire:
                    outcome, oday = "hired", t_close_day
                    if s is not None:
                        s["hired"] = True
                elif slot >= count - n_wd:
                    outcome, oday = "withdrawn", day + round(0.7 * life)
                else:
                    outcome, oday = "rejected", t_close_day
                t = self._time_in(oday, after=t)
                self._event("application.outcome", t, src, {**ap, "outcome": outcome}, vid, emitted=emitted)
                last_ms = max(last_ms, t)
                app_events.append(t)
            reason = CLOSE_REASONS[v["close"][k]]
            t_close = self._time_in(t_close_day, after=last_ms)
            if reason == "expired":
                t_close = self.t0_ms + (t_close_day + 1) * DAY_MS - 1000  # end of the deadline day
            self._event("vacancy.closed", t_close, src,
                        {**dims, "reason": reason, "openings_filled": n_hire}, vid, emitted=emitted)
            self.truth.vacancy_life(day, t_close_day, int(v["openings"][k]), payload,
                                    emitted and not self._outage_drops(src, t_sub))
            if copy is not None:
                dday, dpayload, dup_arrives, t_dup = copy
                if self._outage_drops(src, t_sub) or t_close <= t_dup:
                    # The original never arrived (its portal was down), or was closed by then: the copy is a
                    # new vacancy, posted, open until the end of its deadline day (it has no close event).
                    self.truth.review(dday, "posted", dpayload, dup_arrives)
                    self.truth.vacancy_life(dday, deadline_day, int(v["openings"][k]), dpayload, dup_arrives)
                else:
                    self.truth.review(dday, "duplicate_posting", dpayload, dup_arrives)

    def _outage_drops(self, source: str, ms: int) -> bool:
        if "source_outage" not in self.cfg.scenarios or source != self.plan.outage_source:
            return False
        lo, hi = self._outage_window()
        return lo <= ms < hi

    def _outage_window(self) -> tuple[int, int]:
        lo = self.t0_ms + (self.W + self.plan.outage_day) * DAY_MS + self.plan.outage_start_hour * 3_600_000
        return lo, lo + self.plan.outage_hours * 3_600_000

    # --- UI claims
    def _day_claims(self, day: int, rng: np.random.Generator | None = None, forced: dict | None = None) -> None:
        if forced is None:
            rng = self._rng(day, "ui")
            n = int(rng.poisson(self._rate("ui", cal.UI_INITIAL_CLAIMS_PER_MONTH * 12, day)))
            plan = self._plan_claims(rng, n)
            region, ind, occ = _draw_cells(rng, n)
            cells = [(REGIONS[region[k]], INDUSTRIES[ind[k]], OCCUPATIONS[occ[k]]) for k in range(n)]
            starts = np.full(n, day, dtype=np.int64)
            employers = [None] * n
            sizes = _choice(rng, cal.SIZE_BAND_SHARES, n)
            size_codes = [list(cal.SIZE_BAND_SHARES)[s] for s in sizes]
        else:
            assert rng is not None
            n, plan, cells, starts = forced["n"], forced["plan"], forced["cells"], forced["starts"]
            employers, size_codes = forced["employers"], forced["sizes"]
        age = _choice(rng, cal.AGE_BAND_SHARES, n)
        sex = _choice(rng, cal.SEX_SHARES, n)
        sep = _choice(rng, UI_SEPARATION, n)
        certs = self._certifications(starts, plan["duration"])
        d = self._detail
        ages, sexes, seps = list(cal.AGE_BAND_SHARES), list(cal.SEX_SHARES), list(UI_SEPARATION)
        for k in range(n):
            start_day = int(starts[k])
            end_day = start_day + int(plan["duration"][k])
            emitted = start_day >= self.W or end_day >= self.W
            region, industry, occupation = cells[k]
            pool = self._recent_claimants[region]
            sid = pool.pop() if pool else "S" + self._hex()
            cid = "C" + self._hex()
            dims = {"claim_id": cid, "seeker_id": sid, "region": region, "industry": industry,
                    "occupation": occupation, "age_band": ages[age[k]], "sex": sexes[sex[k]]}
            t = self._time_in(start_day, "office")
            self._event("ui.initial_claim", t, "job-centre" if d.random() < 0.6 else "ei-db",
                        {**dims, "employer_id": employers[k] or "E" + self._hex(), "size_band": size_codes[k],
                         "separation_reason": seps[sep[k]], "insured_months": int(d.integers(7, 240))},
                        cid, birth=True, emitted=emitted)
            paid = 0
            for no, col in enumerate(certs, start=1):
                cday = int(col[k])
                if cday < 0:
                    break
                days_certified = cal.FIRST_CERTIFICATION_DAYS if no == 1 else cal.CERTIFICATION_INTERVAL_DAYS
                paid += days_certified
                t = self._time_in(cday, "office", after=t)
                self._event("ui.continued_claim", t, "job-centre",
                            {**dims, "certification_no": no, "days_certified": days_certified}, cid, emitted=emitted)
            reason = ("reemployed", "exhausted", "other")[plan["end_reason"][k]]
            t = self._time_in(end_day, "office", after=t)
            self._event("ui.claim_ended", t, "ei-db", {**dims, "reason": reason, "days_paid": min(paid, 300)}, cid,
                        emitted=emitted)

    # --- insurance
    def _day_insurance(self, day: int) -> None:
        if day < self.W:
            return  # flows without state: nothing to warm up
        for flow, annual in (("acquisition", cal.INSURED_ACQUISITIONS_PER_YEAR), ("loss", cal.INSURED_LOSSES_PER_YEAR)):
            rng = self._rng(day, flow)
            n = int(rng.poisson(self._rate(flow, annual, day)))
            region, ind, occ = _draw_cells(rng, n)
            self._insurance_events(day, flow, rng, n, [(REGIONS[region[k]], INDUSTRIES[ind[k]], OCCUPATIONS[occ[k]])
                                                       for k in range(n)])

    def _insurance_events(self, day: int, flow: str, rng: np.random.Generator, n: int, cells: list,
                          employer: str | None = None, size: str | None = None, reasons: list | None = None) -> None:
        sizes = _choice(rng, cal.SIZE_BAND_SHARES, n)
        age = _choice(rng, cal.AGE_BAND_SHARES, n)
        sex = _choice(rng, cal.SEX_SHARES, n)
        et = _choice(rng, EMPLOYMENT_TYPES, n)
        sep = _choice(rng, LOSS_SEPARATION, n)
        size_l, ages, sexes, ets, seps = (list(cal.SIZE_BAND_SHARES), list(cal.AGE_BAND_SHARES),
                                          list(cal.SEX_SHARES), list(EMPLOYMENT_TYPES), list(LOSS_SEPARATION))
        for k in range(n):
            pid = "P" + self._hex()
            region, industry, occupation = cells[k]
            payload = {"person_id": pid, "employer_id": employer or "E" + self._hex(), "region": region,
                       "industry": industry, "occupation": occupation, "size_band": size or size_l[sizes[k]],
                       "age_band": ages[age[k]], "sex": sexes[sex[k]], "employment_type": ets[et[k]]}
            if flow == "loss":
                payload["separation_reason"] = reasons[k] if reasons else seps[sep[k]]
            self._event(f"insurance.{flow}", self._time_in(day, "office"), "ei-db", payload, pid, birth=True)

    # --- scenario: one employer's layoff
    def _day_layoff(self, day: int) -> None:
        rel = day - self.W - self.plan.layoff_day
        if not 0 <= rel < self.plan.layoff_spread_days:
            return
        rng = self._rng(day, "layoff")
        total = max(60, round(self.plan.layoff_workers * self.cfg.scale))
        n = total // self.plan.layoff_spread_days + (1 if rel < total % self.plan.layoff_spread_days else 0)
        occs = rng.choice(["74", "75", "85", "93", "23", "31"], size=n, p=[0.3, 0.2, 0.2, 0.15, 0.1, 0.05])
        cells = [(self.plan.layoff_region, self.plan.layoff_industry, str(o)) for o in occs]
        reasons = rng.choice(["recommended_resignation", "dismissal"], size=n, p=[0.7, 0.3]).tolist()
        self._insurance_events(day, "loss", rng, n, cells, self.plan.layoff_employer, "300+", reasons)
        claims = rng.random(n) < 0.85
        m = int(claims.sum())
        plan = self._plan_claims(rng, m)
        starts = day + rng.integers(1, 15, size=m)
        starts = self.next_working[starts]
        self._day_claims(day, rng, dict(n=m, plan=plan, cells=[c for c, f in zip(cells, claims, strict=True) if f],
                                        starts=starts, employers=[self.plan.layoff_employer] * m,
                                        sizes=["300+"] * m))

    # ------------------------------------------------------------------ emission with injected faults
    def _release(self, day: int) -> None:
        """Move the events that occur on ``day`` to their emission buckets, applying scenarios."""
        events = sorted(self._buckets.pop(day, []), key=lambda p: (p.occurred_ms, p.seq))
        scen = self.cfg.scenarios
        inj = self._detail_rng(day, "inject")
        out_lo, out_hi = self._outage_window()
        run_day = day - self.W
        for p in events:
            doc = p.doc
            etype, source = doc["event_type"], doc["source"]
            emit_ms = p.occurred_ms
            if p.entity in self._dropped_entities:
                continue
            if "source_outage" in scen and source == self.plan.outage_source and out_lo <= p.occurred_ms < out_hi:
                if p.birth:
                    self._dropped_entities.add(p.entity)
                    self.truth.outage(doc, dropped=True)
                    continue
                emit_ms = out_hi + p.seq % 1000  # back-filled in order when the portal returns
                self.truth.outage(doc, dropped=False)
            value = orjson.dumps(doc)
            topic = topic_of(etype)
            key = doc["payload"][_key_field(etype)]
            late = None
            if ("late" in scen and etype in ("insurance.acquisition", "insurance.loss", "ui.continued_claim")
                    and 0 <= run_day < self.cfg.days - 7 and inj.random() < self.plan.late_share):
                beyond = inj.random() < self.plan.late_beyond_share
                lo, hi = self.plan.late_beyond_hours if beyond else self.plan.late_within_hours
                emit_ms += int(inj.uniform(lo, hi) * 3_600_000)
                late = "beyond" if beyond else "within"
            self.truth.count(doc, late)
            self._put(emit_ms, topic, key, value)
            if ("duplicate_burst" in scen and source == self.plan.duplicate_source
                    and run_day == self.plan.duplicate_day):
                resend = (self.t0_ms + (day + 1) * DAY_MS + self.plan.duplicate_resend_hour * 3_600_000
                          + p.seq % 3_600_000)
                self._put(resend, topic, key, value)
                self.truth.duplicate(doc)
            if "malformed" in scen and run_day >= 0 and inj.random() < self.plan.malformed_share:
                self._inject_malformed(inj, doc, emit_ms)

    def _put(self, emit_ms: int, topic: str, key: str, value: bytes) -> None:
        eday = (emit_ms - self.t0_ms) // DAY_MS
        self._emit[eday].append(Message(emit_ms, self._next_seq(), topic, key, value))

    def _inject_malformed(self, inj: Detail, doc: dict, emit_ms: int) -> None:
        kinds = list(MALFORMED)
        kind = kinds[self.truth.malformed_total() % len(kinds)]  # every kind, in turn
        bad = orjson.loads(orjson.dumps(doc))
        bad["event_id"] = inj.bytes(16).hex()
        value = MALFORMED[kind][0](bad, inj)
        topic = topic_of(doc["event_type"])
        self._put(emit_ms + 1, topic, doc["payload"][_key_field(doc["event_type"])], value)
        self.truth.malformed(kind, MALFORMED[kind][1], bad["event_id"])


def ages_default(d: Detail) -> str:
    return d.pick(list(cal.AGE_BAND_SHARES))


def _key_field(etype: str) -> str:
    from schemas.events import KEY_FIELD

    return KEY_FIELD[etype]


def _set(path: str, value) -> callable:
    def f(doc: dict, inj: Detail) -> bytes:
        target = doc
        *parents, last = path.split(".")
        for p in parents:
            target = target[p]
        if value is _DELETE:
            target.pop(last, None)
        else:
            target[last] = value
        return orjson.dumps(doc)
    return f


_DELETE = object()


def _future(doc: dict, inj: Detail) -> bytes:
    ts = datetime.fromisoformat(doc["occurred_at"]) + timedelta(days=30)
    doc["occurred_at"] = ts.isoformat(timespec="milliseconds")
    return orjson.dumps(doc)


def _pii(doc: dict, inj: Detail) -> bytes:
    samples = ["담당 김OO 010-2345-6789", "문의 hr.team@example.co.kr", "대표 850101-1234567"]
    doc["event_type"] = "vacancy.submitted"
    doc["payload"] = {"vacancy_id": "V" + inj.bytes(8).hex(), "employer_id": "E" + inj.bytes(8).hex(),
                      "region": "11", "industry": "G", "occupation": "52", "size_band": "5-9",
                      "title": "매장 판매원 " + samples[int(inj.integers(0, 3))], "openings": 1,
                      "employment_type": "part_time"}
    return orjson.dumps(doc)


# kind -> (corrupter, expected dead-letter reason)
MALFORMED: dict[str, tuple] = {
    "truncated_json": (lambda doc, inj: orjson.dumps(doc)[: -17], "malformed_json"),
    "not_an_object": (lambda doc, inj: orjson.dumps([doc["event_type"], 1]), "not_an_object"),
    "unknown_event_type": (_set("event_type", "vacancy.reposted"), "unknown_event_type"),
    "unknown_schema_version": (_set("schema_version", 99), "unsupported_schema_version"),
    "unknown_region_code": (_set("payload.region", "99"), "invalid_field"),
    "wrong_type": (_set("occurred_at", "yesterday"), "invalid_field"),
    "missing_field": (_set("payload.region", _DELETE), "missing_field"),
    "naive_timestamp": (lambda doc, inj: _set("occurred_at", doc["occurred_at"][:-6])(doc, inj), "invalid_field"),
    "unknown_field": (_set("payload.full_name", "홍길동"), "invalid_field"),
    "pii_in_title": (_pii, "pii_detected"),
    "future_occurred_at": (_future, "future_occurred_at"),
}
