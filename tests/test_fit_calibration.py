"""Calibration: the fit recovers known laws from noisy synthetic timings, and its labels hold on
laws built to fool them (big_O-style, issue 11).

Design shared by every scenario (the default preset's shape): 19 half-octave sizes 2^8 … 2^17,
3 passes × 3 blocks per size. Noise, multiplicative log-normal at three levels: σ shared by
every timing of a size (the dominant, between-size effect: cache fit, allocator, a busy
machine), 0.03 per pass and 0.02 per block. 200 independent trials per (scenario, σ).

Acceptance: the 95% interval covers the true exponent in ≥ 90% of trials. With 200 trials the
observed coverage of a correct 95% interval has standard deviation √(0.95·0.05/200) ≈ 0.015,
so 0.90 is > 3 sd away. "True exponent": k for power laws (with or without floor or step,
which the fit must not fold into k); for n·logᵖn, which has no single exponent, the log–log
least-squares slope of the noiseless law over the design's sizes (the effective exponent).

The σ = 0.2 grid runs by default; σ = 0.05 and 0.5 are marked ``slow``.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pytest

from ditbench.fit import fit_power_law

SIZES = 2.0 ** np.arange(8, 17.01, 0.5)  # (19,)
PASSES, BLOCKS, TRIALS = 3, 3, 200
PASS_SIGMA, BLOCK_SIGMA = 0.03, 0.02

Law = Callable[[np.ndarray], np.ndarray]
SCENARIOS: dict[str, tuple[Law, float | None]] = {
    "n": (lambda n: 1e-8 * n, 1.0),
    "n^1.5": (lambda n: 1e-10 * n**1.5, 1.5),
    "n^2": (lambda n: 1e-12 * n**2, 2.0),
    # Constant per-call overhead equal to the work at the smallest size, and at 4× it.
    "floor": (lambda n: 1e-8 * (n + 2.0**8), 1.0),
    "floor x4": (lambda n: 1e-8 * (n + 2.0**10), 1.0),
    "n^2 floor": (lambda n: 1e-12 * (n**2 + 2.0**22), 2.0),
    "n log n": (lambda n: 1e-9 * n * np.log(n), None),
    "n log^4 n": (lambda n: 1e-11 * n * np.log(n) ** 4, None),
    # A ×2 level step (cache → memory) halfway up the range.
    "x2 step": (lambda n: 1e-8 * n * np.where(n >= 2.0**13, 2.0, 1.0), 1.0),
}


def truth(name: str) -> float:
    law, k = SCENARIOS[name]
    return k if k is not None else float(np.polyfit(np.log(SIZES), np.log(law(SIZES)), 1)[0])


def trials(law: Law, sigma: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n (p,), pass index (p,) and (TRIALS, p) timings, all trials drawn at once."""
    rng = np.random.default_rng(seed)
    per = PASSES * BLOCKS
    n = np.repeat(SIZES, per)  # (p,)
    passes = np.tile(np.repeat(np.arange(PASSES), BLOCKS), SIZES.size)  # (p,)
    size = np.repeat(rng.normal(0.0, sigma, (TRIALS, SIZES.size)), per, axis=1)  # (T, p)
    pass_ = np.repeat(rng.normal(0.0, PASS_SIGMA, (TRIALS, SIZES.size * PASSES)), BLOCKS, axis=1)  # (T, p)
    block = rng.normal(0.0, BLOCK_SIGMA, (TRIALS, n.size))  # (T, p)
    return n, passes, law(n) * np.exp(size + pass_ + block)


@cache  # coverage and label tests share each (scenario, σ)'s fits
def fits(name: str, sigma: float):
    law, _ = SCENARIOS[name]
    n, passes, times = trials(law, sigma, seed=list(SCENARIOS).index(name) * 10 + int(sigma * 100))
    return tuple(fit_power_law(n, t, passes=passes) for t in times)


def coverage(name: str, sigma: float) -> float:
    k = truth(name)
    return float(np.mean([f.ci_low <= k <= f.ci_high for f in fits(name, sigma)]))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_coverage_at_sigma_0_2(name):
    assert coverage(name, 0.2) >= 0.90


@pytest.mark.slow
@pytest.mark.parametrize("sigma", [0.05, 0.5])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_coverage_at_low_and_high_noise(name, sigma):
    # Includes the ×2 step at σ = 0.5 per size (×1.65 scatter), where the step is 1.4 σ and not
    # identifiable from 19 sizes: the plain law's slope absorbs it (coverage 0.75 when the no-step
    # fit was trusted); the steps the data cannot exclude now widen the interval (docs/fit.md).
    assert coverage(name, sigma) >= 0.90


def test_an_unexcluded_step_widens_only_noisy_fits():
    # At σ = 0.05 a law without a step keeps the plain law's interval (a step ≥ ×1.25 is excluded
    # in most trials, and where it is not, the step model's interval is hardly wider); at σ = 0.2
    # a ×1.25 step cannot be excluded from 19 sizes and the step models join the envelope.
    law, _ = SCENARIOS["n"]
    n, passes, times = trials(law, 0.05, seed=7)
    ratio = [(lambda a, p: (a.ci_high - a.ci_low) / (p.ci_high - p.ci_low))(
        fit_power_law(n, t, passes=passes), fit_power_law(n, t, passes=passes, model="power")) for t in times[:50]]
    assert np.median(ratio) <= 1.05
    assert np.mean(["step" in f.ci_models for f in fits("x2 step", 0.2)]) >= 0.5


########################################################################################
# labels on laws built to fool the rule (σ = 0.05 and 0.2: noise a real run can have)


def labels(name: str, sigma: float) -> dict[str, float]:
    found = [f.regime for f in fits(name, sigma)]
    return {label: found.count(label) / len(found) for label in set(found)}


@pytest.mark.parametrize("sigma", [0.05, 0.2])
def test_floor_under_quadratic_is_never_almost_linear(sigma):
    assert labels("n^2 floor", sigma).get("almost-linear", 0.0) == 0.0


def test_n_log4_n_is_recognised_as_almost_linear_when_the_data_can_tell():
    # Its effective exponent here is 1.48: a free power law alone would say "intermediate".
    # At σ = 0.05 the polylog shape wins decisively; at σ = 0.2 it often cannot be told from
    # n^1.5, and the rule then stays cautious (intermediate or inconclusive, never quadratic).
    assert labels("n log^4 n", 0.05).get("almost-linear", 0.0) >= 0.95
    noisy = labels("n log^4 n", 0.2)
    assert noisy.get("almost-linear", 0.0) >= 0.4 and noisy.get("quadratic", 0.0) == 0.0


@pytest.mark.parametrize("sigma", [0.05, 0.2, pytest.param(0.5, marks=pytest.mark.slow)])
def test_power_1_5_is_not_passed_off_as_polylog(sigma):
    # n^1.5 against n·log⁴n (slope 1.3–1.6 over these sizes) is the nearest fool.
    assert labels("n^1.5", sigma).get("almost-linear", 0.0) <= 0.05


@pytest.mark.parametrize("name", ["floor", "floor x4", "x2 step"])
def test_floor_and_step_do_not_make_a_linear_law_look_otherwise(name):
    got = labels(name, 0.05)
    assert got.get("almost-linear", 0.0) >= 0.9, got


def test_floor_and_step_are_reported():
    floor = fits("floor x4", 0.05)
    assert np.mean([f.model == "floor" for f in floor]) >= 0.9
    found = [f.floor_s for f in floor if f.floor_s is not None]
    assert np.median(found) == pytest.approx(1e-8 * 2.0**10, rel=0.2)
    step = fits("x2 step", 0.05)
    assert np.mean([f.step is not None for f in step]) >= 0.9
    found = [f.step for f in step if f.step is not None]
    assert np.median([s.factor for s in found]) == pytest.approx(2.0, rel=0.1)
    assert np.mean([s.n_below < 2.0**13 <= s.n_above for s in found]) >= 0.9


def test_overhead_only_is_not_asymptotic():
    # Flat timings (a floor 100× the work everywhere): sub-linear, never almost-linear.
    n, passes, times = trials(lambda n: 1e-3 + 1e-12 * n, 0.05, seed=99)
    found = [fit_power_law(n, t, passes=passes).regime for t in times[:50]]
    assert set(found) <= {"not-asymptotic", "inconclusive"} and found.count("not-asymptotic") >= 40
