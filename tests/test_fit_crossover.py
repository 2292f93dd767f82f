"""crossover: known lines, the Fieller interval's coverage, and every status."""
from __future__ import annotations

import numpy as np
import pytest

from ditbench.fit import crossover, fit_power_law

SIZES = 2.0 ** np.arange(6, 15)  # (9,) 64 … 16384


def fit(law, sigma=0.05, seed=0, sizes=SIZES):
    rng = np.random.default_rng(seed)
    n = np.repeat(sizes, 5)
    return fit_power_law(n, law(n) * np.exp(rng.normal(0.0, sigma, n.size)))


EXACT = lambda n: 1e-9 * n**2  # noqa: E731
APPROX = lambda n: 1e-6 * n  # noqa: E731  — equal to EXACT at n* = 1000


def test_known_lines_cross_at_1000_and_interval_covers_it():
    covered = 0
    trials = 60
    for seed in range(trials):
        result = crossover(fit(APPROX, seed=2 * seed), fit(EXACT, seed=2 * seed + 1))
        assert result.status == "crosses" and result.interval == "bounded"
        assert result.low < result.n_star < result.high
        covered += result.low <= 1000 <= result.high
    # A 95% interval: ≥ 85% of 60 trials (binomial sd ≈ 2.8%, so 85% is > 3 sd below 95%).
    assert covered / trials >= 0.85


def test_statuses_outside_the_range():
    beyond = crossover(fit(lambda n: 1e-3 * n), fit(EXACT))  # equal at n = 1e6
    assert beyond.status == "crosses-beyond-range" and beyond.n_star == pytest.approx(1e6, rel=0.5)
    below = crossover(fit(lambda n: 1e-10 * n), fit(EXACT))  # equal at n = 0.1
    assert below.status == "crosses-below-range"
    never = crossover(fit(lambda n: 1e-9 * n**2.2), fit(EXACT))  # slower and steeper
    assert never.status == "never-faster" and never.n_star is None and never.low is None
    steeper = crossover(fit(lambda n: 1e-12 * n**2.5), fit(EXACT))  # faster now, loses later
    assert steeper.status == "faster-but-steeper" and steeper.n_star == pytest.approx(1e6, rel=0.5)


def test_indistinguishable_slopes_give_unbounded_interval_not_nan():
    # 3 sizes and 50% noise: the slope difference is not significant.
    sizes = np.array([100.0, 200.0, 400.0])
    result = crossover(fit(lambda n: 1e-7 * n**1.8, sigma=0.5, sizes=sizes), fit(EXACT, sigma=0.5, sizes=sizes, seed=1))
    assert result.interval == "unbounded" and result.low is None and result.high is None
    for value in (result.n_star, result.slope_gap):
        assert value is None or np.isfinite(value) or value == np.inf
