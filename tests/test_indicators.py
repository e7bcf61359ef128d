"""One contract suite for every indicator (sinks.indicators), as river runs one suite on every estimator:
pure functions of measured counts, documented, total on missing and zero inputs."""

from __future__ import annotations

import inspect
import math
import random

import pytest

from sinks import indicators as ind

IDS = [i.name for i in ind.INDICATORS]


@pytest.mark.parametrize("indicator", ind.INDICATORS, ids=IDS)
def test_an_indicator_names_its_definition_and_source_and_reads_measured_counts(indicator):
    doc = inspect.getdoc(indicator.function) or ""
    assert "Definition:" in doc and "Source:" in doc, indicator.name
    assert set(indicator.inputs) <= set(ind.MEASURES), indicator.inputs
    assert len(inspect.signature(indicator.function).parameters) == len(indicator.inputs)
    assert indicator.ko and indicator.en
    assert indicator.name == indicator.function.__name__


@pytest.mark.parametrize("indicator", ind.INDICATORS, ids=IDS)
def test_an_indicator_is_none_when_an_input_is_missing_never_an_error(indicator):
    for missing in range(len(indicator.inputs)):
        args = [10] * len(indicator.inputs)
        args[missing] = None
        assert indicator.function(*args) is None


@pytest.mark.parametrize("indicator", ind.INDICATORS, ids=IDS)
def test_an_indicator_is_pure_and_finite_on_any_counts_including_zeros(indicator):
    rng = random.Random(indicator.name)
    for _ in range(200):
        args = [rng.choice([0, 1, rng.randrange(10**6)]) for _ in indicator.inputs]
        first = indicator.function(*args)
        assert indicator.function(*args) == first  # the same counts, the same answer
        assert first is None or (isinstance(first, int | float) and math.isfinite(first))


RATIOS = [i for i in ind.INDICATORS if i.name != "insured_net_change"]


@pytest.mark.parametrize("indicator", RATIOS, ids=[i.name for i in RATIOS])
def test_a_ratio_divides_its_first_input_by_its_second_and_is_none_over_zero(indicator):
    assert indicator.function(30, 20) == 1.5
    assert indicator.function(0, 20) == 0
    assert indicator.function(30, 0) is None


def test_insured_net_change_is_acquisitions_less_losses():
    assert ind.insured_net_change(120, 150) == -30


@pytest.mark.parametrize(("name", "function"), ind.SERIES_INDICATORS, ids=[n for n, _ in ind.SERIES_INDICATORS])
def test_a_series_indicator_keeps_the_length_and_is_none_where_its_inputs_are(name, function):
    doc = inspect.getdoc(function) or ""
    assert "Definition:" in doc and "Source:" in doc
    series = [float(v) for v in range(1, 400)]
    out = function(series)
    assert len(out) == len(series) and out[0] is None
    holed = list(series)
    holed[200] = None
    assert function(holed)[200] is None
    assert function([]) == []


def test_series_indicators_compute_what_they_say():
    week = [7, 7, 7, 7, 7, 7, 14]
    assert ind.moving_average(week) == [None] * 6 + [8.0]
    series = [10.0] * 7 + [15.0]
    assert ind.week_on_week(series)[7] == 0.5
    assert ind.week_on_week([0.0] * 7 + [5.0])[7] is None  # a zero base is no base
    year = [100.0] + [1.0] * 363 + [80.0]
    assert ind.year_on_year(year)[364] == pytest.approx(-0.2)
    assert ind.median_time_to_fill([3.0, 1.0, 10.0]) == 3.0 and ind.median_time_to_fill([]) is None


def test_every_figure_of_the_headline_has_a_definition_with_formula_and_source_in_both_languages():
    from dashboards.boards import HEADLINE_COLUMNS
    from sinks.rollups import HEADLINE

    keys = [k for k, _, _ in HEADLINE] + [c for c, _ in HEADLINE_COLUMNS
                                          if c in ("ma7", "ma28") or c.startswith("change_")]
    for lang in ("ko", "en"):
        defs = ind.definitions(lang)
        for key in keys:
            d = defs[key]
            assert d["meaning"] and d["formula"] and d["source"], (lang, key)
            assert "standard" not in d["source"].lower() and "practice" not in d["source"].lower()
    assert "고용행정통계로 본 노동시장 동향" in ind.definitions("ko")["ui.initial_claim"]["source"]
    # The pure functions cite the same documents as the board.
    assert "고용행정통계로 본 노동시장 동향" in ind.offers_to_seekers_ratio.__doc__
    assert "一般職業紹介状況" in ind.stock_offers_to_seekers_ratio.__doc__
