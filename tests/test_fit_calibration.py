"""Calibration: the fit recovers known laws from noisy synthetic timings (big_O-style).

Set-up shared by every law: 10 sizes n = 2^8 … 2^17, 5 repeats each, multiplicative lognormal
noise with σ = 0.1 (≈ 10% scatter, typical of CPU timings), 200 independent trials per law, the
asymptotic-region rule active (as users run it). Acceptance (from the issue): the 95% interval
covers the true exponent in ≥ 90% of trials and its median width is ≤ 0.15.

The bound 0.90 sits well below the nominal 0.95: with 200 trials the observed coverage of a
correct 95% interval has standard deviation √(0.95·0.05/200) ≈ 0.015, so 0.90 is > 3 sd away,
while an interval that ignored the noise or the region rule would miss far more often
(measured: the unweighted fit with a floor covers 1 in about half of the trials).
"""
from __future__ import annotations

import numpy as np
import pytest

from ditbench.fit import ESTIMATORS, FULL_RANGE, fit_power_law

SIZES = 2.0 ** np.arange(8, 18)  # (10,)
REPEATS = 5
TRIALS = 200
SIGMA = 0.1

LAWS = {
    "n": lambda n: 1e-8 * n,
    "n^1.3": lambda n: 1e-9 * n**1.3,
    "n^2": lambda n: 1e-12 * n**2,
    "n log n": lambda n: 1e-9 * n * np.log(n),
}


def true_exponent(law, sizes: np.ndarray) -> float:
    """Log–log slope of the noiseless law over ``sizes``: k for n^k; for n log n it is
    1 + (least-squares slope of ln ln n on ln n) ≈ 1 + 1/ln n̄, about 1.12 over 2^8…2^17."""
    return float(np.polyfit(np.log(sizes), np.log(law(sizes)), 1)[0])


def synthetic(law, rng: np.random.Generator, floor: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(TRIALS, p) timings for p = sizes × repeats, all trials drawn at once."""
    n = np.repeat(SIZES, REPEATS)  # (p,)
    noise = np.exp(rng.normal(0.0, SIGMA, size=(TRIALS, n.size)))  # (TRIALS, p)
    return n, (floor + law(n)) * noise  # (p,), (TRIALS, p)


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("law_name", list(LAWS))
def test_interval_covers_true_exponent(law_name, estimator):
    law = LAWS[law_name]
    n, times = synthetic(law, np.random.default_rng([list(LAWS).index(law_name), ESTIMATORS.index(estimator)]))
    covered, widths = 0, []
    for trial in times:
        fit = fit_power_law(n, trial, estimator=estimator)
        # The truth over the sizes actually fitted (the region rule may drop a few small ones).
        truth = true_exponent(law, SIZES[SIZES >= fit.n_min])
        covered += fit.ci_low <= truth <= fit.ci_high
        widths.append(fit.ci_high - fit.ci_low)
    assert covered / TRIALS >= 0.90, f"coverage {covered / TRIALS:.3f}"
    assert np.median(widths) <= 0.15, f"median width {np.median(widths):.3f}"


@pytest.mark.slow
def test_overhead_floor_does_not_pull_linear_law_below_0_9():
    # Constant overhead equal to the linear work at the smallest size: time doubles only over
    # the first doubling of n, so the smallest sizes are floor-dominated (local slope ≈ 0.6).
    law = LAWS["n"]
    n, times = synthetic(law, np.random.default_rng(7), floor=law(SIZES[0]))
    fits = [fit_power_law(n, trial) for trial in times]
    exponents = np.array([f.exponent for f in fits])
    assert exponents.min() >= 0.9, f"lowest exponent {exponents.min():.3f}"
    # The rule is what protects the estimate: fitting every size is pulled further down.
    naive = np.array([fit_power_law(n, trial, region=FULL_RANGE).exponent for trial in times[:50]])
    assert np.median(exponents) > np.median(naive) + 0.03
    assert np.mean([len(f.dropped_sizes) for f in fits]) >= 1  # floor-dominated sizes are dropped


@pytest.mark.slow
def test_floor_term_restores_coverage_under_an_overhead_floor():
    # Same floor as above. The region rule alone leaves the linear law's exponent about 0.03
    # low, so its interval misses 1 in about half of the trials (measured 0.55 — asserted
    # below 0.8 so the test shows the option is needed); with the floor regressor the
    # interval covers 1 at the nominal rate.
    law = LAWS["n"]
    n, times = synthetic(law, np.random.default_rng(8), floor=law(SIZES[0]))
    plain = [fit_power_law(n, trial) for trial in times]
    floored = [fit_power_law(n, trial, floor_term=True) for trial in times]
    assert np.mean([f.ci_low <= 1.0 <= f.ci_high for f in plain]) < 0.8
    assert np.mean([f.ci_low <= 1.0 <= f.ci_high for f in floored]) >= 0.90
    assert np.median([f.ci_high - f.ci_low for f in floored]) <= 0.2
