"""Online job matching, learned event by event with river (models do no I/O, as in river itself).

Features of a (seeker, vacancy) pair come from the events only: occupation match (same sub-major group,
same major group), region match and distance, education and experience gaps, offered vs expected wage,
overlap of skills and qualifications, vocational training, establishment size and vacancy age. Labels come
from application outcomes: an interview or a hire is a good match, a rejection is not, and a sample of open
vacancies the seeker did not apply to are negatives too (so the model learns who applies as well as who
is chosen). Every outcome is scored before it is learned (progressive validation), for the model and two
baselines: random and the rule-based matcher (same occupation sub-major group and region, newest first).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field

from river import compose, linear_model, metrics, optim, preprocessing

from schemas.codes import code_list, education_rank, region_coordinates, wage_hours

COORDS = region_coordinates()
WAGE_HOURS = wage_hours()
SIZE_RANK = {c.code: i for i, c in enumerate(code_list("size_bands"))}


def _km(a: str, b: str) -> float:
    (lat1, lon1), (lat2, lon2) = COORDS[a], COORDS[b]
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6371.0 * math.hypot(x, y)


@dataclass
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


@dataclass
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


def seeker_of(payload) -> Seeker:
    return Seeker(payload.seeker_id, payload.region, payload.occupation, education_rank(payload.education),
                  payload.experience_years, payload.expected_wage_monthly, frozenset(payload.skills),
                  frozenset(payload.qualifications), payload.vocational_training, payload.age_band, payload.sex)


def vacancy_of(payload, posted_ms: int) -> Vacancy:
    monthly = None
    if payload.wage_amount is not None and payload.wage_type is not None:
        monthly = payload.wage_amount / WAGE_HOURS[payload.wage_type] * 209
    return Vacancy(payload.vacancy_id, payload.region, payload.occupation, education_rank(payload.education_required),
                   payload.experience_years_required, monthly, frozenset(payload.skills),
                   frozenset(payload.qualifications), payload.size_band, posted_ms)


def features(s: Seeker, v: Vacancy, now_ms: int) -> dict[str, float]:
    """The pair's features (a plain dict, as river models take them)."""
    wage_ratio = (s.expected_wage / v.monthly_wage) if s.expected_wage and v.monthly_wage else 1.0
    return {
        "same_occupation": float(s.occupation == v.occupation),
        "same_major": float(s.occupation[0] == v.occupation[0]),
        "same_region": float(s.region == v.region),
        "distance_100km": _km(s.region, v.region) / 100.0,
        "education_gap": float(s.education - v.education),
        "education_short": float(max(0, v.education - s.education)),
        "experience_gap": float(max(-10, min(10, s.experience - v.experience))),
        "experience_short": float(max(0, v.experience - s.experience)),
        "wage_ratio": min(wage_ratio, 3.0),
        "wage_above_offer": max(0.0, wage_ratio - 1.0),
        "skills_overlap": float(len(s.skills & v.skills)),
        "qualifications_overlap": float(len(s.qualifications & v.qualifications)),
        "training": float(s.training),
        "size_rank": float(SIZE_RANK.get(v.size_band, 0)),
        "vacancy_age_days": max(0.0, (now_ms - v.posted_ms) / 86_400_000),
        "log_vacancy_age": math.log1p(max(0.0, (now_ms - v.posted_ms) / 86_400_000)),
        "same_region_and_occupation": float(s.region == v.region and s.occupation == v.occupation),
    }


def rule_score(s: Seeker, v: Vacancy) -> float:
    """The rule-based matcher: same occupation sub-major group and same region first, newest first."""
    return 2.0 * (s.occupation == v.occupation) + 1.0 * (s.region == v.region) + v.posted_ms / 1e16


def new_model():
    return compose.Pipeline(preprocessing.StandardScaler(),
                            linear_model.LogisticRegression(optimizer=optim.SGD(0.1), l2=1e-5))


@dataclass
class RankingMetrics:
    """Precision@10, NDCG@10 and AUC, accumulated over progressive-validation queries."""

    queries: int = 0
    hits_at_10: int = 0
    ndcg_sum: float = 0.0
    auc: metrics.ROCAUC = field(default_factory=metrics.ROCAUC)

    def add_ranking(self, rank: int) -> None:
        """``rank``: 1-based position of the relevant vacancy among the candidates."""
        self.queries += 1
        if rank <= 10:
            self.hits_at_10 += 1
            self.ndcg_sum += 1.0 / math.log2(rank + 1)

    @property
    def precision_at_10(self) -> float:
        # One relevant vacancy per query: precision@10 = hits / (10 × queries).
        return self.hits_at_10 / (10 * self.queries) if self.queries else 0.0

    @property
    def ndcg_at_10(self) -> float:
        return self.ndcg_sum / self.queries if self.queries else 0.0


class Matcher:
    """Seekers, open vacancies, the model and the observatory's metrics; no I/O."""

    def __init__(self, seed: int = 0, negatives: int = 10, candidates: int = 100):
        self.model = new_model()
        self.seekers: dict[str, Seeker] = {}
        self.vacancies: dict[str, Vacancy] = {}
        self.by_occupation: dict[str, set[str]] = defaultdict(set)
        self.by_major: dict[str, set[str]] = defaultdict(set)
        self.rng = random.Random(seed)
        self.negatives = negatives
        self.max_candidates = candidates
        self.metrics = {name: RankingMetrics() for name in ("model", "rule", "random")}
        self.daily: dict[tuple[str, str], RankingMetrics] = {}
        self.learned = 0

    # --- state
    def add_seeker(self, s: Seeker) -> None:
        self.seekers[s.seeker_id] = s

    def open_vacancy(self, v: Vacancy) -> None:
        self.vacancies[v.vacancy_id] = v
        self.by_occupation[v.occupation].add(v.vacancy_id)
        self.by_major[v.occupation[0]].add(v.vacancy_id)

    def close_vacancy(self, vacancy_id: str) -> None:
        v = self.vacancies.pop(vacancy_id, None)
        if v:
            self.by_occupation[v.occupation].discard(vacancy_id)
            self.by_major[v.occupation[0]].discard(vacancy_id)

    # --- candidates and scores
    def candidates(self, s: Seeker) -> list[Vacancy]:
        """Candidate generation before scoring: the seeker's occupation sub-major group, then its major group."""
        ids = list(self.by_occupation.get(s.occupation, ()))
        if len(ids) < self.max_candidates:
            extra = [i for i in self.by_major.get(s.occupation[0], ()) if i not in set(ids)]
            ids += extra[: self.max_candidates - len(ids)]
        return [self.vacancies[i] for i in ids[: self.max_candidates]]

    def score(self, s: Seeker, v: Vacancy, now_ms: int) -> float:
        return self.model.predict_proba_one(features(s, v, now_ms)).get(True, 0.0)

    def recommend(self, seeker_id: str, k: int, now_ms: int) -> list[tuple[Vacancy, float, dict[str, float]]]:
        s = self.seekers[seeker_id]
        scored = [(v, self.score(s, v, now_ms)) for v in self.candidates(s)]
        scored.sort(key=lambda x: -x[1])
        return [(v, p, self.explain(s, v, now_ms)) for v, p in scored[:k]]

    def explain(self, s: Seeker, v: Vacancy, now_ms: int) -> dict[str, float]:
        """The three features that contributed most to the score (weight × standardised value)."""
        x = features(s, v, now_ms)
        scaler, lr = self.model["StandardScaler"], self.model["LogisticRegression"]
        z = scaler.transform_one(x)
        contributions = {k: lr.weights.get(k, 0.0) * z.get(k, 0.0) for k in x}
        return dict(sorted(contributions.items(), key=lambda kv: -abs(kv[1]))[:3])

    # --- learning with progressive validation
    def _learn(self, s: Seeker, v: Vacancy, label: bool, now_ms: int) -> None:
        self.model.learn_one(features(s, v, now_ms), label)
        self.learned += 1
        if label:
            others = [c for c in self.candidates(s) if c.vacancy_id != v.vacancy_id]
            for neg in self.rng.sample(others, min(self.negatives, len(others))):
                self.model.learn_one(features(s, neg, now_ms), False)

    def outcome(self, seeker_id: str, vacancy_id: str, outcome: str, now_ms: int, day: str) -> None:
        s, v = self.seekers.get(seeker_id), self.vacancies.get(vacancy_id)
        if s is None or v is None or outcome == "withdrawn":
            return
        good = outcome in ("interview", "hired")
        x = features(s, v, now_ms)
        proba = self.model.predict_proba_one(x).get(True, 0.0)
        for name in ("model", "rule", "random"):
            self.metrics[name].auc.update(good, {"model": proba, "rule": rule_score(s, v),
                                                 "random": self.rng.random()}[name])
        if good:
            self._rank(s, v, now_ms, day)
        self._learn(s, v, good, now_ms)

    def _rank(self, s: Seeker, relevant: Vacancy, now_ms: int, day: str) -> None:
        pool = [c for c in self.candidates(s) if c.vacancy_id != relevant.vacancy_id] + [relevant]
        scores = {"model": [self.score(s, c, now_ms) for c in pool],
                  "rule": [rule_score(s, c) for c in pool],
                  "random": [self.rng.random() for _ in pool]}
        for name, values in scores.items():
            target = values[-1]
            rank = 1 + sum(1 for x in values[:-1] if x > target)
            self.metrics[name].add_ranking(rank)
            self.daily.setdefault((day, name), RankingMetrics()).add_ranking(rank)
