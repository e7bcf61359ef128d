"""Online matching: the model's pure parts (no Kafka, no ClickHouse), and its quality on a simulated month.

The worker integration (checkpoints across restarts, the API, the observatory tables) is in test_worker.
"""

from __future__ import annotations

import pickle
import uuid
from datetime import date, datetime, timedelta

import numpy as np
import orjson
import pytest

from schemas.calendar import SEOUL
from schemas.codec import decode_event
from streams.matching import (
    DAY_MS,
    FEATURES,
    BinnedAUC,
    LinearScorer,
    Matcher,
    RankingMetrics,
    Seeker,
    ServedPairs,
    Vacancy,
    feature_matrix,
    features,
    gini,
    rule_score,
)
from streams.processing import epoch_ms

T0 = datetime(2026, 3, 2, 9, tzinfo=SEOUL)


def seeker(**kw) -> Seeker:
    base = dict(seeker_id="S1", region="48", occupation="74", education=2, experience=5, expected_wage=3_000_000,
                skills=frozenset({"SK09"}), qualifications=frozenset({"Q04"}), training=True)
    return Seeker(**{**base, **kw})


def vacancy(vid: str, **kw) -> Vacancy:
    base = dict(vacancy_id=vid, region="48", occupation="74", education=2, experience=3, monthly_wage=3_200_000,
                skills=frozenset({"SK09"}), qualifications=frozenset({"Q04"}), size_band="300+", posted_ms=0)
    return Vacancy(**{**base, **kw})


def hexid(prefix: str, n: int) -> str:
    return f"{prefix}{n:016x}"


def event(etype: str, at: datetime, payload: dict):
    doc = {"event_id": uuid.uuid4().hex, "event_type": etype, "schema_version": 1, "occurred_at": at.isoformat(),
           "source": "worknet", "payload": payload}
    return decode_event(orjson.dumps(doc))


def registered(n: int, at: datetime, occupation: str = "74", region: str = "48", **kw):
    return event("seeker.registered", at, {
        "seeker_id": hexid("S", n), "region": region, "occupation": occupation, "age_band": "30-39", "sex": "F",
        "education": "college", "experience_years": 3, "expected_wage_monthly": 3_000_000, "skills": ["SK09"],
        "qualifications": [], **kw})


def submitted(n: int, at: datetime, occupation: str = "74", region: str = "48", deadline_days: int = 20, **kw):
    return event("vacancy.submitted", at, {
        "vacancy_id": hexid("V", n), "employer_id": hexid("E", n), "region": region, "industry": "C",
        "occupation": occupation, "size_band": "10-29", "title": f"생산직 {n} 채용", "openings": 1,
        "employment_type": "permanent", "wage_type": "monthly", "wage_amount": 3_000_000,
        "work_hours_per_week": 40, "deadline": (at.date() + timedelta(days=deadline_days)).isoformat(),
        "education_required": "high", "skills": ["SK09"], "qualifications": [], **kw})


def outcome(seeker_n: int, vacancy_n: int, at: datetime, result: str):
    return event("application.outcome", at, {
        "application_id": hexid("A", seeker_n * 1000 + vacancy_n), "seeker_id": hexid("S", seeker_n),
        "vacancy_id": hexid("V", vacancy_n), "region": "48", "industry": "C", "occupation": "74",
        "age_band": "30-39", "sex": "F", "outcome": result})


def feed(m: Matcher, events) -> None:
    for e in events:
        m.apply(e, epoch_ms(e.occurred_at))


def test_features_describe_the_pair():
    x = features(seeker(), vacancy("V1"), now_ms=86_400_000 * 3)
    assert x["same_occupation"] == 1.0 and x["same_region"] == 1.0 and x["distance_100km"] == 0.0
    assert x["skills_overlap"] == 1.0 and x["qualifications_overlap"] == 1.0 and x["occupation_distance"] == 0.0
    assert x["vacancy_age_days"] == 3.0 and x["wage_above_offer"] == 0.0
    far = features(seeker(region="11"), vacancy("V1", education=4, occupation="71"), now_ms=0)
    assert far["distance_100km"] > 2.5 and far["education_short"] == 2.0 and far["occupation_distance"] == 1.0
    assert list(x) == list(FEATURES)


def test_vectorised_features_and_scores_equal_the_per_pair_ones():
    m = Matcher(seed=3, recommend_on_registration=0)
    s = seeker(expected_wage=None)
    pool = [vacancy(f"V{i}", region=r, occupation=o, education=e, experience=xp, monthly_wage=w, skills=sk,
                    posted_ms=i * 3_600_000)
            for i, (r, o, e, xp, w, sk) in enumerate([
                ("48", "74", 2, 3, 3_200_000, frozenset({"SK09"})), ("11", "71", 4, 12, None, frozenset()),
                ("26", "23", 0, 0, 2_000_000, frozenset({"SK01", "SK09"})), ("48", "74", 3, 1, 0, frozenset())])]
    for who in (s, seeker()):
        x = feature_matrix(who, pool, now_ms=5 * DAY_MS)
        expected = np.array([[features(who, v, 5 * DAY_MS)[f] for f in FEATURES] for v in pool])
        assert np.allclose(x, expected), (x - expected)
    for i in range(200):  # teach it something, then compare the two scoring paths
        m.model.learn_one(features(s, pool[i % 4], DAY_MS), i % 4 == 0)
    x = feature_matrix(s, pool, DAY_MS)
    fast = LinearScorer(m.model).scores(x)
    slow = [m.model.predict_proba_one(features(s, v, DAY_MS))[True] for v in pool]
    assert np.allclose(fast, slow, atol=1e-9)


def test_ranking_metrics_and_gini():
    m = RankingMetrics()
    m.add_ranking(1)
    m.add_ranking(11)
    assert m.queries == 2 and m.precision_at_10 == 0.05 and m.ndcg_at_10 == 0.5
    assert gini([5, 5, 5, 5]) == 0.0
    assert gini([0, 0, 0, 12]) == 0.0  # one vacancy shown at all: nothing unequal among those shown
    assert 0.7 < gini([1, 1, 1, 1, 1, 1, 1, 1, 1, 40]) < 0.8


def test_binned_auc_equals_the_pairwise_auc():
    import random

    rng = random.Random(4)
    pairs = [(rng.random() < 0.3, (rng.randrange(100) + 0.5) / 100) for _ in range(3000)]  # bin centres
    auc = BinnedAUC(bins=100)
    for good, score in pairs:
        auc.update(good, score)
    pos = [s for g, s in pairs if g]
    neg = [s for g, s in pairs if not g]
    exact = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert abs(auc.get() - exact) < 1e-9
    assert BinnedAUC().get() == 0.0


def test_the_model_learns_from_outcomes_and_explains_its_scores():
    m = Matcher(seed=1, negatives=2, recommend_on_registration=0)
    feed(m, [registered(1, T0), submitted(1, T0),
             submitted(2, T0, region="50", occupation="93", wage_amount=2_200_000, education_required="university",
                       experience_years_required=15, skills=[])])
    for i in range(300):
        at = T0 + timedelta(minutes=i)
        m.seen_outcomes.clear()  # the same pair again and again: a drill, not re-sent duplicates
        feed(m, [outcome(1, 1, at, "hired"), outcome(1, 2, at, "rejected")])
    s = m.seekers[hexid("S", 1)]
    good, bad = m.vacancies[hexid("V", 1)], m.vacancies[hexid("V", 2)]
    assert m.score(s, good, 0) > 0.7 > 0.3 > m.score(s, bad, 0)
    top = m.recommend_vacancies(hexid("S", 1), 1)
    assert top[0].id == hexid("V", 1) and len(top[0].reasons) == 3
    assert rule_score(s, good) > rule_score(s, bad)
    assert m.metrics["model"].outcomes == 600 and m.metrics["model"].queries == 300
    days = {r[0] for r in m.daily_rows()}
    assert days == {date(2026, 3, 2)}


def test_a_resent_outcome_is_learned_once_and_an_early_one_waits_for_its_vacancy():
    m = Matcher(seed=1, recommend_on_registration=0)
    feed(m, [registered(1, T0), outcome(1, 7, T0 + timedelta(hours=2), "interview")])  # the vacancy not yet in
    assert m.learned == 0 and sum(len(w) for w in m.parked.values()) == 1 == m.parked_count
    feed(m, [submitted(7, T0 + timedelta(hours=1))])
    assert m.learned == 1 and not m.parked
    feed(m, [outcome(1, 7, T0 + timedelta(hours=2), "interview")])  # re-sent by the source
    assert m.learned == 1
    feed(m, [outcome(1, 99, T0 + timedelta(hours=3), "interview"), registered(2, T0 + timedelta(days=4))])
    assert m.unresolved == 1 and not m.parked and m.parked_count == 0  # its vacancy never came: given up


def test_exposure_control_caps_each_vacancys_share_of_the_days_recommendations():
    share = 0.1
    m = Matcher(seed=1, exposure_share=share, recommend_on_registration=0)
    feed(m, [submitted(n, T0) for n in range(1, 41)])
    for n in range(1, 201):
        feed(m, [registered(n, T0 + timedelta(seconds=n))])
        m.recommend_vacancies(hexid("S", n), 5)
    shown = m.exposure["2026-03-02"]
    total = sum(shown.values())
    assert total == 1000
    assert max(shown.values()) <= share * total  # identical seekers: without the cap all would see the same 5
    uncapped = Matcher(seed=1, exposure_share=1.0, recommend_on_registration=0)
    feed(uncapped, [submitted(n, T0) for n in range(1, 41)])
    for n in range(1, 21):
        feed(uncapped, [registered(n, T0 + timedelta(seconds=n))])
        uncapped.recommend_vacancies(hexid("S", n), 5)
    assert max(uncapped.exposure["2026-03-02"].values()) == 20


def test_seekers_for_a_vacancy_come_from_its_occupation_newest_first_without_the_hired():
    m = Matcher(seed=1, candidates=10, recommend_on_registration=0)
    feed(m, [submitted(1, T0)] + [registered(n, T0 + timedelta(minutes=n)) for n in range(1, 16)]
         + [registered(99, T0, occupation="23")])
    m.seekers[hexid("S", 15)].hired = True
    got = m.recommend_seekers(hexid("V", 1), 20)
    ids = {r.id for r in got}
    assert len(got) == 10 and hexid("S", 15) not in ids and hexid("S", 99) not in ids
    assert ids == {hexid("S", n) for n in range(5, 15)}  # the ten most recent who are still looking
    with pytest.raises(KeyError):
        m.recommend_seekers(hexid("V", 2))


def test_hires_at_recommended_vacancies_are_attributed():
    m = Matcher(seed=1, recommend_on_registration=3)
    feed(m, [submitted(n, T0) for n in range(1, 4)] + [registered(1, T0 + timedelta(hours=1))])
    s = m.seekers[hexid("S", 1)]
    assert [ServedPairs.pair(s, m.vacancies[hexid("V", n)]) in m.served for n in range(1, 4)] == [True] * 3
    assert len(m.served) == 3
    feed(m, [outcome(1, 2, T0 + timedelta(days=5), "hired")])
    rows = {r[0]: r for r in m.exposure_rows()}
    assert rows[date(2026, 3, 7)][-2:] == [1, 1]  # hires, attributed


def test_hire_attribution_window_is_thirty_seoul_days_and_survives_freezing():
    m = Matcher(seed=1, recommend_on_registration=1)
    feed(m, [submitted(1, T0, deadline_days=60), submitted(2, T0, deadline_days=60, occupation="23"),
             registered(1, T0 + timedelta(hours=1)), registered(2, T0 + timedelta(hours=1), occupation="23")])
    feed(m, [submitted(3, T0 + timedelta(days=d)) for d in range(1, 6)])  # days pass: day 0 is frozen
    assert list(m.served.frozen) == ["2026-03-02"] and len(m.served) == 2
    feed(m, [outcome(1, 1, T0 + timedelta(days=5), "hired")])  # recommended 5 days before
    feed(m, [outcome(2, 2, T0 + timedelta(days=31), "hired")])  # recommended 31 days before: forgotten
    rows = {r[0]: r[-2:] for r in m.exposure_rows()}
    assert rows[date(2026, 3, 7)] == [1, 1] and rows[date(2026, 4, 2)] == [1, 0]


def test_a_checkpoint_of_the_old_form_is_converted():
    m = Matcher(seed=1, recommend_on_registration=3)
    feed(m, [submitted(n, T0) for n in range(1, 4)] + [registered(1, T0 + timedelta(hours=1))])
    state = dict(m.__dict__)  # as a stop-12 matcher pickled it: ids and served ms, no numbers
    del state["served"], state["_numbers"]
    state["recommended"] = {hexid("S", 1): {hexid("V", n): epoch_ms(T0) + 3_600_000 for n in range(1, 4)}}
    state["_served"] = [(epoch_ms(T0) + 3_600_000, hexid("S", 1), hexid("V", n)) for n in range(1, 4)]
    for name in ("seekers_by_cell", "seekers_by_occupation"):  # ids, with a heap of registrations
        state[name] = {key: dict.fromkeys(s.seeker_id for s in queue) for key, queue in state[name].items()}
    state["_registrations"] = [(s.registered_ms, s.seeker_id) for s in m.seekers.values()]
    for entity in (*m.seekers.values(), *m.vacancies.values()):
        del entity.number
    old = object.__new__(Matcher)
    old.__dict__.update(state)
    back = pickle.loads(pickle.dumps(old))
    assert len(back.served) == 3 and len({v.number for v in back.vacancies.values()}) == 3
    assert [r.id for r in back.recommend_seekers(hexid("V", 1))] == [hexid("S", 1)]
    feed(back, [outcome(1, 2, T0 + timedelta(days=5), "hired")])
    assert {r[0]: r for r in back.exposure_rows()}[date(2026, 3, 7)][-2:] == [1, 1]


def test_a_checkpoint_with_vacancy_vectors_as_tuples_is_converted():
    m = Matcher(seed=1, recommend_on_registration=0)
    feed(m, [submitted(n, T0, region=r) for n, r in ((1, "48"), (2, "11"), (3, "48"))]
         + [registered(1, T0 + timedelta(hours=1))])
    expected = m.recommend_vacancies(hexid("S", 1), record=False)
    for v in m.vacancies.values():  # up to stop 18 a vacancy's vector was a tuple of its numbers
        v.vec = tuple(np.frombuffer(v.vec).tolist())
    back = pickle.loads(pickle.dumps(m))
    assert all(type(v.vec) is bytes and v.vec == v.vector() for v in back.vacancies.values())
    assert back.recommend_vacancies(hexid("S", 1), record=False) == expected and len(expected) == 3


def test_pickle_round_trip_and_bounded_memory():
    m = Matcher(seed=2, recommend_on_registration=2)
    n_seekers = n_vacancies = 0
    for day in range(400):
        at = T0 + timedelta(days=day)
        batch = []
        for _ in range(5):
            n_vacancies += 1
            batch.append(submitted(n_vacancies, at, deadline_days=10))
            n_seekers += 1
            batch.append(registered(n_seekers, at + timedelta(minutes=5)))
        batch.append(outcome(n_seekers, n_vacancies - 1, at + timedelta(hours=2), "interview"))
        feed(m, batch)
        if day == 200:
            middle = (len(m.seekers), len(m.vacancies), len(m.daily), len(m.served))
    # Bounded: what a window of event time holds, not everything ever seen.
    assert len(m.seekers) <= 5 * 121 and len(m.vacancies) <= 5 * (10 + 31 + 1)
    assert (len(m.seekers), len(m.vacancies)) == middle[:2] and len(m.daily) <= middle[2] + 100
    assert len(m.served) <= 2 * 5 * 32 and len(m.served) == middle[3]
    assert len(m.served.open) <= 3 and len(m.served.frozen) <= 30  # days still served; the rest compact
    blob = pickle.dumps(m)
    assert len(blob) < 2_000_000
    back = pickle.loads(blob)
    s = back.seekers[hexid("S", n_seekers)]
    assert [r.id for r in back.recommend_vacancies(s.seeker_id, 5, record=False)] == \
        [r.id for r in m.recommend_vacancies(s.seeker_id, 5, record=False)]
    assert back.daily_rows() == m.daily_rows() and back.learned == m.learned


# --- quality on a simulated month ---------------------------------------------------------------------------

MATCHING_SCALE = 0.03  # see the test's docstring


@pytest.fixture(scope="module")
def matching_month():
    # Fed as the worker feeds it: accepted events only (the dead letters -- broken, too late or from the
    # future -- never reach the matcher).
    from lmis.bench import learn_month

    return learn_month(MATCHING_SCALE, log=lambda *_: None)


def test_learned_model_beats_the_rule_based_matcher_and_the_rule_beats_random(matching_month):
    """Precision@10 by progressive validation over a simulated month, fixed seed: each interview or hire
    ranked among the candidates the seeker had when applying (ranked when the outcome came, days later,
    the newer vacancies posted since pushed the rule's newest-first pick below random at scale 0.5).

    At scale 0.03, not the 0.01 of the pipeline tests: at 0.01 an occupation × region cell holds about two
    open vacancies, so the rule-based matcher's top 10 is the whole cell (docs/benchmarks.md has the
    figures at other scales).
    """
    model, rule, rnd = (matching_month.metrics[k] for k in ("model", "rule", "random"))
    assert model.queries > 3000
    print(f"precision@10 model={model.precision_at_10:.4f} rule={rule.precision_at_10:.4f} "
          f"random={rnd.precision_at_10:.4f} ndcg@10 model={model.ndcg_at_10:.3f} auc={model.auc.get():.3f}")
    assert model.precision_at_10 >= 1.2 * rule.precision_at_10
    assert rule.precision_at_10 > 2 * rnd.precision_at_10  # the baselines are what they claim to be
    assert abs(rnd.auc.get() - 0.5) < 0.03 and abs(rnd.precision_at_10 - 0.01) < 0.003  # 10 of ~100 at random
    assert model.ndcg_at_10 > rule.ndcg_at_10 and model.auc.get() > 0.55


def test_the_month_observatory_has_every_day_group_and_a_bounded_exposure(matching_month):
    rows = matching_month.daily_rows()
    days = {r[0] for r in rows if r[2] == "all" and r[1] == "model" and r[4] > 0}
    assert {date(2026, 3, 2) + timedelta(days=i) for i in range(28)} <= days
    assert {r[2] for r in rows} == {"all", "age_band", "sex", "region"}
    exposure = [r for r in matching_month.exposure_rows() if r[0] >= date(2026, 3, 2)]
    assert exposure and all(r[3] <= max(matching_month.exposure_share, 1 / max(1, r[1])) + 1e-9 for r in exposure)
    assert sum(r[6] for r in exposure) > 0  # hires at vacancies recommended to the seeker

