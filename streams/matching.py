"""Online job matching, learned event by event with river (models do no I/O, as in river itself).

Features of a (seeker, vacancy) pair come from the events only: occupation match (same sub-major group,
same major group, distance in the code hierarchy), region match and distance, education and experience
gaps, offered vs expected wage, overlap of skills and qualifications, vocational training, establishment
size and vacancy age. Labels come from the outcome events: an interview or a hire is a good match, a
rejection is not, and open vacancies of the seeker's occupation that the seeker did not apply to are
sampled as negatives (so the model learns where people apply as well as who is chosen).

Every good outcome is scored before it is learned (progressive validation): the vacancy's rank among the
seeker's candidates, for the model and two baselines (random; the rule-based matcher: same occupation and
region, newest first) -- precision@10 and NDCG@10 -- and every outcome feeds the AUC, per Asia/Seoul day and
per age band, sex and region of the seeker.

``Matcher.apply`` takes decoded events in any arrival order: an outcome whose seeker or vacancy has not
arrived yet (topics are consumed side by side) waits for it, for a bounded event time.
"""

from __future__ import annotations

import heapq
import math
import random
import struct
from array import array
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
from river import compose, linear_model, optim, preprocessing

from schemas.codes import code_list, education_rank, region_coordinates, wage_hours
from streams.processing import review_rule, title_key

COORDS = region_coordinates()
REGION_INDEX = {code: i for i, code in enumerate(COORDS)}
SKILL_BIT = {c.code: 1 << i for i, c in enumerate(code_list("skills"))}
QUAL_BIT = {c.code: 1 << i for i, c in enumerate(code_list("qualifications"))}
WAGE_HOURS = wage_hours()
SIZE_RANK = {c.code: i for i, c in enumerate(code_list("size_bands"))}
DAY_MS = 86_400_000
KST_MS = 9 * 3_600_000
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
SEEKER_DAYS = 90  # a registration stays valid (and recommendable) for three months
CLOSED_KEEP_DAYS = 30  # outcomes of a closed vacancy still arrive (and are learned) for this long
APPLIED_KEEP = 16  # a seeker's most recent applications remembered (for when each outcome's ranking is judged)
PARK_DAYS = 3  # an outcome waits at most this long (event time) for its seeker or vacancy
ATTRIBUTION_DAYS = 30
RANKERS = ("model", "rule", "random")


def _km(a: str, b: str) -> float:
    (lat1, lon1), (lat2, lon2) = COORDS[a], COORDS[b]
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6371.0 * math.hypot(x, y)


_DISTANCE = {(a, b): _km(a, b) / 100.0 for a in COORDS for b in COORDS}
_DISTANCE_MATRIX = np.array([[_DISTANCE[a, b] for b in COORDS] for a in COORDS])


def _mask(codes: Iterable[str], bits: dict[str, int]) -> int:
    m = 0
    for c in codes:
        m |= bits.get(c, 0)
    return m


def seoul_day(ms: int) -> str:
    return datetime.fromtimestamp((ms + KST_MS) / 1000, UTC).date().isoformat()


@dataclass(slots=True)
class Seeker:
    seeker_id: str
    region: str
    occupation: str
    education: int
    experience: int
    expected_wage: int | None
    skills: frozenset[str]
    qualifications: frozenset[str]
    training: bool
    age_band: str = ""
    sex: str = ""
    registered_ms: int = 0
    hired: bool = False
    number: int = 0  # the matcher's own compact id (see ``ServedPairs``)
    # Recent applications as [vacancy number, event time ms, ...] (16 bytes each: ~2.5 M of them nationally):
    # rankings are judged as of when the seeker applied.
    applied: array | None = None


@dataclass(slots=True)
class Vacancy:
    vacancy_id: str
    region: str
    occupation: str
    education: int
    experience: int
    monthly_wage: float | None
    skills: frozenset[str]
    qualifications: frozenset[str]
    size_band: str
    posted_ms: int
    deadline_ms: int | None = None
    closed_ms: int | None = None
    posting_key: tuple = ()
    wage_type: str | None = None
    vec: bytes = b""  # ``vector()``, set when the vacancy opens and when its wage changes
    number: int = 0  # the matcher's own compact id (see ``ServedPairs``)

    def vector(self) -> bytes:
        """The numbers the vectorised features need (see ``feature_matrix``), packed as float64: a
        recommendation joins a few hundred of them into its matrix at once (measured: 15 µs for 300, against
        289 µs for numpy reading as many tuples -- a third of the matcher's time while catching up)."""
        return _VECTOR.pack(REGION_INDEX[self.region], int(self.occupation), int(self.occupation[0]), self.education,
                            self.experience, self.monthly_wage if self.monthly_wage else math.nan,
                            _mask(self.skills, SKILL_BIT), _mask(self.qualifications, QUAL_BIT),
                            SIZE_RANK.get(self.size_band, 0), self.posted_ms)


_VECTOR = struct.Struct("=10d")  # native order, as numpy reads it


# Seekers and vacancies repeat a few hundred codes, code sets and round wages: one shared object for each.
# Each held copies of its own before (~0.4 KB a seeker or vacancy; a national matcher holds ~1.2 million
# seekers). Never a bool (1 == True would mix them up); bounded whatever a source sends.
_SHARED: dict[str | frozenset[str] | int, str | frozenset[str] | int] = {}
SHARED_MAX = 100_000


def _shared(value):
    shared = _SHARED.get(value)
    if shared is None and len(_SHARED) < SHARED_MAX:
        shared = _SHARED[value] = value
    return value if shared is None else shared


def _code(value: str) -> str:
    return _shared(value)


def _codes(values: Iterable[str]) -> frozenset[str]:
    return _shared(frozenset(values))


def _amount(value: int | None) -> int | None:
    return _shared(value) if type(value) is int else value  # None stays None


def seeker_of(payload, registered_ms: int = 0) -> Seeker:
    return Seeker(payload.seeker_id, _code(payload.region), _code(payload.occupation),
                  education_rank(payload.education), payload.experience_years, _amount(payload.expected_wage_monthly),
                  _codes(payload.skills), _codes(payload.qualifications), payload.vocational_training,
                  _code(payload.age_band), _code(payload.sex), registered_ms)


def monthly_wage(wage_amount: int | None, wage_type: str | None) -> float | None:
    if wage_amount is None or wage_type is None:
        return None
    return wage_amount / WAGE_HOURS[wage_type] * 209


def end_of_day_ms(day: date) -> int:
    """The end of an Asia/Seoul day (a deadline: open until then), in epoch milliseconds."""
    return (day.toordinal() - EPOCH_ORDINAL + 1) * DAY_MS - KST_MS


def vacancy_of(payload, posted_ms: int) -> Vacancy:
    deadline_ms = None if payload.deadline is None else end_of_day_ms(payload.deadline)
    # The cross-portal duplicate rule's key (as the rollup's review): the first posting stands.
    key = (payload.employer_id, title_key(payload.title), payload.region, payload.occupation)
    return Vacancy(payload.vacancy_id, _code(payload.region), _code(payload.occupation),
                   education_rank(payload.education_required), payload.experience_years_required,
                   monthly_wage(payload.wage_amount, payload.wage_type), _codes(payload.skills),
                   _codes(payload.qualifications), _code(payload.size_band), posted_ms, deadline_ms, None, key,
                   payload.wage_type and _code(payload.wage_type))


FEATURES = ("same_occupation", "same_major", "occupation_distance", "same_region", "distance_100km",
            "education_gap", "education_short", "experience_gap", "experience_short", "wage_ratio",
            "wage_above_offer", "skills_overlap", "qualifications_overlap", "training", "size_rank",
            "vacancy_age_days", "log_vacancy_age", "same_region_and_occupation")


def features(s: Seeker, v: Vacancy, now_ms: int) -> dict[str, float]:
    """The pair's features (a plain dict, as river models take them)."""
    wage_ratio = (s.expected_wage / v.monthly_wage) if s.expected_wage and v.monthly_wage else 1.0
    same_occ = s.occupation == v.occupation
    same_major = s.occupation[0] == v.occupation[0]
    age = max(0.0, (now_ms - v.posted_ms) / DAY_MS)
    return {
        "same_occupation": float(same_occ),
        "same_major": float(same_major),
        "occupation_distance": 0.0 if same_occ else 1.0 if same_major else 2.0,
        "same_region": float(s.region == v.region),
        "distance_100km": _DISTANCE[s.region, v.region],
        "education_gap": float(s.education - v.education),
        "education_short": float(max(0, v.education - s.education)),
        "experience_gap": float(max(-10, min(10, s.experience - v.experience))),
        "experience_short": float(max(0, v.experience - s.experience)),
        "wage_ratio": min(wage_ratio, 3.0),
        "wage_above_offer": max(0.0, min(wage_ratio, 3.0) - 1.0),
        "skills_overlap": float(len(s.skills & v.skills)),
        "qualifications_overlap": float(len(s.qualifications & v.qualifications)),
        "training": float(s.training),
        "size_rank": float(SIZE_RANK.get(v.size_band, 0)),
        "vacancy_age_days": age,
        "log_vacancy_age": math.log1p(age),
        "same_region_and_occupation": float(s.region == v.region and same_occ),
    }


def rule_score(s: Seeker, v: Vacancy) -> float:
    """The rule-based matcher: same occupation sub-major group and same region first, newest first."""
    return 2.0 * (s.occupation == v.occupation) + 1.0 * (s.region == v.region) + v.posted_ms / 1e16


def new_model():
    return compose.Pipeline(preprocessing.StandardScaler(),
                            linear_model.LogisticRegression(optimizer=optim.SGD(0.01), l2=1e-5))


class LinearScorer:
    """The river pipeline's scores for many pairs at once (numpy), equal to ``predict_proba_one``.

    river scores one dict at a time (~40 µs a pair); a recommendation over a few hundred candidates
    needs the same numbers in a millisecond. Rebuilt from the model's state when it has learned since."""

    def __init__(self, model):
        scaler, lr = model["StandardScaler"], model["LogisticRegression"]
        means = np.array([scaler.means.get(f, 0.0) for f in FEATURES])
        var = np.array([scaler.vars.get(f, 0.0) for f in FEATURES])
        sd = np.sqrt(var)
        self.means = means
        self.inv_sd = np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 0)
        self.weights = np.array([lr._weights.get(f, 0.0) for f in FEATURES])
        self.intercept = float(lr.intercept)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        return (x - self.means) * self.inv_sd * self.weights

    def scores(self, x: np.ndarray) -> np.ndarray:
        z = self.contributions(x).sum(axis=1) + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def feature_matrix(s: Seeker, vacancies: list[Vacancy], now_ms: int) -> np.ndarray:
    """``features`` for many vacancies at once, as rows in ``FEATURES`` order (equal to the dict version; a
    test checks it). A recommendation scores a few hundred pairs: in Python that was most of its time."""
    n = len(vacancies)
    if n == 0:
        return np.zeros((0, len(FEATURES)))
    v = np.frombuffer(b"".join([x.vec or x.vector() for x in vacancies]), dtype=np.float64).reshape(n, -1)
    region, occ, major, edu, exp_, wage = (v[:, i] for i in range(6))
    skills, quals = v[:, 6].astype(np.int64), v[:, 7].astype(np.int64)
    same_occ = (occ == int(s.occupation)).astype(float)
    same_major = (major == int(s.occupation[0])).astype(float)
    same_region = (region == REGION_INDEX[s.region]).astype(float)
    if s.expected_wage:
        ratio = np.where(np.isnan(wage) | (wage == 0), 1.0, s.expected_wage / np.where(wage > 0, wage, 1.0))
    else:
        ratio = np.ones(n)
    ratio = np.minimum(ratio, 3.0)
    age = np.maximum(0.0, (now_ms - v[:, 9]) / DAY_MS)
    out = np.empty((n, len(FEATURES)))
    out[:, 0] = same_occ
    out[:, 1] = same_major
    out[:, 2] = np.where(same_occ == 1, 0.0, np.where(same_major == 1, 1.0, 2.0))
    out[:, 3] = same_region
    out[:, 4] = _DISTANCE_MATRIX[REGION_INDEX[s.region], region.astype(np.int64)]
    out[:, 5] = s.education - edu
    out[:, 6] = np.maximum(0, edu - s.education)
    out[:, 7] = np.clip(s.experience - exp_, -10, 10)
    out[:, 8] = np.maximum(0, exp_ - s.experience)
    out[:, 9] = ratio
    out[:, 10] = np.maximum(0.0, ratio - 1.0)
    out[:, 11] = np.bitwise_count(skills & _mask(s.skills, SKILL_BIT))
    out[:, 12] = np.bitwise_count(quals & _mask(s.qualifications, QUAL_BIT))
    out[:, 13] = float(s.training)
    out[:, 14] = v[:, 8]
    out[:, 15] = age
    out[:, 16] = np.log1p(age)
    out[:, 17] = same_region * same_occ
    return out


class BinnedAUC:
    """ROC AUC from score histograms: O(1) per update, exact up to the bin width (ties count a half).

    river's ``metrics.ROCAUC`` interpolates over 10 thresholds and costs ~35 µs an update; the observatory
    updates 15 of them per outcome. Scores outside [lo, hi] fall in the end bins."""

    def __init__(self, bins: int = 1000, lo: float = 0.0, hi: float = 1.0):
        self.lo, self.width, self.bins = lo, (hi - lo) / bins, bins
        self.pos = [0] * bins
        self.neg = [0] * bins

    def update(self, good: bool, score: float) -> None:
        i = int((score - self.lo) / self.width)
        i = 0 if i < 0 else self.bins - 1 if i >= self.bins else i
        if good:
            self.pos[i] += 1
        else:
            self.neg[i] += 1

    def get(self) -> float:
        n_pos, n_neg = sum(self.pos), sum(self.neg)
        if not n_pos or not n_neg:
            return 0.0
        wins, below = 0.0, 0
        for p, n in zip(self.pos, self.neg, strict=True):
            wins += p * (below + n / 2)
            below += n
        return wins / (n_pos * n_neg)


RULE_MAX = 3.5  # rule_score: 2 (occupation) + 1 (region) + recency (< 0.3 until 2065)


@dataclass
class RankingMetrics:
    """Precision@10, NDCG@10 and AUC, accumulated over progressive-validation queries."""

    queries: int = 0
    hits_at_10: int = 0
    ndcg_sum: float = 0.0
    auc: BinnedAUC = field(default_factory=BinnedAUC)
    outcomes: int = 0

    def add_ranking(self, rank: int) -> None:
        """``rank``: 1-based position of the relevant vacancy among the candidates."""
        self.queries += 1
        if rank <= 10:
            self.hits_at_10 += 1
            self.ndcg_sum += 1.0 / math.log2(rank + 1)

    def add_outcome(self, good: bool, score: float) -> None:
        self.outcomes += 1
        self.auc.update(good, score)

    @property
    def precision_at_10(self) -> float:
        # One relevant vacancy per query: precision@10 = hits / (10 × queries).
        return self.hits_at_10 / (10 * self.queries) if self.queries else 0.0

    @property
    def ndcg_at_10(self) -> float:
        return self.ndcg_sum / self.queries if self.queries else 0.0


@dataclass(frozen=True)
class Recommendation:
    id: str  # a vacancy id (for a seeker) or a seeker id (for a vacancy)
    score: float
    reasons: dict[str, float]  # the three features that contributed most (weight × standardised value)


def _counter() -> defaultdict[str, int]:
    return defaultdict(int)  # a named function, not a lambda: the matcher is pickled


def gini(counts: Iterable[int]) -> float:
    """Gini coefficient of exposure counts (0: every vacancy shown equally; near 1: one takes all)."""
    xs = sorted(c for c in counts if c > 0)
    n = len(xs)
    if n == 0:
        return 0.0
    cum = sum((i + 1) * x for i, x in enumerate(xs))
    return (2 * cum) / (n * sum(xs)) - (n + 1) / n


class ServedPairs:
    """Which vacancies were recommended to which seekers, per Asia/Seoul day, for hire attribution.

    A pair is one exact 64-bit number (the seeker's and the vacancy's numbers, each below 2**32, which the
    matcher hands out once and never again). The days still being served are sets; older days are frozen
    into sorted arrays, 8 bytes a pair. Why: kept as a dict of {vacancy: served ms} per seeker plus a heap
    of (ms, seeker, vacancy) tuples for expiry, the ~1.5 million pairs of 30 days at half the national rate
    took 217 of the matcher's 569 MB (docs/benchmarks.md, "Stop 13")."""

    def __init__(self) -> None:
        self.open: dict[str, set[int]] = {}
        self.frozen: dict[str, np.ndarray] = {}

    @staticmethod
    def pair(seeker: Seeker, vacancy: Vacancy) -> int:
        return (seeker.number << 32) | vacancy.number

    def add(self, day: str, pair: int) -> None:
        served = self.open.get(day)
        if served is None:
            served = self.open[day] = set()
            old = self.frozen.pop(day, None)  # a late recommendation for a frozen day: thawed, rare
            if old is not None:
                served.update(old.tolist())
        served.add(pair)

    def __contains__(self, pair: int) -> bool:
        if any(pair in served for served in self.open.values()):
            return True
        for days in self.frozen.values():
            i = int(np.searchsorted(days, np.uint64(pair)))
            if i < len(days) and int(days[i]) == pair:
                return True
        return False

    def __len__(self) -> int:
        return sum(map(len, self.open.values())) + sum(map(len, self.frozen.values()))

    def expire(self, freeze_before: str, drop_before: str) -> None:
        """Freeze the days before ``freeze_before``; forget the days before ``drop_before``."""
        for day in [d for d in self.open if d < freeze_before]:
            self.frozen[day] = np.array(sorted(self.open.pop(day)), dtype=np.uint64)
        for table in (self.open, self.frozen):
            for day in [d for d in table if d < drop_before]:
                del table[day]


class Matcher:
    """Seekers, open vacancies, the model, exposure and the observatory's metrics; no I/O."""

    def __init__(self, seed: int = 0, negatives: int = 10, candidates: int = 300, exposure_share: float = 0.02,
                 recommend_on_registration: int = 10):
        self.model = new_model()
        self.seekers: dict[str, Seeker] = {}
        self.vacancies: dict[str, Vacancy] = {}  # open, and closed for CLOSED_KEEP_DAYS
        self.open_by_cell: dict[tuple[str, str], dict[str, None]] = defaultdict(dict)  # (occupation, region)
        self.open_by_occupation: dict[str, dict[str, None]] = defaultdict(dict)
        self.open_by_major: dict[str, dict[str, None]] = defaultdict(dict)
        # In registration order (the newest last): the employer side's candidates, and expiry (oldest first).
        self.seekers_by_cell: dict[tuple[str, str], deque[Seeker]] = defaultdict(deque)
        self.seekers_by_occupation: dict[str, deque[Seeker]] = defaultdict(deque)
        self.open_by_key: dict[tuple, str] = {}  # cross-portal duplicates: the first posting stands
        self.parked: dict[str, list[tuple[int, str, str, str, int]]] = defaultdict(list)
        self.seen_outcomes: dict[tuple[str, str], int] = {}
        self.rng = random.Random(seed)
        self.negatives = negatives
        self.max_candidates = candidates
        self.exposure_share = exposure_share
        self.recommend_on_registration = recommend_on_registration
        self.clock_ms = 0  # the latest event time seen
        self.metrics = {name: RankingMetrics() for name in RANKERS}
        self.daily: dict[tuple[str, str, str, str], RankingMetrics] = {}  # (day, ranker, group, value)
        self.exposure: dict[str, dict[str, int]] = defaultdict(_counter)  # day -> vacancy -> n
        self.exposure_days: dict[str, tuple[int, int, float, float]] = {}  # summaries of the pruned days
        self.served = ServedPairs()  # recommendations kept ATTRIBUTION_DAYS for hire attribution
        self._numbers = 0  # the last number handed to a seeker or vacancy
        self.attributed: dict[str, int] = defaultdict(int)  # day -> hires at a recommended vacancy
        self.hires: dict[str, int] = defaultdict(int)
        self.positions: dict[tuple[str, int], int] = {}  # the last Kafka offset applied, per partition
        self.learned = 0
        self.unresolved = 0
        self.open_count = 0  # counters the API reads without the lock
        self.parked_count = 0
        self._scorer: LinearScorer | None = None
        self._last_expiry_ms = 0
        self._expired_day = ""
        # Min-heaps of (event time, id) for expiry; entries that no longer match their object are skipped.
        self._deadlines: list[tuple[int, str]] = []
        self._closed: list[tuple[int, str]] = []
        self._outcome_times: list[tuple[int, tuple[str, str]]] = []

    def __setstate__(self, state: dict) -> None:
        # A checkpoint written before served pairs were compact (up to stop 12) holds them as
        # {seeker: {vacancy: served ms}} plus an expiry heap, and no numbers: converted once, on restore.
        recommended = state.pop("recommended", None)
        state.pop("_served", None)
        registrations = state.pop("_registrations", None)
        self.__dict__.update(state)
        for v in self.vacancies.values():  # vectors were tuples up to stop 18
            if type(v.vec) is tuple:
                v.vec = v.vector() if v.vec else b""
        if registrations is not None:  # ... and the seekers' indexes as ids, with a heap for expiry
            for name in ("seekers_by_cell", "seekers_by_occupation"):
                ids = getattr(self, name)
                setattr(self, name, defaultdict(deque, {
                    key: deque(self.seekers[i] for i in group if i in self.seekers) for key, group in ids.items()}))
        if recommended is None:
            return
        self._numbers = 0
        self.served = ServedPairs()
        for entity in (*self.seekers.values(), *self.vacancies.values()):
            entity.number = self._number()
        for seeker_id, served in recommended.items():
            s = self.seekers.get(seeker_id)
            for vacancy_id, at in served.items():
                v = self.vacancies.get(vacancy_id)
                if s is not None and v is not None:  # else no hire can be attributed to it any more
                    self.served.add(seoul_day(at), ServedPairs.pair(s, v))
        self.served.expire(seoul_day(self.clock_ms - 2 * DAY_MS),
                           seoul_day(self.clock_ms - ATTRIBUTION_DAYS * DAY_MS))

    # --- events
    def apply(self, event, occurred_ms: int) -> None:
        """One decoded event (``schemas.events``); other event types are ignored."""
        etype = event.event_type
        p = event.payload
        if occurred_ms > self.clock_ms:
            self.clock_ms = occurred_ms
            if occurred_ms - self._last_expiry_ms > DAY_MS / 24:
                self.expire(occurred_ms)
        if etype == "seeker.registered":
            if p.seeker_id not in self.seekers:
                s = self.seekers[p.seeker_id] = seeker_of(p, occurred_ms)
                s.number = self._number()
                self.seekers_by_cell[s.occupation, s.region].append(s)
                self.seekers_by_occupation[s.occupation].append(s)
                self._unpark(p.seeker_id)
                if self.recommend_on_registration:  # pushed to the seeker; no one reads reasons here
                    self.recommend_vacancies(p.seeker_id, self.recommend_on_registration, occurred_ms,
                                             explain=False)
        elif etype == "vacancy.submitted":
            # Only what the review posts is recommended (its per-event rules; duplicates just below).
            if p.vacancy_id not in self.vacancies and review_rule(event) == "":
                v = vacancy_of(p, occurred_ms)
                if v.posting_key not in self.open_by_key and (v.deadline_ms is None or v.deadline_ms > occurred_ms):
                    self._open(v)
                    self._unpark(v.vacancy_id)
        elif etype == "vacancy.updated":
            v = self.vacancies.get(p.vacancy_id)
            if v is not None:
                if p.wage_amount is not None and v.wage_type is not None:
                    v.monthly_wage = monthly_wage(p.wage_amount, v.wage_type)
                    v.vec = v.vector()
                if p.deadline is not None:
                    v.deadline_ms = end_of_day_ms(p.deadline)
                    heapq.heappush(self._deadlines, (v.deadline_ms, v.vacancy_id))
        elif etype == "vacancy.closed":
            v = self.vacancies.get(p.vacancy_id)
            if v is not None and v.closed_ms is None:
                self._close(v, occurred_ms)
        elif etype == "application.submitted":
            s, v = self.seekers.get(p.seeker_id), self.vacancies.get(p.vacancy_id)
            if s is not None and v is not None:
                before = getattr(s, "applied", None) or ()
                kept = [x for i in range(0, len(before), 2) if before[i] != v.number for x in before[i:i + 2]]
                s.applied = array("q", [*kept[-2 * (APPLIED_KEEP - 1):], v.number, occurred_ms])
        elif etype == "application.outcome":
            self.outcome(p.seeker_id, p.vacancy_id, p.outcome, occurred_ms)


    # --- state
    def _number(self) -> int:
        self._numbers += 1
        return self._numbers

    def _open(self, v: Vacancy) -> None:
        v.vec = v.vector()
        v.number = self._number()
        self.open_count += 1
        self.vacancies[v.vacancy_id] = v
        if v.deadline_ms is not None:
            heapq.heappush(self._deadlines, (v.deadline_ms, v.vacancy_id))
        self.open_by_cell[v.occupation, v.region][v.vacancy_id] = None
        self.open_by_occupation[v.occupation][v.vacancy_id] = None
        self.open_by_major[v.occupation[0]][v.vacancy_id] = None
        self.open_by_key[v.posting_key] = v.vacancy_id

    def _close(self, v: Vacancy, at_ms: int) -> None:
        v.closed_ms = at_ms
        self.open_count -= 1
        heapq.heappush(self._closed, (at_ms, v.vacancy_id))
        self.open_by_cell[v.occupation, v.region].pop(v.vacancy_id, None)
        self.open_by_occupation[v.occupation].pop(v.vacancy_id, None)
        self.open_by_major[v.occupation[0]].pop(v.vacancy_id, None)
        if self.open_by_key.get(v.posting_key) == v.vacancy_id:
            del self.open_by_key[v.posting_key]

    def expire(self, now_ms: int) -> None:
        """Event-time housekeeping: close vacancies past their deadline, forget what can no longer matter
        (memory stays bounded by the open stock and these windows). Heaps keep it cheap."""
        self._last_expiry_ms = now_ms
        while self._deadlines and self._deadlines[0][0] <= now_ms:
            deadline, vid = heapq.heappop(self._deadlines)
            v = self.vacancies.get(vid)
            if v is not None and v.closed_ms is None and v.deadline_ms == deadline:
                self._close(v, deadline)
        while self._closed and now_ms - self._closed[0][0] > CLOSED_KEEP_DAYS * DAY_MS:
            at, vid = heapq.heappop(self._closed)
            v = self.vacancies.get(vid)
            if v is not None and v.closed_ms == at:
                del self.vacancies[vid]
        old = now_ms - (SEEKER_DAYS + ATTRIBUTION_DAYS) * DAY_MS
        # Seekers leave in the order they arrived, per cell: one that arrived out of order leaves a little
        # late, with the one before it (a heap of registrations cost ~80 bytes a seeker; 1.2 M nationally).
        for index in (self.seekers_by_cell, self.seekers_by_occupation):
            for key in list(index):
                queue = index[key]
                while queue and queue[0].registered_ms < old:
                    gone = queue.popleft()
                    if self.seekers.get(gone.seeker_id) is gone:
                        del self.seekers[gone.seeker_id]
                if not queue:
                    del index[key]
        horizon = now_ms - ATTRIBUTION_DAYS * DAY_MS
        self.served.expire(seoul_day(now_ms - 2 * DAY_MS), seoul_day(horizon))
        while self._outcome_times and self._outcome_times[0][0] < horizon:
            at, key = heapq.heappop(self._outcome_times)
            if self.seen_outcomes.get(key) == at:
                del self.seen_outcomes[key]
        for eid, waiting in list(self.parked.items()):
            kept = [w for w in waiting if now_ms - w[0] <= PARK_DAYS * DAY_MS]
            for w in waiting:
                if now_ms - w[0] > PARK_DAYS * DAY_MS:
                    self.unresolved += 1
                    self.parked_count -= 1
                    self._seen((w[1], w[2] + ":" + w[3]), now_ms)  # a re-send later is not counted again
            if kept:
                self.parked[eid] = kept
            else:
                del self.parked[eid]
        today = seoul_day(now_ms)
        if today != self._expired_day:  # per-day tables: once a day
            self._expired_day = today
            stale = seoul_day(now_ms - 35 * DAY_MS)  # written to ClickHouse long since; outcomes ≤ 72 h late
            for key in [k for k in self.daily if k[0] < stale]:
                del self.daily[key]
            for table in (self.hires, self.attributed, self.exposure_days):
                for day in [d for d in table if d < stale]:
                    del table[day]
            for day in [d for d in self.exposure if d < seoul_day(now_ms - 2 * DAY_MS)]:
                self.exposure_days[day] = self._exposure_summary(day)
                del self.exposure[day]

    def _seen(self, key: tuple[str, str], now_ms: int) -> None:
        self.seen_outcomes[key] = now_ms
        heapq.heappush(self._outcome_times, (now_ms, key))

    def _unpark(self, entity_id: str) -> None:
        for occurred_ms, seeker_id, vacancy_id, outcome, _ in self.parked.pop(entity_id, ()):
            self.parked_count -= 1
            self.outcome(seeker_id, vacancy_id, outcome, occurred_ms)

    # --- candidates and scores
    def scorer(self) -> LinearScorer:
        if self._scorer is None:
            self._scorer = LinearScorer(self.model)
        return self._scorer

    def candidates(self, s: Seeker, limit: int | None = None, posted_by: int | None = None) -> list[Vacancy]:
        """Candidate generation before scoring: open vacancies of the seeker's occupation in the seeker's
        region, then elsewhere, then of the occupation's major group -- newest first, at most ``limit``;
        with ``posted_by`` (epoch ms), only those posted by then (the candidates a seeker had when applying).
        (Indexes are insertion-ordered dicts: the order survives a checkpoint, so do the answers.)"""
        limit = limit or self.max_candidates
        ids: dict[str, None] = {}
        for group in (self.open_by_cell.get((s.occupation, s.region)), self.open_by_occupation.get(s.occupation),
                      self.open_by_major.get(s.occupation[0])):
            for vid in reversed(group or {}):
                if posted_by is not None and self.vacancies[vid].posted_ms > posted_by:
                    continue
                ids[vid] = None
                if len(ids) >= limit:
                    return [self.vacancies[i] for i in ids]
        return [self.vacancies[i] for i in ids]

    def score(self, s: Seeker, v: Vacancy, now_ms: int) -> float:
        return self.model.predict_proba_one(features(s, v, now_ms)).get(True, 0.0)

    def _reasons(self, x: np.ndarray) -> list[dict[str, float]]:
        """Per row: the three features that contributed most (weight × standardised value)."""
        c = self.scorer().contributions(x)
        top = np.argsort(-np.abs(c), axis=1)[:, :3]
        return [{FEATURES[i]: round(float(row[i]), 4) for i in idx} for row, idx in zip(c, top, strict=True)]

    def recommend_vacancies(self, seeker_id: str, k: int = 10, now_ms: int | None = None,
                            record: bool = True, explain: bool = True) -> list[Recommendation]:
        """Top-k open vacancies for a seeker, with exposure control: a vacancy already in
        ``exposure_share`` of the day's recommendations is skipped."""
        s = self.seekers.get(seeker_id)
        if s is None:
            raise KeyError(seeker_id)
        now_ms = self.clock_ms if now_ms is None else now_ms
        pool = self.candidates(s)
        if not pool:
            return []
        x = feature_matrix(s, pool, now_ms)
        scores = self.scorer().scores(x)
        day = seoul_day(now_ms)
        shown = self.exposure[day]
        total = sum(shown.values())
        cap = max(1.0, self.exposure_share * (total + k))
        chosen: list[int] = []
        for i in np.argsort(-scores, kind="stable"):
            if shown.get(pool[i].vacancy_id, 0) + 1 > cap:
                continue
            chosen.append(int(i))
            if len(chosen) == k:
                break
        reasons = self._reasons(x[chosen]) if explain else [{}] * len(chosen)
        out = [Recommendation(pool[i].vacancy_id, float(scores[i]), r) for i, r in zip(chosen, reasons, strict=True)]
        if record:
            for i in chosen:
                shown[pool[i].vacancy_id] += 1
                self.served.add(day, ServedPairs.pair(s, pool[i]))
        return out

    def recommend_seekers(self, vacancy_id: str, k: int = 10, now_ms: int | None = None) -> list[Recommendation]:
        """Top-k active job seekers for an open vacancy (the same model, seen from the employer)."""
        v = self.vacancies.get(vacancy_id)
        if v is None or v.closed_ms is not None:
            raise KeyError(vacancy_id)
        now_ms = self.clock_ms if now_ms is None else now_ms
        pool: dict[str, Seeker] = {}
        for queue in (self.seekers_by_cell.get((v.occupation, v.region), ()),
                      self.seekers_by_occupation.get(v.occupation, ())):
            for s in reversed(queue):  # the most recently registered first
                if len(pool) >= self.max_candidates:
                    break
                if not s.hired and now_ms - s.registered_ms <= SEEKER_DAYS * DAY_MS:
                    pool.setdefault(s.seeker_id, s)
        if not pool:
            return []
        seekers = list(pool.values())
        x = np.array([[f[k_] for k_ in FEATURES] for f in (features(s, v, now_ms) for s in seekers)], dtype=float)
        scores = self.scorer().scores(x)
        order = [int(i) for i in np.argsort(-scores, kind="stable")[:k]]
        return [Recommendation(seekers[i].seeker_id, float(scores[i]), r)
                for i, r in zip(order, self._reasons(x[order]), strict=True)]

    # --- learning with progressive validation
    def _learn(self, s: Seeker, v: Vacancy, label: bool, now_ms: int) -> None:
        """Learn the pair as the seeker saw it when applying (``now_ms``: then), and for a good outcome a few
        vacancies the seeker had then and did not take as negatives."""
        self.model.learn_one(features(s, v, now_ms), label)
        self.learned += 1
        if label:
            others = [c for c in self.candidates(s, 100, posted_by=now_ms) if c.vacancy_id != v.vacancy_id]
            for neg in self.rng.sample(others, min(self.negatives, len(others))):
                self.model.learn_one(features(s, neg, now_ms), False)
        self._scorer = None

    def outcome(self, seeker_id: str, vacancy_id: str, outcome: str, now_ms: int) -> None:
        if outcome == "withdrawn":
            return
        key = (seeker_id, vacancy_id + ":" + outcome)
        if key in self.seen_outcomes:
            return  # a source re-sent it: learned (or given up on) once
        s, v = self.seekers.get(seeker_id), self.vacancies.get(vacancy_id)
        if s is None or v is None:
            waiting = self.parked[seeker_id if s is None else vacancy_id]
            if not any(w[1:4] == (seeker_id, vacancy_id, outcome) for w in waiting):
                waiting.append((now_ms, seeker_id, vacancy_id, outcome, 0))
                self.parked_count += 1
            return
        self._seen(key, now_ms)
        day = seoul_day(now_ms)
        good = outcome in ("interview", "hired")
        # Judged and learned as the seeker saw the vacancy when applying (the outcome comes days later).
        recent = getattr(s, "applied", None) or ()
        applied = min(now_ms, next((recent[i + 1] for i in range(0, len(recent), 2) if recent[i] == v.number),
                                   now_ms))
        x = features(s, v, applied)
        proba = self.model.predict_proba_one(x).get(True, 0.0)
        groups = (("all", ""), ("age_band", s.age_band), ("sex", s.sex), ("region", s.region))
        for name, value in (("model", proba), ("rule", rule_score(s, v) / RULE_MAX), ("random", self.rng.random())):
            self.metrics[name].add_outcome(good, value)
            for g, gv in groups:
                self._day(day, name, g, gv).add_outcome(good, value)
        if good:
            self._rank(s, v, applied, day, groups)
        if outcome == "hired":
            s.hired = True
            self.hires[day] += 1
            if ServedPairs.pair(s, v) in self.served:
                self.attributed[day] += 1
        self._learn(s, v, good, applied)

    def _day(self, day: str, ranker: str, group: str, value: str) -> RankingMetrics:
        key = (day, ranker, group, value)
        m = self.daily.get(key)
        if m is None:
            m = self.daily[key] = RankingMetrics()
        return m

    def _rank(self, s: Seeker, relevant: Vacancy, applied_ms: int, day: str, groups) -> None:
        """The good outcome's vacancy ranked among the seeker's candidates as they were when the seeker
        applied (ranked at the outcome, days later, every vacancy posted since crowded out the older
        relevant one -- the rule-based matcher, newest first, then ranked below random)."""
        pool = [c for c in self.candidates(s, 100, posted_by=applied_ms)
                if c.vacancy_id != relevant.vacancy_id] + [relevant]
        scores = {"model": list(self.scorer().scores(feature_matrix(s, pool, applied_ms))),
                  "rule": [rule_score(s, c) for c in pool],
                  "random": [self.rng.random() for _ in pool]}
        for name, values in scores.items():
            target = values[-1]
            rank = 1 + sum(1 for x in values[:-1] if x > target)
            self.metrics[name].add_ranking(rank)
            for g, gv in groups:
                self._day(day, name, g, gv).add_ranking(rank)

    # --- the observatory's rows
    def daily_rows(self, days: Iterable[str] | None = None) -> list[list]:
        """(day, ranker, group, value, queries, hits_at_10, precision_at_10, ndcg_at_10, outcomes, auc)."""
        wanted = None if days is None else set(days)
        rows = []
        for (day, ranker, group, value), m in sorted(self.daily.items()):
            if wanted is not None and day not in wanted:
                continue
            rows.append([datetime.fromisoformat(day).date(), ranker, group, value, m.queries, m.hits_at_10,
                         m.precision_at_10, m.ndcg_at_10, m.outcomes, float(m.auc.get())])
        return rows

    def _exposure_summary(self, day: str) -> tuple[int, int, float, float]:
        shown = self.exposure.get(day)
        if not shown:
            return self.exposure_days.get(day, (0, 0, 0.0, 0.0))
        total = sum(shown.values())
        return total, len(shown), max(shown.values()) / total, gini(shown.values())

    def exposure_rows(self) -> list[list]:
        """(day, recommendations, vacancies shown, max share of one vacancy, Gini, hires, attributed hires)."""
        rows = []
        for day in sorted(set(self.exposure) | set(self.exposure_days) | set(self.hires)):
            rows.append([datetime.fromisoformat(day).date(), *self._exposure_summary(day),
                         self.hires.get(day, 0), self.attributed.get(day, 0)])
        return rows
