"""The matching model's pure parts (issue 5 is in progress: not yet wired into the worker)."""

from __future__ import annotations

from streams.matching import Matcher, RankingMetrics, Seeker, Vacancy, features, rule_score


def seeker(**kw) -> Seeker:
    base = dict(seeker_id="S1", region="48", occupation="74", education=2, experience=5, expected_wage=3_000_000,
                skills=frozenset({"SK09"}), qualifications=frozenset({"Q04"}), training=True)
    return Seeker(**{**base, **kw})


def vacancy(vid: str, **kw) -> Vacancy:
    base = dict(vacancy_id=vid, region="48", occupation="74", education=2, experience=3, monthly_wage=3_200_000,
                skills=frozenset({"SK09"}), qualifications=frozenset({"Q04"}), size_band="300+", posted_ms=0)
    return Vacancy(**{**base, **kw})


def test_features_describe_the_pair():
    x = features(seeker(), vacancy("V1"), now_ms=86_400_000 * 3)
    assert x["same_occupation"] == 1.0 and x["same_region"] == 1.0 and x["distance_100km"] == 0.0
    assert x["skills_overlap"] == 1.0 and x["qualifications_overlap"] == 1.0
    assert x["vacancy_age_days"] == 3.0 and x["wage_above_offer"] == 0.0
    far = features(seeker(region="11"), vacancy("V1", education=4), now_ms=0)
    assert far["distance_100km"] > 2.5 and far["education_short"] == 2.0


def test_ranking_metrics():
    m = RankingMetrics()
    m.add_ranking(1)
    m.add_ranking(11)
    assert m.queries == 2 and m.precision_at_10 == 0.05 and m.ndcg_at_10 == 0.5


def test_the_model_learns_from_outcomes_and_explains_its_scores():
    m = Matcher(seed=1, negatives=2)
    s = seeker()
    m.add_seeker(s)
    good = vacancy("Vgood")
    bad = vacancy("Vbad", education=5, experience=15, monthly_wage=1_500_000, region="50", occupation="93",
                  skills=frozenset(), qualifications=frozenset())
    for v in (good, bad):
        m.open_vacancy(v)
    for i in range(300):
        m.outcome("S1", "Vgood", "hired", i, "2026-03-02")
        m.outcome("S1", "Vbad", "rejected", i, "2026-03-02")
    assert m.score(s, good, 0) > 0.7 > 0.3 > m.score(s, bad, 0)
    top = m.recommend("S1", 1, 0)
    assert top[0][0].vacancy_id == "Vgood" and len(top[0][2]) == 3
    assert rule_score(s, good) > rule_score(s, bad)
