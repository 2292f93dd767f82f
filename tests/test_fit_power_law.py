"""fit_power_law: inputs, region rule, local slopes, predictions, estimator options."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ditbench.fit import FULL_RANGE, InsufficientDataError, RegionRule, fit_power_law
from ditbench.fit.region import first_asymptotic_index, upper_slope

SIZES = 2.0 ** np.arange(6, 14)  # (8,)


def noisy(law, sigma=0.02, repeats=3, seed=0):
    rng = np.random.default_rng(seed)
    n = np.repeat(SIZES, repeats)  # (p,)
    return n, law(n) * np.exp(rng.normal(0.0, sigma, n.size))  # (p,), (p,)


def test_fields_are_consistent_with_the_data():
    n, t = noisy(lambda n: 3e-9 * n**1.5)
    fit = fit_power_law(n, t)
    assert fit.ci_low < fit.exponent < fit.ci_high
    assert fit.ci_low <= 1.5 <= fit.ci_high
    # intercept is ln seconds at n = 1: exp(intercept) ≈ 3e-9 within the noise (σ = 2%,
    # extrapolated over ln 64 … ln 8192 — allow the interval's width times ln n_min).
    assert abs(fit.intercept - math.log(3e-9)) <= (fit.ci_high - fit.ci_low) * math.log(SIZES[0]) + 0.05
    assert (fit.n_min, fit.n_max, fit.sizes, fit.points) == (64.0, 8192.0, 8, 8)  # medians
    assert 0.99 < fit.r2 <= 1.0
    assert fit.regime == "intermediate" and fit.best_model == "power"


def test_one_row_per_point_and_per_repeat_agree_on_medians():
    n, t = noisy(lambda n: 1e-8 * n, repeats=5)
    per_repeat = fit_power_law(n, t)
    medians = [np.median(t[n == s]) for s in SIZES]
    per_point = fit_power_law(SIZES, medians)
    assert per_repeat.exponent == pytest.approx(per_point.exponent, rel=1e-12)
    assert per_repeat.points == 8 and fit_power_law(n, t, estimator="ols-hc3").points == 40


def test_local_slopes_are_neighbour_slopes_over_all_sizes():
    t = 1e-6 + 1e-9 * SIZES  # exact floor + linear law
    fit = fit_power_law(SIZES, t * np.exp(np.linspace(-1e-3, 1e-3, SIZES.size)), region=FULL_RANGE)
    assert len(fit.local_slopes) == len(SIZES) - 1
    first = fit.local_slopes[0]
    assert (first.n_low, first.n_high) == (64.0, 128.0)
    expected = math.log((1e-6 + 128e-9) / (1e-6 + 64e-9)) / math.log(2)
    assert first.slope == pytest.approx(expected, abs=3e-3)  # the ±1e-3 log perturbation / ln 2


def test_region_rule_drops_floor_dominated_sizes_only():
    log_n = np.log(SIZES)
    clean = np.log(1e-9 * SIZES**2)
    assert first_asymptotic_index(SIZES, clean, RegionRule()) == 0
    floored = np.log(1e-5 + 1e-9 * SIZES**2)  # floor = the law at n = 100
    start = first_asymptotic_index(SIZES, floored, RegionRule())
    slopes = np.diff(floored) / np.diff(log_n)
    threshold = 0.9 * upper_slope(SIZES, floored)
    assert start >= 1 and np.all(slopes[:start] < threshold) and slopes[start] >= threshold
    # A floor equal to the law at n = 1000 would drop 5 sizes by slope; min_sizes stops at 4.
    heavy = np.log(1e-3 + 1e-9 * SIZES**2)
    assert first_asymptotic_index(SIZES, heavy, RegionRule(min_sizes=4)) == len(SIZES) - 4
    # Never fewer than min_sizes, however flat: a pure floor keeps the top 4 sizes.
    assert first_asymptotic_index(SIZES, np.log(1 + 1e-12 * SIZES), RegionRule(min_sizes=4)) <= len(SIZES) - 4
    # Flat or falling timings have no growth to protect: nothing dropped.
    assert first_asymptotic_index(SIZES, -log_n, RegionRule()) == 0


def test_region_rule_raises_exponent_toward_the_law():
    t = 2e-6 + 1e-9 * SIZES  # floor = law at n = 2000: the lower half is floor-dominated
    with_rule = fit_power_law(SIZES, t * np.exp(0.01 * np.sin(SIZES)), region=RegionRule(), model="power")
    without = fit_power_law(SIZES, t * np.exp(0.01 * np.sin(SIZES)), model="power")
    assert with_rule.dropped_sizes and with_rule.n_min > SIZES[0]
    assert without.exponent < with_rule.exponent <= 1.0
    assert fit_power_law(SIZES, t, region=FULL_RANGE).dropped_sizes == ()


def test_predict_band_brackets_the_fitted_line():
    n, t = noisy(lambda n: 1e-8 * n)
    fit = fit_power_law(n, t)
    pred = fit.predict([64, 1000, 1e5])
    assert list(pred.columns) == ["n", "seconds", "low", "high"]
    assert np.all(pred["low"] < pred["seconds"]) and np.all(pred["seconds"] < pred["high"])
    assert pred["seconds"].iloc[1] == pytest.approx(math.exp(fit.intercept) * 1000**fit.exponent)
    # The band widens away from the data (extrapolation to 1e5 is less certain than at 1000).
    rel = np.log(pred["high"] / pred["low"])
    assert rel.iloc[2] > rel.iloc[1]
    with pytest.raises(ValueError, match="sizes > 0"):
        fit.predict([0.0])


@pytest.mark.parametrize(
    "n, t, match",
    [
        ([1, 2, 3], [1.0, 2.0], "must pair up"),
        ([1, 2, -3], [1.0, 2.0, 3.0], "n must be finite and > 0"),
        ([1, 2, 3], [1.0, 0.0, 3.0], "seconds must be finite and > 0"),
        ([1, 2, 3], [1.0, math.nan, 3.0], "seconds must be finite"),
    ],
)
def test_bad_input_names_the_value(n, t, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(n, t)


def test_too_few_sizes_is_a_distinct_error():
    with pytest.raises(InsufficientDataError, match="2 distinct size"):
        fit_power_law([10, 10, 20, 20], [1.0, 1.1, 2.0, 2.1])
    with pytest.raises(ValueError, match="estimator"):
        fit_power_law(SIZES, SIZES, estimator="ols")
    with pytest.raises(ValueError, match="min_sizes"):
        fit_power_law(SIZES, SIZES, min_sizes=2)


def test_region_rule_validates_its_parameters():
    with pytest.raises(ValueError, match="fraction"):
        RegionRule(fraction=1.5)
    with pytest.raises(ValueError, match="min_sizes"):
        RegionRule(min_sizes=1)


def test_floor_model_is_chosen_and_its_prediction_bends_toward_the_floor():
    # Floor = the law at n = 1000: the plain law's slope over 2^6…2^13 is well below 1.
    exact = 1e-6 + 1e-9 * SIZES
    n, t = np.repeat(SIZES, 3), np.repeat(exact, 3) * np.exp(np.random.default_rng(2).normal(0, 0.02, 3 * SIZES.size))
    fit = fit_power_law(n, t)
    assert fit.model == "floor" and fit.floor_s == pytest.approx(1e-6, rel=0.2)
    assert fit.ci_low <= 1.0 <= fit.ci_high and fit.regime == "almost-linear"
    assert fit_power_law(n, t, model="power").exponent < 0.8  # what folding the floor into k gives
    pred = fit.predict(SIZES)
    assert np.allclose(pred["seconds"], exact, rtol=4 * 0.02)  # the curve includes the floor


def test_step_model_reports_the_step_not_a_steeper_k():
    sizes = 2.0 ** np.arange(6, 16)  # (10,)
    t = 1e-8 * sizes * np.where(sizes >= 2.0**11, 3.0, 1.0)
    fit = fit_power_law(sizes, t * np.exp(0.01 * np.sin(sizes)))
    assert fit.model == "step" and fit.ci_low <= 1.0 <= fit.ci_high
    assert (fit.step.n_below, fit.step.n_above) == (1024.0, 2048.0)
    assert fit.step.factor == pytest.approx(3.0, rel=0.05)
    assert fit_power_law(sizes, t, model="power").exponent > 1.1


def test_negative_exponents_and_non_integer_x_fit():
    # i17 fits error-vs-n rates: error ∝ n^−0.5 over non-integer x.
    x = np.geomspace(3.7, 5000.0, 12)
    err = 0.3 * x**-0.5 * np.exp(0.02 * np.sin(7 * x))
    fit = fit_power_law(x, err)
    assert fit.ci_low <= -0.5 <= fit.ci_high and fit.ci_high < 0
    assert fit.regime == "not-asymptotic"  # (a label for timings; rates read exponent and interval)


def test_passes_must_pair_and_models_are_validated():
    with pytest.raises(ValueError, match="passes has 2 values"):
        fit_power_law(SIZES, SIZES, passes=[0, 1])
    with pytest.raises(ValueError, match="model="):
        fit_power_law(SIZES, SIZES, model="spline")
    with pytest.raises(InsufficientDataError, match="model='step' needs"):
        fit_power_law(SIZES[:4], SIZES[:4] * 1e-9 * (1 + 0.01 * np.arange(4)), model="step")
